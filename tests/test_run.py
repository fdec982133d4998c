"""The run module called as a library, against the simulator in-process over 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from gh_collect.config import Config
from gh_collect.durable.checkpoint import CheckpointManager
from gh_collect.durable.envelope import read_envelopes
from gh_collect.errors import DigestMismatchError, UsageError
from gh_collect.harvest.run import RunOptions, collect
from gh_collect.simulator import SCENARIO_REPOS

from .conftest import ORG, TOKEN, YEAR, assert_exactly_truth, dataset, harvested_ids


def make_config(tmp_path: Path, api_url: str, **overrides: Any) -> Config:
    data: dict[str, Any] = {
        "target": {"org": ORG},
        "year": YEAR,
        "github": {"api_url": api_url, "timeout_s": 5, "retries": 3, "retry_initial_s": 0.05},
        "output": {"root": str(tmp_path / "data")},
        **overrides,
    }
    return Config.model_validate(data)


class FailingTransport(httpx.AsyncBaseTransport):
    """Answers 502 for every request whose path contains ``needle``; passes the rest on."""

    def __init__(self, needle: str) -> None:
        self.needle = needle
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.needle in request.url.path:
            return httpx.Response(502, json={"message": "Server Error"}, request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_retryable_failure_is_kept_and_retried_with_retry_failed(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = make_config(tmp_path, sim.url)
    flaky = SCENARIO_REPOS["two_hundred"]
    first = collect(config, TOKEN, transport=FailingTransport(f"/{flaky}/issues"))
    assert first.exit_code == 1
    retryable = [f for f in first.failures if f["retryable"]]
    assert [(f["repo"], f["endpoint"]) for f in retryable] == [(f"{ORG}/{flaky}", "issues")]
    # without --retry-failed the failure stays
    again = collect(config, TOKEN)
    assert any(f["retryable"] for f in again.failures)
    retried = collect(config, TOKEN, RunOptions(retry_failed=True))
    assert [f["repo"].split("/")[-1] for f in retried.failures] == [SCENARIO_REPOS["vanished"]] * 2
    assert_exactly_truth(dataset(tmp_path), sim)


class Crash(BaseException):
    """Stands for the process dying: nothing handles it, nothing is saved."""


def test_crash_between_jsonl_write_and_checkpoint_save_leaves_no_duplicate(
    tmp_path: Path, start_simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = start_simulator()
    config = make_config(tmp_path, sim.url, checkpoint={"every_pages": 2})
    calls = {"n": 0}
    real_update = CheckpointManager.record_page

    def update_then_die(self: CheckpointManager, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 7:  # page appended to the JSONL file, checkpoint not yet updated
            raise Crash
        return real_update(self, *args, **kwargs)

    monkeypatch.setattr(CheckpointManager, "record_page", update_then_die)
    with pytest.raises(Crash):
        collect(config, TOKEN)
    monkeypatch.undo()
    paths = dataset(tmp_path)
    # the crash left bytes past the saved offsets on disk
    state = json.loads(paths.checkpoint.read_text())
    saved = sum(ep["byte_offset"] for r in state["repos"].values() for ep in r["units"].values())
    on_disk = sum(p.stat().st_size for p in paths.raw_dir.glob("endpoint=*/*.jsonl"))
    assert on_disk > saved
    result = collect(config, TOKEN)
    assert result.exit_code == 1
    assert_exactly_truth(paths, sim)


def test_only_runs_the_named_phase(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    config = make_config(tmp_path, sim.url)
    result = collect(config, TOKEN, RunOptions(only=("pulls",)))
    paths = dataset(tmp_path)
    assert harvested_ids(paths, "pulls")
    assert not harvested_ids(paths, "issues")
    assert set(result.records) == {"pulls", "issues"} and result.records["issues"] == 0
    collect(config, TOKEN, RunOptions(only=("issues",)))
    assert_exactly_truth(paths, sim)


def test_only_rejects_an_endpoint_not_configured(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    config = make_config(tmp_path, sim.url, endpoints=["pulls"])
    with pytest.raises(UsageError, match="--only issues"):
        collect(config, TOKEN, RunOptions(only=("issues",)))


def test_manifest_records_counts_files_and_failures(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    result = collect(make_config(tmp_path, sim.url), TOKEN)
    manifest = json.loads(dataset(tmp_path).manifest.read_text())
    assert manifest["status"] == "failed"
    assert manifest["counts"]["pulls"]["records"] == result.records["pulls"] > 0
    assert manifest["requests_this_run"] == sim.stats()["requests"]
    assert any(f["path"] == "repos.jsonl" for f in manifest["files"])
    assert manifest["config_digest"] == make_config(tmp_path, sim.url).digest
    assert len(manifest["failures"]) == 2


def test_digest_mismatch_is_refused_as_a_library_error(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    collect(make_config(tmp_path, sim.url), TOKEN)
    changed = make_config(tmp_path, sim.url, target={"org": ORG, "exclude": ["fork-*"]})
    with pytest.raises(DigestMismatchError, match=r"target\.exclude"):
        collect(changed, TOKEN)


def test_an_endpoint_taken_out_keeps_its_data_and_is_no_longer_read(
    tmp_path: Path, start_simulator: Any
) -> None:
    """The digest is per endpoint: dropping ``issues`` from a finished dataset is no
    mismatch; its raw files stay byte for byte, and the refresh reads only pulls."""
    sim = start_simulator()
    collect(make_config(tmp_path, sim.url), TOKEN)
    issues_dir = dataset(tmp_path).endpoint_dir("issues")
    before = {p.name: p.read_bytes() for p in issues_dir.glob("*.jsonl")}
    assert before
    sim.reset_stats()
    result = collect(make_config(tmp_path, sim.url, endpoints=["pulls"]), TOKEN)
    assert {p.name: p.read_bytes() for p in issues_dir.glob("*.jsonl")} == before
    assert not any("/issues" in route for route in sim.stats()["by_route"])
    assert result.manifest["not_refreshed"] == ["issues"]
    assert list(result.manifest["counts"]) == ["pulls"]


def test_window_excludes_what_is_outside_the_year(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    collect(make_config(tmp_path, sim.url), TOKEN)
    paths = dataset(tmp_path)
    for endpoint in ("pulls", "issues"):
        for path in paths.endpoint_dir(endpoint).glob("*.jsonl"):
            for line in read_envelopes(path):
                data = line["data"]
                assert data["created_at"] < "2026-01-01" and data["updated_at"] >= "2025-01-01"
                assert endpoint == "pulls" or "pull_request" not in data


def test_a_crash_during_the_export_reexports_after_a_free_refresh(
    tmp_path: Path, start_simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gh_collect.curated.export as export_module

    sim = start_simulator()
    config = make_config(tmp_path, sim.url)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise Crash

    monkeypatch.setattr(export_module, "export_dataset", crash)
    with pytest.raises(Crash):
        collect(config, TOKEN)
    monkeypatch.undo()
    sim.reset_stats()
    raw = {p: p.read_bytes() for p in dataset(tmp_path).raw_dir.glob("endpoint=*/*.jsonl")}
    result = collect(config, TOKEN)
    # The snapshot is of when this run began: what finished before is asked "changed
    # since?" (the org did not change: nothing appended), then exported.
    assert sim.stats()["not_modified"] > 0
    assert {p: p.read_bytes() for p in raw} == raw
    assert result.manifest["export"] is not None
    assert list(dataset(tmp_path).curated_endpoint_dir("pulls").glob("*.parquet"))


def test_big_repos_are_walked_first(tmp_path: Path, start_simulator: Any) -> None:
    """Longest first: a big repo started last would leave a one-request tail to a phase."""
    from gh_collect.report.progress import LogReporter

    class Order(LogReporter):
        def __init__(self) -> None:
            super().__init__(quiet=True)
            self.units: list[tuple[str, str]] = []

        def unit_done(self, repo: str, endpoint: str, status: str, detail: str = "") -> None:
            super().unit_done(repo, endpoint, status, detail)
            self.units.append((endpoint, repo))

    sim = start_simulator()
    config = make_config(tmp_path, sim.url, github={"api_url": sim.url, "concurrency": 1})
    reporter = Order()
    collect(config, TOKEN, reporter=reporter)
    paths = dataset(tmp_path)
    open_issues = {
        line["repo"]: line["data"]["open_issues_count"] for line in read_envelopes(paths.repos_file)
    }
    pulls = [repo for endpoint, repo in reporter.units if endpoint == "pulls"]
    hints = [open_issues[repo] for repo in pulls]
    assert len(set(hints)) > 2  # the org has repos of different sizes
    assert hints == sorted(hints, reverse=True)
