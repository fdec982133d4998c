"""The raw envelope: one JSON line per record, written and read here and nowhere else.

Every raw line is ``{"source", "endpoint", "repo", "page", "fetched_at", "data"}`` with
``data`` the object exactly as the server sent it. This module writes every envelope with
``data`` LAST (``envelope`` builds the dict in that order, ``envelope_line`` splices JSON
text in that place), and the fast read path (``parse_envelope``) counts on that promise: it
slices ``data``'s source text out of the line instead of re-serialising it. It still checks
that the line has the promised shape and walks the object key by key when it has not (a line
written by hand, or by another tool), so a broken promise costs speed, never a wrong value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gh_collect import codec

__all__ = [
    "SOURCE",
    "EnvelopeError",
    "encode_lines",
    "envelope",
    "envelope_line",
    "now_iso",
    "parse_envelope",
    "read_data",
    "read_envelopes",
    "read_lines",
]


class EnvelopeError(ValueError):
    """A raw line that is JSON but not an envelope object."""


SOURCE = "github_rest"


def envelope(
    endpoint: str, repo: str, page: int, data: Any, fetched_at: str, source: str = SOURCE
) -> dict[str, Any]:
    """One record's envelope, ``data`` last (the module's promise)."""
    return {
        "source": source,
        "endpoint": endpoint,
        "repo": repo,
        "page": page,
        "fetched_at": fetched_at,
        "data": data,
    }


def envelope_line(endpoint: str, repo: str, page: int, fetched_at: str, data_text: bytes) -> bytes:
    """The line ``encode_lines`` writes for an object already held as JSON text, unparsed."""
    head = codec.dumps_line(envelope(endpoint, repo, page, None, fetched_at))
    return head[: -len(_NULL_DATA_END)] + data_text + b"}\n"


_NULL_DATA_END = b"null}\n"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def encode_lines(records: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(map(codec.dumps_line, records))


_WS = re.compile(r"[ \t\n\r]*")
# The C scanners behind json.loads; typeshed doesn't declare them.
_scan_value: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_DATA_KEY = b'"data":'


def parse_envelope(line: bytes) -> tuple[dict[str, Any], bytes | None]:
    """The envelope's fields and the exact UTF-8 source text of its ``data`` value.

    Keeping ``data`` byte for byte as the collector stored it spares a ``json.dumps`` per
    record (as costly as the parse) and keeps the raw column compact UTF-8. Raises
    UnicodeDecodeError, json.JSONDecodeError or EnvelopeError (all ValueErrors).
    """
    fields = codec.loads(line)
    if not isinstance(fields, dict):
        raise EnvelopeError(f"the envelope is a JSON {type(fields).__name__}, not an object")
    if "data" not in fields:
        return fields, None
    return fields, _data_text(line, fields)


def _data_text(line: bytes, fields: dict[str, Any]) -> bytes:
    """Slice ``data`` out of the line; the fast path covers the collector's layout.

    In valid JSON the bytes ``"data":`` can only be a key (inside a string the closing quote
    would be escaped). When ``data`` is the last key, that key appears once in the line, and
    the text before it opens no container but the envelope (one ``{``, no ``[``), the match
    is the top-level key and its value runs to the envelope's closing brace. Anything else
    (nested or repeated ``data`` keys, braces inside earlier strings) takes the exact but
    slower walk over the text.
    """
    if list(fields)[-1] == "data":
        start = line.find(_DATA_KEY)
        end = start + len(_DATA_KEY)
        head = line[:start]
        if (
            start >= 0
            and head.count(b"{") == 1
            and b"[" not in head
            and line.find(_DATA_KEY, end) < 0
        ):
            body = line.rstrip()
            return body[end : len(body) - 1].strip()
    _, raw = _walk_object(line.decode("utf-8"))
    return (raw or "null").encode("utf-8")


def _walk_object(text: str) -> tuple[dict[str, Any], str | None]:
    """Walk a valid top-level object key by key, keeping the source text of ``data``."""
    fields: dict[str, Any] = {}
    raw: str | None = None
    idx = _skip(text, _skip(text, 0) + 1)  # past "{"
    while idx < len(text) and text[idx] == '"':
        key, idx = _scanstring(text, idx + 1)
        start = _skip(text, _skip(text, idx) + 1)  # past ":"
        fields[key], idx = _scan_value(text, start)
        if key == "data":
            raw = text[start:idx]
        idx = _skip(text, _skip(text, idx) + 1)  # past "," (or the final "}")
    return fields, raw


def _skip(text: str, idx: int) -> int:
    match = _WS.match(text, idx)
    return match.end() if match else idx


def read_lines(path: Path, limit: int | None = None) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Each line of a raw file (its first ``limit`` bytes: what a checkpoint counts), with
    its envelope parsed; streamed, so a large file is never held whole."""
    remaining = limit
    with path.open("rb") as handle:
        for line in handle:
            if remaining is not None:
                if remaining <= 0:
                    return
                line = line[:remaining]  # offsets fall on line ends: a cut line is a bad file
                remaining -= len(line)
            if line.strip():
                yield line, codec.loads(line)


def read_envelopes(path: Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The envelopes of a raw file (see ``read_lines``)."""
    for _line, fields in read_lines(path, limit):
        yield fields


def read_data(path: Path, limit: int | None = None) -> Iterator[Any]:
    """The ``data`` of each envelope of a raw file, as the server sent it."""
    for fields in read_envelopes(path, limit):
        yield fields["data"]
