"""Known gaps of the activity endpoints against a hostile (or just busy) server.

Each test is a hostile scenario (tests/hostile.py) kept out of the registry, so that
``scripts/torture.py --mode hostile`` shows what holds, and marked ``xfail(strict=True)``
with the reason: when gh-collect is fixed, the test passes, fails as XPASS, and the
scenario moves to tests/hostile_scenarios.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile import Ctx, Drive, HostileServer, Scenario, World, run_scenario

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as running:
        yield running


def holds(server: HostileServer, build: Scenario, folder: Path) -> None:
    result = run_scenario(server, build, folder)
    assert result.held, f"{build.what}: {result.problems}; steps {result.steps}"


def edited_release_below_page_one(world: World) -> Drive:
    repo = world.repo("nightly", releases=150)
    oldest = min(repo.releases, key=lambda release: str(release["created_at"]))

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        oldest.update(name="renamed", updated_at="2025-12-01T00:00:00Z")
        ctx.cli("collect", expect=0)
        versions = ctx.raw_ids("releases")[oldest["id"]]
        ctx.expect(versions == 2, f"the edited release is stored in {versions} versions, not 2")
        ctx.expect_raw_exact("releases", world.truth("releases") + Counter([oldest["id"]]))
        ctx.expect_curated_exact("releases")
        name = ctx.curated_column("releases", "name").get(oldest["id"])
        ctx.expect(name == "renamed", f"curated name {name!r}")
        ctx.expect_exact(but=("releases",))

    return drive


@pytest.mark.xfail(
    strict=True,
    reason="harvest/passes.py _walk_pass: a refresh ends a newest-first walk at a 304 on page "
    "1 (`last = step.unchanged and order.newest_first`), but releases do not move when edited "
    "(Order.moves_on_update is False): an edit below page 1 is never read (README: 'a refresh "
    "reads down to the year's start again')",
)
def test_a_refresh_reads_a_release_edited_below_the_first_page(
    server: HostileServer, tmp_path: Path
) -> None:
    spec = Scenario(
        "edited-release", "2", "a release edited on page 2", edited_release_below_page_one
    )
    holds(server, spec, tmp_path)


def keyless_commits_refreshed(world: World) -> Drive:
    repo = world.repo("keyless", commits=3)
    del world.add_commit(repo)["sha"]
    world.add_commit(repo, sha=None)

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        world.add_commit(repo)  # page 1 changes: the refresh reads it again (200, not 304)
        ctx.cli("collect", expect=0)
        ctx.expect_raw_exact("commits")  # the two keyless commits once each, as read
        dropped = ctx.export_counts("dropped")
        ctx.expect(dropped == {"commits": 2}, f"export.dropped is {dropped}, 2 were served")
        readable = Counter(sha for sha in world.truth("commits") if sha)
        ctx.expect_curated_exact("commits", readable)

    return drive


@pytest.mark.xfail(
    strict=True,
    reason="durable/validators.py KnownVersions.changed keeps every item whose key is None "
    "(`i.get(self._key) is None`): a commit without a sha is appended to raw again each time "
    "a refresh reads its page in full, and manifest export.dropped counts every copy",
)
def test_a_commit_without_a_sha_is_stored_once_however_often_its_page_is_read(
    server: HostileServer, tmp_path: Path
) -> None:
    spec = Scenario("keyless-refresh", "10", "keyless commits refreshed", keyless_commits_refreshed)
    holds(server, spec, tmp_path)
