"""A fleet run: ``collect --queue`` (plan, then work, then export) and ``worker`` (work).

Only this module ties the fleet's parts together; the CLI calls ``run_fleet``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

from gh_collect import endpoints
from gh_collect.config import Config
from gh_collect.curated.export import ExportResult
from gh_collect.durable.paths import safe_part
from gh_collect.errors import GhCollectError, Interrupted, UsageError
from gh_collect.fleet.budget import BudgetSync, sharing_workers, split_secondary_limits
from gh_collect.fleet.commits import FleetLayout
from gh_collect.fleet.output import export_fleet
from gh_collect.fleet.plan import FleetPlan, load_plan, make_plan, plan_hints, plan_units
from gh_collect.fleet.queue import RedisQueue
from gh_collect.fleet.store import ObjectStore, open_store
from gh_collect.fleet.worker import Fleet, WorkerStats, heartbeat, run_worker, worker_client
from gh_collect.github.credentials import Credentials
from gh_collect.github.pool import PoolView
from gh_collect.harvest.context import RunOptions
from gh_collect.harvest.run import make_pool
from gh_collect.report.progress import Reporter

__all__ = ["FleetResult", "open_queue", "run_fleet"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class FleetResult:
    exit_code: int
    states: dict[str, int] = field(default_factory=dict)
    stats: WorkerStats = field(default_factory=WorkerStats)
    exported: ExportResult | None = None
    store: str = ""


def open_queue(config: Config, url: str) -> RedisQueue:
    """The queue of ``config``'s dataset: one namespace per org and year."""
    namespace = f"gh-collect:{safe_part(config.target.org)}:{config.year}"
    return RedisQueue(
        url, namespace, lease_s=config.fleet.lease_s, max_stalls=config.fleet.max_stalls
    )


def _refuse_fan_outs(config: Config) -> None:
    """Workers plan repo x endpoint units only: an endpoint read through GraphQL pages or
    fanning out per parent (``reviews``, ``pull_stats``) would be walked wrongly, so it is
    refused before anything is planned."""
    fanning = [
        name
        for name in config.endpoints
        if (e := endpoints.get(name)).transport == "graphql" or e.parent or e.fan_out
    ]
    if fanning:
        raise UsageError(
            f"--queue does not harvest {', '.join(fanning)} yet: harvest them without "
            "--queue, or take them out of endpoints"
        )


def run_fleet(
    config: Config,
    credentials: Credentials,
    options: RunOptions,
    *,
    queue_url: str,
    reporter: Reporter,
    planner: bool,
    transport: httpx.AsyncBaseTransport | None = None,
    wait_for_plan_s: float = 120.0,
) -> FleetResult:
    """Plan (``planner``: ``collect --queue``) or join (``worker``), work until every unit
    has ended; the planner then exports. Exit 1 when units failed."""
    if len(config.orgs) > 1:
        raise UsageError("--queue harvests one organization: use one config per org")
    if options.from_repo or options.only or options.max_requests:
        raise UsageError(
            "--queue plans every repo and endpoint: --from-repo, --only and --max-requests "
            "do not apply to a fleet"
        )
    _refuse_fan_outs(config)
    config = config.for_org(config.orgs[0])
    store = open_store(config.output.root)
    queue = open_queue(config, queue_url)
    layout = FleetLayout(config.year, config.target.org)

    async def _work(view: PoolView) -> WorkerStats:
        """Announce, plan or wait for the plan, then walk units, sharing the budget."""
        early = Fleet(config, store, queue, _NO_PLAN, reporter, options)
        early.budgets = [name for name, _buckets in view.shared_budgets()]
        split = await _my_share(early, reporter, view)
        async with worker_client(split, view, transport) as client:
            if planner:
                plan = await _plan(config, store, queue, layout, client, options, reporter)
            else:
                plan = await _wait_for_plan(queue, store, layout, wait_for_plan_s)
            with tempfile.TemporaryDirectory(prefix="gh-collect-hints-") as folder:
                hints = plan_hints(store, plan, Path(folder))
            fleet = Fleet(split.config, store, queue, plan, reporter, options, hints)
            fleet.budgets, fleet.name = early.budgets, early.name
            budget = BudgetSync(queue, view, recount=partial(_recount, fleet))
            sync = asyncio.create_task(budget.run())
            try:
                return await run_worker(fleet, client)
            finally:
                sync.cancel()
                with contextlib.suppress(GhCollectError):
                    await budget.sync()  # the last readings, for status and the others
                    await asyncio.to_thread(queue.leave, fleet.name)

    async def main() -> FleetResult:
        stop = _catch_stop_signals()
        try:
            view = make_pool(config, credentials, reporter).view(config.target.org)
            stats = await _work(view)
        except asyncio.CancelledError:
            raise Interrupted(stop.signum or signal.SIGINT) from None
        finally:
            _release_stop_signals()
        return _finish(config, store, queue, layout, stats, export=planner and options.export)

    return asyncio.run(main())


async def _my_share(fleet: Fleet, reporter: Reporter, view: PoolView) -> Fleet:
    """Announce this worker, then take its share of the secondary limits and of the primary
    budgets: split among the live workers spending one of its budgets (GitHub counts both
    per user or installation)."""
    await asyncio.to_thread(heartbeat, fleet)
    within = max(30.0, fleet.queue.lease_ms / 1000 * 3)
    share = await asyncio.to_thread(sharing_workers, fleet.queue, fleet.budgets, within_s=within)
    if share > 1:
        reporter.info(f"{share} workers share this worker's credentials: each paces at 1/{share}")
    fleet.config = split_secondary_limits(fleet.config, share)
    view.pool.share_budgets(share)
    return fleet


def _recount(fleet: Fleet) -> int:
    """A heartbeat, then how many live workers share this one's credentials."""
    heartbeat(fleet)
    within = max(30.0, fleet.queue.lease_ms / 1000 * 3)
    return sharing_workers(fleet.queue, fleet.budgets, within_s=within)


async def _plan(
    config: Config,
    store: ObjectStore,
    queue: RedisQueue,
    layout: FleetLayout,
    client: object,
    options: RunOptions,
    reporter: Reporter,
) -> FleetPlan:
    if options.force:
        await asyncio.to_thread(_forget, store, queue, layout)
    await asyncio.to_thread(queue.open_plan, config.digest, store.uri, config.endpoints)
    plan = await make_plan(config, store, client, reporter)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="gh-collect-hints-") as folder:
        hints = plan_hints(store, plan, Path(folder))
    if options.retry_failed:
        again = await asyncio.to_thread(queue.retry_failed)
        reporter.info(f"{again} failed units planned again")
    added = await asyncio.to_thread(plan_units, queue, plan, hints)
    reporter.info(f"planned {added} new units of {len(plan.repos)} repos into {queue.url}")
    return plan


def _forget(store: ObjectStore, queue: RedisQueue, layout: FleetLayout) -> None:
    """``--force``: the queue's keys and the dataset's objects, raw and curated."""
    queue.delete_all()
    for prefix in (f"{layout.raw}/", f"{layout.curated}/"):
        for key in store.list(prefix):
            store.delete(key)


async def _wait_for_plan(
    queue: RedisQueue, store: ObjectStore, layout: FleetLayout, wait_s: float
) -> FleetPlan:
    """A worker started before the planner: wait (bounded) for the plan to appear."""
    deadline = time.monotonic() + wait_s
    while True:
        meta = await asyncio.to_thread(queue.meta)
        plan = await asyncio.to_thread(load_plan, store, layout) if meta else None
        if plan is not None and meta.get("digest") == plan.digest:
            return plan
        if time.monotonic() > deadline:
            raise UsageError(
                f"no harvest planned in the queue at {queue.url} after {wait_s:.0f} s: run "
                "`gh-collect collect -c CONFIG --queue URL` first (same config, same queue)"
            )
        await asyncio.sleep(0.5)


def _finish(
    config: Config,
    store: ObjectStore,
    queue: RedisQueue,
    layout: FleetLayout,
    stats: WorkerStats,
    *,
    export: bool,
) -> FleetResult:
    states: dict[str, int] = {}
    for info in queue.snapshot()["units"].values():
        states[info.get("state", "pending")] = states.get(info.get("state", "pending"), 0) + 1
    exported = export_fleet(store, layout, list(config.endpoints)) if export else None
    code = 1 if states.get("failed") else 0
    return FleetResult(code, states, stats, exported, store.uri)


class _Stop:
    signum: int | None = None


def _catch_stop_signals() -> _Stop:
    loop, main, stop = asyncio.get_running_loop(), asyncio.current_task(), _Stop()
    assert main is not None

    def on_signal(signum: int) -> None:
        stop.signum = signum
        main.cancel()

    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    return stop


def _release_stop_signals() -> None:
    loop = asyncio.get_running_loop()
    for signum in _STOP_SIGNALS:
        loop.remove_signal_handler(signum)


_NO_PLAN = FleetPlan(digest="", endpoints=[], repos_part="", repos=[])
