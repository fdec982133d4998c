"""``reviews`` and ``pull_stats`` end to end: the real CLI against the simulator's GraphQL."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from gh_collect import endpoints
from gh_collect.durable.envelope import read_envelopes
from gh_collect.simulator import SCENARIO_REPOS

from .conftest import (
    assert_exactly_truth,
    cli_env,
    dataset,
    gh_collect_cmd,
    harvested_ids,
    run_cli,
    truth_ids,
    write_config,
)

pytestmark = pytest.mark.e2e

EIGHT = tuple(endpoints.names()[:8])
GRAPHQL = ("reviews", "pull_stats")
HUNDRED = SCENARIO_REPOS["hundred"]


def curated_ids(root: Path, endpoint: str) -> Counter[int]:
    table = ds.dataset(root / "curated", format="parquet", partitioning="hive").to_table(
        columns=["id"], filter=ds.field("endpoint") == endpoint
    )
    return Counter(table.column("id").to_pylist())


def as_ints(ids: Counter[Any]) -> Counter[int]:
    return Counter({int(key): n for key, n in ids.items()})


def assert_graphql_exact(paths: Any, sim: Any) -> None:
    """Raw and curated, by each endpoint's key: every record once, nothing else."""
    assert_exactly_truth(paths, sim, GRAPHQL)
    truth = sim.ground_truth(year=2025, endpoints=GRAPHQL)
    for endpoint in GRAPHQL:
        assert curated_ids(paths.root, endpoint) == as_ints(truth_ids(truth, endpoint)), endpoint


def test_all_eight_endpoints_equal_the_ground_truth_raw_and_curated(
    tmp_path: Path, start_simulator: Any
) -> None:
    assert EIGHT[-2:] == GRAPHQL  # registered after releases
    sim = start_simulator()
    proc = run_cli("collect", "-c", str(write_config(tmp_path, sim.url, endpoints=list(EIGHT))))
    assert proc.returncode == 1, proc.stderr  # the vanished repo only
    paths = dataset(tmp_path)
    assert_exactly_truth(paths, sim, EIGHT)
    assert_graphql_exact(paths, sim)
    manifest = json.loads(paths.manifest.read_text())
    failed = {(f["repo"].split("/")[-1], f["endpoint"]) for f in manifest["failures"]}
    assert failed == {(SCENARIO_REPOS["vanished"], e) for e in EIGHT}
    lines = [
        line for p in paths.endpoint_dir("reviews").rglob("*.jsonl") for line in read_envelopes(p)
    ]
    assert {line["source"] for line in lines} == {"github_graphql"}
    assert all(line["data"]["state"] != "PENDING" for line in lines)


def test_the_pull_with_250_reviews_is_complete_once_raw_and_curated(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = str(write_config(tmp_path, sim.url, endpoints=["reviews"]))
    assert run_cli("collect", "-c", config, "--quiet").returncode == 1
    paths = dataset(tmp_path)
    truth = sim.ground_truth(year=2025, endpoints=("reviews",))["reviews"][HUNDRED]
    newest = max(r["pullRequest"]["number"] for r in truth)
    expected = Counter(r["fullDatabaseId"] for r in truth if r["pullRequest"]["number"] == newest)
    assert len(expected) == 250
    got = Counter(
        line["data"]["fullDatabaseId"]
        for p in paths.endpoint_dir("reviews").rglob("*.jsonl")
        for line in read_envelopes(p)
        if line["data"]["pullRequest"]["number"] == newest
    )
    assert got == expected
    fan_outs = list(paths.endpoint_dir("reviews").rglob("parent=*.jsonl"))
    assert [p.name for p in fan_outs] == [f"parent={newest}.jsonl"]
    curated = curated_ids(paths.root, "reviews")
    assert all(curated[int(ident)] == 1 for ident in expected)
    state = json.loads(paths.checkpoint.read_text())
    unit = state["repos"][f"sample-org/{HUNDRED}"]["units"][f"reviews/{newest}"]
    assert unit["status"] == "complete" and unit["records_collected"] == 240


def test_graphql_points_stay_within_the_pulls_over_40_budget(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = str(write_config(tmp_path, sim.url, endpoints=list(GRAPHQL)))
    assert run_cli("collect", "-c", config, "--quiet").returncode == 1
    stats = sim.stats()
    truth = sim.ground_truth(year=2025, endpoints=("pull_stats",))["pull_stats"]
    pulls = sum(len(nodes) for nodes in truth.values())
    follow_ups = math.ceil(240 / 100)  # the 250-review pull: 10 in its batch, 240 after
    repos = len(truth)  # each repo asks once at least, however few pulls it has
    assert stats["graphql_points"] <= pulls / 40 + follow_ups + repos, (stats, pulls)
    assert stats["graphql_points"] == stats["graphql_queries"]  # one point a query
    # one walk served both endpoints: no repo was asked twice for the same page
    state = json.loads(dataset(tmp_path).checkpoint.read_text())
    for repo in state["repos"].values():
        units = repo["units"]
        if units["reviews"]["status"] == "complete":
            assert units["reviews"]["pages_collected"] == units["pull_stats"]["pages_collected"]


def test_kill_9_during_the_reviews_phase_then_resume_is_exact(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator(latency_ms=15)
    config = str(
        write_config(
            tmp_path, sim.url, endpoints=["pulls", *GRAPHQL], checkpoint={"every_pages": 1}
        )
    )
    paths = dataset(tmp_path)
    for _kill in range(3):
        proc = subprocess.Popen(
            gh_collect_cmd("collect", "-c", config, "--quiet"),
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not _in_graphql_phase(paths.checkpoint) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.15)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert run_cli("collect", "-c", config, "--quiet").returncode == 1
    assert_exactly_truth(paths, sim, ("pulls", *GRAPHQL))
    assert_graphql_exact(paths, sim)


def _in_graphql_phase(checkpoint: Path) -> bool:
    try:
        state = json.loads(checkpoint.read_text())
    except (OSError, ValueError):
        return False
    return state.get("current_phase") in GRAPHQL


def test_slow_queries_shrink_first_and_still_finish_exact(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator(slow_queries={HUNDRED: 20}, slow_page_hold_s=0.05)
    config = str(write_config(tmp_path, sim.url, endpoints=list(GRAPHQL)))
    proc = run_cli("collect", "-c", config)
    assert proc.returncode == 1, proc.stderr
    assert sim.stats()["faults"]["graphql timeout"] >= 1  # 50 pulls were cut, 12 passed
    paths = dataset(tmp_path)
    failed = {f["repo"] for f in json.loads(paths.manifest.read_text())["failures"]}
    assert failed == {f"sample-org/{SCENARIO_REPOS['vanished']}"}
    assert_graphql_exact(paths, sim)


def test_a_refresh_finds_nothing_new_and_writes_nothing(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = str(write_config(tmp_path, sim.url, endpoints=list(GRAPHQL)))
    assert run_cli("collect", "-c", config, "--quiet").returncode == 1
    paths = dataset(tmp_path)
    before = harvested_ids(paths, "reviews"), harvested_ids(paths, "pull_stats")
    assert run_cli("collect", "-c", config, "--quiet").returncode == 1
    assert (harvested_ids(paths, "reviews"), harvested_ids(paths, "pull_stats")) == before
    assert_graphql_exact(paths, sim)


def test_graphql_false_refuses_the_graphql_endpoints(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, "http://127.0.0.1:9", endpoints=["pulls", "pull_stats"],
        github={"graphql": False},
    )  # fmt: skip
    proc = run_cli("validate", "-c", str(config))
    assert proc.returncode == 2
    assert "pull_stats" in proc.stderr and "github.graphql" in proc.stderr


def test_the_dry_run_counts_the_graphql_queries_apart(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    config = str(write_config(tmp_path, sim.url, endpoints=["pulls", *GRAPHQL]))
    plan = run_cli("collect", "-c", config, "--dry-run")
    assert plan.returncode == 0, plan.stderr
    line = next(
        x for x in plan.stdout.splitlines() if x.startswith("GraphQL (reviews + pull_stats")
    )
    estimated = int(line.split("about ")[1].split()[0])
    sim.reset_stats()
    assert run_cli("collect", "-c", config, "--quiet").returncode == 1
    walked = sim.stats()["graphql_queries"]
    catch_ups = 2  # a pass of several pages is followed by one catch-up query (not estimated)
    assert walked - catch_ups <= estimated <= walked, (estimated, walked)
