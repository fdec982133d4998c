"""One unit's walk, in passes: how a list is read so that nothing updated meanwhile is lost.

An oldest-created-first list (``issues?since=``) is read in one pass: new activity never
reorders what is left to read.

A newest-updated-first list (``pulls``, which has no ``since``) is read from the top down to
a floor: the year's start on the first pass, so a repo with ten years of history costs the
year's pages. While such a pass reads, an item updated behind the walk jumps to page 1,
already read, and would be missed (google/go-github#566); an item read already only comes
again, which ``KnownVersions`` drops. So a pass that took more than one request is followed
by a catch-up pass from the top down to that pass's start (the server's ``Date`` on its
first page, the clock ``updated_at`` is written in). A pass of one request is a snapshot and
needs none. A catch-up's first page is asked with the ETag it had when the last pass read it:
a 304 (free) says nothing moved since, and ends the walk. After the last pass,
``read_through`` is its start: the floor of the unit's next refresh or closing sweep.

Each pass's state (floor, start, pages, the resume token) is in the checkpoint, recorded in
the same synchronous step as the page's append, so a walk can be killed at any instant and
resumed exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gh_collect.durable.checkpoint import UnitKey, UnitProgress
from gh_collect.durable.envelope import encode_lines, envelope, now_iso
from gh_collect.durable.storage import JsonlSink
from gh_collect.durable.validators import KnownVersions
from gh_collect.endpoints import Endpoint, Order, Window
from gh_collect.endpoints.base import timestamp
from gh_collect.github.client import GitHubClient
from gh_collect.harvest.context import RunContext
from gh_collect.harvest.walk import PageWalk, WalkPage, paginator_for

__all__ = ["MAX_CATCH_UPS", "append_page", "walk_unit"]

# Catch-up passes after the first, at most: each reads only what moved during the one before
# (usually one request); a list that never stops moving ends with a conservative
# ``read_through`` (the last pass's floor), so its next sweep reads that stretch again.
MAX_CATCH_UPS = 5


@dataclass(frozen=True)
class _PassEnd:
    """How a pass ended: the order it was read in and what it counted."""

    order: Order
    pages: int
    records: int
    changed: bool = True  # a page differed from what the last walk stored


@dataclass(frozen=True)
class _Target:
    """One unit a walk writes: its file, open at its saved offset, and what it holds."""

    key: UnitKey
    endpoint: Endpoint
    path: Path
    sink: JsonlSink
    known: KnownVersions


def _open_target(ctx: RunContext, key: UnitKey) -> _Target:
    cp, endpoint = ctx.cp, ctx.endpoint(key.endpoint)
    progress = cp.unit(key)
    path = ctx.paths.unit_file(key.endpoint, cp.state.repos[key.repo], key.parent)
    sink = ctx.store.open(path, progress.byte_offset)
    known = KnownVersions(path, progress.byte_offset, endpoint.record_key, endpoint.record_version)
    return _Target(key, endpoint, path, sink, known)


async def walk_unit(
    ctx: RunContext, client: GitHubClient, key: UnitKey, *, carried: UnitKey | None = None
) -> tuple[int, int]:
    """Fetch the pages of one unit not yet saved, appending each new record exactly once;
    complete the unit. Returns (pages, records) walked by this call.

    ``carried``: a unit of another endpoint read from the same pages (``pull_stats`` with
    ``reviews``), in step with ``key`` (``harvest/phases.py`` checks): each page's records
    go to both files and both units record the page in the same synchronous step, with
    ``key``'s resume token and pass state; both complete together."""
    cp = ctx.cp
    targets: list[_Target] = []
    try:
        for unit in (key, carried):
            if unit is not None:
                targets.append(_open_target(ctx, unit))
                cp.start_unit(unit)
        progress = cp.unit(key)
        pages = records = 0
        # A pass an earlier run began (even one it read to the end): what it read may have
        # changed while no run was reading.
        resumed = progress.last_page_written > 0 and not progress.pass_pending
        endpoint = targets[0].endpoint
        while True:
            end = await _walk_pass(ctx, client, targets)
            pages, records = pages + end.pages, records + end.records
            floor = _catch_up_floor(cp.unit(key), endpoint, end.order, ctx.window, resumed)
            if not end.changed and not resumed:
                floor = None  # every page as stored: nothing moved while this pass read
            if floor is None:
                break
            for target in targets:
                cp.begin_pass(target.key, floor)
            resumed = False
        read_through = _read_through(cp.unit(key)) if endpoint.order.moves_on_update else None
        for target in targets:
            cp.complete_unit(target.key, byte_offset=target.sink.offset, read_through=read_through)
        return pages, records
    finally:
        for target in targets:
            ctx.store.release(target.path)


async def _walk_pass(ctx: RunContext, client: GitHubClient, targets: list[_Target]) -> _PassEnd:
    """The rest of the pass under way (all of it, for a fresh one)."""
    cp, window = ctx.cp, ctx.window
    key, endpoint = targets[0].key, targets[0].endpoint
    progress = cp.unit(key)
    page_number, resuming = progress.last_page_written, progress.resume_token is not None
    order = endpoint.order_of(progress.resume_token if resuming else None)
    if page_number and not resuming and not progress.pass_pending:
        return _PassEnd(order, 0, 0)  # the pass was walked to its end: only completion left
    walk = _page_walk(ctx, client, key, endpoint, progress, order)
    pages = records = 0
    changed = False
    started = progress.pass_started_at
    while (step := await walk.next()) is not None:
        changed = changed or not step.unchanged
        items = [] if step.items is None else step.items
        kept = [t.known.changed(t.endpoint.keep(items, window)) for t in targets]
        page_number += 1
        if started is None:
            started = _pass_start(step, progress.floor, endpoint)
        # nothing moved since the last pass: in a list an edit moves to the top of, page 1
        # says so for the whole list (releases, sorted by creation, are read on)
        last = step.unchanged and order.moves_on_update
        try:  # one synchronous step: the walk remembered the page's ETag just before
            for target, new in zip(targets, kept, strict=True):
                append_page(ctx, target.key, target.sink, page_number, new)
                cp.record_page(
                    target.key, page=page_number, records=len(new), byte_offset=target.sink.offset,
                    resume_token=None if last else step.next_token, pass_started_at=started,
                )  # fmt: skip
            for unit, token in _fan_outs(targets, items, window):
                cp.arm_fan_out(unit, token)  # same step: a kill never loses an overflow
        except BaseException:
            cp.halt(f"recording page {page_number} of {key} failed")
            raise
        await cp.maybe_save_async()
        pages, records = pages + 1, records + sum(map(len, kept))
        ctx.reporter.page(key.repo, key.name, sum(map(len, kept)))
        if last:
            break
    return _PassEnd(order, pages, records, changed)


def _page_walk(
    ctx: RunContext,
    client: GitHubClient,
    key: UnitKey,
    endpoint: Endpoint,
    progress: UnitProgress,
    order: Order,
) -> PageWalk:
    """The walk over the rest of the pass. A catch-up of a list with ``since`` reads only
    what changed since its floor; a refresh re-reads its pages as they were asked before,
    so their ETags can answer 304 (REST: a GraphQL query is a POST, never conditional)."""
    window, resuming = ctx.window, progress.resume_token is not None
    floor = progress.floor if progress.catch_ups else None
    since = Window(max(floor or window.start, window.start), window.end)
    graphql = endpoint.transport == "graphql"
    return PageWalk(
        client,
        paginator_for(
            endpoint, key.repo, since, parent=key.parent,
            resume_token=progress.resume_token if resuming else None,
            start_page=progress.last_page_written + 1,
            graphql_url=ctx.graphql.url if graphql and ctx.graphql is not None else "",
        ),
        validators=None if graphql else ctx.validators,
        conditional=_asks_changed(progress, order, resuming),
        first_page_only=order.moves_on_update,
        stop=lambda items: endpoint.stops(items, window, order=order, floor=progress.floor),
        on_shrink=ctx.reporter.info,
        graphql=ctx.graphql,
    )  # fmt: skip


def _fan_outs(
    targets: list[_Target], items: list[Any], window: Window
) -> Iterator[tuple[UnitKey, str]]:
    """The fan-out units a page's items call for (a pull whose reviews overflow the
    batch), with the token each walks from; only for items the year keeps."""
    for target in targets:
        overflow, rule = target.endpoint.fan_out, target.endpoint.list_window
        if overflow is None:
            continue
        for item in items:
            if not isinstance(item, dict) or not (rule or target.endpoint.window).keeps(
                item, window
            ):
                continue
            found = overflow(item)
            if found is not None:
                parent, token = found
                yield UnitKey(target.key.repo, target.endpoint.name, parent), token


def append_page(
    ctx: RunContext, key: UnitKey, sink: JsonlSink, number: int, kept: list[dict[str, Any]]
) -> None:
    """Append a page's new records; the caller records the page in the same synchronous
    step (no ``await`` between), so every checkpoint counts exactly the bytes written."""
    source, fetched_at = ctx.endpoint(key.endpoint).source, now_iso()
    sink.append(
        encode_lines(envelope(key.endpoint, key.repo, number, i, fetched_at, source) for i in kept)
    )
    ctx.cp.record_validators(ctx.validators.offset)


def _asks_changed(progress: UnitProgress, order: Order, resuming: bool) -> bool:
    """Whether pages are asked "changed since?": a refresh's; a catch-up's (the pages the
    last pass read answer 304 where nothing moved; a catch-up with ``since=<its start>``
    asks URLs never read, so they come in full); and a newest-first catch-up's first page,
    whose ETag is the one the last pass read."""
    if order.newest_first:
        return not resuming and (progress.refreshing or progress.pass_pending)
    return progress.refreshing or progress.catch_ups > 0


def _pass_start(step: WalkPage, floor: datetime | None, endpoint: Endpoint) -> datetime | None:
    """When a newest-first pass started: the server's Date on its first page; failing that,
    the newest ``updated_at`` on it (no later than the answer, so never too late)."""
    if step.page.date is not None:
        return step.page.date
    updated = (endpoint.list_window or endpoint.window).updated
    stamps = [timestamp(i, updated) for i in step.items or [] if isinstance(i, dict)]
    return max((s for s in stamps if s is not None), default=floor)


def _catch_up_floor(
    progress: UnitProgress, endpoint: Endpoint, order: Order, window: Window, resumed: bool
) -> datetime | None:
    """The floor of the catch-up pass due after the one just walked, or None if none is.

    Newest-first: a pass of one request saw the list at one instant; a longer one may have
    missed what moved to the top while it read, everything updated since its start.
    Oldest-created first with ``since``: what the list holds never moves, but an old item
    updated into the year is inserted at its place; a run's own pass misses only what
    entered after the run began, but a pass another run began (``resumed``: killed, resumed
    here) also misses what entered while no run was reading: a catch-up with ``since`` =
    the pass's start reads just those. Either order: a resumed pass needs its catch-up."""
    if progress.catch_ups >= MAX_CATCH_UPS:
        return None
    if order.newest_first:
        if progress.pass_pages <= 1 and not resumed:
            return None
    elif not resumed or endpoint.window.since_param is None:
        return None
    elif not endpoint.window.since_tracks_arrival:
        return window.start  # commits: what arrived meanwhile may be dated anywhere in the year
    return progress.pass_started_at or progress.floor or window.start


def _read_through(progress: UnitProgress) -> datetime | None:
    """The moment before which every item of the unit has been read: the last pass's start
    if it needed no catch-up, else its floor (a pass cut short by ``MAX_CATCH_UPS``)."""
    if progress.pass_pages <= 1 and progress.pass_started_at is not None:
        return progress.pass_started_at
    return progress.floor
