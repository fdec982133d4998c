"""The six REST endpoints at once, end to end: the real CLI against the simulator."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from gh_collect import endpoints
from gh_collect.simulator import SCENARIO_REPOS

from .conftest import (
    assert_exactly_truth,
    cli_env,
    dataset,
    gh_collect_cmd,
    run_cli,
    truth_ids,
    write_config,
)

pytestmark = pytest.mark.e2e

ALL_REST = ("pulls", "issues", "issue_comments", "review_comments", "commits", "releases")
ACTIVITY = ALL_REST[2:]


def curated_keys(root: Path, endpoint: str) -> list[Any]:
    key = endpoints.get(endpoint).key
    table = ds.dataset(root / "curated", format="parquet", partitioning="hive").to_table(
        columns=[key], filter=ds.field("endpoint") == endpoint
    )
    return table.column(key).to_pylist()


def activity_routes(stats: dict[str, Any]) -> dict[str, int]:
    """Requests per route template, for the repo-wide activity lists."""
    wanted = ("/issues/comments", "/pulls/comments", "/commits", "/releases")
    return {route: n for route, n in stats["by_route"].items() if route.endswith(wanted)}


def test_all_six_endpoints_equal_the_ground_truth_raw_and_curated(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    proc = run_cli("collect", "-c", str(write_config(tmp_path, sim.url, endpoints=ALL_REST)))
    assert proc.returncode == 1, proc.stderr  # the vanished repo only
    paths = dataset(tmp_path)
    assert_exactly_truth(paths, sim, ALL_REST)
    truth = sim.ground_truth(year=2025, endpoints=ACTIVITY)
    for endpoint in ACTIVITY:
        keys = curated_keys(paths.root, endpoint)
        assert sorted(keys) == sorted(truth_ids(truth, endpoint)), endpoint
    manifest = json.loads(paths.manifest.read_text())
    failed = {(f["repo"].split("/")[-1], f["endpoint"]) for f in manifest["failures"]}
    assert failed == {(SCENARIO_REPOS["vanished"], e) for e in ALL_REST}
    empty = f"sample-org/{SCENARIO_REPOS['empty']}"
    assert manifest["counts"]["commits"]["per_repo"][empty] == 0  # its 409: no commits
    assert all(manifest["counts"][e]["records"] > 0 for e in ALL_REST)


def test_a_no_change_refresh_of_every_endpoint_is_charged_nothing(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = str(write_config(tmp_path, sim.url, endpoints=ALL_REST))
    assert run_cli("collect", "-c", config).returncode == 1
    full = sim.stats()["budget_spent"]
    sim.reset_stats()
    assert run_cli("collect", "-c", config, "--quiet").returncode == 1
    stats = sim.stats()
    # the 304s are free; what is charged: the listing, full last pages (their ETag cannot
    # vouch for a next page), the empty repo's 409
    assert stats["budget_spent"] <= 0.05 * full, (full, stats)
    assert stats["not_modified"] >= 10 * stats["budget_spent"]
    assert_exactly_truth(dataset(tmp_path), sim, ALL_REST)


def test_adding_commits_to_a_finished_dataset_harvests_only_commits(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    assert run_cli("collect", "-c", str(write_config(tmp_path, sim.url))).returncode == 1
    paths = dataset(tmp_path)
    before = {p: p.read_bytes() for p in paths.raw_dir.glob("endpoint=*/*.jsonl")}
    sim.reset_stats()
    config = write_config(tmp_path, sim.url, endpoints=["pulls", "issues", "commits"])
    proc = run_cli("collect", "-c", str(config))
    assert proc.returncode == 1, proc.stderr
    routes = sim.stats()["by_route"]
    assert routes and all(route.endswith("/commits") for route in routes), routes
    assert {p: p.read_bytes() for p in before} == before  # pulls and issues untouched
    assert_exactly_truth(paths, sim, ("pulls", "issues", "commits"))
    assert "commits" in json.loads(paths.manifest.read_text())["counts"]
    # the next run refreshes all three, conditionally
    sim.reset_stats()
    assert run_cli("collect", "-c", str(config), "--quiet").returncode == 1
    assert any("/pulls" in route for route in sim.stats()["by_route"])


def test_kill_9_during_the_activity_phases_then_resume_is_exact(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator(latency_ms=15)
    config = str(write_config(tmp_path, sim.url, endpoints=ALL_REST, checkpoint={"every_pages": 1}))
    paths = dataset(tmp_path)
    for _kill in range(3):
        proc = subprocess.Popen(
            gh_collect_cmd("collect", "-c", config, "--quiet"),
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not _in_activity_phase(paths.checkpoint) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert run_cli("collect", "-c", config, "--quiet").returncode == 1
    assert_exactly_truth(paths, sim, ALL_REST)


def _in_activity_phase(checkpoint: Path) -> bool:
    try:
        state = json.loads(checkpoint.read_text())
    except (OSError, ValueError):
        return False
    return state.get("current_phase") in ACTIVITY


def test_dry_run_counts_the_pages_of_each_endpoint(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    config = str(write_config(tmp_path, sim.url, endpoints=ALL_REST))
    plan = run_cli("collect", "-c", config, "--dry-run")
    assert plan.returncode == 0, plan.stderr
    sim.reset_stats()
    assert run_cli("collect", "-c", config, "--quiet").returncode == 1
    routes = activity_routes(sim.stats())
    for endpoint, suffix in zip(
        ACTIVITY, ("/issues/comments", "/pulls/comments", "/commits", "/releases"), strict=True
    ):
        walked = sum(n for route, n in routes.items() if route.endswith(suffix))
        assert f"{endpoint}" in plan.stdout
        assert str(walked) in plan.stdout, (endpoint, walked, plan.stdout)
