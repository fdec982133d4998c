"""A phase: every unit of one endpoint with work left, walked by a bounded pool of workers.

Exactly once, per page: the walk's answer is appended to the unit's raw file and the
checkpoint records the page (count, resume token, new file size) in one synchronous step,
with no ``await`` between them, so every checkpoint taken at any point is consistent; the
save itself happens at the run's one save point (``maybe_save_async``), after the step.
Every raw file is opened cut back to the offset of the last save, so what a killed run
wrote after it is fetched again, never kept twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence

from gh_collect import endpoints
from gh_collect.durable.checkpoint import CheckpointStatus, UnitKey, UnitProgress
from gh_collect.errors import ApiError, RetriableApiError, SkippableApiError
from gh_collect.github.client import GitHubClient
from gh_collect.github.quota import QuotaReached
from gh_collect.harvest.context import RunContext
from gh_collect.harvest.listing import ListingHints
from gh_collect.harvest.passes import walk_unit

__all__ = ["run_bounded", "run_phase"]

Job = Callable[[], Awaitable[None]]


async def run_phase(
    ctx: RunContext,
    client: GitHubClient,
    endpoint: str,
    hints: ListingHints,
    *,
    slots: asyncio.Semaphore | None = None,
    dispatched: asyncio.Event | None = None,
) -> None:
    """Walk the units of ``endpoint`` that have work left; end the phase as they stand.

    ``slots`` bounds the units walked at once across phases; ``dispatched`` is set once
    every unit of this phase has started, so the next phase can begin while this one's last
    (longest) units finish, instead of leaving workers idle through its tail."""
    cp = ctx.cp
    todo = cp.units_to_process(
        endpoint, retry_failed=ctx.options.retry_failed, from_repo=ctx.options.from_repo
    )
    cp.set_current_phase(endpoint)
    ctx.reporter.phase(endpoint, len(todo))
    todo = _skip_turned_off(ctx, todo, hints)
    jobs = [_job(ctx, client, key) for key in largest_first(todo, hints.sizes)]
    await run_bounded(jobs, ctx.config.github.concurrency, slots=slots, dispatched=dispatched)
    await _end_phase(ctx, endpoint)


def _skip_turned_off(ctx: RunContext, todo: list[UnitKey], hints: ListingHints) -> list[UnitKey]:
    """Complete, without a request, the units the listing turns off (``has_issues: false``);
    the others are left to walk."""
    walk = []
    for key in todo:
        if (key.repo, key.endpoint) in hints.turned_off:
            _complete_empty(ctx, key, f"{key.endpoint} turned off in the repo listing")
        else:
            walk.append(key)
    return walk


def largest_first(units: list[UnitKey], hints: dict[str, int]) -> list[UnitKey]:
    """Big repos first (longest-processing-time-first scheduling).

    A repo's pages come one after another, so a phase lasts at least as long as its
    biggest repo; started last, a big repo leaves a tail with one request in flight and
    the other workers idle. The listing's ``open_issues_count`` is the only size hint
    GitHub gives before the walk; ties keep discovery order.
    """
    return sorted(units, key=lambda key: -hints.get(key.repo, 0))


async def _end_phase(ctx: RunContext, endpoint: str) -> None:
    tally = ctx.cp.state.tally(endpoint)
    failed = tally.count(CheckpointStatus.FAILED)
    units = sum((tally.statuses or {}).values())
    if failed:
        ctx.cp.end_phase(endpoint, f"{failed} repos failed")
        await ctx.cp.save_async(f"phase end: {endpoint} (failed)")
    elif tally.count(CheckpointStatus.COMPLETE) == units:
        ctx.cp.end_phase(endpoint)
        await ctx.cp.save_async(f"phase end: {endpoint}")
    else:
        await ctx.cp.save_async(f"phase end: {endpoint} (partial)")


def _job(ctx: RunContext, client: GitHubClient, key: UnitKey) -> Job:
    return lambda: collect_unit(ctx, client, key)


async def collect_unit(ctx: RunContext, client: GitHubClient, key: UnitKey) -> None:
    """One unit, to completion or to a recorded failure; other units go on either way."""
    try:
        _walk_start(ctx, key)
        pages, records = await walk_unit(ctx, client, key)
    except QuotaReached:
        return  # stopped before sending; the unit's saved progress is its resume point
    except (SkippableApiError, RetriableApiError) as exc:
        if _means_empty(key, exc):
            _complete_empty(ctx, key, f"{key.endpoint} answered {exc.status}, declared as none")
            return
        ctx.cp.fail_unit(key, str(exc), retryable=isinstance(exc, RetriableApiError))
        ctx.reporter.unit_done(key.repo, key.name, "failed", str(exc))
        return
    ctx.reporter.unit_done(key.repo, key.name, "complete", f"{pages} pages, {records} records")


def _means_empty(key: UnitKey, exc: ApiError) -> bool:
    """An answer the endpoint declares as "none here" (issues turned off: 410)."""
    return isinstance(exc, SkippableApiError) and exc.status in (
        endpoints.get(key.endpoint).empty_statuses
    )


def _complete_empty(ctx: RunContext, key: UnitKey, why: str) -> None:
    """Complete with nothing more: what the unit already holds stays (the bytes of the pages
    it recorded), since a refresh that finds issues turned off must not drop the issues
    collected before."""
    ctx.cp.complete_unit(key, byte_offset=ctx.cp.unit(key).byte_offset)
    ctx.reporter.unit_done(key.repo, key.name, "complete", f"0 records: {why}")


def _walk_start(ctx: RunContext, key: UnitKey) -> UnitProgress:
    """A retried failure with no saved resume token walks again from the first page: as a
    refresh if the unit holds data (kept, only changes appended; a refresh that failed on
    its first page), from zero if it holds nothing."""
    progress = ctx.cp.unit(key)
    if progress.status == CheckpointStatus.FAILED and not progress.resume_token:
        if progress.holds_data:
            ctx.cp.begin_refresh(key)
        else:
            ctx.cp.reset_unit(key)
        progress = ctx.cp.unit(key)
    return progress


async def run_bounded(
    jobs: Sequence[Job],
    limit: int,
    *,
    slots: asyncio.Semaphore | None = None,
    dispatched: asyncio.Event | None = None,
) -> None:
    """Run jobs with at most ``limit`` at once (and one of ``slots`` each, when shared);
    the first error cancels the rest and is raised. ``dispatched`` is set once the last
    job has started (at once when there are none)."""
    queue: Iterator[Job] = iter(jobs)
    left = len(jobs)

    async def worker() -> None:
        nonlocal left
        for job in queue:
            if slots is None:
                left -= 1
                _mark_dispatched(left, dispatched)
                await job()
                continue
            async with slots:
                left -= 1
                _mark_dispatched(left, dispatched)
                await job()

    tasks = [asyncio.create_task(worker()) for _ in range(min(limit, len(jobs)))]
    if not tasks:
        _mark_dispatched(0, dispatched)
        return
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        _mark_dispatched(0, dispatched)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _mark_dispatched(left: int, dispatched: asyncio.Event | None) -> None:
    if left == 0 and dispatched is not None:
        dispatched.set()
