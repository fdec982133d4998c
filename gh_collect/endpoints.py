"""The endpoints a phase collects, declared as data: a new endpoint is one entry here.

Both lists are read oldest-created first (``sort=created&direction=asc``): new activity appends
at the end instead of reshuffling pages under a resumed run (``sort=updated`` can skip items,
google/go-github#566), and once a page holds an item created after the window, every later
page does too, so the walk stops there. ``issues`` also narrows server-side with ``since``;
``pulls`` has no ``since`` (github-api.md), so its window is applied to what we read.

Timestamps come from the server: one that cannot be parsed makes the item "unknown" (kept:
losing data is worse than one extra row), and one without a timezone (``2025-03-01T10:00:00``)
is read as UTC, the zone GitHub always serves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from gh_collect.pagination import PER_PAGE

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Window:
    """Items created before ``end`` and updated on or after ``start`` (UTC)."""

    start: datetime
    end: datetime

    def contains(self, item: Mapping[str, Any]) -> bool:
        created, updated = _timestamp(item, "created_at"), _timestamp(item, "updated_at")
        if created is None or updated is None:
            return True  # keep what we cannot judge: losing data is worse than one extra row
        return created < self.end and updated >= self.start

    def is_past(self, item: Mapping[str, Any]) -> bool:
        created = _timestamp(item, "created_at")
        return created is not None and created >= self.end

    @property
    def since(self) -> str:
        return self.start.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    path: str  # formatted with the repo's full name
    params: Mapping[str, str | int] = field(default_factory=dict)
    uses_since: bool = False
    skip: Callable[[Mapping[str, Any]], bool] = lambda _item: False

    def first_request(self, full_name: str, window: Window) -> tuple[str, dict[str, str | int]]:
        params: dict[str, str | int] = {**self.params, "per_page": PER_PAGE}
        if self.uses_since:
            params["since"] = window.since
        owner, _, name = full_name.partition("/")
        return self.path.format(full_name=f"{path_segment(owner)}/{path_segment(name)}"), params

    def select(self, items: list[JsonObject], window: Window) -> tuple[list[JsonObject], bool]:
        """The items this dataset keeps, and whether the walk can stop after this page."""
        kept = [item for item in items if not self.skip(item) and window.contains(item)]
        return kept, any(window.is_past(item) for item in items)


def path_segment(value: str) -> str:
    """One URL path segment for a name the server sent, percent-encoded so that neither a
    "/" or NUL nor a dot-segment (``.``, ``..``, which URL normalisation removes: httpx
    sends ``/repos/o/../pulls`` as ``/repos/pulls``) can change the resource asked for."""
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded.strip(".") == "" else encoded


def _is_pull_request(item: Mapping[str, Any]) -> bool:
    return "pull_request" in item


_OLDEST_FIRST = {"state": "all", "sort": "created", "direction": "asc"}

ENDPOINTS: dict[str, EndpointSpec] = {
    "pulls": EndpointSpec(name="pulls", path="/repos/{full_name}/pulls", params=_OLDEST_FIRST),
    "issues": EndpointSpec(
        name="issues",
        path="/repos/{full_name}/issues",
        params=_OLDEST_FIRST,
        uses_since=True,
        skip=_is_pull_request,
    ),
}


def _timestamp(item: Mapping[str, Any], key: str) -> datetime | None:
    value = item.get(key)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
