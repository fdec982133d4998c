"""Page sizes: read a page GitHub cuts short again with fewer items, from the same item.

GitHub answers a list request that takes more than ~10 s with a 502 or 504, and its advice
is a smaller ``per_page`` (github-api.md, "Heavy pages"). Retrying the same request only
repeats the cut, so a walk steps down ``PAGE_SIZES`` (100, 50, 25, 10) and asks again for
the same first item; after a few pages that pass it grows back, so one transient 502 costs
a request or two, not the rest of the walk at 10 a page.

Only ``per_page`` and the position change, so a rewritten request reads exactly the items
the old one would have started with:

- a page-number link (``page=N``, or none: the first page) starts at item
  ``(N - 1) * per_page``; the new size must divide that offset, so the page number stays
  whole (100, 50 and 25 divide what a larger size reaches; at an odd multiple of 25, where
  10 does not, the step goes to 5);
- a cursor link (``after=`` / ``before=``) already names its item: only ``per_page`` changes.

Everything else in the URL stays byte for byte as ``Link`` wrote it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote_plus, urlsplit, urlunsplit

__all__ = [
    "PAGE_SIZES",
    "PageSizer",
    "Position",
    "growth_limit",
    "larger_size",
    "position_of",
    "resized",
    "smaller_size",
]

PAGE_SIZES = (100, 50, 25, 10)  # per_page steps; 10 is the smallest a walk gives up at
GITHUB_DEFAULT_PER_PAGE = 30  # what GitHub serves when a request names no per_page
GROW_AFTER = 2  # pages that pass before a walk tries a larger size again
MAX_GROW_AFTER = 64  # a size that keeps failing is tried again at most this rarely
_CURSORS = ("after", "before")
# The sizes a walk on the ladder can be at: its steps, and 5 where 10 cannot follow 25.
_ON_LADDER = frozenset((*PAGE_SIZES, math.gcd(PAGE_SIZES[-2], PAGE_SIZES[-1])))

Params = Mapping[str, str | int]


@dataclass(frozen=True)
class Position:
    """Where a request reads from: items per page, and the items before its first one
    (None for a cursor, which names its first item itself)."""

    size: int
    offset: int | None


def position_of(url: str, params: Params | None = None) -> Position | None:
    """The position a list request reads from; None if it is not understood (a ``page`` or
    ``per_page`` that is not a positive number, a URL that does not parse): such a request
    is never resized, and fails where it would have failed anyway."""
    in_url = _query(url)
    if in_url is None:
        return None
    query = {**in_url, **{k: str(v) for k, v in (params or {}).items()}}
    size = _positive(query.get("per_page", str(GITHUB_DEFAULT_PER_PAGE)))
    if size is None:
        return None
    if any(query.get(name) for name in _CURSORS):
        return Position(size, None)
    page = _positive(query.get("page", "1"))
    return None if page is None else Position(size, (page - 1) * size)


def smaller_size(position: Position) -> int | None:
    """The next size down that starts at the same item; None at the smallest (10 or less)."""
    below = [size for size in PAGE_SIZES if size < position.size]
    if not below:
        return None
    offset = position.offset
    if offset is None:
        return below[0]
    for size in below:
        if offset % size == 0:
            return size
    fallback = math.gcd(offset, PAGE_SIZES[-1])  # 25 -> 5 at an odd multiple of 25
    return fallback if fallback < position.size else None


def larger_size(position: Position, limit: int) -> int | None:
    """The next size up (at most ``limit``) that starts at the same item, if any."""
    above = [size for size in reversed(PAGE_SIZES) if position.size < size <= limit]
    if not above:
        return None
    offset = position.offset
    return above[0] if offset is None or offset % above[0] == 0 else None


def growth_limit(start: int | None, largest: int) -> int:
    """How large a walk's pages may grow back: ``largest`` for a walk on the ladder (a saved
    shrunk resume token included), else the size it began with (a walk at 3 a page stays)."""
    if start is not None and start in _ON_LADDER:
        return max(start, largest)
    return start or 0


def resized(
    url: str, params: Params | None, position: Position, size: int
) -> tuple[str, dict[str, str | int] | None]:
    """``url`` and ``params`` asking for ``size`` items from the same first item.

    A first request carries its query in ``params`` (changed there); a link carries it in
    its URL (changed there, every other parameter verbatim). Page 1 is asked without
    ``page`` unless the link named it.
    """
    page = None if position.offset is None else position.offset // size + 1
    if params:
        new_params: dict[str, str | int] = {**params, "per_page": size}
        if page is not None:
            new_params.pop("page", None)
            if page > 1:
                new_params["page"] = page
        return url, new_params
    changes: dict[str, str | None] = {"per_page": str(size)}
    if page is not None:
        changes["page"] = str(page) if page > 1 or "page" in (_query(url) or {}) else None
    return _with_query(url, changes), None


class PageSizer:
    """When a walk that shrank may grow again: after ``GROW_AFTER`` pages that passed, and
    twice as many after each grow the server cut again (up to ``MAX_GROW_AFTER``)."""

    def __init__(self) -> None:
        self.streak = 0
        self.needed = GROW_AFTER
        self._grew = False

    def shrunk(self) -> None:
        if self._grew:
            self.needed = min(self.needed * 2, MAX_GROW_AFTER)
        self.streak, self._grew = 0, False

    def passed(self) -> bool:
        """A page passed; True when it is time to try a larger size."""
        self.streak += 1
        return self.streak >= self.needed

    def grew(self) -> None:
        self.streak, self._grew = 0, True


def _query(url: str) -> dict[str, str] | None:
    """The first value of each query parameter; None for a URL that does not parse."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return None
    return {name: values[0] for name, values in parse_qs(query).items()}


def _positive(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value > 0 else None


def _with_query(url: str, changes: Mapping[str, str | None]) -> str:
    """``url`` with the named parameters set (None: removed), every other one verbatim."""
    if not changes:
        return url
    parts = urlsplit(url)
    kept: list[str] = []
    done: set[str] = set()
    for pair in filter(None, parts.query.split("&")):
        name = unquote_plus(pair.partition("=")[0])
        if name not in changes:
            kept.append(pair)
        elif name not in done:
            done.add(name)
            value = changes[name]
            if value is not None:
                kept.append(f"{name}={value}")
    kept += [f"{n}={v}" for n, v in changes.items() if n not in done and v is not None]
    return urlunsplit(parts._replace(query="&".join(kept)))
