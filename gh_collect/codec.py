"""JSON on the hot path: orjson, with the standard library wherever orjson would differ.

A harvest decodes every page GitHub sends and encodes every record it keeps; with the
standard ``json`` module that was two thirds of a collect's CPU, enough to make a run
CPU-bound at concurrency 8. orjson does both several times faster, but differs from the
standard library in a few corners. Where it refuses, we fall back, so that no page is
refused for what it holds:

* lone UTF-16 surrogates (``"\\ud800"``, broken emoji in user text): orjson refuses them
  both ways; the standard library reads them, and writes them escaped (``ensure_ascii``);
* numbers that overflow a double (``1e400``): orjson refuses them, the standard library
  reads ``inf``.

One corner has no cheap guard: orjson reads an integer beyond 64 bits as a float. GitHub's
ids and counts are 64-bit (its OpenAPI schema says ``int64``), and scanning every body for
long digit runs cost more than parsing it, so we accept that.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps_line", "loads"]


def loads(data: bytes) -> Any:
    """Parse JSON; raises ValueError (or UnicodeDecodeError) if it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # not JSON, or JSON orjson refuses: the standard library decides


def dumps_line(record: Any) -> bytes:
    """One compact UTF-8 JSON line, newline included."""
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # a lone surrogate, or an integer beyond 64 bits
        return json.dumps(record, separators=(",", ":")).encode() + b"\n"
