"""A fan-out unit's walk: the records of one parent that overflow its batch.

A GraphQL page of pulls holds each pull's first reviews; a pull with more gets a fan-out
unit (``reviews/<number>``), armed by the page that revealed it with a token naming the
pull and the batch's ``endCursor``. Its walk reads the rest with ``PULL_REVIEWS`` (100 at a
time, fewer when GitHub cuts a query short) into its own file, each page appended and
recorded in one synchronous step like any unit's; ``KnownVersions`` over that file drops
reviews it already holds (a refresh re-arms a unit from the new cursor).
"""

from __future__ import annotations

from gh_collect import endpoints
from gh_collect.durable.checkpoint import UnitKey
from gh_collect.durable.validators import KnownVersions
from gh_collect.github.client import GitHubClient
from gh_collect.harvest.context import RunContext
from gh_collect.harvest.passes import append_page
from gh_collect.harvest.walk import PageWalk, paginator_for

__all__ = ["walk_fan_out"]


async def walk_fan_out(ctx: RunContext, client: GitHubClient, key: UnitKey) -> tuple[int, int]:
    """Walk a fan-out unit from its token to the end; complete it. (pages, records)."""
    cp, endpoint = ctx.cp, endpoints.get(key.endpoint)
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
                append_page(ctx, key, sink, step.number, kept)
                cp.record_page(key, page=step.number, records=len(kept),
                               byte_offset=sink.offset, resume_token=step.next_token)  # fmt: skip
                await cp.maybe_save_async()
                pages, records = pages + 1, records + len(kept)
                ctx.reporter.page(key.repo, key.name, len(kept))
        cp.complete_unit(key, byte_offset=sink.offset)
        return pages, records
    finally:
        ctx.store.release(path)
