"""The real CLI as a fleet: a planner and workers in subprocesses, a real redis-server, S3
on moto, the simulator; the dataset in the store compared with the simulator's truth."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gh_collect.fleet.commits import FleetLayout
from gh_collect.fleet.output import read_committed
from gh_collect.fleet.store import ObjectStore, open_store
from gh_collect.simulator import Simulator
from tests.conftest import (
    ORG,
    TOKEN,
    YEAR,
    cli_env,
    gh_collect_cmd,
    key_of,
    truth_ids,
    write_config,
)
from tests.fleet_kit import S3, RedisServer, needs_redis

pytestmark = needs_redis
LAYOUT = FleetLayout(YEAR, ORG)


def fleet_config(tmp_path: Path, sim: Simulator, s3: S3, **sections: Any) -> Path:
    return write_config(
        tmp_path, sim.url,
        output={"root": f"s3://{s3.bucket}/{tmp_path.name}"},
        fleet={"lease_s": 1.0}, checkpoint={"every_pages": 2},
        github={"concurrency": 3}, **sections,
    )  # fmt: skip


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        gh_collect_cmd(*args), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str]:
    _out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def assert_exact(
    store: ObjectStore, sim: Simulator, endpoints: tuple[str, ...] = ("pulls", "issues")
) -> int:
    truth = sim.ground_truth(year=YEAR, endpoints=endpoints)
    total = 0
    for endpoint in endpoints:
        key = key_of(endpoint)
        got = Counter(line["data"][key] for line in read_committed(store, LAYOUT, endpoint))
        expected = truth_ids(truth, endpoint)
        missing, extra = expected - got, got - expected
        assert expected, f"ground truth for {endpoint} is empty: the test proves nothing"
        assert not missing and not extra, (
            f"{endpoint}: {sum(missing.values())} missing, {sum(extra.values())} duplicated/extra"
        )
        total += sum(got.values())
    return total


def store_of(tmp_path: Path, s3: S3) -> ObjectStore:
    return open_store(f"s3://{s3.bucket}/{tmp_path.name}")


def wait_for_commits(store: ObjectStore, count: int, procs: list[subprocess.Popen[str]]) -> None:
    """Until ``count`` commit records exist (the harvest is under way, not over)."""
    deadline = time.monotonic() + 60
    while len(store.list(f"{LAYOUT.raw}/_commits/")) < count:
        assert time.monotonic() < deadline, "no commit within a minute"
        assert all(p.poll() is None for p in procs), "a process ended before the test's moment"
        time.sleep(0.05)


def test_four_processes_harvest_into_s3_exactly(
    tmp_path: Path, start_simulator: Any, redis_server: RedisServer, moto_s3: S3
) -> None:
    sim = start_simulator(latency_ms=5)
    config = str(fleet_config(tmp_path, sim, moto_s3))
    queue = ("--queue", redis_server.url)
    planner = spawn("collect", "-c", config, *queue)
    workers = [spawn("worker", "-c", config, *queue) for _ in range(3)]
    code, err = finish(planner)
    assert code in (0, 1), err  # 1: the simulator's vanished repo is a failed unit
    for worker in workers:
        worker_code, worker_err = finish(worker)
        assert worker_code == code, worker_err
    store = store_of(tmp_path, moto_s3)
    assert assert_exact(store, sim) > 100
    curated = store.list(f"{LAYOUT.curated}/")
    assert any("endpoint=pulls/" in key and key.endswith(".parquet") for key in curated)
    status = subprocess.run(
        gh_collect_cmd("status", "-c", config, *queue, "--json"),
        env=cli_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert '"complete"' in status.stdout and "ghp_" not in status.stdout
    shown = json.loads(status.stdout)
    assert shown["units"].get("complete", 0) >= 16 and shown["leases"] == []
    assert shown["credentials"] and all(k.startswith("token:") for k in shown["credentials"])
    for key in store.list(""):  # no secret in any object the fleet wrote
        assert TOKEN.encode() not in (store.get(key) or b""), key


def kill_storm(
    config: str, queue: tuple[str, ...], kills: int, seed: int, *, workers: int = 3
) -> int:
    """A planner and workers; kill -9 a random one every so often and start the same
    command again, until ``kills`` were done; returns how many were killed. Everything
    then finishes."""
    rng = random.Random(seed)
    commands = [("collect", "-c", config, *queue)]
    commands += [("worker", "-c", config, *queue)] * workers
    running = [(args, spawn(*args)) for args in commands]
    done = 0
    while done < kills and any(p.poll() is None for _args, p in running):
        time.sleep(rng.uniform(0.3, 1.0))
        alive = [(args, p) for args, p in running if p.poll() is None]
        if not alive:
            break
        args, victim = rng.choice(alive)
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
        done += 1
        running.append((args, spawn(*args)))
    for _args, proc in running:
        code, err = finish(proc)
        assert code in (0, 1, -signal.SIGKILL), err
    return done


def test_kill_9_of_workers_mid_run_keeps_the_dataset_exact(
    tmp_path: Path, start_simulator: Any, redis_server: RedisServer, moto_s3: S3
) -> None:
    sim = start_simulator(latency_ms=100)
    config = str(fleet_config(tmp_path, sim, moto_s3))
    queue = ("--queue", redis_server.url)
    killed = kill_storm(config, queue, kills=6, seed=17)
    assert killed >= 3, "the harvest ended before the kills: the test proves little"
    final = subprocess.run(  # plans nothing new, exports what the fleet committed
        gh_collect_cmd("collect", "-c", config, *queue),
        env=cli_env(), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert final.returncode in (0, 1), final.stderr
    assert assert_exact(store_of(tmp_path, moto_s3), sim) > 100


def test_redis_restarted_with_aof_the_harvest_goes_on_exactly(
    tmp_path: Path, start_simulator: Any, redis_aof: RedisServer, moto_s3: S3
) -> None:
    sim = start_simulator(latency_ms=150)
    config = str(fleet_config(tmp_path, sim, moto_s3))
    queue = ("--queue", redis_aof.url)
    procs = [spawn("collect", "-c", config, *queue), spawn("worker", "-c", config, *queue)]
    wait_for_commits(store_of(tmp_path, moto_s3), 3, procs)
    redis_aof.restart()
    for proc in procs:
        code, err = finish(proc)
        assert code in (0, 1), err
    assert assert_exact(store_of(tmp_path, moto_s3), sim) > 100


def test_redis_lost_is_one_line_and_the_committed_data_stays(
    tmp_path: Path, start_simulator: Any, redis_server: RedisServer, moto_s3: S3
) -> None:
    sim = start_simulator(latency_ms=150)
    config = str(fleet_config(tmp_path, sim, moto_s3))
    queue = ("--queue", redis_server.url)
    procs = [spawn("collect", "-c", config, *queue), spawn("worker", "-c", config, *queue)]
    wait_for_commits(store_of(tmp_path, moto_s3), 3, procs)
    redis_server.stop(kill=True)
    for proc in procs:
        code, err = finish(proc)
        assert code == 75, err
        lines = [line for line in err.splitlines() if line.startswith("gh-collect: error")]
        assert len(lines) == 1 and "Traceback" not in err and "redis" in lines[0].lower()
    store = store_of(tmp_path, moto_s3)
    for endpoint in ("pulls", "issues"):  # what was committed is readable, each record once
        ids = Counter(line["data"]["id"] for line in read_committed(store, LAYOUT, endpoint))
        assert all(count == 1 for count in ids.values())
    redis_server.start()  # an empty Redis: plan again; the store's commits are adopted
    again = [spawn("collect", "-c", config, *queue), spawn("worker", "-c", config, *queue)]
    for proc in again:
        code, err = finish(proc)
        assert code in (0, 1), err
    assert assert_exact(store, sim) > 100


def test_an_object_store_root_without_queue_is_one_line(tmp_path: Path, moto_s3: S3) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9", output={"root": "s3://bucket/x"})
    proc = subprocess.run(
        gh_collect_cmd("collect", "-c", str(config)), env=cli_env(), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--queue" in proc.stderr


@pytest.mark.parametrize("command", ["worker", "status"])
def test_a_bad_queue_url_is_one_line(tmp_path: Path, command: str) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    proc = subprocess.run(
        gh_collect_cmd(command, "-c", str(config), "--queue", "http://nowhere/0"),
        env=cli_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "redis://" in proc.stderr


def test_options_a_fleet_does_not_take_are_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    proc = subprocess.run(
        gh_collect_cmd(
            "collect", "-c", str(config), "--queue", "redis://127.0.0.1:9/0", "--max-requests", "5"
        ),
        env=cli_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "--max-requests" in proc.stderr


def test_endpoints_a_fleet_cannot_walk_yet_are_one_line(tmp_path: Path) -> None:
    """reviews and pull_stats (GraphQL pages, fan-outs per pull) are refused before any
    unit is planned, rather than walked as repo x endpoint units."""
    config = write_config(tmp_path, "http://127.0.0.1:9", endpoints=["pulls", "reviews"])
    proc = subprocess.run(
        gh_collect_cmd("collect", "-c", str(config), "--queue", "redis://127.0.0.1:9/0"),
        env=cli_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "reviews" in proc.stderr
    assert "--queue does not harvest reviews yet" in proc.stderr and "pulls" not in proc.stderr
