"""The curated columns of each endpoint, declared once, and how a raw JSONL line becomes a row.

Every Parquet file is written with ``CURATED_SCHEMA``, the union of the endpoint schemas (see
there for why one file schema serves all endpoints).

Each endpoint has one ``EndpointSchema``: an ordered list of typed ``Column``s, each knowing
where its value sits in the API object. The pyarrow schema is derived from that list, so the
Parquet layout and the extraction can never drift apart. Every row ends with ``raw``: the API
object exactly as the raw file holds it, so nothing the server sent is lost even when a field
has no typed column.

Validation is split for speed and precision:

* per line (``extract``): the envelope must be a JSON object whose ``data`` is an object with
  an integer ``id`` (the deduplication key); nested objects (``user``, ``head``, ``base``) and
  ``labels`` must have the expected shape;
* per batch (``to_batch``): scalar columns are type-checked with one pass over each column and
  converted by pyarrow in bulk; only when that fails is the batch scanned again to find the
  first offending row, so a clean dataset pays almost nothing for the checks.

Both raise ``FieldError``, which names the JSON field and (for batches) the row; the exporter
adds the file and line and turns it into a ``DataError``. Missing or null fields are nulls,
never errors: GitHub omits fields freely across API versions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

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
_EXPECTED = {
    "int": "an integer",
    "str": "a string",
    "bool": "true or false",
    "timestamp": "an ISO 8601 timestamp with a zone such as 2025-01-31T12:00:00Z",
    "labels": "a list of label names",
}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class FieldError(Exception):
    """A field with a value that cannot go into its typed column.

    ``row`` is the index in the batch given to ``to_batch`` (None when raised for one line);
    the exporter maps it back to a file and line.
    """

    def __init__(self, field: str, problem: str, row: int | None = None) -> None:
        super().__init__(f"field '{field}' {problem}")
        self.field = field
        self.problem = problem
        self.row = row


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
        that is not UTF-8 JSON and ``FieldError`` for JSON of the wrong shape.
        """
        envelope, raw = parse_envelope(line)
        data = envelope.get("data")
        if not isinstance(data, dict) or raw is None:
            raise FieldError("data", f"is {_type_name(data)}, expected the API object")
        if self.drop_pull_requests and "pull_request" in data:
            return None  # the issues list also serves PRs; the pulls endpoint holds them
        record_id = data.get("id")
        if type(record_id) is not int:
            problem = "is missing" if record_id is None else f"is {_describe(record_id)}"
            raise FieldError("id", f"{problem}, expected an integer (the deduplication key)")
        return (*[column.get(data, envelope) for column in self.columns], raw)

    def to_batch(self, rows: Sequence[Row]) -> pa.RecordBatch:
        """Typed arrays for ``rows``; FieldError(row=i) names the first value that doesn't fit."""
        values = list(zip(*rows, strict=True)) if rows else [()] * (len(self.columns) + 1)
        arrays = [
            _to_array(col, list(vals)) for col, vals in zip(self.columns, values, strict=False)
        ]
        arrays.append(pa.array(values[-1], type=pa.string()))  # UTF-8 bytes, as read
        return pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema)


def _to_array(column: Column, values: list[object]) -> pa.Array:
    """Check the Python types of a whole column at once, then convert it in bulk."""
    if not set(map(type, values)) <= _ALLOWED[column.kind]:
        allowed = _ALLOWED[column.kind]
        row = next(i for i, v in enumerate(values) if type(v) not in allowed)
        raise _wrong(column, values[row], row)
    if column.kind == "int":
        return _ints(column, values)
    if column.kind == "timestamp":
        return _timestamps(column, values)
    if column.kind in ("str", "labels"):
        return _strings(values, _ARROW_TYPES[column.kind])
    return pa.array(values, type=_ARROW_TYPES[column.kind])


def _ints(column: Column, values: list[object]) -> pa.Array:
    try:
        return pa.array(values, type=pa.int64())
    except (OverflowError, pa.ArrowException):
        row = next(
            i
            for i, v in enumerate(values)
            if isinstance(v, int) and not _INT64_MIN <= v <= _INT64_MAX
        )
        raise FieldError(
            column.source, f"is {values[row]}, outside the 64-bit range", row
        ) from None


def _timestamps(column: Column, values: list[object]) -> pa.Array:
    """Parse in bulk with Arrow's ISO 8601 cast; a value without a zone is rejected."""
    strings = _strings(values)
    try:
        return strings.cast(TIMESTAMP)
    except pa.ArrowException:
        for row, value in enumerate(values):
            if value is not None and not _parses_as_timestamp(value):
                raise _wrong(column, value, row) from None
        raise  # pragma: no cover - the bulk cast failed but no single value does


def _parses_as_timestamp(value: object) -> bool:
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


def _wrong(column: Column, value: object, row: int | None = None) -> FieldError:
    return FieldError(
        column.source, f"is {_describe(value)}, expected {_EXPECTED[column.kind]}", row
    )


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
    """``data[parent][key]``; a null or missing parent gives null, a non-object is an error."""

    def get(data: Mapping[str, Any], envelope: Mapping[str, Any]) -> object:
        outer = data.get(parent)
        if outer is None:
            return None
        if not isinstance(outer, dict):
            raise FieldError(parent, f"is {_describe(outer)}, expected an object")
        return outer.get(key)

    return get


def _labels(data: Mapping[str, Any], envelope: Mapping[str, Any]) -> list[str | None] | None:
    """Label names; GitHub serves label objects, but plain names are accepted too."""
    labels = data.get("labels")
    if labels is None:
        return None
    if not isinstance(labels, list):
        raise FieldError("labels", f"is {_describe(labels)}, expected a list")
    names: list[str | None] = []
    for label in labels:
        name = label.get("name") if isinstance(label, dict) else label
        if name is not None and not isinstance(name, str):
            raise FieldError("labels", f"holds {_describe(label)}, expected label objects")
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
