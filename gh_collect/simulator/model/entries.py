"""The records of a repo's activity lists (issue 14): ``Entry`` and the sorted lists of them.

Issue comments, review comments, commits and releases are kept like pulls and issues
(``records.Item``): the few fields ordering and filtering need, plus the object's JSON as
fragments, drawn the first time the object is served. ``EntryLists`` holds one repo's four
lists in their base order and the other orderings a query asks for, and applies churn's
changes to all of them in place (no re-sort per edit). What the lists hold is drawn in
``activity_draw``; ``activity.RepoActivity`` ties the two together.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gh_collect.simulator.model.records import API_PLACEHOLDER_BYTES
from gh_collect.simulator.model.shapes import _Encoder

KINDS = ("issue_comments", "review_comments", "commits", "releases")
"""The activity lists, named as the endpoints that serve them."""
COMMENT_KINDS = ("issue_comments", "review_comments")
SORTS = ("created", "updated")

Renderer = Callable[["Entry"], tuple[bytes, ...]]
EntryKey = tuple[str, int]


@dataclass(slots=True)
class Entry:
    """One issue comment, review comment, commit or release. Never changed once made (an
    edit makes a new one) but for ``encoded``, set once when first rendered; not frozen
    because a frozen dataclass costs a microsecond more to make, and a big org makes
    millions.

    ``id``: the comment's or release's id; a commit's place in the branch's history (its
    ``seq``: ties in committer date keep that order). ``number``: the issue or pull a
    comment is on, the pull a commit merged or the issue it fixed (0: none). ``created_at``
    and ``updated_at``: a commit's committer date, both. ``key``: a commit's sha, a
    release's tag. ``note``: what kind of commit (``initial``, ``merge``, ``head``, ``squash``,
    ``fix``, ``push``); a release's flags (``pre``: a prerelease, ``noupd``: served without
    ``updated_at``). ``link``: 1 for an issue comment on a pull; a review comment's
    ``in_reply_to_id``; a merge commit's second parent as ``seq + 1``; the seconds from a
    release's creation to its publication (0: none)."""

    id: int
    number: int
    created_at: str
    updated_at: str
    key: str = ""
    note: str = ""
    link: int = 0
    encoded: tuple[bytes, ...] | None = None
    render: Renderer | None = field(default=None, repr=False, compare=False)

    @property
    def fragments(self) -> tuple[bytes, ...]:
        """The object's JSON fragments: ``encoded``, or drawn once by ``render`` and kept
        (the same tuple every time: the server's renderers cache by its identity)."""
        encoded = self.encoded
        if encoded is None:
            if self.render is None:
                raise ValueError(f"entry {self.id} has neither encoded fragments nor a renderer")
            encoded = self.render(self)
        return encoded

    def to_bytes(self, base_url: str) -> bytes:
        """The object as served to a request whose API base is ``base_url``."""
        return b"".join(self.fragments).replace(API_PLACEHOLDER_BYTES, base_url.encode())

    def to_json(self, base_url: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.to_bytes(base_url))
        return loaded


class ItemCore(Protocol):
    """What activity is drawn from: generation's core of a pull or issue (``_Core``)."""

    @property
    def number(self) -> int: ...
    @property
    def created(self) -> int: ...
    @property
    def updated(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    @property
    def comments(self) -> int: ...
    @property
    def is_pull(self) -> bool: ...
    @property
    def pull_id(self) -> int | None: ...


class ActivityKit(Protocol):
    """What drawing activity needs from the generator (``_Generator`` is one): its lock and
    encoder, users and body pools. Activity never draws from the generator's own stream."""

    lock: Any
    enc: _Encoder
    org: str
    now: int
    logins: list[str]
    short_bodies: list[str]
    long_bodies: list[str]

    def _user(self, login: str) -> str: ...
    def _user_object(self, login: str, kind: str | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ActivitySource:
    """One repo as generation made it: what its activity is drawn from, whenever that is.
    ``cores`` are its pulls and issues as generated (edits never reach them), so activity
    drawn after an edit is the activity drawn before it."""

    seed: int
    repo_id: int
    index: int
    name: str  # the current name: the one in API URLs
    role: str | None
    created: int
    cores: tuple[ItemCore, ...]
    edges: tuple[int, ...] = ()  # pushes at exactly these times: a window's bounds, to test


def sort_key(sort: str) -> Callable[[Entry], EntryKey]:
    """Ascending order for ``sort``: by creation (a commit: committer date) or last update,
    then id (a commit: its place in history)."""
    if sort == "updated":
        return lambda entry: (entry.updated_at, entry.id)
    return lambda entry: (entry.created_at, entry.id)


class EntryLists:
    """One repo's four lists, each ascending by (``created_at``, ``id``), plus the other
    orderings asked for so far, kept sorted through every change."""

    def __init__(self, base: dict[str, tuple[Entry, ...]]) -> None:
        self.base = base
        self._orders: dict[tuple[str, str], tuple[Entry, ...]] = {}
        self._by_number: dict[str, dict[int, list[Entry]]] = {}
        self._by_id: dict[str, dict[int, Entry]] = {}

    def ordered(self, kind: str, sort: str) -> tuple[Entry, ...]:
        """``kind`` ascending by ``sort`` (``sort_key``), sorted once, then kept."""
        if sort == "created":
            return self.base[kind]
        cached = self._orders.get((kind, sort))
        if cached is None:
            cached = tuple(sorted(self.base[kind], key=sort_key(sort)))
            self._orders[(kind, sort)] = cached
        return cached

    def on(self, kind: str, number: int) -> list[Entry]:
        """The entries of ``kind`` on issue or pull ``number``, ascending by id."""
        index = self._by_number.get(kind)
        if index is None:
            index = {}
            for entry in self.base[kind]:
                index.setdefault(entry.number, []).append(entry)
            self._by_number[kind] = index
        return index.get(number, [])

    def find(self, kind: str, ident: int) -> Entry | None:
        index = self._by_id.get(kind)
        if index is None:
            index = self._by_id[kind] = {entry.id: entry for entry in self.base[kind]}
        return index.get(ident)

    def add(self, kind: str, entry: Entry) -> None:
        """A new entry (churn): in every ordering at its place."""
        self._replace(kind, None, entry)

    def replace(self, kind: str, old: Entry, new: Entry) -> None:
        """An edit: ``old`` leaves every ordering, ``new`` (same id) takes its place."""
        self._replace(kind, old, new)

    def _replace(self, kind: str, old: Entry | None, new: Entry) -> None:
        self.base[kind] = _moved(self.base[kind], old, new, sort_key("created"))
        for cached_kind, sort in list(self._orders):
            if cached_kind == kind:
                order = self._orders[(kind, sort)]
                self._orders[(kind, sort)] = _moved(order, old, new, sort_key(sort))
        self._by_number.pop(kind, None)
        self._by_id.pop(kind, None)


def _moved(
    order: tuple[Entry, ...], old: Entry | None, new: Entry, key: Callable[[Entry], EntryKey]
) -> tuple[Entry, ...]:
    """``order`` (ascending by ``key``) without ``old`` and with ``new`` at its place. New
    entries are the newest almost always: appending is the common case."""
    items = list(order)
    if old is not None:
        del items[bisect.bisect_left(items, key(old), key=key)]
    if not items or key(items[-1]) <= key(new):
        items.append(new)
    else:
        bisect.insort(items, new, key=key)
    return tuple(items)
