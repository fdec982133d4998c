"""One worker process: takes units from the queue and walks each with the harvest's own walk.

A unit is walked exactly as a local run walks it (``harvest.phases.collect_unit``), in a
scratch folder that starts as the unit's committed state: its committed parts concatenated
into its raw file, its committed progress in a one-repo checkpoint. Every save of that
scratch checkpoint (the run's strategies: every N pages, records, seconds, the budget line,
the unit's end) becomes a commit (``commits.commit``): the bytes since the last commit as a
part, the progress as the record, created once; then the queue's fenced update. A holder
whose fence went stale, or that lost the race for a record, stops the unit (``LeaseLost``)
and takes another; its successor starts from the store's newest record, so a kill at any
instant loses at most the pages after the last commit, fetched again, never kept twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from gh_collect.config import Config
from gh_collect.durable.atomic import atomic_write
from gh_collect.durable.checkpoint import (
    CheckpointManager,
    CheckpointStatus,
    UnitKey,
    strategy_from_settings,
)
from gh_collect.durable.checkpoint.state import (
    CheckpointState,
    PhaseProgress,
    RepoProgress,
    UnitProgress,
)
from gh_collect.durable.paths import DatasetPaths
from gh_collect.durable.storage import RawStore
from gh_collect.durable.validators import ValidatorStore
from gh_collect.errors import (
    CheckpointError,
    FatalApiError,
    GhCollectError,
    LeaseLost,
    QueueUnavailableError,
    RateLimitExit,
    StorageError,
)
from gh_collect.fleet.commits import Attempt, CommitRecord, FleetLayout, commit, latest, read_parts
from gh_collect.fleet.plan import FleetPlan
from gh_collect.fleet.queue import Lease, RedisQueue, unit_id, unit_key
from gh_collect.fleet.store import ObjectStore
from gh_collect.github.client import GitHubClient
from gh_collect.github.pool import PoolView
from gh_collect.github.quota import Quota
from gh_collect.harvest.context import DISCOVERY, RunContext, RunOptions
from gh_collect.harvest.listing import ListingHints
from gh_collect.harvest.observer import RunObserver
from gh_collect.harvest.phases import collect_unit
from gh_collect.report.progress import Reporter

__all__ = ["Fleet", "WorkerStats", "heartbeat", "run_worker", "worker_client"]

# Errors after which this worker stops (the unit is given back first): they would fail
# every unit alike. Others (a unit's own trouble) give the unit back and go on.
_STOPS_WORKER = (FatalApiError, StorageError, QueueUnavailableError, RateLimitExit, CheckpointError)


@dataclass
class WorkerStats:
    units: int = 0
    taken_over: int = 0
    lost: int = 0
    commits: int = 0


@dataclass
class Fleet:
    """What every unit of one worker shares: the dataset, the store, the queue, the plan."""

    config: Config
    store: ObjectStore
    queue: RedisQueue
    plan: FleetPlan
    reporter: Reporter
    options: RunOptions
    hints: ListingHints = field(default_factory=ListingHints)
    budgets: list[str] = field(default_factory=list)  # shared budgets' names (not secrets)
    name: str = field(default_factory=lambda: _worker_name())
    stats: WorkerStats = field(default_factory=WorkerStats)

    @property
    def layout(self) -> FleetLayout:
        return FleetLayout(self.config.year, self.config.target.org)


async def run_worker(
    fleet: Fleet, client: GitHubClient, *, slots: int | None = None
) -> WorkerStats:
    """Take and walk units until every planned unit has ended; ``slots`` units at a time."""
    scratch = Path(tempfile.mkdtemp(prefix="gh-collect-worker-"))
    count = slots or fleet.config.github.concurrency
    try:
        loops = [asyncio.create_task(_loop(fleet, client, scratch, i)) for i in range(count)]
        try:
            await _first_error(loops)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return fleet.stats


def worker_client(
    fleet: Fleet, credentials: PoolView, transport: httpx.AsyncBaseTransport | None = None
) -> GitHubClient:
    """The worker's one client (every unit's requests share its pool and pacing); budgets
    it sees go to the queue for ``status``."""
    quota = Quota(max_requests=None, budget_fraction=fleet.config.rate_limit.budget_fraction)
    return GitHubClient(
        fleet.config.github, credentials, rate_settings=fleet.config.rate_limit,
        on_rate_limit=fleet.options.on_rate_limit, transport=transport,
        observer=RunObserver(quota, fleet.reporter, _QueueLedger(fleet.queue)),
    )  # fmt: skip


async def _first_error(tasks: list[asyncio.Task[None]]) -> None:
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in done:
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    await asyncio.gather(*tasks)


async def _loop(fleet: Fleet, client: GitHubClient, scratch: Path, slot: int) -> None:
    """One slot: take a unit, walk it, until the queue is finished."""
    while True:
        lease = await asyncio.to_thread(fleet.queue.take, f"{fleet.name}", block_ms=500)
        if lease is None:
            if await asyncio.to_thread(fleet.queue.finished):
                return
            if slot == 0:
                await asyncio.to_thread(heartbeat, fleet)
            continue
        if slot == 0:
            await asyncio.to_thread(heartbeat, fleet)
        fleet.stats.units += 1
        fleet.stats.taken_over += lease.taken_over
        await _work(fleet, client, scratch / f"{lease.fence}", lease)


def _worker_name() -> str:
    """host:pid and a random tail: two machines may share a host name and a pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def heartbeat(fleet: Fleet) -> None:
    """This worker is alive: when, how much it did, which budgets it spends."""
    info = {"seen": time.time(), "units": fleet.stats.units, "budgets": fleet.budgets}
    fleet.queue.heartbeat(fleet.name, info)


async def _work(fleet: Fleet, client: GitHubClient, folder: Path, lease: Lease) -> None:
    """One lease: the unit walked (renewing the lease meanwhile) and ended in the queue."""
    renewing = asyncio.create_task(_renew(fleet, lease))
    walk: asyncio.Task[None] | None = None
    try:
        walk = asyncio.create_task(UnitRun(fleet, lease, folder).run(client))
        await asyncio.wait({walk, renewing}, return_when=asyncio.FIRST_COMPLETED)
        if not walk.done():  # the lease was lost (or Redis, then its error is raised)
            walk.cancel()
            await asyncio.gather(walk, return_exceptions=True)
            renewing.result()
            raise LeaseLost(f"{lease.unit}: lease lost")
        await walk
    except LeaseLost as exc:
        # Still the unit's holder (another's record won the race): give it back at once so
        # the next take starts from that record; a stale holder's release is refused.
        fleet.stats.lost += 1
        fleet.reporter.info(f"unit handed over: {exc}")
        with contextlib.suppress(GhCollectError):
            await asyncio.to_thread(fleet.queue.release, lease, fleet.name, "")
    except asyncio.CancelledError:  # SIGINT/SIGTERM: give the unit back, not after a lease
        with contextlib.suppress(GhCollectError):
            fleet.queue.release(lease, fleet.name, "")
        raise
    except GhCollectError as exc:
        with contextlib.suppress(GhCollectError):
            await asyncio.to_thread(fleet.queue.release, lease, fleet.name, str(exc))
        if isinstance(exc, _STOPS_WORKER):
            raise
        fleet.reporter.warning(f"unit {lease.unit} given back: {exc}")
    finally:  # neither task outlives the lease's handling (a stop cancels this one)
        tasks = [task for task in (walk, renewing) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        shutil.rmtree(folder, ignore_errors=True)


async def _renew(fleet: Fleet, lease: Lease) -> None:
    """Renew every third of a lease; returns (ending the walk) once another holds the unit."""
    every = fleet.queue.lease_ms / 3000
    while True:
        await asyncio.sleep(every)
        if not await asyncio.to_thread(fleet.queue.renew, lease, fleet.name):
            return


class UnitRun:
    """One attempt at one unit, from the store's newest record to its end or to a stop."""

    def __init__(self, fleet: Fleet, lease: Lease, folder: Path) -> None:
        self.fleet, self.lease, self.folder = fleet, lease, folder
        endpoint, repo, parent = unit_key(lease.unit)
        self.key = UnitKey(repo, endpoint, parent)
        self.repo = fleet.plan.repo(repo)
        self.attempt = Attempt(
            fleet.layout, self.key, lease.unit, self.repo.raw_part, lease.fence, fleet.name
        )

    async def run(self, client: GitHubClient) -> None:
        fleet = self.fleet
        record = await asyncio.to_thread(
            latest, fleet.store, fleet.layout, self.key, self.repo.raw_part
        )
        if record is not None and record.progress.status == CheckpointStatus.COMPLETE:
            await self._end(CheckpointStatus.COMPLETE, "", retryable=False)
            return
        paths = DatasetPaths(self.folder, fleet.config.year, fleet.config.target.org)
        await asyncio.to_thread(self._materialize, paths, record)
        committer = _Committer(fleet, self.lease, self.attempt, record, paths, self.key)
        store = RawStore()
        cp = _FleetCheckpoint(committer, paths, fleet.config, store)
        with cp:
            cp.load()
            progress = await self._walk(cp, store, paths, client)
        await self._plan_children(cp)
        await self._end(progress.status, progress.error or "", retryable=bool(progress.retryable))

    def _materialize(self, paths: DatasetPaths, record: CommitRecord | None) -> None:
        """The unit's committed bytes as its raw file, and a checkpoint of its progress."""
        target = paths.unit_file(self.key.endpoint, self.repo, self.key.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            for data in read_parts(self.fleet.store, record):
                out.write(data)
        state = _one_unit_state(self.fleet.config, self.repo, self.key, record)
        atomic_write(paths.checkpoint, state.model_dump_json(indent=2).encode())

    async def _walk(
        self, cp: CheckpointManager, store: RawStore, paths: DatasetPaths, client: GitHubClient
    ) -> UnitProgress:
        fleet = self.fleet
        validators = ValidatorStore(paths.validators, 0, store)
        ctx = RunContext(
            fleet.config, fleet.options, paths, cp, store, validators, fleet.reporter,
            list(fleet.config.endpoints),
        )  # fmt: skip
        try:
            if (self.key.repo, self.key.endpoint) in fleet.hints.turned_off:
                cp.complete_unit(self.key, byte_offset=cp.unit(self.key).byte_offset)
            else:
                await collect_unit(ctx, client, self.key)
            await cp.save_async("unit end")
        finally:
            store.close()
        return cp.unit(self.key)

    async def _plan_children(self, cp: CheckpointManager) -> None:
        """Fan-out units the walk added (a parent's share of an endpoint): planned before
        the parent ends, so the queue is never finished while they are due."""
        children = [
            unit_id(key.endpoint, key.repo, key.parent)
            for key in cp.state.repos[self.key.repo].unit_keys()
            if key.parent is not None and key != self.key
        ]
        if children:
            await asyncio.to_thread(self.fleet.queue.plan, children)

    async def _end(self, status: CheckpointStatus, error: str, *, retryable: bool) -> None:
        state = "complete" if status == CheckpointStatus.COMPLETE else "failed"
        if status not in (CheckpointStatus.COMPLETE, CheckpointStatus.FAILED):
            raise LeaseLost(f"{self.lease.unit} stopped before its end")  # a quota stop
        ended = await asyncio.to_thread(
            self.fleet.queue.finish, self.lease, state, error, retryable=retryable
        )
        if not ended:
            raise LeaseLost(f"{self.lease.unit}: another worker holds it now")


def _one_unit_state(
    config: Config, repo: RepoProgress, key: UnitKey, record: CommitRecord | None
) -> CheckpointState:
    """A checkpoint of one repo whose one unit that matters is ``key``, as committed."""
    now = datetime.now(UTC)
    units = {name: UnitProgress() for name in config.endpoints}
    units[key.name] = record.progress if record else UnitProgress()
    phases = {DISCOVERY: PhaseProgress(status=CheckpointStatus.COMPLETE)}
    phases.update({name: PhaseProgress() for name in config.endpoints})
    entry = repo.model_copy(update={"units": units})
    return CheckpointState(
        config_digest=config.digest, config=config.digest_inputs(), created_at=now,
        updated_at=now, phases=phases, repos={repo.full_name: entry},
    )  # fmt: skip


class _Committer:
    """Turns each save of the scratch checkpoint into a commit (on the writer thread)."""

    def __init__(
        self,
        fleet: Fleet,
        lease: Lease,
        attempt: Attempt,
        record: CommitRecord | None,
        paths: DatasetPaths,
        key: UnitKey,
    ) -> None:
        self.fleet, self.lease, self.attempt, self.record = fleet, lease, attempt, record
        self.key = key
        self.file = paths.unit_file(key.endpoint, fleet.plan.repo(key.repo), key.parent)

    def saved(self, data: bytes) -> None:
        state = CheckpointState.model_validate_json(data)
        progress = state.repos[self.key.repo].units[self.key.name]
        previous = self.record.progress if self.record else None
        if previous is not None and progress == previous:
            return
        queue = self.fleet.queue
        if not queue.check(self.lease):
            raise LeaseLost(f"{self.lease.unit}: fence {self.lease.fence} is stale")
        start = self.record.size if self.record else 0
        with self.file.open("rb") as source:
            source.seek(start)
            chunk = source.read(progress.byte_offset - start)
        record = commit(self.fleet.store, self.attempt, self.record, chunk, progress)
        if record is None:
            raise LeaseLost(f"{self.lease.unit}: another holder committed first")
        before = previous or UnitProgress()
        new_pages = progress.pages_collected - before.pages_collected
        new_records = progress.records_collected - before.records_collected
        self.record = record
        self.fleet.stats.commits += 1
        if not queue.progress(
            self.lease, seq=record.seq, pages=progress.pages_collected,
            records=progress.records_collected, new_pages=max(new_pages, 0),
            new_records=max(new_records, 0),
        ):  # fmt: skip
            raise LeaseLost(f"{self.lease.unit}: fence {self.lease.fence} refused")


class _FleetCheckpoint(CheckpointManager):
    """The scratch checkpoint: each write, once landed, is committed to the store."""

    def __init__(
        self, committer: _Committer, paths: DatasetPaths, config: Config, store: RawStore
    ) -> None:
        super().__init__(
            paths.checkpoint, paths.lock, take_sync=store.take_sync,
            strategy=strategy_from_settings(config.checkpoint, config.rate_limit),
        )  # fmt: skip
        self._committer = committer

    def _write(self, data: bytes) -> None:
        super()._write(data)
        self._committer.saved(data)


class _QueueLedger:
    """The observer's ledger: budgets seen go to the queue (for every worker's ``status``),
    at most once a second per resource."""

    def __init__(self, queue: RedisQueue) -> None:
        self._queue = queue
        self._last: dict[str, float] = {}

    def count_request(self, n: int = 1) -> None:
        return

    def record_rate_limit(
        self, limit: int, remaining: int, reset: float, resource: str | None
    ) -> None:
        name = resource or "core"
        now = time.monotonic()
        if now - self._last.get(name, 0.0) < 1.0:
            return
        self._last[name] = now
        with contextlib.suppress(GhCollectError):
            self._queue.record_budget(name, remaining, limit, reset)
