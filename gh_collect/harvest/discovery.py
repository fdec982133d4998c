"""The discovery stage of a run: the listing walked page by page, each page checkpointed.

Each page's repos are appended to ``repos.partial.jsonl`` and counted by the checkpoint in
one step (``DiscoveryProgress``), so a discovery stopped by the quota, a signal or a crash
continues from its next page. When the walk is done its repos become ``repos.jsonl`` and the
checkpoint's repo list (``CheckpointManager.update_repos``); an unchanged listing (every
page as stored, on a refresh) leaves both as they are.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

from gh_collect.durable.checkpoint import DiscoveryProgress
from gh_collect.durable.envelope import envelope_line, now_iso
from gh_collect.durable.storage import JsonlSink, RawStore, write_lines_atomic
from gh_collect.endpoints import JsonObject
from gh_collect.github.client import GitHubClient
from gh_collect.harvest.context import DISCOVERY, RunContext
from gh_collect.harvest.listing import ListingPosition, RepoListing, read_listing

__all__ = ["discover"]


async def discover(ctx: RunContext, client: GitHubClient) -> bool:
    """Walk the listing to its end; True if the checkpoint's repo list was replaced."""
    cp = ctx.cp
    cp.set_current_phase(DISCOVERY)
    ctx.reporter.info(f"discovering repos of {ctx.config.target.org}")
    saved = cp.state.discovery or DiscoveryProgress(conditional=cp.state.refreshes > 0)
    position = ListingPosition(**saved.model_dump(exclude={"byte_offset"}))
    listing = RepoListing(client, ctx.config.target, ctx.validators, position)
    pages = _LazySink(ctx.store, ctx.paths.discovery_pages, saved.byte_offset)
    try:
        while (page := await listing.next_page()) is not None:
            fetched_at = now_iso()
            lines = (
                envelope_line("repos", r.fields["full_name"], page.number, fetched_at, r.text)
                for r in page.repos
            )
            pages.append(b"".join(lines))
            _record(ctx, listing.position, pages.offset, pages=1)
            await cp.maybe_save_async()
    finally:  # a stop mid-page: the position as of the last page (and org or user)
        _record(ctx, listing.position, pages.offset)
        pages.release()
    adopted = not listing.unchanged  # unchanged: every page as stored
    if adopted:
        await _adopt_listing(ctx, pages.offset)
    cp.update_discovery(None)
    cp.end_phase(DISCOVERY)
    await cp.save_async(f"phase end: {DISCOVERY}")  # the partial pages are not needed now
    ctx.paths.discovery_pages.unlink(missing_ok=True)
    return adopted


def _record(ctx: RunContext, position: ListingPosition, offset: int, pages: int = 0) -> None:
    """Where the walk stands, with the bytes and validators it counts: one step."""
    ctx.cp.update_discovery(DiscoveryProgress(**asdict(position), byte_offset=offset), pages=pages)
    ctx.cp.record_validators(ctx.validators.offset)


async def _adopt_listing(ctx: RunContext, offset: int) -> None:
    """The walk is done: its repos become repos.jsonl (written, fsyncs and all, off the
    event loop) and the checkpoint's repo list."""
    lines, repos = read_listing(ctx.paths.discovery_pages, offset)
    _report_vanished(ctx, repos)
    await asyncio.to_thread(write_lines_atomic, ctx.paths.repos_file, lines)
    ctx.cp.update_repos(repos)
    ctx.reporter.info(f"discovered {len(repos)} repos", repos=len(repos))


def _report_vanished(ctx: RunContext, repos: list[JsonObject]) -> None:
    listed = {repo["full_name"] for repo in repos}
    for name in ctx.cp.state.repos:
        if name not in listed:
            ctx.reporter.warning(f"{name} is no longer listed; its data is kept", repo=name)


class _LazySink:
    """A raw file opened (cut back to ``offset``) only once there is something to keep in it
    or it exists: a discovery stopped before its first repo leaves no empty file behind."""

    def __init__(self, store: RawStore, path: Path, offset: int) -> None:
        self.store, self.path, self.offset = store, path, offset
        self._sink: JsonlSink | None = store.open(path, offset) if offset or path.exists() else None

    def append(self, data: bytes) -> None:
        if data and self._sink is None:
            self._sink = self.store.open(self.path, self.offset)
        if self._sink is not None:
            self.offset = self._sink.append(data)

    def release(self) -> None:
        if self._sink is not None:
            self.store.release(self.path)
