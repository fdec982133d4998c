"""The curated columns of each endpoint, declared once, and how a raw JSONL line becomes a row.

Every Parquet file is written with ``curated_schema()``, the union of the declared endpoints'
schemas (see there for why one file schema serves all endpoints). It is a function, not a
constant: an endpoint registered after import (a ``GH_COLLECT_PLUGINS`` module) still gets its
columns into the file schema.

Each endpoint has one ``EndpointSchema``: an ordered list of typed ``Column``s, each knowing
where its value sits in the API object. The pyarrow schema is derived from that list, so the
Parquet layout and the extraction can never drift apart. Every row ends with ``raw``: the API
object exactly as the raw file holds it, so nothing the server sent is lost even when a field
has no typed column.

Whatever the server sent, one bad field never costs the record (issue "Nothing lost"):

* per line (``extract``): only the KEY is required. The envelope must be a JSON object whose
  ``data`` is an object with a key (the declaration's ``key``): an integer in the 64-bit
  range (``id``) or, for a text key column (a commit's ``sha``), a non-empty string;
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

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from gh_collect import endpoints
from gh_collect.curated.columns import Column
from gh_collect.durable.envelope import EnvelopeError, parse_envelope
from gh_collect.endpoints.base import Endpoint

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


@dataclass(frozen=True)
class EndpointSchema:
    """The curated layout of one endpoint, from its declaration; ``raw`` is always last.

    ``key`` names the column that identifies a record (the deduplication key) and ``version``
    the one whose latest value wins among a record's copies (None: the last line read wins).
    The key column is an integer (``id``) or text (a commit's ``sha``).
    """

    endpoint: str
    columns: tuple[Column, ...]
    belongs: Callable[[Mapping[str, Any]], bool] = lambda _data: True
    key: str = "id"
    version: str | None = "updated_at"

    def __post_init__(self) -> None:
        kinds = {c.name: c.kind for c in self.columns}
        if kinds.get(self.key) not in ("int", "str"):
            found = f"a {kinds[self.key]} column" if self.key in kinds else "not a column"
            raise ValueError(
                f"endpoint {self.endpoint!r}: key {self.key!r} is {found}; the export needs "
                "an integer or text key column"
            )
        if self.version is not None and self.version not in kinds:
            raise ValueError(
                f"endpoint {self.endpoint!r}: version {self.version!r} is not a column"
            )

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointSchema:
        return cls(
            endpoint.name, endpoint.columns, endpoint.keeps_record, endpoint.key, endpoint.version
        )

    @property
    def arrow_schema(self) -> pa.Schema:
        return _arrow_schema(self.columns)

    @cached_property
    def key_index(self) -> int:
        """Where the key sits in a row from ``extract``."""
        return [c.name for c in self.columns].index(self.key)

    @cached_property
    def text_key(self) -> bool:
        return self.columns[self.key_index].kind == "str"

    def extract(self, line: bytes) -> Row | None:
        """The row for one raw JSONL line, or None if the record is not kept.

        Raises ``ValueError`` (``UnicodeDecodeError``, ``json.JSONDecodeError``) for a line
        that is not UTF-8 JSON and ``FieldError`` when the key cannot be read (the envelope
        or ``data`` not an object, the key not of its kind); other fields never raise.
        """
        try:
            envelope, raw = parse_envelope(line)
        except EnvelopeError as exc:
            raise FieldError("envelope", str(exc)) from None
        data = envelope.get("data")
        if not isinstance(data, dict) or raw is None:
            raise FieldError("data", f"is {_type_name(data)}, expected the API object")
        if not self.belongs(data):
            return None  # another endpoint's record (the issues list also serves PRs)
        row = (*[column.get(data, envelope) for column in self.columns], raw)
        record_id = row[self.key_index]
        if self.text_key:
            if type(record_id) is not str or not record_id:
                problem = "is missing" if record_id is None else f"is {_describe(record_id)}"
                raise FieldError(self.key, f"{problem}, expected a non-empty string (the key)")
        elif type(record_id) is not int or not _INT64_MIN <= record_id <= _INT64_MAX:
            problem = "is missing" if record_id is None else f"is {_describe(record_id)}"
            raise FieldError(self.key, f"{problem}, expected a 64-bit integer (the key)")
        return row

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


def _arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    fields = [pa.field(c.name, _ARROW_TYPES[c.kind]) for c in columns]
    return pa.schema([*fields, pa.field("raw", pa.string())])


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


def _union(declarations: Sequence[Sequence[Column]]) -> pa.Schema:
    """Every endpoint's columns in one schema; ``fetched_at`` and ``raw`` stay last."""
    fields: dict[str, pa.Field] = {}
    for columns in declarations:
        for column in _arrow_schema(columns):
            known = fields.setdefault(column.name, column)
            if known.type != column.type:
                raise TypeError(f"column {column.name} has two types: {known.type}, {column.type}")
    tail = [fields.pop(name) for name in ("fetched_at", "raw") if name in fields]
    return pa.schema([*fields.values(), *tail])


def curated_schema() -> pa.Schema:
    """The schema of every Parquet file, whatever its endpoint.

    The union of the declared endpoints' schemas, with the columns an endpoint lacks written
    as nulls (they cost a few bytes per row group). One shared file schema is what lets
    whole-tree readers - pyarrow.dataset, DuckDB's read_parquet('curated/**/*.parquet') and
    polars.scan_parquet - see every column of every endpoint without schema-merging options;
    each would otherwise take the first file's schema (pyarrow silently drops the other
    columns, DuckDB cannot bind them, Polars refuses).

    Computed on call, cached per tuple of declared endpoints (each name with its columns, so
    a name unregistered and declared again with other columns is not served stale), so an
    endpoint registered after import (a plugin) is in it.
    """
    declared = endpoints.declared()
    return _union_of(tuple((endpoint.name, endpoint.columns) for endpoint in declared))


@cache
def _union_of(declared: tuple[tuple[str, tuple[Column, ...]], ...]) -> pa.Schema:
    return _union([columns for _name, columns in declared])


def to_curated(table: pa.Table, schema: pa.Schema | None = None) -> pa.Table:
    """``table`` (one endpoint's columns) laid out as ``schema``, missing columns null.

    ``schema`` defaults to ``curated_schema()``; a writer passes the one its file was opened
    with.
    """
    schema = curated_schema() if schema is None else schema
    rows, present = table.num_rows, set(table.column_names)
    columns = [table[f.name] if f.name in present else pa.nulls(rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def schema_for(endpoint: str) -> EndpointSchema:
    """The curated schema of ``endpoint``, from its declaration; KeyError names the known."""
    return EndpointSchema.of(endpoints.get(endpoint))
