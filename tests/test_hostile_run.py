"""A run against a server that sends odd or hostile data: nothing lost, nothing overwritten.

Each test names the issue item it covers ("Nothing lost, whatever the server sends"). The
end-to-end ones run the real CLI in a subprocess against the simulator and check the exit
code, the one-line message, the data on disk (exact ids against the simulator's ground truth)
and that the token is nowhere; the rest call the library with an httpx transport in front of
the simulator (or instead of it), which is the honest level for what a server sends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gh_collect.durable.checkpoint import CheckpointState, read_checkpoint
from gh_collect.durable.envelope import read_envelopes
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import ApiError, CheckpointError, UsageError
from gh_collect.harvest.run import RunOptions, collect
from gh_collect.simulator import SCENARIO_REPOS

from .conftest import (
    ORG,
    TOKEN,
    YEAR,
    assert_exactly_truth,
    cli_env,
    dataset,
    gh_collect_cmd,
    harvested_ids,
    run_cli,
    write_config,
)
from .test_run import make_config

HUNDRED = SCENARIO_REPOS["hundred"]
TWO_HUNDRED = SCENARIO_REPOS["two_hundred"]


# --- helpers -----------------------------------------------------------------------------------


def assert_token_nowhere(root: Path, *texts: str) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    for text in texts:
        assert TOKEN not in text


def error_line(stderr: str) -> str:
    """The one ``gh-collect: error:`` line, which must end stderr; no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("gh-collect: error: "), stderr
    return lines[-1]


def state_of(tmp_path: Path) -> CheckpointState:
    return read_checkpoint(dataset(tmp_path).checkpoint)


def unit_ids(paths: DatasetPaths, state: CheckpointState, repo: str, endpoint: str) -> Counter[int]:
    path = paths.unit_file(endpoint, state.repos[repo])
    return Counter(line["data"]["id"] for line in read_envelopes(path))


def truth_of(sim: Any, name: str, endpoint: str) -> Counter[int]:
    return Counter(obj["id"] for obj in sim.ground_truth(year=YEAR)[endpoint][name])


class Rewrite(httpx.AsyncBaseTransport):
    """Forwards to the simulator; pages whose path contains ``needle`` go through ``edit``."""

    def __init__(self, needle: str, edit: Callable[[Any], Any]) -> None:
        self.needle, self.edit = needle, edit
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.needle not in request.url.path or response.status_code != 200:
            return response
        body = json.loads(await response.aread())
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        headers.pop("content-encoding", None)
        return httpx.Response(200, json=self.edit(body), headers=headers)

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- 1. raw file names unique per repo by construction ------------------------------------------


@pytest.mark.e2e
def test_same_name_under_two_owners_keeps_both_repos_data(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    sim.add_alias("other-owner", HUNDRED, of=TWO_HUNDRED)
    sim.add_alias(ORG, HUNDRED.upper(), of=TWO_HUNDRED)  # differs only in case
    config = write_config(tmp_path, sim.url, github={"concurrency": 4})
    proc = run_cli("collect", "-c", str(config))
    assert proc.returncode == 1, proc.stderr  # the vanished repo, nothing else
    assert "Traceback" not in proc.stderr
    paths, state = dataset(tmp_path), state_of(tmp_path)
    for endpoint in ("pulls", "issues"):
        names = [p.name.lower() for p in paths.endpoint_dir(endpoint).glob("*.jsonl")]
        assert len(names) == len(set(names)), f"{endpoint}: two repos share a file"
        for repo, source in (
            (f"{ORG}/{HUNDRED}", HUNDRED),
            (f"other-owner/{HUNDRED}", TWO_HUNDRED),
            (f"{ORG}/{HUNDRED.upper()}", TWO_HUNDRED),
        ):
            assert unit_ids(paths, state, repo, endpoint) == truth_of(sim, source, endpoint)
            claimed = state.repos[repo].units[endpoint].records_collected
            assert claimed == sum(truth_of(sim, source, endpoint).values())
    assert state.repos[f"{ORG}/{HUNDRED}"].file_part == HUNDRED  # a GitHub name stays readable
    assert_token_nowhere(tmp_path, proc.stdout, proc.stderr)


# --- 2. a failed refresh resumes as a refresh and keeps what it had -----------------------------


@pytest.mark.e2e
def test_failed_refresh_retried_keeps_every_record_it_had(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = write_config(tmp_path, sim.url, github={"retries": 2})
    assert run_cli("collect", "-c", str(config)).returncode == 1
    paths = dataset(tmp_path)
    unit = paths.unit_file("pulls", state_of(tmp_path).repos[f"{ORG}/{HUNDRED}"])
    before = unit.read_bytes()
    time.sleep(1.1)  # a re-fetch would write other fetched_at stamps
    sim.fail(f"/{HUNDRED}/pulls")  # the refresh fails on page 1
    refresh = run_cli("collect", "-c", str(config))
    assert refresh.returncode == 1
    assert unit.read_bytes() == before
    sim.clear_failures()
    retried = run_cli("collect", "-c", str(config), "--retry-failed")
    assert retried.returncode == 1, retried.stderr  # the vanished repo stays failed
    assert unit.read_bytes().startswith(before), "what the unit held was cut back and re-fetched"
    progress = state_of(tmp_path).repos[f"{ORG}/{HUNDRED}"].units["pulls"]
    assert str(progress.status) == "complete" and progress.passes == 2
    assert_exactly_truth(paths, sim)
    assert_token_nowhere(tmp_path, refresh.stdout, refresh.stderr, retried.stderr)


# --- 3. a new page behind a full last page ------------------------------------------------------


@pytest.mark.e2e
def test_refresh_sees_a_101st_repo_behind_a_full_last_page(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator(repos=100)
    config = write_config(tmp_path, sim.url)
    assert run_cli("collect", "-c", str(config), "--quiet").returncode == 1
    sim.add_repo("zzz-new-repo", items=30, seed=4)  # sorts last: page 2 of the listing
    proc = run_cli("collect", "-c", str(config), "--quiet")
    assert proc.returncode == 1, proc.stderr
    assert f"{ORG}/zzz-new-repo" in state_of(tmp_path).repos
    assert_exactly_truth(dataset(tmp_path), sim)
    assert_token_nowhere(tmp_path, proc.stdout, proc.stderr)


@pytest.mark.e2e
def test_refresh_sees_a_101st_pull_behind_a_full_last_page(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = write_config(tmp_path, sim.url)
    assert run_cli("collect", "-c", str(config), "--quiet").returncode == 1
    new_pull = sim.add_pull(HUNDRED, created_at=f"{YEAR}-12-31T23:00:00Z")
    proc = run_cli("collect", "-c", str(config), "--quiet")
    assert proc.returncode == 1, proc.stderr
    assert harvested_ids(dataset(tmp_path), "pulls")[new_pull] == 1
    assert_exactly_truth(dataset(tmp_path), sim)


# --- 5. --from-repo leaving repos pending is not "complete" -------------------------------------


@pytest.mark.e2e
def test_from_repo_on_a_fresh_dataset_is_partial_and_exits_1(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator(repos=8, faults={})
    config = write_config(tmp_path, sim.url, target={"exclude": ["vanished-*"]})
    start = f"{ORG}/{HUNDRED}"
    proc = run_cli("collect", "-c", str(config), "--from-repo", start)
    assert proc.returncode == 1, proc.stderr
    paths = dataset(tmp_path)
    order = list(state_of(tmp_path).repos)
    before = order.index(start)
    assert before > 0, "the test needs repos before the start"
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["status"] == "partial"
    output = proc.stdout + proc.stderr
    assert f"{before} repos before {start} are not collected yet" in output
    assert "run without --from-repo to finish" in output
    done = run_cli("collect", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert json.loads(paths.manifest.read_text())["status"] == "complete"
    assert_exactly_truth(paths, sim, exclude=["vanished-*"])
    assert_token_nowhere(tmp_path, proc.stdout, proc.stderr)


# --- 11. discovery is checkpointed page by page ------------------------------------------------


@pytest.mark.e2e
def test_max_requests_below_the_discovery_pages_still_progresses(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator(repos=230)  # three pages of repos
    config = write_config(tmp_path, sim.url)
    paths = dataset(tmp_path)
    for pages in (1, 2):
        proc = run_cli("collect", "-c", str(config), "--max-requests", "1", "--quiet")
        assert proc.returncode == 75, proc.stderr
        assert "the next run continues" in error_line(proc.stderr)
        state = json.loads(paths.checkpoint.read_text())
        assert state["discovery"]["pages"] == pages
    status = run_cli("status", "-c", str(config))
    assert "discovery   under way: 2 pages of repos read" in status.stdout
    sim.reset_stats()
    last = run_cli("collect", "-c", str(config), "--max-requests", "2", "--quiet")
    assert last.returncode == 75
    routes = sim.stats()["by_route"]
    listing = routes.get("/orgs/{org}/repos", 0) + routes.get("/organizations/{org_id}/repos", 0)
    assert listing == 1  # only the third page: the first two were read by earlier runs
    assert state_of(tmp_path).phases["discovery"].status == "complete"
    assert len(state_of(tmp_path).repos) == 229  # all but the fork
    final = run_cli("collect", "-c", str(config), "--quiet")
    assert final.returncode == 1, final.stderr
    assert_exactly_truth(paths, sim)
    assert_token_nowhere(tmp_path, last.stderr, final.stdout, final.stderr)


# --- 13. a lock that survives deleting checkpoint.json.lock ------------------------------------


@pytest.mark.e2e
def test_deleting_the_lock_file_does_not_let_a_second_run_in(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator(latency_ms=150)  # the first run lasts well beyond the checks
    config = write_config(
        tmp_path, sim.url, checkpoint={"every_pages": 1}, github={"concurrency": 1}
    )
    paths = dataset(tmp_path)
    first = subprocess.Popen(
        gh_collect_cmd("collect", "-c", str(config), "--quiet"),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not paths.checkpoint.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert paths.lock.read_text().strip() == str(first.pid)
        paths.lock.unlink()  # "a stale lock": the natural, wrong, fix
        second = run_cli("collect", "-c", str(config))
        assert second.returncode == 3, second.stderr
        assert "another gh-collect run" in error_line(second.stderr)
        export = run_cli("export", "-c", str(config))
        assert export.returncode == 3, export.stderr
        assert "another gh-collect run" in error_line(export.stderr)
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=15)
    assert first.returncode == 143, err
    assert_token_nowhere(tmp_path, out, err)
    rerun = run_cli("collect", "-c", str(config), "--quiet")
    assert rerun.returncode == 1, rerun.stderr
    assert_exactly_truth(paths, sim)


# --- 14. names that are dot-segments, a --from-repo typo, a raw file cut short ------------------


def _hostile_listing_server(sent: list[bytes]) -> httpx.MockTransport:
    listing = [
        {"id": 1, "name": "..", "full_name": f"{ORG}/..", "fork": False},
        {"id": 2, "name": ".", "full_name": f"{ORG}/.", "fork": False},
        {"id": 3, "name": "x", "full_name": "../x", "fork": False},
    ]

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.raw_path)
        if request.url.path.startswith(f"/orgs/{ORG}/repos"):
            return httpx.Response(200, json=listing)
        return httpx.Response(200, json=[])

    return httpx.MockTransport(handle)


def test_dot_segment_names_are_percent_encoded_in_the_url_sent(tmp_path: Path) -> None:
    sent: list[bytes] = []
    config = make_config(tmp_path, "https://api.github.test")
    result = collect(config, TOKEN, transport=_hostile_listing_server(sent))
    assert result.exit_code == 0
    pulls = sorted(path.split(b"?")[0] for path in sent if b"/pulls" in path)
    assert pulls == [
        b"/repos/%2E%2E/x/pulls",
        f"/repos/{ORG}/%2E%2E/pulls".encode(),
        f"/repos/{ORG}/%2E/pulls".encode(),
    ]
    paths = dataset(tmp_path)
    files = [p.resolve() for p in paths.raw_dir.rglob("*.jsonl")]
    assert all(p.is_relative_to(paths.raw_dir.resolve()) for p in files)


def test_from_repo_typo_on_a_complete_dataset_sends_no_request(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = make_config(tmp_path, sim.url)
    collect(config, TOKEN)
    before = dataset(tmp_path).checkpoint.read_bytes()
    sim.reset_stats()
    with pytest.raises(UsageError, match=f"did you mean {ORG}/{HUNDRED}"):
        collect(config, TOKEN, RunOptions(from_repo=f"{ORG}/{HUNDRED}x"))
    assert sim.stats()["requests"] == 0
    assert dataset(tmp_path).checkpoint.read_bytes() == before


def test_raw_file_shorter_than_the_checkpoint_is_exit_2_naming_the_fix(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = write_config(tmp_path, sim.url)
    assert run_cli("collect", "-c", str(config), "--quiet").returncode == 1
    paths = dataset(tmp_path)
    unit = paths.unit_file("pulls", state_of(tmp_path).repos[f"{ORG}/{HUNDRED}"])
    os.truncate(unit, unit.stat().st_size // 2)
    proc = run_cli("collect", "-c", str(config), "--quiet")
    assert proc.returncode == 2, proc.stderr
    line = error_line(proc.stderr)
    assert str(unit) in line and "--force" in line and "restore" in line


def test_raw_file_shorter_is_a_checkpoint_error(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    config = make_config(tmp_path, sim.url)
    collect(config, TOKEN)
    paths = dataset(tmp_path)
    unit = paths.unit_file("issues", state_of(tmp_path).repos[f"{ORG}/{HUNDRED}"])
    unit.unlink()
    with pytest.raises(CheckpointError) as info:
        collect(config, TOKEN)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


# --- 9. malformed listings, malformed items, naive timestamps -----------------------------------


def _listing_of(items: list[Any]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith(f"/orgs/{ORG}/repos"):
            return httpx.Response(200, json=items)
        return httpx.Response(200, json=[])

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("items", "needle"),
    [
        ([1, "two"], "not a repo object"),
        ([{"name": "a", "full_name": f"{ORG}/a"}], "'id'"),
        ([{"id": 1, "name": "a"}], "'full_name'"),
        ([{"id": 1, "full_name": f"{ORG}/a"}], "'name'"),
        ([{"id": "1", "name": "a", "full_name": f"{ORG}/a"}], "'id'"),
    ],
)
def test_malformed_repo_listing_is_a_one_line_api_error(
    tmp_path: Path, items: list[Any], needle: str
) -> None:
    config = make_config(tmp_path, "https://api.github.test")
    with pytest.raises(ApiError) as info:
        collect(config, TOKEN, transport=_listing_of(items))
    message = str(info.value)
    assert "repo listing" in message and needle in message and "\n" not in message
    assert not state_of(tmp_path).repos  # nothing half-adopted


def test_non_object_items_fail_the_unit_retryably(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    config = make_config(tmp_path, sim.url)
    spoil = Rewrite(f"/{HUNDRED}/pulls", lambda items: [*items[:3], 17, "x", *items[3:]])
    result = collect(config, TOKEN, transport=spoil)
    failure = next(f for f in result.failures if f["repo"] == f"{ORG}/{HUNDRED}")
    assert failure["retryable"] is True and "not an object" in failure["error"]
    assert "\n" not in failure["error"]
    retried = collect(config, TOKEN, RunOptions(retry_failed=True))
    assert {f["repo"] for f in retried.failures} == {f"{ORG}/{SCENARIO_REPOS['vanished']}"}
    assert_exactly_truth(dataset(tmp_path), sim)


def test_timestamp_without_timezone_is_read_as_utc_and_kept(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = make_config(tmp_path, sim.url)

    def naive(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for item in items:
            item["created_at"] = item["created_at"].rstrip("Z")
            item["updated_at"] = item["updated_at"].replace("Z", "")
        return items

    spoil = Rewrite(f"/{HUNDRED}/", naive)
    result = collect(config, TOKEN, RunOptions(export=False), transport=spoil)
    assert {f["repo"] for f in result.failures} == {f"{ORG}/{SCENARIO_REPOS['vanished']}"}
    paths = dataset(tmp_path)
    state = state_of(tmp_path)
    for endpoint in ("pulls", "issues"):
        assert unit_ids(paths, state, f"{ORG}/{HUNDRED}", endpoint) == truth_of(
            sim, HUNDRED, endpoint
        )


def test_crash_mid_discovery_resumes_at_the_next_page_exactly_once(
    tmp_path: Path, start_simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gh_collect.harvest.listing import RepoListing

    from .test_run import Crash

    sim = start_simulator(repos=230)
    config = make_config(tmp_path, sim.url, checkpoint={"every_pages": 1})
    real_next, calls = RepoListing.next_page, {"n": 0}

    async def die_on_the_third_page(self: RepoListing) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Crash
        return await real_next(self)

    monkeypatch.setattr(RepoListing, "next_page", die_on_the_third_page)
    with pytest.raises(Crash):
        collect(config, TOKEN)
    monkeypatch.undo()
    assert state_of(tmp_path).discovery is not None
    assert state_of(tmp_path).discovery.pages == 2  # type: ignore[union-attr]
    sim.reset_stats()
    result = collect(config, TOKEN, RunOptions(export=False))
    assert result.exit_code == 1  # the vanished repo
    routes = sim.stats()["by_route"]
    assert routes.get("/orgs/{org}/repos", 0) + routes["/organizations/{org_id}/repos"] == 1
    paths = dataset(tmp_path)
    listed = [line["data"]["id"] for line in read_envelopes(paths.repos_file)]
    assert len(listed) == len(set(listed)) == 229  # all but the fork, each once
    assert not paths.discovery_pages.exists()
    assert_exactly_truth(paths, sim)


def test_refresh_compares_a_mistyped_id_instead_of_crashing(tmp_path: Path) -> None:
    from gh_collect.durable.validators import KnownVersions

    known = KnownVersions(tmp_path / "none.jsonl", 0)
    odd = [{"id": [1, 2], "updated_at": "2025-01-01T00:00:00Z"}, {"id": {"x": 1}}]
    assert known.changed(odd) == odd
    assert known.changed(odd) == []  # the same versions again: nothing new


def test_path_segment_never_yields_a_dot_segment() -> None:
    from gh_collect.endpoints import path_segment

    assert path_segment("..") == "%2E%2E" and path_segment(".") == "%2E"
    assert path_segment("my.repo") == "my.repo"  # a name GitHub allows stays as it is
    assert path_segment("a/b") == "a%2Fb" and path_segment("...") == "%2E%2E%2E"
