"""Pagination: ``_Page`` (by page number or by cursor) and Link headers as GitHub writes them.

Links keep the request's own query (minus the position) and use the ``/repositories/{id}``
form for repo lists, as GitHub does; a client must follow them verbatim.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote, urlencode

from multidict import MultiDictProxy

from gh_collect.simulator.model import Selection, decode_cursor, position_after, position_before
from gh_collect.simulator.server.rendering import _Answer, _error, _Reply
from gh_collect.simulator.server.routes import _Call

T = TypeVar("T")


@dataclass(frozen=True)
class _Page:
    """One page of a list: a window [start, end) in traversal order (ascending storage walked
    backwards when descending), plus how its Link header is written."""

    start: int
    end: int
    total: int
    descending: bool
    per_page: int
    number: int | None

    @classmethod
    def by_number(cls, call: _Call, total: int, descending: bool) -> _Page:
        per_page = _per_page(call.query)
        number = max(1, _int(call.query.get("page"), 1))
        start = (number - 1) * per_page
        return cls(start, start + per_page, total, descending, per_page, number)

    @classmethod
    def by_cursor(cls, call: _Call, selection: Selection, descending: bool) -> _Page:
        per_page = _per_page(call.query)
        total = len(selection)
        after, before = call.query.get("after"), call.query.get("before")
        try:
            if after:
                start = position_after(selection.keys, decode_cursor(after), descending)
                return cls(start, start + per_page, total, descending, per_page, None)
            if before:
                end = position_before(selection.keys, decode_cursor(before), descending)
                return cls(max(0, end - per_page), end, total, descending, per_page, None)
        except ValueError:
            raise _Answer(_error(422, "Invalid cursor value")) from None
        page = cls.by_number(call, total, descending)
        return cls(page.start, page.end, total, descending, per_page, None)

    def take(self, ascending: Sequence[T]) -> list[T]:
        """This page's elements of a list stored ascending, in traversal order."""
        n = len(ascending)
        start, end = min(self.start, n), min(self.end, n)
        if not self.descending:
            return list(ascending[start:end])
        return list(reversed(ascending[n - end : n - start]))

    def links(self, call: _Call, path: str, cursor: Callable[[str], str]) -> list[tuple[str, str]]:
        """(rel, url) pairs in GitHub's order; empty when everything fits on one page."""
        if self.number is None:
            return self._cursor_links(call, path, cursor)
        last = max(1, math.ceil(self.total / self.per_page))
        if self.number == 1 and last == 1:
            return []
        rels: list[tuple[str, int]] = []
        if self.number > 1:
            rels.append(("prev", self.number - 1))
        if self.number < last:
            rels += [("next", self.number + 1), ("last", last)]
        if self.number > 1:
            rels.append(("first", 1))
        return [(rel, _link_url(call, path, "page", str(n))) for rel, n in rels]

    def _cursor_links(
        self, call: _Call, path: str, cursor: Callable[[str], str]
    ) -> list[tuple[str, str]]:
        if min(self.end, self.total) <= self.start:
            return []
        links: list[tuple[str, str]] = []
        if self.start > 0:
            links.append(("prev", _link_url(call, path, "before", cursor("prev"))))
        if self.end < self.total:
            links.append(("next", _link_url(call, path, "after", cursor("next"))))
        return links


def _link_url(call: _Call, path: str, name: str, value: str) -> str:
    """The request's own query, minus any pagination position, plus the new one."""
    kept = [(k, v) for k, v in call.query.items() if k not in ("page", "after", "before")]
    query = urlencode([*kept, (name, value)], quote_via=quote, safe=":,")
    return f"{call.base}{path}?{query}"


def _add_link(reply: _Reply, links: Iterable[tuple[str, str]]) -> None:
    header = ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links)
    if header:
        reply.headers["Link"] = header


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _per_page(query: MultiDictProxy[str]) -> int:
    """GitHub's rule: 30 by default, at most 100."""
    value = _int(query.get("per_page"), 30)
    return 30 if value < 1 else min(value, 100)
