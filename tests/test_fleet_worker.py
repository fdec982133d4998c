"""The worker's commit step against a real redis-server and a local store: each save of a
unit's scratch checkpoint becomes a commit only while the saver holds the unit's fence."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gh_collect.config import Config
from gh_collect.durable.checkpoint import CheckpointStatus, UnitKey
from gh_collect.durable.checkpoint.state import RepoProgress
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import LeaseLost
from gh_collect.fleet.commits import Attempt, FleetLayout, latest
from gh_collect.fleet.plan import FleetPlan
from gh_collect.fleet.queue import Lease, RedisQueue, unit_id
from gh_collect.fleet.store import LocalStore
from gh_collect.fleet.worker import Fleet, _Committer, _one_unit_state
from gh_collect.harvest.context import RunOptions
from gh_collect.report.progress import LogReporter
from tests.fleet_kit import RedisServer

CONFIG = Config.model_validate({"target": {"org": "sample-org"}, "year": 2025})
REPO = RepoProgress(full_name="sample-org/alpha", name="alpha", file_part="alpha")
KEY = UnitKey(REPO.full_name, "pulls")
LAYOUT = FleetLayout(2025, "sample-org")


def committer(fleet: Fleet, lease: Lease, folder: Path) -> _Committer:
    paths = DatasetPaths(folder, 2025, "sample-org")
    path = paths.unit_file("pulls", REPO)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'{"data": {"id": 1}}\n')
    attempt = Attempt(LAYOUT, KEY, lease.unit, "alpha", lease.fence, fleet.name)
    return _Committer(fleet, lease, attempt, None, paths, KEY)


def saved_state(pages: int, size: int) -> bytes:
    state = _one_unit_state(CONFIG, REPO, KEY, None)
    unit = state.repos[REPO.full_name].units["pulls"]
    unit.status, unit.pages_collected, unit.records_collected = (
        CheckpointStatus.IN_PROGRESS, pages, pages,
    )  # fmt: skip
    unit.last_page_written, unit.byte_offset = pages, size
    return state.model_dump_json().encode()


def test_a_save_commits_only_while_the_fence_holds(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    queue = RedisQueue(redis_server.url, "test:w", lease_s=0.2)
    queue.open_plan(CONFIG.digest, "local", ["pulls"])
    queue.plan([unit_id("pulls", REPO.full_name)])
    store = LocalStore(tmp_path / "out")
    plan = FleetPlan(digest=CONFIG.digest, endpoints=["pulls"], repos_part="", repos=[REPO])
    fleet = Fleet(CONFIG, store, queue, plan, LogReporter(quiet=True), RunOptions())
    stale = queue.take("w1", block_ms=10)
    assert stale is not None
    first = committer(fleet, stale, tmp_path / "a")
    first.saved(saved_state(1, 20))  # the holder's save: committed
    record = latest(store, LAYOUT, KEY, "alpha")
    assert record is not None and record.seq == 1 and record.size == 20
    time.sleep(0.3)
    current = queue.take("w2", block_ms=10)  # the lease lapsed: another worker holds it
    assert current is not None and current.fence > stale.fence
    with pytest.raises(LeaseLost, match="stale"):
        first.saved(saved_state(2, 20))
    newest = latest(store, LAYOUT, KEY, "alpha")
    assert newest is not None and newest.seq == 1  # the stale holder committed nothing
    assert queue.snapshot()["units"][stale.unit]["pages"] == "1"
