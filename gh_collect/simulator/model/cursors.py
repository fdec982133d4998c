"""Cursor pagination: opaque ``after``/``before`` values that hold a sort key, not an offset.

GitHub pages big issue lists by cursor; a cursor that encodes the last item's key keeps its
place when items are inserted elsewhere, which is what the insertion tests check.
"""

from __future__ import annotations

import base64
import bisect
import json
from collections.abc import Sequence

from gh_collect.simulator.model.records import SortKey


def encode_cursor(key: SortKey) -> str:
    """Opaque like GitHub's: the last item's sort key, never an offset."""
    raw = json.dumps(["cursor:v2", key[0], key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> SortKey:
    """ValueError for anything this simulator did not issue."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        tag, value, item_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc
    if tag != "cursor:v2" or not isinstance(value, str | int) or not isinstance(item_id, int):
        raise ValueError(f"invalid cursor {cursor!r}")
    return (value, item_id)


def position_after(keys: Sequence[SortKey], cursor: SortKey, descending: bool) -> int:
    """Where items strictly after ``cursor`` start, counted in traversal order (ascending
    ``keys`` walked backwards when ``descending``); a cursor is a key, so the position stays
    right when items are inserted elsewhere."""
    _check_cursor(keys, cursor)
    if descending:
        return len(keys) - bisect.bisect_left(keys, cursor)
    return bisect.bisect_right(keys, cursor)


def position_before(keys: Sequence[SortKey], cursor: SortKey, descending: bool) -> int:
    """Where items strictly before ``cursor`` end, in traversal order."""
    _check_cursor(keys, cursor)
    if descending:
        return len(keys) - bisect.bisect_right(keys, cursor)
    return bisect.bisect_left(keys, cursor)


def _check_cursor(keys: Sequence[SortKey], cursor: SortKey) -> None:
    """A cursor from another sort (string key vs integer key) cannot be compared."""
    if keys and type(keys[0][0]) is not type(cursor[0]):
        raise ValueError("cursor does not belong to this sort order")
