"""What an endpoint declaration says, and the rules a declaration picks from.

One ``Endpoint`` says everything gh-collect needs to know about one endpoint (in the spirit
of singer-sdk's stream classes): how it is read (transport, path, query), what identifies a
record and its version (``key``, ``version``), which records the year keeps (``window``),
in which order pages come and when a walk may stop (``order``), the parent it fans out from,
and its curated columns. The walk, the checkpoint's units, the dry-run plan, the curated
schema and config validation all read it; nothing else names an endpoint's particulars.

Timestamps come from the server: one that cannot be parsed makes the item "unknown" (kept:
losing data is worse than one extra row), and one without a timezone (``2025-03-01T10:00:00``)
is read as UTC, the zone GitHub always serves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlsplit

from gh_collect.curated.columns import Column
from gh_collect.github.pagination import PER_PAGE, PageRequest

__all__ = [
    "IN_YEAR_CREATED",
    "NEWEST_CREATED_FIRST",
    "NEWEST_UPDATED_FIRST",
    "OLDEST_CREATED_FIRST",
    "SERVER_FILTERED",
    "Endpoint",
    "JsonObject",
    "Order",
    "Window",
    "WindowRule",
    "keep_all",
    "path_segment",
    "timestamp",
]

JsonObject = dict[str, Any]
Transport = Literal["rest", "graphql"]


@dataclass(frozen=True)
class Window:
    """The UTC year ``[start, end)`` a dataset covers."""

    start: datetime
    end: datetime

    @property
    def since(self) -> str:
        return self.start.strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def until(self) -> str:
        return self.end.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class WindowRule:
    """Which records the year keeps: created before its end and updated on or after its start.

    ``created`` and ``updated`` are paths into the object (``commit.committer.date``); naming
    the same field twice keeps the records whose one time is in the year (commits, releases).
    ``since_param`` names the query parameter that narrows the list server-side (``issues``
    has ``since``; ``pulls`` has none, so its window is applied to what is read), and
    ``until_param`` the one that bounds it above (``commits``: inclusive, so a record exactly
    at the year's end is served, and dropped here).
    ``since_tracks_arrival``: whether every record that enters the list (or changes) has its
    ``since`` field at that moment, so a catch-up may read only ``since=<the pass's start>``.
    True where ``since`` compares ``updated_at``; not for commits, whose committer date is
    when a commit was made, not when it reached the default branch (a merged branch brings
    commits dated weeks back): their catch-up re-reads the year, conditionally.
    """

    created: str = "created_at"
    updated: str = "updated_at"
    since_param: str | None = None
    until_param: str | None = None
    since_tracks_arrival: bool = True

    def keeps(self, item: Mapping[str, Any], window: Window) -> bool:
        created, updated = timestamp(item, self.created), timestamp(item, self.updated)
        if created is None or updated is None:
            return True  # keep what we cannot judge: losing data is worse than one extra row
        return created < window.end and updated >= window.start

    def is_past(self, item: Mapping[str, Any], window: Window) -> bool:
        """Created at or after the window's end: no later record can be in the year."""
        created = timestamp(item, self.created)
        return created is not None and created >= window.end

    def is_below(self, item: Mapping[str, Any], floor: datetime) -> bool:
        """Updated before ``floor``: in a newest-updated-first list, so is everything after."""
        updated = timestamp(item, self.updated)
        return updated is not None and updated < floor


IN_YEAR_CREATED = WindowRule(updated="created_at")
"""Records whose creation is in the year (releases: an edit does not bring one into it)."""


@dataclass(frozen=True)
class Order:
    """The order a list is read in, and so when a walk may stop early.

    Oldest-created first (``sort=created&direction=asc``): new activity appends at the end
    instead of reshuffling pages, and once a page holds an item created after the window,
    every later page does too, so the walk stops there. Right for a list the server
    already narrows to the year (``issues?since=``).

    Newest-updated first (``sort=updated&direction=desc``, ``newest_first``): the walk stops
    at the first item updated before its floor (the window's start), so a list with no
    ``since`` (``pulls``) costs the year's pages, not the history's. An item updated during
    the walk jumps to page 1, behind the walk (google/go-github#566), so such a walk is
    followed by catch-up passes from the top (``harvest/passes.py``).
    """

    params: Mapping[str, str | int]
    stops_past_window: bool = True
    newest_first: bool = False
    # Newest-first by ``updated_at``: an edited item moves to the top, so a refresh reads
    # down to where the last walk read through. Newest-first by creation (releases): an
    # edit stays in place, so a refresh reads the year again (conditionally).
    moves_on_update: bool = False

    def matches(self, url: str) -> bool:
        """Whether a saved resume URL was walked in this order (its ``sort``/``direction``)."""
        query = parse_qs(urlsplit(url).query)
        return all(query.get(name) == [str(value)] for name, value in self.params.items())


OLDEST_CREATED_FIRST = Order({"sort": "created", "direction": "asc"})
NEWEST_UPDATED_FIRST = Order(
    {"sort": "updated", "direction": "desc"},
    stops_past_window=False,
    newest_first=True,
    moves_on_update=True,
)
NEWEST_CREATED_FIRST = Order({}, stops_past_window=False, newest_first=True)
"""The server's own order, newest created first, no parameter (releases)."""
SERVER_FILTERED = Order({}, stops_past_window=False)
"""Whatever order the server keeps, every page read: ``since`` and ``until`` already narrow
the list to the year (commits, newest first)."""


def keep_all(_item: Mapping[str, Any]) -> bool:
    return False


def each_item(item: JsonObject) -> list[JsonObject]:
    """A listed item is itself the record (every REST list)."""
    return [item]


@dataclass(frozen=True)
class Endpoint:
    """One endpoint, declared once (see the module docstring)."""

    name: str
    path: str  # formatted with ``full_name`` (each part percent-encoded)
    columns: tuple[Column, ...]
    params: Mapping[str, str | int] = field(default_factory=dict)
    transport: Transport = "rest"
    source: str = "github_rest"  # the envelope's ``source``
    key: str = "id"
    version: str | None = "updated_at"
    window: WindowRule = WindowRule()
    order: Order = OLDEST_CREATED_FIRST
    parent: str | None = None  # the endpoint this one fans out from (one unit per parent)
    # Orders older releases walked this endpoint in: a walk resumed from one of their saved
    # URLs finishes in that order (a 0.1.0 checkpoint killed mid-pulls).
    legacy_orders: tuple[Order, ...] = ()
    # Records the list serves that belong to another endpoint (the issues list serves PRs).
    skip: Callable[[Mapping[str, Any]], bool] = keep_all
    # Answers that mean "this repo has none", not a failure: only where GitHub documents
    # them (commits of an empty repository: 409; issues turned off: 410). Elsewhere the
    # status is an ordinary failure (github-api.md, "Repos and errors").
    empty_statuses: frozenset[int] = frozenset()
    # A repo field (of the listing) that, when false, means the repo has none of these
    # (issues: ``has_issues``): its unit completes with zero records and no request.
    enabled_by: str | None = None
    # What identifies a raw record and its version in ``data`` as served, when it is not
    # the curated key column (GraphQL: ``fullDatabaseId``, the REST ``id`` as a string):
    # what a walk dedupes by. None: ``key`` and ``version``.
    raw_key: str | None = None
    raw_version: str | None = None
    # The records a listed item holds (GraphQL reviews: a pull's nested review nodes) and
    # the window of the listed items, which says where a walk stops (None: ``window``).
    records_in: Callable[[JsonObject], list[JsonObject]] = each_item
    list_window: WindowRule | None = None
    # A listed item whose records overflow its page (a pull with more reviews than the
    # batch holds): the fan-out unit's parent and the token its walk starts from.
    fan_out: Callable[[JsonObject], tuple[str, str] | None] | None = None
    # The same endpoint read through REST where GraphQL is turned off (``github.graphql:
    # false``): ``reviews`` per pull request. Same name, same curated columns.
    rest_fallback: Endpoint | None = None

    def via(self, *, graphql: bool) -> Endpoint:
        """The declaration a run reads: this one, or its REST fallback without GraphQL."""
        if graphql or self.transport != "graphql" or self.rest_fallback is None:
            return self
        return self.rest_fallback

    @property
    def record_key(self) -> str:
        """The field of ``data`` that identifies a raw record."""
        return self.raw_key or self.key

    @property
    def record_version(self) -> str | None:
        """The field of ``data`` a raw record's version is read from (None: none)."""
        return self.raw_version if self.raw_key is not None else self.version

    def turned_off(self, repo: Mapping[str, Any]) -> bool:
        """Whether ``repo``'s listing says it has none of these records (exactly false)."""
        return self.enabled_by is not None and repo.get(self.enabled_by) is False

    def first_request(
        self, full_name: str, window: Window, *, parent: str | None = None
    ) -> PageRequest:
        """The first page's request for ``full_name`` (and, for a fan-out, ``parent``)."""
        params: dict[str, str | int] = {**self.params, **self.order.params, "per_page": PER_PAGE}
        if self.window.since_param is not None:
            params[self.window.since_param] = window.since
        if self.window.until_param is not None:
            params[self.window.until_param] = window.until
        owner, _, name = full_name.partition("/")
        repo = f"{path_segment(owner)}/{path_segment(name)}"
        path = self.path.format(full_name=repo, parent=path_segment(parent or ""))
        return PageRequest(path, params)

    def keep(self, items: list[JsonObject], window: Window) -> list[JsonObject]:
        """The records of a page's items this dataset keeps."""
        return self.keep_records([r for item in items for r in self.records_in(item)], window)

    def keep_records(self, records: list[JsonObject], window: Window) -> list[JsonObject]:
        """The records this dataset keeps (a fan-out's page lists records themselves)."""
        return [r for r in records if not self.skip(r) and self.window.keeps(r, window)]

    def stops(
        self,
        items: list[JsonObject],
        window: Window,
        *,
        order: Order | None = None,
        floor: datetime | None = None,
    ) -> bool:
        """Whether a walk in ``order`` (default: this endpoint's) can stop after a page
        holding ``items``; a newest-first walk stops below ``floor`` (default: the year)."""
        order, rule = order or self.order, self.list_window or self.window
        if order.newest_first:  # the last item is the oldest; out of order, read on (safe)
            return bool(items) and rule.is_below(items[-1], floor or window.start)
        return order.stops_past_window and any(rule.is_past(i, window) for i in items)

    def order_of(self, resume_url: str | None) -> Order:
        """The order a walk resumed from ``resume_url`` goes on in (a legacy one if the URL
        was saved by an older release walking another order)."""
        if resume_url is not None and not self.order.matches(resume_url):
            return next((o for o in self.legacy_orders if o.matches(resume_url)), self.order)
        return self.order

    def select(self, items: list[JsonObject], window: Window) -> tuple[list[JsonObject], bool]:
        """``keep`` and ``stops`` at once."""
        return self.keep(items, window), self.stops(items, window)

    def keeps_record(self, item: Mapping[str, Any]) -> bool:
        """Whether a stored record belongs to this endpoint (the exporter asks)."""
        return not self.skip(item)


def path_segment(value: str) -> str:
    """One URL path segment for a name the server sent, percent-encoded so that neither a
    "/" or NUL nor a dot-segment (``.``, ``..``, which URL normalisation removes: httpx
    sends ``/repos/o/../pulls`` as ``/repos/pulls``) can change the resource asked for."""
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded.strip(".") == "" else encoded


def timestamp(item: Mapping[str, Any], path: str) -> datetime | None:
    """The time at ``path`` (``commit.committer.date``), or None if absent or unreadable."""
    value: object = item
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return _parse_time(value) if isinstance(value, str) else None


@lru_cache(maxsize=8192)
def _parse_time(value: str) -> datetime | None:
    """A record's time is asked for several times per page (keep, stop, catch-up floor):
    parsed once."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
