"""Cron mode: refresh of a completed dataset, conditional requests, quota, dry run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from gh_collect.durable.checkpoint import CheckpointManager
from gh_collect.durable.envelope import read_envelopes
from gh_collect.errors import RateLimitExit
from gh_collect.harvest.plan import estimate_sync
from gh_collect.harvest.run import RunOptions, collect

from .conftest import ORG, TOKEN, YEAR, dataset, run_cli, write_config
from .test_run import make_config


def curated(paths: Any, endpoint: str) -> dict[int, dict[str, Any]]:
    table = ds.dataset(paths.curated_endpoint_dir(endpoint), format="parquet").to_table()
    rows = table.to_pylist()
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), f"{endpoint}: duplicate ids in the curated dataset"
    return {row["id"]: row for row in rows}


def assert_curated_is_truth(paths: Any, sim: Any) -> None:
    truth = sim.ground_truth(year=YEAR)
    for endpoint in ("pulls", "issues"):
        rows = curated(paths, endpoint)
        expected = {obj["id"]: obj for objs in truth[endpoint].values() for obj in objs}
        assert set(rows) == set(expected), endpoint
        for ident, obj in expected.items():
            assert json.loads(rows[ident]["raw"])["updated_at"] == obj["updated_at"]
            assert rows[ident]["title"] == obj["title"]


def raw_versions(paths: Any, endpoint: str) -> Counter[tuple[int, str]]:
    return Counter(
        (line["data"]["id"], line["data"]["updated_at"])
        for path in paths.endpoint_dir(endpoint).glob("*.jsonl")
        for line in read_envelopes(path)
    )


def test_no_change_refresh_spends_budget_only_on_full_last_pages(
    tmp_path: Path, start_simulator: Any
) -> None:
    """Pages are asked "changed since?" (304: free), except a list's last page when it is
    full and had no ``next`` link: its ETag covers the body, not the Link header, so it is
    read in full to see a page added behind it. A last page that is not full cannot hide
    one (a new item would change its body), so an ordinary org's refresh stays ~free."""
    sim = start_simulator()
    config = make_config(tmp_path, sim.url)
    collect(config, TOKEN)
    first_budget = sim.stats()["budget_spent"]
    paths = dataset(tmp_path)
    before = {e: curated(paths, e) for e in ("pulls", "issues")}
    sim.reset_stats()
    result = collect(config, TOKEN)
    stats = sim.stats()
    full_reads = stats["requests"] - stats["not_modified"]
    assert stats["not_modified"] > 4 * full_reads > 0
    assert full_reads <= 4  # the exactly-100 and -200 scenario repos, and the vanished 404s
    assert stats["budget_spent"] <= full_reads
    assert stats["budget_spent"] < 0.2 * first_budget
    assert {e: curated(paths, e) for e in ("pulls", "issues")} == before
    assert result.exit_code == 1  # the vanished repo stays failed, its report kept


def test_refresh_picks_up_exactly_the_changes_and_a_new_repo(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = make_config(tmp_path, sim.url)
    collect(config, TOKEN)
    paths = dataset(tmp_path)
    before = {e: raw_versions(paths, e) for e in ("pulls", "issues")}
    changed = sim.mutate(update=6, seed=3)
    sim.add_repo("brand-new-repo", items=30, seed=5)
    sim.reset_stats()
    collect(config, TOKEN)
    stats = sim.stats()
    assert_curated_is_truth(paths, sim)
    for endpoint in ("pulls", "issues"):
        added = raw_versions(paths, endpoint) - before[endpoint]
        assert max(raw_versions(paths, endpoint).values()) == 1  # no version written twice
        changed_ids = {i for ids in changed[endpoint].values() for i in ids}
        truth = sim.ground_truth(year=YEAR)[endpoint]
        new_repo_ids = {obj["id"] for obj in truth.get("brand-new-repo", [])}
        in_window = {o["id"] for objs in truth.values() for o in objs}
        assert {ident for ident, _ in added} == (changed_ids & in_window) | new_repo_ids
    # budget only where something changed: far less than a full run
    assert 0 < stats["budget_spent"] < stats["requests"]
    state = CheckpointManager(paths.checkpoint, paths.lock).load()
    assert f"{ORG}/brand-new-repo" in state.repos


def test_crash_during_a_refresh_resumes_exactly_once(
    tmp_path: Path, start_simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_run import Crash

    sim = start_simulator()
    config = make_config(tmp_path, sim.url, checkpoint={"every_pages": 1})
    collect(config, TOKEN)
    sim.mutate(update=12, seed=9)
    real_update = CheckpointManager.record_page
    calls = {"n": 0}

    def die_midway(self: CheckpointManager, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 9:
            raise Crash
        return real_update(self, *args, **kwargs)

    monkeypatch.setattr(CheckpointManager, "record_page", die_midway)
    with pytest.raises(Crash):
        collect(config, TOKEN)
    monkeypatch.undo()
    collect(config, TOKEN)
    paths = dataset(tmp_path)
    assert_curated_is_truth(paths, sim)
    for endpoint in ("pulls", "issues"):
        assert max(raw_versions(paths, endpoint).values()) == 1


def test_max_requests_stops_with_75_and_the_next_run_completes(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = make_config(tmp_path, sim.url)
    with pytest.raises(RateLimitExit) as info:
        collect(config, TOKEN, RunOptions(max_requests=8))
    assert info.value.exit_code == 75
    assert "left to do" in str(info.value)
    hops = sim.stats()["by_status"].get("301", 0)  # a redirect answered mid-request
    assert sim.stats()["requests"] <= 8 + hops
    result = collect(config, TOKEN)
    assert result.exit_code == 1
    assert_curated_is_truth(dataset(tmp_path), sim)


def test_budget_fraction_stops_a_run_at_its_share(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator(rate_limit=40, reset_seconds=600)
    config = make_config(tmp_path, sim.url, rate_limit={"budget_fraction": 0.5, "pause_below": 0})
    with pytest.raises(RateLimitExit, match="budget_fraction"):
        collect(config, TOKEN)
    assert sim.stats()["budget_spent"] <= 21


def test_dry_run_estimate_is_within_ten_percent(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator(repos=30)
    config = make_config(tmp_path, sim.url)
    plan = estimate_sync(config, TOKEN)
    assert not list(tmp_path.rglob("*.jsonl")), "a dry run writes nothing"
    sim.reset_stats()
    collect(config, TOKEN)
    real = sim.stats()["requests"]
    assert abs(plan.requests - real) <= 0.10 * real


def test_cli_silent_prints_nothing_on_success_and_dry_run_prints_estimate(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = write_config(tmp_path, sim.url, target={"exclude": ["vanished-*"]})
    dry = run_cli("collect", "-c", str(config), "--dry-run")
    assert dry.returncode == 0 and "requests" in dry.stdout
    done = run_cli("collect", "-c", str(config), "--silent")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    quiet = run_cli("collect", "-c", str(config), "--quiet")
    assert quiet.returncode == 0
    assert len(quiet.stdout.strip().splitlines()) == 1  # the one-line summary
