"""Connections: opaque cursors and the Relay window (``first``/``after``, ``last``/``before``).

A cursor holds the sort key of its item, never an offset (like the REST simulator's cursors,
``model.cursors``), so it keeps its place when items are added elsewhere. It looks like
GitHub's: base64 of ``cursor:v2:`` and the key (GitHub's are ``Y3Vyc29yOnYyOpK5...``). A
cursor names the ordering it came from; one from another ordering, or not from here at
all, is refused as GitHub refuses it (``INVALID_CURSOR_ARGUMENTS``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from gh_collect.simulator.graphql.errors import FieldProblem
from gh_collect.simulator.model import SortKey, position_after, position_before

__all__ = ["Window", "connection", "decode_cursor", "encode_cursor"]

T = TypeVar("T")
_PREFIX = b"cursor:v2:"


def encode_cursor(ordering: str, key: SortKey) -> str:
    raw = _PREFIX + json.dumps([ordering, key[0], key[1]], separators=(",", ":")).encode()
    return base64.b64encode(raw).decode()


def decode_cursor(cursor: str, ordering: str) -> SortKey:
    """The key a cursor of ``ordering`` holds; ``FieldProblem`` for anything else."""
    tag = value = ident = None
    try:
        raw = base64.b64decode(cursor.encode(), validate=True)
        if raw.startswith(_PREFIX):
            tag, value, ident = json.loads(raw.removeprefix(_PREFIX))
    except (binascii.Error, UnicodeError, ValueError, TypeError):
        pass
    if tag != ordering or not isinstance(value, str | int) or not isinstance(ident, int):
        raise FieldProblem(
            f"`{cursor}` does not appear to be a valid cursor.", "INVALID_CURSOR_ARGUMENTS"
        )
    return (value, ident)


@dataclass(frozen=True)
class Window:
    """Items [start, end) in traversal order, of ``total``."""

    start: int
    end: int
    total: int

    @classmethod
    def of(
        cls, keys: Sequence[SortKey], descending: bool, ordering: str, args: Mapping[str, Any]
    ) -> Window:
        """The Relay window: after/before bound it, then first (from the start) or last
        (from the end) cut it."""
        start, end = 0, len(keys)
        if args.get("after") is not None:
            start = _position(position_after, keys, args["after"], ordering, descending)
        if args.get("before") is not None:
            end = _position(position_before, keys, args["before"], ordering, descending)
        end = max(start, end)
        if args.get("first") is not None:
            end = min(end, start + max(0, args["first"]))
        if args.get("last") is not None:
            start = max(start, end - max(0, args["last"]))
        return cls(start, end, len(keys))

    def take(self, ascending: Sequence[T], descending: bool) -> list[T]:
        """This window's elements of a sequence stored ascending, in traversal order."""
        n = len(ascending)
        if not descending:
            return list(ascending[self.start : self.end])
        return list(reversed(ascending[n - self.end : n - self.start]))


def _position(
    find: Callable[[Sequence[SortKey], SortKey, bool], int],
    keys: Sequence[SortKey],
    cursor: str,
    ordering: str,
    descending: bool,
) -> int:
    try:
        return find(keys, decode_cursor(cursor, ordering), descending)
    except ValueError:  # a key of the wrong kind for this ordering
        raise FieldProblem(
            f"`{cursor}` does not appear to be a valid cursor.", "INVALID_CURSOR_ARGUMENTS"
        ) from None


def connection(
    items: Sequence[T],
    keys: Sequence[SortKey],
    *,
    descending: bool,
    ordering: str,
    args: Mapping[str, Any],
    view: Callable[[T], Any],
) -> dict[str, Any]:
    """A connection object (``totalCount``, ``nodes``, ``edges``, ``pageInfo``) over items
    stored ascending by ``keys``; ``view`` makes each item's GraphQL object."""
    window = Window.of(keys, descending, ordering, args)
    chosen = window.take(items, descending)
    cursors = [encode_cursor(ordering, key) for key in window.take(keys, descending)]
    nodes = [view(item) for item in chosen]
    return {
        "totalCount": len(items),
        "nodes": nodes,
        "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)],
        "pageInfo": {
            "hasNextPage": window.end < window.total,
            "hasPreviousPage": window.start > 0,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }
