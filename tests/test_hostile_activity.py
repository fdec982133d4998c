"""Two gaps the hostile world found in the activity endpoints, fixed since: regressions.

A refresh read releases only down to an unchanged first page (an edited release does not
move in a list sorted by creation), and a commit without a sha was written again each time
its page was read. Each test is a hostile scenario (tests/hostile.py) run here directly.
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


def test_a_commit_without_a_sha_is_stored_once_however_often_its_page_is_read(
    server: HostileServer, tmp_path: Path
) -> None:
    spec = Scenario("keyless-refresh", "10", "keyless commits refreshed", keyless_commits_refreshed)
    holds(server, spec, tmp_path)
