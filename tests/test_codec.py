"""The hot-path JSON codec: orjson's speed without its refusals or its lossy corners."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gh_collect import codec


@pytest.mark.parametrize(
    "text",
    [
        b'{"id":1,"title":"caf\xc3\xa9 \xf0\x9f\x9a\x80","labels":[],"merged":null}',
        b'{"body":"broken emoji \\ud83d here"}',  # a lone surrogate: orjson refuses it
        b"[1e400]",  # orjson refuses a double overflow
    ],
)
def test_loads_agrees_with_the_standard_library(text: bytes) -> None:
    assert codec.loads(text) == json.loads(text)


@pytest.mark.parametrize("text", [b"", b"<html>", b'{"a":', b"\xff\xfe"])
def test_loads_raises_value_error_on_what_is_not_json(text: bytes) -> None:
    with pytest.raises(ValueError):
        codec.loads(text)


@pytest.mark.parametrize(
    "record",
    [
        {"id": 1, "title": "café 🚀", "nested": {"a": [1, 2.5, None, True]}},
        {"body": "broken emoji \ud83d here"},
    ],
)
def test_dumps_line_round_trips_every_record(record: dict[str, Any]) -> None:
    line = codec.dumps_line(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    line.decode("utf-8")  # always valid UTF-8, whatever the record held
    assert codec.loads(line) == record


def test_dumps_line_is_compact_utf8_like_the_standard_library() -> None:
    record = {"id": 7, "title": "naïve — ok", "url": "https://x/y"}
    expected = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    assert codec.dumps_line(record) == expected
