"""Pass 3 of the export: the key ranges in order, into ``part-NNNNN.parquet`` files.

Per key range, in order: gather that range's batch from every bucket's run, sort by key,
append to Parquet. Row groups and files are cut at fixed row/byte counts of the sorted rows,
so the output bytes do not depend on the number of buckets, the sample or the workers.

Its own module because it alone decides what a file looks like: every part is written with
``curated_schema()`` (read when the writer opens, so an endpoint registered after import is
in it) and with Parquet options derived from that schema.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gh_collect.curated.dedupe import Run
from gh_collect.curated.limits import ExportLimits
from gh_collect.curated.schemas import EndpointSchema, curated_schema, to_curated
from gh_collect.curated.spill import Piece, read_piece

_ROW_OVERHEAD = 64  # bytes counted per row besides its raw text when sizing row groups
# Free text gets neither dictionaries (never pays off) nor min/max statistics (useless, and
# as long as the text); everything else keeps both, for compact files and predicate pushdown.
_FREE_TEXT = {"raw", "body", "title"}


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """The ``ParquetWriter`` options for files of ``schema`` (see ``_FREE_TEXT``)."""
    return {
        "compression": "zstd",
        "use_dictionary": [f.name for f in schema if f.name not in _FREE_TEXT],
        "write_statistics": [f.name for f in schema if f.name not in _FREE_TEXT],
    }


def write_ranges(
    schema: EndpointSchema, runs: list[Run], ranges: int, out_dir: Path, limits: ExportLimits
) -> tuple[Path, ...]:
    """Gather each key range from every run, sort it, append it: globally sorted output."""
    if not runs:
        return ()
    by_range: list[list[Piece]] = [[] for _ in range(ranges)]
    for run in runs:
        for piece in run.pieces:
            by_range[piece.part].append(piece)
    writer = PartWriter(out_dir, limits)
    for pieces in by_range:
        if pieces:
            batches = [read_piece(piece, schema.arrow_schema) for piece in pieces]
            table = pa.Table.from_batches(batches, schema=schema.arrow_schema)
            writer.add(table.sort_by(schema.key))
    return writer.close()


class PartWriter:
    """Appends key-sorted rows to part-NNNNN.parquet files with deterministic cut points.

    A row group is the longest run of rows within ``row_group_rows`` and ``row_group_bytes``
    (raw text plus a fixed overhead per row) that doesn't cross a file boundary; cuts depend
    only on the rows, not on how they arrived, so re-runs write identical files.
    """

    def __init__(self, folder: Path, limits: ExportLimits) -> None:
        self._folder = folder
        self._limits = limits
        self._schema = curated_schema()
        self._pending = self._schema.empty_table()
        self._pending_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0
        self._files: list[Path] = []

    def add(self, table: pa.Table) -> None:
        self._pending = pa.concat_tables([self._pending, to_curated(table, self._schema)])
        self._pending_bytes += _text_bytes(table)
        limits = self._limits
        while (
            self._pending.num_rows >= min(limits.row_group_rows, self._file_room())
            or self._pending_bytes > limits.row_group_bytes
        ):
            self._write_group()

    def close(self) -> tuple[Path, ...]:
        while self._pending.num_rows:
            self._write_group()
        if self._writer is not None:
            self._writer.close()
        return tuple(self._files)

    def _file_room(self) -> int:
        return self._limits.rows_per_file - self._file_rows

    def _write_group(self) -> None:
        count = self._group_rows()
        group = self._pending.slice(0, count)
        self._pending = self._pending.slice(count)
        self._pending_bytes -= _text_bytes(group)
        if self._writer is None:
            self._folder.mkdir(parents=True, exist_ok=True)
            path = self._folder / f"part-{len(self._files):05d}.parquet"
            options = parquet_options(self._schema)
            self._writer = pq.ParquetWriter(str(path), self._schema, **options)
            self._files.append(path)
        self._writer.write_table(group, row_group_size=count)
        self._file_rows += count
        if self._file_rows >= self._limits.rows_per_file:
            self._writer.close()
            self._writer, self._file_rows = None, 0

    def _group_rows(self) -> int:
        limit: int = min(self._limits.row_group_rows, self._file_room(), self._pending.num_rows)
        head = self._pending.slice(0, limit)
        sizes = pc.add(pc.binary_length(head["raw"]).fill_null(0), _ROW_OVERHEAD)
        cumulative = pc.cumulative_sum(sizes).to_pylist()
        fitting = bisect_right(cumulative, self._limits.row_group_bytes)
        return max(1, min(limit, fitting))


def _text_bytes(table: pa.Table) -> int:
    lengths: int = pc.sum(pc.binary_length(table["raw"])).as_py() or 0
    rows: int = table.num_rows
    return lengths + _ROW_OVERHEAD * rows
