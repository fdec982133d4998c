"""Slow pages, end to end: the real CLI against a simulator that cuts a repo's heavy pages.

GitHub answers a list request that runs past ~10 s with a 502 or 504 (github-api.md, "Heavy
pages"); the simulator's ``slow_pages`` does the same for a repo's lists above a bound per
page. The harvest must read such a repo whole, exactly once, through a kill -9 while its
walk is shrunk; a repo cut even at 10 a page fails (exit 1) and ``--retry-failed`` brings it
back once the server is healthy.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gh_collect.durable.paths import DatasetPaths
from gh_collect.simulator import SCENARIO_REPOS, Simulator, SimulatorConfig

from .conftest import (
    ORG,
    assert_exactly_truth,
    cli_env,
    dataset,
    gh_collect_cmd,
    run_cli,
    write_config,
)

pytestmark = pytest.mark.e2e

SLOW = SCENARIO_REPOS["two_hundred"]  # 200 pulls; its issues list serves 400 items
# Cursor links on the issues lists of the two big scenario repos, page numbers on pulls.
SLOW_SIM: dict[str, Any] = {"slow_page_hold_s": 0.05, "cursor_threshold": 150}
NOT_VANISHED = {"target": {"exclude": ["vanished-*"]}}  # its scripted 404 would exit 1
_SHRUNK = re.compile(r"[?&]per_page=(50|25|10|5)(&|$)")


def cut_count(sim: Simulator) -> int:
    faults = sim.stats()["faults"]
    return int(faults.get("502", 0)) + int(faults.get("504", 0))


def failures(paths: DatasetPaths) -> set[tuple[str, str, bool]]:
    manifest = json.loads(paths.manifest.read_text())
    return {(f["repo"].split("/")[-1], f["endpoint"], f["retryable"]) for f in manifest["failures"]}


@pytest.mark.parametrize(
    ("hold_s", "timeout_s"),
    [(0.05, 5.0), (1.0, 0.4)],
    ids=["answered-502-504", "read-timeout"],
)
def test_a_repo_cut_above_40_a_page_is_harvested_completely(
    tmp_path: Path, start_simulator: Any, hold_s: float, timeout_s: float
) -> None:
    sim = start_simulator(slow_pages={SLOW: 40}, **{**SLOW_SIM, "slow_page_hold_s": hold_s})
    config = write_config(tmp_path, sim.url, github={"timeout_s": timeout_s}, **NOT_VANISHED)
    proc = run_cli("collect", "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    paths = dataset(tmp_path)
    assert_exactly_truth(paths, sim, exclude=("vanished-*",))
    assert failures(paths) == set()
    assert cut_count(sim) >= 4, "no page was cut: the test proves nothing"
    assert "Traceback" not in proc.stderr
    assert "GitHub cut the page short at per_page=100; asking again with per_page=50" in (
        proc.stdout
    )  # the run says so, one line a step


def test_kill_9_while_shrunk_then_resume_is_exact(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator(slow_pages={SLOW: 40}, latency_ms=25, **SLOW_SIM)
    config = write_config(tmp_path, sim.url, checkpoint={"every_pages": 1}, **NOT_VANISHED)
    paths = dataset(tmp_path)
    proc = subprocess.Popen(
        gh_collect_cmd("collect", "-c", str(config), "--quiet"),
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        saved = _wait_for_shrunk_checkpoint(paths, proc)
    finally:
        proc.kill()
        proc.wait()
    assert saved, "the run ended before a shrunk resume token was saved"
    assert shrunk_tokens(paths), "the kill landed after the slow repo's walks finished"
    final = run_cli("collect", "-c", str(config))
    assert final.returncode == 0, final.stderr
    assert_exactly_truth(paths, sim, exclude=("vanished-*",))


def _wait_for_shrunk_checkpoint(paths: DatasetPaths, proc: subprocess.Popen[bytes]) -> bool:
    """Poll the checkpoint until it saves the slow repo's walk at a shrunk size."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if shrunk_tokens(paths):
            return True
        time.sleep(0.005)
    return False


def shrunk_tokens(paths: DatasetPaths) -> list[str]:
    """The slow repo's saved resume tokens that ask for fewer than 100 items a page."""
    try:
        state = json.loads(paths.checkpoint.read_text())
    except (OSError, ValueError):
        return []
    units = state.get("repos", {}).get(f"{ORG}/{SLOW}", {}).get("units", {})
    tokens = [unit.get("resume_token") or "" for unit in units.values()]
    return [token for token in tokens if _SHRUNK.search(token)]


def test_a_repo_cut_even_at_10_fails_and_retry_failed_recovers_it(
    tmp_path: Path, start_simulator: Any
) -> None:
    sick = start_simulator(slow_pages={SLOW: 5}, **SLOW_SIM)
    config = write_config(tmp_path, sick.url, github={"retries": 3}, **NOT_VANISHED)
    first = run_cli("collect", "-c", str(config))
    assert first.returncode == 1, first.stderr
    paths = dataset(tmp_path)
    assert failures(paths) == {(SLOW, "pulls", True), (SLOW, "issues", True)}
    assert "Traceback" not in first.stderr
    port = int(sick.url.rsplit(":", 1)[1])
    sick.stop()  # the same server, healthy again, on the same address (part of the digest)
    healthy = Simulator(SimulatorConfig(seed=7, repos=10, org=ORG, **SLOW_SIM))
    healthy.start(port)
    try:
        again = run_cli("collect", "-c", str(config), "--retry-failed")
        assert again.returncode == 0, again.stderr
        assert failures(paths) == set()
        assert_exactly_truth(paths, healthy, exclude=("vanished-*",))
    finally:
        healthy.stop()
