"""GraphQL cursor pagination: the ``Paginator`` of a walk over one connection.

A GraphQL list pages with ``first``/``after`` and says where it goes on in the data
(``pageInfo { hasNextPage endCursor }``), not in a ``Link`` header. ``CursorPaginator``
keeps a walk's place the way ``LinkPaginator`` does for REST, behind the same protocol
(``harvest/walk.py``): the request to send now (a ``POST`` of the query and its
variables), the token that resumes there, fewer items when GitHub cuts a query short
(``FirstSizer``: 50, 25, 12, 6...), loop detection on cursors.

The resume token is a small JSON object, opaque to everyone else: the query's operation
name, what identifies its subject (a pull's node id for ``PullReviews``), the cursor and
the size, so a checkpoint resumes the same query at the same item.

An answer is read strictly: data with ``errors`` beside it (GitHub's partial answers to
heavy queries) fails the page with one line, never written in part; a connection that is
not where the query put it is a malformed answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gh_collect.errors import PaginationLoop, RetriableApiError
from gh_collect.github.client import Page
from gh_collect.github.graphql import FirstSizer, GraphQLResult
from gh_collect.github.graphql_cursor import QUERIES, CursorToken, ListQuery
from gh_collect.github.pagination import PageRequest

__all__ = ["CursorPaginator"]


class CursorPaginator:
    """Where one walk over a GraphQL connection stands (see the module docstring)."""

    def __init__(self, url: str, token: CursorToken, *, start_page: int = 1) -> None:
        self._url, self._query = url, QUERIES[token.query]
        self._subject, self._after = dict(token.subject), token.after
        self._sizer = FirstSizer(self._query.largest)
        self._sizer.first = token.first
        self._finished = False
        self._page_number = start_page
        self._seen: set[str | None] = {token.after}
        self.page_info: Mapping[str, Any] = {}

    @classmethod
    def first_page(cls, url: str, query: ListQuery, subject: Mapping[str, Any]) -> CursorPaginator:
        return cls(url, CursorToken(query.name, subject, None, query.largest))

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def page_number(self) -> int:
        return self._page_number

    @property
    def request(self) -> PageRequest:
        query = self._query
        variables = {**self._subject, **query.fixed, query.first_var: self._sizer.first,
                     query.after_var: self._after}  # fmt: skip
        body = {"query": query.text, "variables": variables, "operationName": query.name}
        return PageRequest(self._url, method="POST", body=body)

    @property
    def resume_token(self) -> str | None:
        if self._finished:
            return None
        token = CursorToken(self._query.name, self._subject, self._after, self._sizer.first)
        return token.dumps()

    @property
    def page_size(self) -> int | None:
        return self._sizer.first

    @property
    def shrinkable(self) -> bool:
        return self._sizer.first > 1

    def shrink(self) -> int | None:
        return self._sizer.first if self._sizer.shrink() else None

    def next_token(self, page: Page) -> str | None:
        """The cursor after the page just read (``items`` read its ``pageInfo``)."""
        info = self.page_info
        more, cursor = info.get("hasNextPage"), info.get("endCursor")
        return cursor if more is True and isinstance(cursor, str) else None

    def advance(self, next_token: str | None) -> None:
        if self._finished:
            raise RuntimeError("advance() called on a finished pagination walk")
        if next_token is None:
            self._finished = True
            return
        if next_token in self._seen:
            message = (
                f"pagination loop in {self._query.name}: the server gave back cursor "
                f"{next_token[:40]!r} already walked (page {self._page_number}); stopped"
            )
            raise PaginationLoop(message, url=self._url)
        self._seen.add(next_token)
        self._after = next_token
        self._page_number += 1
        self._sizer.passed()

    def items(self, data: Any, url: str) -> list[dict[str, Any]]:
        """The nodes of the connection a page holds; remembers its ``pageInfo``."""
        where = f"POST {url} ({self._query.name})"
        if not isinstance(data, GraphQLResult):
            raise RetriableApiError(f"malformed GraphQL answer from {where}", url=url)
        if data.errors:
            shown = "; ".join(p.message for p in data.errors[:3])
            raise RetriableApiError(
                f"{where}: partial data with {len(data.errors)} errors ({shown}); the page "
                "was not written; retry later with --retry-failed",
                url=url,
            )
        connection = _at(data.data, self._query.path)
        nodes, info = connection.get("nodes"), connection.get("pageInfo")
        if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
            raise RetriableApiError(f"malformed GraphQL answer from {where}: bad nodes", url=url)
        self.page_info = info if isinstance(info, dict) else {}
        return nodes


def _at(data: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any]:
    """The object at ``path``; an absent or mistyped one is a malformed answer."""
    value: Any = data
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, dict):
        raise RetriableApiError(
            f"malformed GraphQL answer: no object at {'.'.join(path)}; retry later"
        )
    return value
