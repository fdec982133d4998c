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
from contextlib import contextmanager
from functools import partial

from gh_collect import endpoints
from gh_collect.durable.checkpoint import CheckpointStatus, UnitKey, UnitProgress
from gh_collect.errors import ApiError, RetriableApiError, SkippableApiError
from gh_collect.github.client import GitHubClient
from gh_collect.github.quota import QuotaReached
from gh_collect.harvest.context import RunContext
from gh_collect.harvest.fan_out import ParentNotReady, dispatch_children, walk_fan_out
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
    todo = largest_first(_skip_turned_off(ctx, todo, hints), hints.sizes)
    declared = ctx.endpoint(endpoint)
    if declared.transport == "graphql":
        jobs = _repo_jobs(ctx, client, endpoint, todo)
    elif declared.parent is not None:
        jobs = _child_jobs(ctx, client, endpoint, todo)
    else:
        jobs = [_job(ctx, client, key) for key in todo]
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
    async def job() -> None:
        await collect_unit(ctx, client, key)

    return job


def _repo_jobs(
    ctx: RunContext, client: GitHubClient, endpoint: str, todo: list[UnitKey]
) -> list[Job]:
    """A GraphQL phase: one job per repo, walking its unit (carrying the unit of a later
    GraphQL phase read from the same pages, when in step), then every fan-out unit with
    work left, those its walk just armed included (``todo`` was fixed at the start)."""
    tops = {key.repo: key for key in todo if key.parent is None}

    async def job(repo: str) -> None:
        walked = [endpoint]
        if repo in tops and await _free_with_work(ctx, tops[repo]):
            carried = await collect_unit(ctx, client, tops[repo], carry=True)
            walked += [carried.endpoint] if carried is not None else []
        for key in list(ctx.cp.state.repos[repo].unit_keys()):
            if key.parent and key.endpoint in walked and await _free_with_work(ctx, key):
                await collect_unit(ctx, client, key)

    return [partial(job, repo) for repo in dict.fromkeys(k.repo for k in todo)]


def _child_jobs(
    ctx: RunContext, client: GitHubClient, endpoint: str, todo: list[UnitKey]
) -> list[Job]:
    """A phase read per parent (REST ``reviews``, per pull): one job per repo, dispatching
    its children from what the parent endpoint kept (once that is complete), then walking
    every child with work left, one after another."""
    tops = {key.repo: key for key in todo if key.parent is None}

    async def job(repo: str) -> None:
        top = tops.get(repo)
        if top is not None and await _free_with_work(ctx, top):
            try:
                _walk_start(ctx, top)
                with _walking(ctx, top):
                    await dispatch_children(ctx, top)
            except ParentNotReady as exc:
                ctx.reporter.info(f"{endpoint} of {repo} left for a later run: {exc}")
                return
        for key in list(ctx.cp.state.repos[repo].unit_keys()):
            if key.parent and key.endpoint == endpoint and await _free_with_work(ctx, key):
                await collect_unit(ctx, client, key)

    return [partial(job, repo) for repo in dict.fromkeys(k.repo for k in todo)]


async def _free_with_work(ctx: RunContext, key: UnitKey) -> bool:
    """Whether ``key`` still has work once no other job walks it: phases overlap (the next
    starts while this one's last units run), so a unit carried by an earlier phase's walk,
    or a fan-out walked by the job that armed it, is waited for, never walked twice."""
    while (busy := ctx.walking.get(key)) is not None:
        await busy.wait()
    return ctx.cp.unit(key).has_work(retry_failed=ctx.options.retry_failed)


@contextmanager
def _walking(ctx: RunContext, *keys: UnitKey | None) -> Iterator[None]:
    """Mark units as walked by this job (in the same synchronous step as the check that
    they were free), and free them, waking whoever waits, when it ends."""
    marked = {key: asyncio.Event() for key in keys if key is not None}
    ctx.walking.update(marked)
    try:
        yield
    finally:
        for key, event in marked.items():
            ctx.walking.pop(key, None)
            event.set()


def _carried(ctx: RunContext, key: UnitKey) -> UnitKey | None:
    """The unit of a later GraphQL phase that can be read from ``key``'s pages: one with
    work left and "in step" with it (the same page, pass and resume token: both fresh,
    both refreshing from the same point, or carried together before a kill)."""
    phases = ctx.phases
    later = phases[phases.index(key.endpoint) + 1 :] if key.endpoint in phases else []
    for name in later:
        other = UnitKey(key.repo, name)
        if ctx.endpoint(name).transport != "graphql" or other.name not in (
            ctx.cp.state.repos[key.repo].units
        ):
            continue
        retry = ctx.options.retry_failed
        if other in ctx.walking or not ctx.cp.unit(other).has_work(retry_failed=retry):
            continue
        _walk_start(ctx, other)
        if _in_step(ctx.cp.unit(key), ctx.cp.unit(other)):
            return other
    return None


def _in_step(a: UnitProgress, b: UnitProgress) -> bool:
    """Whether two units stand at the same point of the same walk."""
    fields = ("last_page_written", "catch_ups", "pass_pending", "resume_token", "floor",
              "refreshing", "pass_started_at", "pass_pages")  # fmt: skip
    return all(getattr(a, name) == getattr(b, name) for name in fields)


async def collect_unit(
    ctx: RunContext, client: GitHubClient, key: UnitKey, *, carry: bool = False
) -> UnitKey | None:
    """One unit (and the unit it carries, with ``carry``), to completion or to a recorded
    failure, which fails both; other units go on either way. Returns the carried unit."""
    carried: UnitKey | None = None
    try:
        _walk_start(ctx, key)
        carried = _carried(ctx, key) if carry else None
        with _walking(ctx, key, carried):  # no await since the checks: taken at once
            if key.parent is not None and ctx.endpoint(key.endpoint).transport == "graphql":
                pages, records = await walk_fan_out(ctx, client, key)
            else:
                pages, records = await walk_unit(ctx, client, key, carried=carried)
    except QuotaReached:
        return carried  # stopped before sending; the saved progress is the resume point
    except (SkippableApiError, RetriableApiError) as exc:
        if _means_empty(key, exc):
            _complete_empty(ctx, key, f"{key.endpoint} answered {exc.status}, declared as none")
            return carried
        for unit in (key, *([carried] if carried is not None else [])):
            ctx.cp.fail_unit(unit, str(exc), retryable=isinstance(exc, RetriableApiError))
            ctx.reporter.unit_done(unit.repo, unit.name, "failed", str(exc))
        return carried
    for unit in (key, *([carried] if carried is not None else [])):
        ctx.reporter.unit_done(
            unit.repo, unit.name, "complete", f"{pages} pages, {records} records"
        )
    return carried


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
