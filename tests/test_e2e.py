"""The real CLI in a subprocess against the simulator over 127.0.0.1."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gh_collect.durable.checkpoint import CheckpointManager
from gh_collect.simulator import SCENARIO_REPOS

from .conftest import (
    TOKEN,
    assert_exactly_truth,
    cli_env,
    dataset,
    gh_collect_cmd,
    harvested_ids,
    run_cli,
    write_config,
)

pytestmark = pytest.mark.e2e


def all_output_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def assert_token_nowhere(root: Path, *texts: str) -> None:
    for path in all_output_files(root):
        assert TOKEN.encode() not in path.read_bytes(), path
    for text in texts:
        assert TOKEN not in text


def test_full_harvest_equals_ground_truth(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    proc = run_cli("collect", "-c", str(write_config(tmp_path, sim.url)))
    # the vanished repo is scripted to 404 after discovery: finished with failures
    assert proc.returncode == 1, proc.stderr
    paths = dataset(tmp_path)
    assert_exactly_truth(paths, sim)
    manifest = json.loads(paths.manifest.read_text())
    failed = {(f["repo"].split("/")[-1], f["endpoint"]) for f in manifest["failures"]}
    assert failed == {(SCENARIO_REPOS["vanished"], "pulls"), (SCENARIO_REPOS["vanished"], "issues")}
    assert all(f["retryable"] is False for f in manifest["failures"])
    assert list(paths.curated_endpoint_dir("pulls").glob("*.parquet"))
    assert_token_nowhere(tmp_path, proc.stdout, proc.stderr)


def test_renamed_repo_is_collected_through_the_redirect(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    run_cli("collect", "-c", str(write_config(tmp_path, sim.url)))
    renamed = SCENARIO_REPOS["renamed"]
    truth = sim.ground_truth(year=2025, endpoints=("pulls", "issues"))
    expected = {obj["id"] for obj in truth["pulls"][renamed]}
    assert expected, "the renamed repo should have pulls in the window"
    paths = dataset(tmp_path)
    got = harvested_ids(paths, "pulls")
    assert expected <= set(got)
    assert sim.stats()["by_status"].get("301", sim.stats()["by_status"].get(301, 0)) > 0


def test_faults_still_give_exactly_the_ground_truth(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator(
        faults={"502": 0.04, "reset": 0.02, "malformed": 0.02, "secondary": 0.02, "timeout": 0.01},
        secondary_retry_after=1,
        timeout_hold_s=3.0,
    )
    config = write_config(tmp_path, sim.url, github={"timeout_s": 1})
    proc = run_cli("collect", "-c", str(config), "--quiet")
    assert proc.returncode == 1, proc.stderr
    assert_exactly_truth(dataset(tmp_path), sim)
    assert sum(sim.stats()["faults"].values()) > 0, "no fault was injected: the test proves nothing"


def test_small_primary_budget_waits_for_reset_and_finishes(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator(rate_limit=25, reset_seconds=2.0)
    config = write_config(tmp_path, sim.url, rate_limit={"pause_below": 3})
    started = time.monotonic()
    proc = run_cli("collect", "-c", str(config), "--quiet")
    assert proc.returncode == 1, proc.stderr
    assert_exactly_truth(dataset(tmp_path), sim)
    assert sim.stats()["budget_spent"] > 25  # it outlived one budget window by waiting
    assert time.monotonic() - started >= 2.0


def test_rate_limit_exit_mode_exits_75_then_resumes(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator(rate_limit=25, reset_seconds=2.0)
    config = write_config(tmp_path, sim.url, rate_limit={"pause_below": 3})
    first = run_cli("collect", "-c", str(config), "--on-rate-limit", "exit", "--quiet")
    assert first.returncode == 75, first.stderr
    assert "rate limit" in first.stderr
    time.sleep(2.2)
    codes = [first.returncode]
    while codes[-1] == 75:
        codes.append(run_cli("collect", "-c", str(config), "--on-rate-limit", "exit").returncode)
        if codes[-1] == 75:
            time.sleep(2.2)
    assert codes[-1] == 1
    assert_exactly_truth(dataset(tmp_path), sim)


def wait_for_progress(paths: Any, minimum_saves: int = 2, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads(paths.checkpoint.read_text())["save_count"] >= minimum_saves:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    raise AssertionError("the run made no progress")


def test_sigterm_exits_143_with_a_resumable_checkpoint(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator(latency_ms=30)
    config = write_config(tmp_path, sim.url, checkpoint={"every_pages": 1})
    proc = subprocess.Popen(
        gh_collect_cmd("collect", "-c", str(config)),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    paths = dataset(tmp_path)
    wait_for_progress(paths)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 143, err
    assert time.monotonic() - sent < 3
    state = json.loads(paths.checkpoint.read_text())
    assert state["last_save_reason"] == "signal SIGTERM"
    with CheckpointManager(paths.checkpoint, paths.lock):
        pass  # the lock was released: this would raise LockHeldError otherwise
    rerun = run_cli("collect", "-c", str(config))
    assert rerun.returncode == 1, rerun.stderr
    assert_exactly_truth(paths, sim)


def test_kill_9_at_random_moments_then_rerun_gives_ground_truth(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator(latency_ms=15)
    config = write_config(tmp_path, sim.url, checkpoint={"every_pages": 3})
    rng = random.Random(1234)
    paths = dataset(tmp_path)
    for _ in range(4):
        proc = subprocess.Popen(
            gh_collect_cmd("collect", "-c", str(config), "--quiet"),
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 1.2))
        proc.kill()
        proc.wait()
    final = run_cli("collect", "-c", str(config))
    assert final.returncode == 1, final.stderr
    assert_exactly_truth(paths, sim)


def test_second_run_exits_3_while_the_lock_is_held(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    config = write_config(tmp_path, sim.url)
    paths = dataset(tmp_path)
    paths.raw_dir.mkdir(parents=True)
    with CheckpointManager(paths.checkpoint, paths.lock):
        proc = run_cli("collect", "-c", str(config))
    assert proc.returncode == 3
    assert str(paths.lock) in proc.stderr
    assert not paths.checkpoint.exists()
    assert sim.stats()["requests"] == 0


def test_digest_mismatch_exits_2_and_force_starts_fresh(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = write_config(tmp_path, sim.url)
    assert run_cli("collect", "-c", str(config)).returncode == 1
    changed = write_config(tmp_path, sim.url, target={"exclude": ["hundred-*"]})
    before = dataset(tmp_path).checkpoint.read_bytes()
    refused = run_cli("collect", "-c", str(changed))
    assert refused.returncode == 2
    assert "target.exclude" in refused.stderr and "--force" in refused.stderr
    assert dataset(tmp_path).checkpoint.read_bytes() == before
    forced = run_cli("collect", "-c", str(changed), "--force")
    assert forced.returncode == 1, forced.stderr
    assert_exactly_truth(dataset(tmp_path), sim, exclude=("hundred-*",))


def test_rerun_of_a_finished_dataset_changes_nothing(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    config = write_config(tmp_path, sim.url)
    assert run_cli("collect", "-c", str(config)).returncode == 1
    again = run_cli("collect", "-c", str(config), "--retry-failed")
    assert again.returncode == 1  # the vanished repo's 404 is not retryable
    assert_exactly_truth(dataset(tmp_path), sim)


def test_from_repo_unknown_lists_close_matches(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    config = write_config(tmp_path, sim.url)
    name = SCENARIO_REPOS["hundred"]
    proc = run_cli("collect", "-c", str(config), "--from-repo", f"sample-org/{name}x")
    assert proc.returncode == 2
    assert name in proc.stderr


def test_from_repo_starts_at_that_repo(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    config = write_config(tmp_path, sim.url)
    names = [line["data"]["name"] for line in _repos(tmp_path, sim, config)]
    start = names[len(names) // 2]
    proc = run_cli("collect", "-c", str(config), "--from-repo", f"sample-org/{start}")
    assert proc.returncode in (0, 1), proc.stderr
    state = json.loads(dataset(tmp_path).checkpoint.read_text())
    statuses = {name.split("/")[-1]: repo["status"] for name, repo in state["repos"].items()}
    assert all(statuses[n] == "pending" for n in names[: names.index(start)])
    assert statuses[start] in ("complete", "failed")


def _repos(tmp_path: Path, sim: Any, config: Path) -> list[dict[str, Any]]:
    """Discovery only: run with an endpoint filter that needs no repo pages."""
    from gh_collect.durable.envelope import read_envelopes

    proc = run_cli("collect", "-c", str(config), "--only", "pulls", "--from-repo", "zzz")
    assert proc.returncode == 2  # unknown repo, but discovery already ran and was saved
    return list(read_envelopes(dataset(tmp_path).repos_file))


def test_missing_token_exits_2_naming_the_variable(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    proc = run_cli("collect", "-c", str(write_config(tmp_path, sim.url)), token=None)
    assert proc.returncode == 2
    assert "GH_E2E_TOKEN" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_credentials_stop_at_once(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator(token="the-right-one")
    proc = run_cli("collect", "-c", str(write_config(tmp_path, sim.url)))
    assert proc.returncode == 2
    assert "bad credentials" in proc.stderr.lower()
    assert sim.stats()["requests"] <= 2
    assert_token_nowhere(tmp_path, proc.stdout, proc.stderr)


def test_status_reads_the_checkpoint(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator()
    config = write_config(tmp_path, sim.url)
    run_cli("collect", "-c", str(config))
    sim.stop()  # status never touches the network
    proc = run_cli("status", "-c", str(config), "--json", token=None)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["repos"]["failed"] == 1
    assert status["endpoints"]["pulls"]["records"] > 0
    assert TOKEN not in proc.stdout
    text = run_cli("status", "-c", str(config), token=None)
    assert "repos" in text.stdout and "failed" in text.stdout


def test_simulate_command_serves_until_stopped() -> None:
    proc = subprocess.Popen(
        gh_collect_cmd("simulate", "--port", "0", "--repos", "9", "--faults", "502:0.5"),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line
        url = line.split()[-1]
        stats = httpx.get(f"{url}/__simulator/stats", timeout=5).json()
        assert stats["requests"] == 0
        repos = httpx.get(
            f"{url}/orgs/sample-org/repos?per_page=100",
            headers={"Authorization": f"token {TOKEN}", "User-Agent": "test"},
            timeout=5,
        )
        assert repos.status_code in (200, 502)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)  # also closes the pipes


def test_simulate_rejects_a_bad_fault_spec() -> None:
    proc = run_cli("simulate", "--faults", "teapot:2")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
