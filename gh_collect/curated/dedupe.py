"""Pass 2 of the export: one row per key, the latest version winning, cut into key ranges.

Per bucket (all versions of a key share a bucket): load its batches, sort by (key, version,
file, line), keep the last row per key, and write the winners cut into N key ranges chosen
from the sampled keys (one batch per range). Buckets run in the workers too.

Which column is the key and which the version comes from the endpoint's declaration
(``Endpoint.key`` / ``Endpoint.version``, through ``schema_for``): an endpoint that versions
its records by another field only changes its declaration. A null version sorts first (loses);
an endpoint without a version lets the last line read win. Keys are integers or text (a
commit's ``sha``); the key ranges are cut in the key's own order.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from gh_collect.curated.scan import Key, ScanOutput
from gh_collect.curated.schemas import EndpointSchema, schema_for
from gh_collect.curated.spill import POSITION_FIELDS, Piece, SpillFile, read_piece, spill_schema
from gh_collect.curated.workers import run_tasks

_SortKeys = list[tuple[str, str, str]]


@dataclass(frozen=True)
class DedupeTask:
    endpoint: str
    pieces: tuple[Piece, ...]  # every piece of one bucket
    bounds: tuple[Key, ...]
    run: str


@dataclass(frozen=True)
class Run:
    """A bucket's deduplicated rows, one piece per non-empty key range."""

    pieces: tuple[Piece, ...]  # part = key range
    rows: int


def dedupe_all(
    schema: EndpointSchema,
    scans: list[ScanOutput],
    buckets: int,
    bounds: tuple[Key, ...],
    spill: Path,
    workers: int,
) -> list[Run]:
    by_bucket: list[list[Piece]] = [[] for _ in range(buckets)]
    for scan in scans:
        for piece in scan.pieces:
            by_bucket[piece.part].append(piece)
    tasks = [
        DedupeTask(schema.endpoint, tuple(found), bounds, str(spill / f"run-{bucket:05d}.spill"))
        for bucket, found in enumerate(by_bucket)
        if found
    ]
    return run_tasks(_dedupe_bucket, tasks, workers)


def _dedupe_bucket(task: DedupeTask) -> Run:
    """Load one bucket (every version of its keys), keep the winners, write them by range."""
    schema = schema_for(task.endpoint)
    batches = [read_piece(piece, spill_schema(schema)) for piece in task.pieces]
    table = pa.Table.from_batches(batches, schema=spill_schema(schema))
    table = latest_versions(table, schema).combine_chunks()
    keys = table[schema.key].to_pylist()
    cuts = [0, *(bisect_left(keys, bound) for bound in task.bounds), len(keys)]
    with SpillFile(task.run) as run:
        pieces = [
            run.write(number, table.slice(start, end - start).to_batches()[0])
            for number, (start, end) in enumerate(pairwise(cuts))
            if end > start
        ]
    return Run(tuple(pieces), table.num_rows)


def sort_keys(schema: EndpointSchema) -> _SortKeys:
    """Dedupe order: key, version, file, line; the last row of each key wins.

    Nulls sort first, so a record without a version loses to any with one.
    """
    names = [schema.key, *([schema.version] if schema.version else []), "_src", "_line"]
    return [(name, "ascending", "at_start") for name in names]


def latest_versions(table: pa.Table, schema: EndpointSchema) -> pa.Table:
    """Sorted by key, the last version of each key (latest version, then latest line).

    ``table`` has the spill layout (positions last); the result has the endpoint's columns.
    """
    order_by = sort_keys(schema)
    keys = table.select([name for name, _, _ in order_by])
    order = pc.sort_indices(keys, sort_keys=order_by)
    ids = table[schema.key].take(order).combine_chunks()
    if len(ids) > 1:
        changes = pc.not_equal(ids.slice(0, len(ids) - 1), ids.slice(1))
        order = order.filter(pa.concat_arrays([changes, pa.array([True])]))
    return table.take(order).drop_columns([f.name for f in POSITION_FIELDS])
