"""The records the server slices: repos, their items, and the constants every part shares.

An ``Item`` keeps the few fields sorting and filtering need, plus its JSON as pre-encoded
fragments (see ``shapes._Encoder``), rendered the first time the object is served: a
ten-year history holds far more objects than any harvest of one year reads, and generating
only what orders and filters them keeps a big org's generation to seconds. Serving a page
never re-encodes anything. Time helpers live here too: every timestamp in the model is
GitHub's second-precision UTC string.
"""

from __future__ import annotations

import bisect
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gh_collect.simulator.model.activity import RepoActivity

API_PLACEHOLDER = "http://api.gh-simulator.invalid"
API_PLACEHOLDER_BYTES = API_PLACEHOLDER.encode()
WEB = "https://github.com"
DATA_START = "2022-01-01T00:00:00Z"
YEAR_SECONDS = 31_557_600  # 365.25 days

SCENARIO_REPOS: dict[str, str] = {
    "empty": "empty-repo",
    "renamed": "renamed-repo",
    "vanished": "vanished-repo",
    "hundred": "hundred-repo",
    "two_hundred": "two-hundred-repo",
    "fork": "fork-repo",
    "archived": "archived-repo",
}
RENAMED_TO = "renamed-repo-moved"
"""The renamed repo's current name: served by ``/repositories/{id}`` and ``/repos/{org}/<this>``."""

MIN_REPOS_FOR_SCENARIOS = 8
ENDPOINTS = ("pulls", "issues", "issue_comments", "review_comments", "commits", "releases")
"""Every endpoint the simulator serves a list for and keeps a ground truth of."""
DEFAULT_ENDPOINTS = ("pulls", "issues")
"""What ground truth covers when not told: what a default config harvests."""

SortKey = tuple[str | int, int]

# ---------------------------------------------------------------------------------------------
# time helpers


def parse_time(text: str) -> int:
    """ISO 8601 (``Z`` or offset, date-only allowed) to UTC epoch seconds; ValueError if bad."""
    value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def iso(ts: int) -> str:
    """GitHub's timestamp format: second precision, UTC, ``Z``. The date part is formatted
    once per day and the time of day looked up: generation formats two stamps for each of
    hundreds of thousands of items, and a repo's activity one or two per comment."""
    day, second = divmod(int(ts), 86_400)
    return _iso_day(day) + _times_of_day()[second]


@functools.lru_cache(maxsize=16_384)
def _iso_day(day: int) -> str:
    return time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))


@functools.cache
def _times_of_day() -> tuple[str, ...]:
    """``HH:MM:SSZ`` for every second of a day (built once, on first use)."""
    return tuple(f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}Z" for s in range(86_400))


def year_start(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp())


# ---------------------------------------------------------------------------------------------
# the data


@dataclass(frozen=True, slots=True)
class Item:
    """One pull, or one entry of the issues list, with what sorting and filtering need."""

    id: int
    number: int
    state: str
    created_at: str
    updated_at: str
    comments: int
    is_pull: bool
    encoded: tuple[bytes, ...] | None = None
    render: Callable[[], tuple[bytes, ...]] | None = field(default=None, repr=False, compare=False)

    @property
    def fragments(self) -> tuple[bytes, ...]:
        """The object's JSON fragments: ``encoded``, or rendered once by ``render`` and kept
        (the same tuple every time: the server's renderers cache by its identity)."""
        encoded = self.encoded
        if encoded is None:
            if self.render is None:
                raise ValueError(f"item {self.id} has neither encoded fragments nor a renderer")
            encoded = self.render()
            object.__setattr__(self, "encoded", encoded)
        return encoded

    @property
    def long_running(self) -> int:
        return parse_time(self.updated_at) - parse_time(self.created_at)

    def to_bytes(self, base_url: str) -> bytes:
        """The object as served to a request whose API base is ``base_url``."""
        return b"".join(self.fragments).replace(API_PLACEHOLDER_BYTES, base_url.encode())

    def to_json(self, base_url: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.to_bytes(base_url))
        return loaded


@dataclass(frozen=True)
class Selection:
    """Items matching one list query, ascending by (sort key, id); keys for cursor bisects."""

    items: tuple[Item, ...]
    keys: tuple[SortKey, ...]

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class RepoData:
    """A repo: its discovery listing (old name if renamed) and its current, served form."""

    index: int
    id: int
    owner: str
    name: str
    current_name: str
    role: str | None
    fork: bool
    archived: bool
    private: bool
    created_at: str
    updated_at: str
    pushed_at: str | None
    default_branch: str
    listing: tuple[bytes, ...]
    current: tuple[bytes, ...]
    pulls: tuple[Item, ...]
    issues: tuple[Item, ...]
    activity: RepoActivity | None = field(default=None, repr=False, compare=False)
    """Comments, commits and releases (``activity.RepoActivity``), drawn on first use; None
    for a repo built by hand (tests): its activity lists are empty."""
    _orders: dict[tuple[str, str], tuple[Item, ...]] = field(default_factory=dict, repr=False)

    @property
    def full_name(self) -> str:
        """As discovery lists it (the old name, for the renamed repo)."""
        return f"{self.owner}/{self.name}"

    @property
    def vanished(self) -> bool:
        return self.role == "vanished"

    @property
    def renamed(self) -> bool:
        return self.role == "renamed"

    def select(self, kind: str, state: str, sort: str, since: str | None) -> Selection:
        """Items of ``kind`` matching ``state``/``since``, ascending by ``sort`` then id."""
        ordered = self._ordered(kind, sort)
        key = SORT_KEYS[sort]
        chosen = tuple(
            item
            for item in ordered
            if (state == "all" or item.state == state)
            and (since is None or item.updated_at >= since)
        )
        return Selection(chosen, tuple((key(item), item.id) for item in chosen))

    def replace_item(self, kind: str, index: int, new: Item) -> None:
        """Item ``index`` of ``kind`` becomes ``new`` (an edit: same id). Cached orderings are
        updated in place, not dropped: a repo edited every few ms is not re-sorted each time."""
        source = self.pulls if kind == "pulls" else self.issues
        old = source[index]
        changed = (*source[:index], new, *source[index + 1 :])
        if kind == "pulls":
            self.pulls = changed
        else:
            self.issues = changed
        for (cached_kind, sort), order in list(self._orders.items()):
            if cached_kind == kind:
                self._orders[(kind, sort)] = _reordered(order, old, new, SORT_KEYS[sort])

    def _ordered(self, kind: str, sort: str) -> tuple[Item, ...]:
        """Sorted once per (kind, sort): later queries only filter, never sort."""
        cached = self._orders.get((kind, sort))
        if cached is None:
            key = SORT_KEYS[sort]
            source = self.pulls if kind == "pulls" else self.issues
            cached = tuple(sorted(source, key=lambda item: (key(item), item.id)))
            self._orders[(kind, sort)] = cached
        return cached


SORT_KEYS: dict[str, Callable[[Item], str | int]] = {
    "created": lambda item: item.created_at,
    "updated": lambda item: item.updated_at,
    "popularity": lambda item: item.comments,
    "comments": lambda item: item.comments,
    "long-running": lambda item: item.long_running,
}


def _reordered(
    order: tuple[Item, ...], old: Item, new: Item, key: Callable[[Item], str | int]
) -> tuple[Item, ...]:
    """``order`` (ascending by key, then id) with ``old`` taken out and ``new`` put in place."""

    def full(item: Item) -> SortKey:
        return (key(item), item.id)

    items = list(order)
    del items[bisect.bisect_left(items, full(old), key=full)]
    bisect.insort(items, new, key=full)
    return tuple(items)


def _created_key(repo: RepoData) -> tuple[str, int]:
    """The model keeps repos newest first by this key, as ``generate`` builds them."""
    return (repo.created_at, repo.id)
