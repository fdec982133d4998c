"""The curated columns of each endpoint, declared once, and how a raw JSONL line becomes a row.

Every Parquet file is written with ``CURATED_SCHEMA``, the union of the endpoint schemas (see
there for why one file schema serves all endpoints).

Each endpoint has one ``EndpointSchema``: an ordered list of typed ``Column``s, each knowing
where its value sits in the API object. The pyarrow schema is derived from that list, so the
Parquet layout and the extraction can never drift apart. Every row ends with ``raw``: the API
object exactly as the raw file holds it, so nothing the server sent is lost even when a field
has no typed column.

Whatever the server sent, one bad field never costs the record (issue "Nothing lost"):

* per line (``extract``): only the KEY is required. The envelope must be a JSON object whose
  ``data`` is an object with an integer ``id`` in the 64-bit range (the deduplication key);
  otherwise ``FieldError`` and the exporter drops the record from the curated table (counted,
  and still in the raw file). A nested object (``user``, ``head``, ``base``) or ``labels`` of
  the wrong shape gives ``UNTYPED`` for its columns instead of an error;
* per batch (``to_batch``): scalar columns are type-checked with one pass over each column and
  converted by pyarrow in bulk; only when that fails is the column scanned again, and each
  value that cannot be typed (``UNTYPED``, a wrong JSON type, a timestamp without a zone, an
  integer beyond 64 bits) becomes null in its column and is counted under the column's name.
  A clean dataset pays almost nothing for the checks.

The value itself is never lost: ``raw`` keeps the object exactly as sent. Missing or null
fields are plain nulls, not counted: GitHub omits fields freely across API versions.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from gh_collect import codec

Kind = Literal["int", "str", "bool", "timestamp", "labels"]
Getter = Callable[[Mapping[str, Any], Mapping[str, Any]], object]
Row = tuple[object, ...]

TIMESTAMP = pa.timestamp("us", tz="UTC")
_ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "str": pa.string(),
    "bool": pa.bool_(),
    "timestamp": TIMESTAMP,
    "labels": pa.list_(pa.string()),
}
_ALLOWED: dict[str, frozenset[type]] = {
    "int": frozenset({int, type(None)}),
    "str": frozenset({str, type(None)}),
    "bool": frozenset({bool, type(None)}),
    "timestamp": frozenset({str, type(None)}),
    "labels": frozenset({list, type(None)}),
}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Arrow's cast to a zoned timestamp needs one of these at the end; without it, it fails.
_ZONE_SUFFIX = r"(Z|[+-]\d{2}(:?\d{2})?)$"


class FieldError(Exception):
    """A record whose key cannot be read (``extract``): it cannot join the curated table."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field '{field}' {problem}")
        self.field = field
        self.problem = problem


class _Untyped:
    """The marker a getter returns for a value of the wrong shape (``to_batch`` nulls it)."""

    def __repr__(self) -> str:
        return "UNTYPED"


UNTYPED = _Untyped()


@dataclass(frozen=True)
class Column:
    """One typed column: its name, its kind, and where the value comes from (``source``)."""

    name: str
    kind: Kind
    source: str
    get: Getter


@dataclass(frozen=True)
class EndpointSchema:
    """The curated layout of one endpoint; ``raw`` is always the last column."""

    endpoint: str
    columns: tuple[Column, ...]
    drop_pull_requests: bool = False

    @property
    def arrow_schema(self) -> pa.Schema:
        fields = [pa.field(c.name, _ARROW_TYPES[c.kind]) for c in self.columns]
        return pa.schema([*fields, pa.field("raw", pa.string())])

    def extract(self, line: bytes) -> Row | None:
        """The row for one raw JSONL line (``id`` first), or None if the record is not kept.

        Raises ``ValueError`` (``UnicodeDecodeError``, ``json.JSONDecodeError``) for a line
        that is not UTF-8 JSON and ``FieldError`` when the key cannot be read (the envelope
        or ``data`` not an object, ``id`` not a 64-bit integer); other fields never raise.
        """
        envelope, raw = parse_envelope(line)
        data = envelope.get("data")
        if not isinstance(data, dict) or raw is None:
            raise FieldError("data", f"is {_type_name(data)}, expected the API object")
        if self.drop_pull_requests and "pull_request" in data:
            return None  # the issues list also serves PRs; the pulls endpoint holds them
        record_id = data.get("id")
        if type(record_id) is not int or not _INT64_MIN <= record_id <= _INT64_MAX:
            problem = "is missing" if record_id is None else f"is {_describe(record_id)}"
            raise FieldError("id", f"{problem}, expected a 64-bit integer (the key)")
        return (*[column.get(data, envelope) for column in self.columns], raw)

    def to_batch(self, rows: Sequence[Row], untyped: Counter[str] | None = None) -> pa.RecordBatch:
        """Typed arrays for ``rows``; each value that doesn't fit is null, counted in ``untyped``.

        ``untyped`` maps column name -> values nulled (added to, so a caller can sum batches).
        """
        counts = Counter[str]() if untyped is None else untyped
        values = list(zip(*rows, strict=True)) if rows else [()] * (len(self.columns) + 1)
        arrays = []
        for column, column_values in zip(self.columns, values, strict=False):
            array, nulled = _to_array(column, list(column_values))
            arrays.append(array)
            if nulled:
                counts[column.name] += nulled
        arrays.append(pa.array(values[-1], type=pa.string()))  # UTF-8 bytes, as read
        return pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema)


def _to_array(column: Column, values: list[object]) -> tuple[pa.Array, int]:
    """The column's array and how many values were nulled because they could not be typed.

    The Python types of the whole column are checked at once, then converted in bulk; a
    failure costs a second pass over this column only.
    """
    allowed = _ALLOWED[column.kind]
    nulled = 0
    if not set(map(type, values)) <= allowed:
        values, nulled = _null_where(values, lambda v: type(v) not in allowed)
    if column.kind == "int":
        array, more = _ints(values)
    elif column.kind == "timestamp":
        array, more = _timestamps(values)
    elif column.kind in ("str", "labels"):
        array, more = _strings(values, _ARROW_TYPES[column.kind]), 0
    else:
        array, more = pa.array(values, type=_ARROW_TYPES[column.kind]), 0
    return array, nulled + more


def _null_where(values: list[object], bad: Callable[[object], bool]) -> tuple[list[object], int]:
    """``values`` with each bad one replaced by None, and how many there were."""
    flags = [bad(v) for v in values]
    return [None if flag else v for v, flag in zip(values, flags, strict=True)], sum(flags)


def _ints(values: list[object]) -> tuple[pa.Array, int]:
    try:
        return pa.array(values, type=pa.int64()), 0
    except (OverflowError, pa.ArrowException):
        values, nulled = _null_where(
            values, lambda v: isinstance(v, int) and not _INT64_MIN <= v <= _INT64_MAX
        )
        return pa.array(values, type=pa.int64()), nulled


def _timestamps(values: list[object]) -> tuple[pa.Array, int]:
    """Parse in bulk with Arrow's ISO 8601 cast; a value without a zone is ambiguous: null.

    On failure, values without a zone (the common case: a server that drops it everywhere)
    are nulled in bulk first; only what still fails is parsed one value at a time.
    """
    strings = _strings(values)
    try:
        return strings.cast(TIMESTAMP), 0
    except pa.ArrowException:
        pass
    zoned = pc.match_substring_regex(strings, _ZONE_SUFFIX)
    nulled: int = pc.sum(pc.invert(zoned)).as_py() or 0
    strings = pc.if_else(zoned, strings, pa.scalar(None, pa.string()))
    try:
        return strings.cast(TIMESTAMP), nulled
    except pa.ArrowException:
        cleaned, more = _null_where(strings.to_pylist(), lambda v: not _parses_as_timestamp(v))
        return _strings(cleaned).cast(TIMESTAMP), nulled + more


def _parses_as_timestamp(value: object) -> bool:
    if value is None:
        return True
    try:
        pa.array([value], type=pa.string()).cast(TIMESTAMP)
    except (pa.ArrowException, UnicodeEncodeError):
        return False
    return True


def _strings(values: list[Any], arrow_type: pa.DataType | None = None) -> pa.Array:
    """Text as Arrow strings; lone surrogates (from ``\\udXXX`` escapes) become U+FFFD.

    Only the typed column is repaired: ``raw`` keeps the escape exactly as it was sent.
    """
    arrow_type = arrow_type or pa.string()
    try:
        return pa.array(values, type=arrow_type)
    except UnicodeEncodeError:
        return pa.array([_repair(v) for v in values], type=arrow_type)


def _repair(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_repair(v) for v in value]
    return value


def _describe(value: object) -> str:
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{_type_name(value)} {shown}"


def _type_name(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    names |= {int: "an integer", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


# --- getters: small closures so each column states its own JSON path -----------------------


def _field(key: str) -> Getter:
    def get(data: Mapping[str, Any], envelope: Mapping[str, Any]) -> object:
        return data.get(key)

    return get


def _envelope(key: str) -> Getter:
    def get(data: Mapping[str, Any], envelope: Mapping[str, Any]) -> object:
        return envelope.get(key)

    return get


def _nested(parent: str, key: str) -> Getter:
    """``data[parent][key]``; a null or missing parent gives null, a non-object ``UNTYPED``."""

    def get(data: Mapping[str, Any], envelope: Mapping[str, Any]) -> object:
        outer = data.get(parent)
        if outer is None:
            return None
        if not isinstance(outer, dict):
            return UNTYPED
        return outer.get(key)

    return get


def _labels(data: Mapping[str, Any], envelope: Mapping[str, Any]) -> object:
    """Label names; GitHub serves label objects, but plain names are accepted too.

    Anything else (not a list, a name that is not text) makes the whole column ``UNTYPED``.
    """
    labels = data.get("labels")
    if labels is None:
        return None
    if not isinstance(labels, list):
        return UNTYPED
    names: list[str | None] = []
    for label in labels:
        name = label.get("name") if isinstance(label, dict) else label
        if name is not None and not isinstance(name, str):
            return UNTYPED
        names.append(name)
    return names


def _col(name: str, kind: Kind, source: str | None = None) -> Column:
    """A column read from the API object; ``source`` 'user.login' reads a nested field."""
    source = source or name
    parent, _, key = source.partition(".")
    return Column(name, kind, source, _nested(parent, key) if key else _field(source))


_ID = _col("id", "int")
_NODE_ID = _col("node_id", "str")
_REPO = Column("repo", "str", "repo (envelope)", _envelope("repo"))
_FETCHED_AT = Column("fetched_at", "timestamp", "fetched_at (envelope)", _envelope("fetched_at"))
_LABELS = Column("labels", "labels", "labels", _labels)
_AUTHOR = (
    _col("user_login", "str", "user.login"),
    _col("user_id", "int", "user.id"),
    _col("author_association", "str"),
)
_TIMES = (_col("created_at", "timestamp"), _col("updated_at", "timestamp"))

PULLS = EndpointSchema(
    "pulls",
    (
        _ID,
        _NODE_ID,
        _REPO,
        _col("number", "int"),
        _col("title", "str"),
        _col("state", "str"),
        *_AUTHOR,
        _LABELS,
        _col("draft", "bool"),
        _col("locked", "bool"),
        *_TIMES,
        _col("closed_at", "timestamp"),
        _col("merged_at", "timestamp"),
        _col("base_ref", "str", "base.ref"),
        _col("base_sha", "str", "base.sha"),
        _col("head_ref", "str", "head.ref"),
        _col("head_sha", "str", "head.sha"),
        _col("merge_commit_sha", "str"),
        _col("body", "str"),
        _col("html_url", "str"),
        _FETCHED_AT,
    ),
)

ISSUES = EndpointSchema(
    "issues",
    (
        _ID,
        _NODE_ID,
        _REPO,
        _col("number", "int"),
        _col("title", "str"),
        _col("state", "str"),
        _col("state_reason", "str"),
        *_AUTHOR,
        _LABELS,
        _col("comments", "int"),
        _col("locked", "bool"),
        *_TIMES,
        _col("closed_at", "timestamp"),
        _col("body", "str"),
        _col("html_url", "str"),
        _FETCHED_AT,
    ),
    drop_pull_requests=True,
)

REPOS = EndpointSchema(
    "repos",
    (
        _ID,
        _NODE_ID,
        _REPO,
        _col("name", "str"),
        _col("full_name", "str"),
        _col("fork", "bool"),
        _col("archived", "bool"),
        _col("private", "bool"),
        _col("default_branch", "str"),
        _col("language", "str"),
        _col("stargazers_count", "int"),
        *_TIMES,
        _col("pushed_at", "timestamp"),
        _col("html_url", "str"),
        _FETCHED_AT,
    ),
)

SCHEMAS: dict[str, EndpointSchema] = {s.endpoint: s for s in (PULLS, ISSUES, REPOS)}


def _union(schemas: Sequence[EndpointSchema]) -> pa.Schema:
    """Every endpoint's columns in one schema; ``fetched_at`` and ``raw`` stay last."""
    fields: dict[str, pa.Field] = {}
    for schema in schemas:
        for column in schema.arrow_schema:
            known = fields.setdefault(column.name, column)
            if known.type != column.type:
                raise TypeError(f"column {column.name} has two types: {known.type}, {column.type}")
    tail = [fields.pop("fetched_at"), fields.pop("raw")]
    return pa.schema([*fields.values(), *tail])


# The schema of every Parquet file, whatever its endpoint: the union of the endpoint schemas,
# with the columns an endpoint lacks written as nulls (they cost a few bytes per row group).
# One shared file schema is what lets whole-tree readers - pyarrow.dataset, DuckDB's
# read_parquet('curated/**/*.parquet') and polars.scan_parquet - see every column of every
# endpoint without schema-merging options; each would otherwise take the first file's schema
# (pyarrow silently drops the other columns, DuckDB cannot bind them, Polars refuses).
CURATED_SCHEMA = _union([PULLS, ISSUES, REPOS])


def to_curated(table: pa.Table) -> pa.Table:
    """``table`` (one endpoint's columns) laid out as CURATED_SCHEMA, missing columns null."""
    rows, present = table.num_rows, set(table.column_names)
    columns = [
        table[f.name] if f.name in present else pa.nulls(rows, f.type) for f in CURATED_SCHEMA
    ]
    return pa.Table.from_arrays(columns, schema=CURATED_SCHEMA)


def schema_for(endpoint: str) -> EndpointSchema:
    """The schema of ``endpoint``; KeyError names the known ones (a programming error)."""
    try:
        return SCHEMAS[endpoint]
    except KeyError:
        raise KeyError(
            f"no curated schema for endpoint {endpoint!r}: known {sorted(SCHEMAS)}"
        ) from None


# --- the envelope: parsed once, with the exact source text of ``data`` kept ----------------

_WS = re.compile(r"[ \t\n\r]*")
# The C scanners behind json.loads; typeshed doesn't declare them.
_scan_value: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_DATA_KEY = b'"data":'


def parse_envelope(line: bytes) -> tuple[dict[str, Any], bytes | None]:
    """The envelope's fields and the exact UTF-8 source text of its ``data`` value.

    Keeping ``data`` byte for byte as the collector stored it spares a ``json.dumps`` per
    record (as costly as the parse) and keeps the raw column compact UTF-8. Raises
    UnicodeDecodeError, json.JSONDecodeError (both ValueErrors) or FieldError.
    """
    fields = codec.loads(line)
    if not isinstance(fields, dict):
        raise FieldError("envelope", f"is {_type_name(fields)}, expected an object")
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
