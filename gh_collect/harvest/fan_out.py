"""A fan-out unit's walk: the records of one parent that overflow its batch.

A GraphQL page of pulls holds each pull's first reviews; a pull with more gets a fan-out
unit (``reviews/<number>``), armed by the page that revealed it with a token naming the
pull and the batch's ``endCursor``. Its walk reads the rest with ``PULL_REVIEWS`` (100 at a
time, fewer when GitHub cuts a query short) into its own file, each page appended and
recorded in one synchronous step like any unit's; ``KnownVersions`` over that file drops
reviews it already holds (a refresh re-arms a unit from the new cursor).

Without GraphQL (``REVIEWS_REST``) every parent gets one: ``dispatch_children`` turns the
records ``pulls`` kept for a repo into ``reviews/<number>`` units, each then walked as an
ordinary REST list (``GET .../pulls/{n}/reviews``) by ``walk_unit``.
"""

from __future__ import annotations

from gh_collect.durable.checkpoint import CheckpointStatus, UnitKey
from gh_collect.durable.envelope import read_data
from gh_collect.durable.validators import KnownVersions
from gh_collect.github.client import GitHubClient
from gh_collect.harvest.context import RunContext
from gh_collect.harvest.passes import append_page
from gh_collect.harvest.walk import PageWalk, paginator_for

__all__ = ["dispatch_children", "walk_fan_out"]


async def walk_fan_out(ctx: RunContext, client: GitHubClient, key: UnitKey) -> tuple[int, int]:
    """Walk a fan-out unit from its token to the end; complete it. (pages, records)."""
    cp, endpoint = ctx.cp, ctx.endpoint(key.endpoint)
    progress = cp.unit(key)
    path = ctx.paths.unit_file(key.endpoint, cp.state.repos[key.repo], key.parent)
    sink = ctx.store.open(path, progress.byte_offset)
    known = KnownVersions(path, progress.byte_offset, endpoint.record_key, endpoint.record_version)
    pages = records = 0
    try:
        cp.start_unit(key)
        if progress.resume_token is not None:  # None: its last page is recorded already
            paginator = paginator_for(
                endpoint, key.repo, ctx.window, resume_token=progress.resume_token,
                start_page=progress.last_page_written + 1,
                graphql_url=ctx.graphql.url if ctx.graphql is not None else "",
            )  # fmt: skip
            walk = PageWalk(client, paginator, graphql=ctx.graphql, on_shrink=ctx.reporter.info)
            while (step := await walk.next()) is not None:
                kept = known.changed(endpoint.keep_records(step.items or [], ctx.window))
                try:  # one synchronous step, halted on failure (``_walk_pass``)
                    append_page(ctx, key, sink, step.number, kept)
                    cp.record_page(
                        key, page=step.number, records=len(kept), byte_offset=sink.offset,
                        resume_token=step.next_token,
                    )  # fmt: skip
                except BaseException:
                    cp.halt(f"recording page {step.number} of {key} failed")
                    raise
                await cp.maybe_save_async()
                pages, records = pages + 1, records + len(kept)
                ctx.reporter.page(key.repo, key.name, len(kept))
        cp.complete_unit(key, byte_offset=sink.offset)
        return pages, records
    finally:
        ctx.store.release(path)


class ParentNotReady(Exception):
    """The parent unit of a repo is neither complete nor failed (a run stopped before it):
    its children are dispatched by a later run."""


async def dispatch_children(ctx: RunContext, key: UnitKey) -> list[UnitKey]:
    """Track one child unit per record the parent endpoint kept for ``key.repo`` (a REST
    fallback's ``reviews/<number>`` per pull), and complete ``key``, in one synchronous
    step: a kill before the save dispatches again, finding the same children. A refresh
    re-walks the completed children conditionally (unchanged review lists answer 304).
    Returns the children. The parent failed: ``key`` fails alike."""
    cp, parent_name = ctx.cp, ctx.endpoint(key.endpoint).parent
    assert parent_name is not None  # only endpoints with a parent are dispatched
    parent = UnitKey(key.repo, parent_name)
    while (busy := ctx.walking.get(parent)) is not None:  # phases overlap: wait for pulls
        await busy.wait()
    if parent.name not in cp.state.repos[key.repo].units:
        raise ParentNotReady(f"{parent_name} of {key.repo} is not in this dataset")
    status = cp.unit(parent).status
    if status == CheckpointStatus.FAILED:
        error = cp.unit(parent)
        cp.fail_unit(key, f"{parent_name} failed: {error.error}", retryable=bool(error.retryable))
        return []
    if status != CheckpointStatus.COMPLETE:
        raise ParentNotReady(f"{parent_name} of {key.repo} is not complete yet")
    numbers = _parent_numbers(ctx, parent)
    refreshing, units = cp.unit(key).refreshing, cp.state.repos[key.repo].units
    children = [UnitKey(key.repo, key.endpoint, str(number)) for number in numbers]
    for child in children:
        if child.name not in units:
            cp.add_unit(child)
        elif refreshing and cp.unit(child).status == CheckpointStatus.COMPLETE:
            cp.begin_refresh(child)
    cp.complete_unit(key, byte_offset=cp.unit(key).byte_offset)
    return children


def _parent_numbers(ctx: RunContext, parent: UnitKey) -> list[int]:
    """The numbers of the items the parent unit's file holds (up to its recorded size)."""
    path = ctx.paths.unit_file(parent.endpoint, ctx.cp.state.repos[parent.repo], None)
    if not path.exists():
        return []
    records = read_data(path, ctx.cp.unit(parent).byte_offset)
    numbers = {data.get("number") for data in records if isinstance(data, dict)}
    return sorted(n for n in numbers if isinstance(n, int) and not isinstance(n, bool) and n > 0)
