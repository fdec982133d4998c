"""A repo's activity beyond pulls and issues (issue 14): its issue comments, review
comments, default-branch commits and releases, as the repo-wide lists serve them.

Drawn the first time anything asks (a list request, ground truth, a detail route), from
generation's item cores and streams of the repo's own (``activity_draw``, then
``activity_render`` per object): the same whenever that is, and a big org's generation pays
nothing for it. Churn's changes are queued until then and applied in order, so what is
served is always "as drawn, plus every change".
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from functools import partial

from gh_collect.simulator.model.activity_draw import draw_base, first_id, next_tag, touched_paths
from gh_collect.simulator.model.activity_render import RENDER
from gh_collect.simulator.model.activity_shapes import RepoUrls
from gh_collect.simulator.model.entries import (
    COMMENT_KINDS,
    KINDS,
    ActivityKit,
    ActivitySource,
    Entry,
    EntryLists,
    Renderer,
)

__all__ = ["KINDS", "RepoActivity"]


class RepoActivity:
    """One repo's activity lists, drawn on first use; every method is safe from any thread
    (the generator's lock guards drawing, rendering and changes)."""

    def __init__(self, kit: ActivityKit, source: ActivitySource) -> None:
        self.source = source
        self._kit = kit
        self._urls = RepoUrls(kit.org, source.name, source.repo_id)
        self._lists: EntryLists | None = None
        self._pending: list[Callable[[EntryLists], None]] = []
        self._renders: dict[str, Renderer] = {kind: partial(self._render, kind) for kind in KINDS}
        self._pulls: dict[int, int] | None = None

    @property
    def empty_repository(self) -> bool:
        """A repo with no git data: its commits answer 409, as GitHub's do."""
        return self.source.role == "empty"

    # -- queries -------------------------------------------------------------------------------

    def entries(self, kind: str) -> tuple[Entry, ...]:
        """Every entry of ``kind``, ascending by (``created_at``, ``id``): comments and
        releases in creation (and id) order, commits oldest first (ties in history order)."""
        return self._built().base[kind]

    def select(
        self, kind: str, sort: str = "created", since: str | None = None, until: str | None = None
    ) -> tuple[Entry, ...]:
        """``kind`` ascending by ``sort`` (``created`` or ``updated``, then id), as the
        list routes filter it: a comment is kept when updated at or after ``since``; a
        commit when its committer date is at or after ``since`` and at or before ``until``
        (both inclusive, as GitHub's are)."""
        ordered = self._built().ordered(kind, sort)
        if kind in COMMENT_KINDS:
            if since is None:
                return ordered
            return tuple(entry for entry in ordered if entry.updated_at >= since)
        if since is None and until is None:
            return ordered
        low, high = since or "", until or "\uffff"
        return tuple(entry for entry in ordered if low <= entry.created_at <= high)

    def on(self, kind: str, number: int) -> list[Entry]:
        """The comments of ``kind`` on issue or pull ``number``, ascending by id."""
        return self._built().on(kind, number)

    def find(self, kind: str, ident: int) -> Entry | None:
        return self._built().find(kind, ident)

    @staticmethod
    def changed_files(commit: Entry) -> frozenset[str]:
        """The files a commit changed (``/commits?path=``); the list objects omit them."""
        return touched_paths(commit.key)

    # -- churn's changes -----------------------------------------------------------------------

    def add_comment(self, kind: str, number: int, on_pull: bool, stamp: str) -> None:
        """A new comment of ``kind`` on ``number``, made at ``stamp`` (the newest: its id
        follows every other)."""

        def apply(lists: EntryLists) -> None:
            link = int(on_pull) if kind == "issue_comments" else 0
            ident, render = self._next_id(lists, kind), self._renders[kind]
            lists.add(kind, Entry(ident, number, stamp, stamp, link=link, render=render))

        self._change(apply)

    def edit_comment(self, kind: str, number: int, stamp: str, pick: float) -> None:
        """One of ``number``'s comments of ``kind`` (``pick`` in [0, 1) chooses which) is
        edited at ``stamp``; none if it has none."""

        def apply(lists: EntryLists) -> None:
            mine = lists.on(kind, number)
            if mine:
                old = mine[int(pick * len(mine))]
                lists.replace(kind, old, _edited(old, stamp))

        self._change(apply)

    def add_commit(self, stamp: str) -> None:
        """A push to the default branch, committed at ``stamp``."""
        if self.empty_repository:
            return

        def apply(lists: EntryLists) -> None:
            seq = len(lists.base["commits"])
            rng = random.Random(f"gh-simulator:{self.source.seed}:{self.source.repo_id}:push:{seq}")
            sha = f"{rng.getrandbits(160):040x}"
            entry = Entry(seq, 0, stamp, stamp, sha, "push", render=self._renders["commits"])
            lists.add("commits", entry)

        self._change(apply)

    def add_release(self, stamp: str) -> None:
        """A release published at ``stamp``: the next patch version."""

        def apply(lists: EntryLists) -> None:
            last = lists.base["releases"][-1].key if lists.base["releases"] else None
            tag = next_tag(last, pre=False, roll=1.0)
            ident = self._next_id(lists, "releases")
            entry = Entry(ident, 0, stamp, stamp, tag, render=self._renders["releases"])
            lists.add("releases", entry)

        self._change(apply)

    # -- internals -----------------------------------------------------------------------------

    def _built(self) -> EntryLists:
        """The lists, drawn on first use, with every queued change applied in order."""
        lists = self._lists
        if lists is None:
            with self._kit.lock:
                if self._lists is None:
                    built = EntryLists(dict(draw_base(self.source, self._kit.now, self._renders)))
                    for change in self._pending:
                        change(built)
                    self._pending.clear()
                    self._lists = built
                lists = self._lists
        return lists

    def _change(self, apply: Callable[[EntryLists], None]) -> None:
        with self._kit.lock:
            if self._lists is None:
                self._pending.append(apply)
            else:
                apply(self._lists)

    def _next_id(self, lists: EntryLists, kind: str) -> int:
        """Ids grow with creation; the newest entry is last in the base order."""
        entries = lists.base[kind]
        return entries[-1].id + 1 if entries else first_id(kind, self.source.index)

    def _render(self, kind: str, entry: Entry) -> tuple[bytes, ...]:
        """The rest of ``entry``'s object, from a stream seeded by its id, drawn once (the
        same tuple whichever thread asks: the server's renderers cache by identity)."""
        with self._kit.lock:
            if entry.encoded is None:
                seed = f"gh-simulator:{self.source.seed}:{kind}:{self.source.repo_id}:{entry.id}"
                obj = RENDER[kind](self._kit, self._urls, self, random.Random(seed), entry)
                entry.encoded = self._kit.enc.encode(obj)
            assert entry.encoded is not None
            return entry.encoded

    # ``activity_render.Lookup``: what rendering one object needs from the rest of the repo

    def pull_id(self, number: int) -> int | None:
        if self._pulls is None:
            self._pulls = {c.number: c.pull_id for c in self.source.cores if c.pull_id is not None}
        return self._pulls.get(number)

    def sha(self, seq: int) -> str:
        return self._built().base["commits"][seq].key


def _edited(old: Entry, stamp: str) -> Entry:
    """``old`` edited at ``stamp``: its body amended, ``updated_at`` moved; the rest as is."""
    obj = json.loads(b"".join(old.fragments))
    obj["body"] = f"{obj['body']}\n\n_Edited: see above._"
    obj["updated_at"] = stamp
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return Entry(
        old.id, old.number, old.created_at, stamp, old.key, old.note, old.link, encoded=(raw,)
    )
