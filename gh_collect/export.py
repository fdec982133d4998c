"""Raw JSONL to a deduplicated, Hive-partitioned Parquet dataset, in bounded memory.

Output: ``<root>/curated/year=Y/source=github/target=T/endpoint=E/part-NNNNN.parquet``, rows
sorted by ``id``, one row per id (latest ``updated_at`` wins; on a tie the later line wins,
files taken in name order). ``repos.jsonl`` becomes ``endpoint=repos`` and is always exported
when present. An endpoint without rows gets no folder. Partition keys (year, source, target,
endpoint) live only in the path, never as data columns, so DuckDB, Polars and
``pyarrow.dataset`` add them as partition columns without a clash.

Bounded memory - an external hash-partitioned sort, per endpoint:

1. Scan. Files are read line by line; each line becomes a typed row buffered in one of N
   buckets (``id % N``, N chosen from the raw byte size so a bucket holds about
   ``bucket_bytes``). When ``flush_bytes`` of input is buffered, every bucket's rows go as one
   Arrow record batch into a new spill chunk (an Arrow IPC file; batch k of a chunk belongs to
   one known bucket). Memory: ``flush_bytes`` of rows. Large inputs are scanned by
   ``workers`` processes, each with its own chunks; every row carries its global (file, line)
   position, so the result does not depend on how the files were split.
2. Dedupe. For each bucket, its batches from all chunks are loaded (all versions of an id are
   in the same bucket), sorted by (id, updated_at, file, line) and the last row per id kept,
   then written as a sorted run. Memory: about two buckets.
3. Merge. The N sorted runs are merged batch-wise into Parquet: each round takes from every
   run the rows up to the smallest "last id of the current batch", sorts that small slice and
   appends it. Memory: ``merge_bytes`` of run batches. Row groups and files are cut at fixed
   row/byte thresholds over the sorted rows, so output bytes are identical on every re-run.

Peak memory is thus a few times ``flush_bytes``/``bucket_bytes``/``merge_bytes`` (defaults
32-64 MiB) whatever the dataset size, up to ``max_buckets * bucket_bytes`` (32 GiB) of raw
JSON per endpoint; beyond that buckets grow with the data.

Atomic publication. The complete new tree is built in ``<root>/.curated-work/<partition>/
staging`` (outside ``curated/`` so readers' ``curated/**`` globs never see it, on the same
filesystem so renames are atomic), fsynced, then swapped with the live folder: one
``renameat2(RENAME_EXCHANGE)`` on Linux (readers see the old or the new tree, never none),
elsewhere "move the live tree aside, move the new one in". The old tree is then deleted. Each
step is a small function (``_build_staging``, ``_sync_tree``, ``_exchange``, ``_move_aside``,
``_move_in``, ``_sync_parents``, ``_discard_previous``). A failing step is rolled back at once;
after a hard crash the next export's ``_recover`` puts a moved-aside tree back (or drops it if
the new one made it in) and removes leftover staging and spill folders. Callers must not run two
exports of one dataset at once (the CLI holds the dataset lock).
"""

from __future__ import annotations

import ctypes
import errno
import logging
import math
import multiprocessing
import os
import shutil
import sys
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gh_collect.errors import DataError, StorageError
from gh_collect.paths import DatasetPaths
from gh_collect.schemas import (
    CURATED_SCHEMA,
    EndpointSchema,
    FieldError,
    Row,
    schema_for,
    to_curated,
)

log = logging.getLogger(__name__)

MiB = 1 << 20
REPOS_ENDPOINT = "repos"
WORK_DIR = ".curated-work"  # beside curated/, never inside it: readers glob curated/**
# Dedupe order: the last row of each id wins; a null updated_at sorts first (loses).
_ORDER = [(name, "ascending", "at_start") for name in ("id", "updated_at", "_src", "_line")]
_POSITION_FIELDS = [pa.field("_src", pa.int32()), pa.field("_line", pa.int64())]
_ROW_OVERHEAD = 64  # bytes counted per row besides its raw text when sizing row groups


@dataclass(frozen=True)
class ExportLimits:
    """Memory and layout knobs; the defaults keep peak RSS to a few hundred MiB."""

    flush_bytes: int = 32 * MiB
    bucket_bytes: int = 32 * MiB
    max_buckets: int = 1024
    merge_bytes: int = 64 * MiB
    row_group_rows: int = 65_536
    row_group_bytes: int = 32 * MiB
    rows_per_file: int = 1_000_000
    workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    parallel_min_bytes: int = 64 * MiB  # below this, worker start-up costs more than it saves


@dataclass(frozen=True)
class EndpointExport:
    """What one endpoint's export read and wrote."""

    endpoint: str
    input_files: int
    records_read: int
    skipped: int  # kept out on purpose: pull requests listed by the issues endpoint
    duplicates_dropped: int
    rows_written: int
    output_files: tuple[Path, ...]


@dataclass(frozen=True)
class ExportResult:
    curated_dir: Path
    endpoints: Mapping[str, EndpointExport]
    elapsed_s: float

    @property
    def rows_written(self) -> int:
        return sum(e.rows_written for e in self.endpoints.values())

    @property
    def duplicates_dropped(self) -> int:
        return sum(e.duplicates_dropped for e in self.endpoints.values())


@dataclass(frozen=True)
class _Layout:
    """The live folder and the work folders of one dataset's export."""

    current: Path
    work: Path

    @classmethod
    def of(cls, paths: DatasetPaths) -> _Layout:
        partition = paths.curated_dir.relative_to(paths.root / "curated")
        return cls(paths.curated_dir, paths.root / WORK_DIR / partition)

    @property
    def staging(self) -> Path:
        return self.work / "staging"

    @property
    def aside(self) -> Path:
        return self.work / "previous"

    @property
    def spill(self) -> Path:
        return self.work / "spill"


def export_dataset(
    paths: DatasetPaths, endpoints: Sequence[str], *, limits: ExportLimits | None = None
) -> ExportResult:
    """Rebuild the curated dataset from the raw files and publish it atomically."""
    limits = limits or ExportLimits()
    started = time.monotonic()
    if not paths.raw_dir.is_dir():
        raise DataError(f"nothing to export: {paths.raw_dir} does not exist; run collect first")
    order = _endpoint_order(endpoints)
    layout = _Layout.of(paths)
    try:
        _recover(layout)
        _prepare(layout)
        try:
            results = _build_staging(paths, layout, order, limits)
            _publish(layout)
        except BaseException:
            _rollback(layout)
            raise
        finally:
            shutil.rmtree(layout.spill, ignore_errors=True)
            _tidy(layout.work)
    except OSError as exc:
        raise StorageError(
            f"export to {layout.current} failed: {exc}; the previous curated data is kept"
        ) from exc
    relocated = {e: _relocate(r, layout) for e, r in results.items()}
    return ExportResult(layout.current, relocated, time.monotonic() - started)


def _endpoint_order(endpoints: Sequence[str]) -> list[str]:
    """Repos first (always), then the requested endpoints once each; unknown ones fail early."""
    order = list(dict.fromkeys([REPOS_ENDPOINT, *endpoints]))
    for endpoint in order:
        schema_for(endpoint)
    return order


def _relocate(result: EndpointExport, layout: _Layout) -> EndpointExport:
    files = tuple(layout.current / f.relative_to(layout.staging) for f in result.output_files)
    return EndpointExport(
        result.endpoint,
        result.input_files,
        result.records_read,
        result.skipped,
        result.duplicates_dropped,
        result.rows_written,
        files,
    )


def _input_files(paths: DatasetPaths, endpoint: str) -> list[Path]:
    """The endpoint's raw files in name order: that order breaks updated_at ties."""
    if endpoint == REPOS_ENDPOINT:
        return [paths.repos_file] if paths.repos_file.is_file() else []
    folder = paths.endpoint_dir(endpoint)
    return sorted(folder.glob("repo=*.jsonl")) if folder.is_dir() else []


# --- building the staging tree ---------------------------------------------------------------


def _build_staging(
    paths: DatasetPaths, layout: _Layout, endpoints: Sequence[str], limits: ExportLimits
) -> dict[str, EndpointExport]:
    """Write every endpoint's Parquet files under the staging folder."""
    results = {}
    for endpoint in endpoints:
        files = _input_files(paths, endpoint)
        out_dir = layout.staging / paths.curated_endpoint_dir(endpoint).name
        spill = layout.spill / paths.curated_endpoint_dir(endpoint).name
        results[endpoint] = _export_endpoint(schema_for(endpoint), files, out_dir, spill, limits)
    return results


def _export_endpoint(
    schema: EndpointSchema, files: list[Path], out_dir: Path, spill: Path, limits: ExportLimits
) -> EndpointExport:
    total_bytes = sum(f.stat().st_size for f in files)
    buckets = max(1, min(limits.max_buckets, math.ceil(total_bytes / limits.bucket_bytes)))
    spill.mkdir(parents=True, exist_ok=True)
    scans = _scan_all(schema, files, buckets, spill, limits, total_bytes)
    runs, kept = _dedupe_buckets(schema, scans, buckets, spill, limits)
    written = _merge_runs(schema, runs, out_dir, limits)
    read = sum(s.records for s in scans)
    skipped = sum(s.skipped for s in scans)
    return EndpointExport(
        schema.endpoint, len(files), read, skipped, read - skipped - kept, kept, written
    )


# --- phase 1: scan raw lines into bucketed spill chunks ------------------------------------


@dataclass(frozen=True)
class _ScanTask:
    """One worker's share: picklable, so it runs the same in-process or in a pool."""

    endpoint: str
    files: tuple[tuple[int, str], ...]  # (global file index, path)
    buckets: int
    folder: str
    name: str
    flush_bytes: int


@dataclass(frozen=True)
class _ScanOutput:
    chunks: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]  # (path, ((bucket, batch), ...))
    records: int
    skipped: int


def _scan_all(
    schema: EndpointSchema,
    files: list[Path],
    buckets: int,
    spill: Path,
    limits: ExportLimits,
    total_bytes: int,
) -> list[_ScanOutput]:
    workers = min(limits.workers, len(files))
    shares = _split_files(files, workers * 2 if workers > 1 else 1)
    tasks = [
        _ScanTask(schema.endpoint, share, buckets, str(spill), f"t{n:04d}", limits.flush_bytes)
        for n, share in enumerate(shares)
    ]
    if workers <= 1 or total_bytes < limits.parallel_min_bytes:
        return [_scan(task) for task in tasks]
    # spawn, not fork: pyarrow's thread pools make forking a threaded parent unsafe.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_scan, tasks))


def _split_files(files: list[Path], shares: int) -> list[tuple[tuple[int, str], ...]]:
    """Balance files by size over ``shares`` groups (largest first onto the lightest)."""
    groups: list[list[tuple[int, str]]] = [[] for _ in range(max(1, shares))]
    weights = [0] * len(groups)
    sized = sorted(enumerate(files), key=lambda item: -item[1].stat().st_size)
    for index, path in sized:
        lightest = weights.index(min(weights))
        groups[lightest].append((index, str(path)))
        weights[lightest] += path.stat().st_size
    return [tuple(sorted(group)) for group in groups if group]


def _scan(task: _ScanTask) -> _ScanOutput:
    """Read the task's files line by line into the bucket spiller."""
    schema = schema_for(task.endpoint)
    paths = dict(task.files)
    spiller = _Spiller(schema, task, paths)
    records = skipped = 0
    for src, path in task.files:
        for line_no, text, size in _lines(path):
            records += 1
            row = _extract(schema, text, path, line_no)
            if row is None:
                skipped += 1
                continue
            spiller.add(row, src, line_no, size)
    spiller.flush()
    return _ScanOutput(tuple(spiller.chunks), records, skipped)


def _lines(path: str) -> Iterator[tuple[int, str, int]]:
    """(line number, text, byte size) of each non-blank line; bad UTF-8 is a DataError."""
    with Path(path).open("rb") as handle:
        for line_no, data in enumerate(handle, 1):
            if data.isspace():
                continue
            try:
                yield line_no, data.decode("utf-8"), len(data)
            except UnicodeDecodeError as exc:
                raise DataError(f"{path} line {line_no}: not UTF-8 text ({exc.reason})") from None


def _extract(schema: EndpointSchema, text: str, path: str, line_no: int) -> Row | None:
    try:
        return schema.extract(text)
    except FieldError as exc:
        raise DataError(f"{path} line {line_no}: {exc}; this record cannot be exported") from None
    except ValueError as exc:  # json.JSONDecodeError
        cut = "" if text.endswith("\n") else " (last line, no newline: cut short?)"
        raise DataError(f"{path} line {line_no}: not valid JSON{cut}: {exc}") from None


class _Spiller:
    """Rows buffered per bucket; a flush writes all buckets to one new IPC chunk file."""

    def __init__(self, schema: EndpointSchema, task: _ScanTask, paths: Mapping[int, str]):
        self._schema = schema
        self._task = task
        self._paths = paths
        self._spill_schema = pa.schema([*schema.arrow_schema, *_POSITION_FIELDS])
        self._rows: list[list[Row]] = [[] for _ in range(task.buckets)]
        self._where: list[list[tuple[int, int]]] = [[] for _ in range(task.buckets)]
        self._buffered = 0
        self.chunks: list[tuple[str, tuple[tuple[int, int], ...]]] = []

    def add(self, row: Row, src: int, line_no: int, size: int) -> None:
        bucket = cast(int, row[0]) % self._task.buckets  # id: an int, checked by extract
        self._rows[bucket].append(row)
        self._where[bucket].append((src, line_no))
        self._buffered += size
        if self._buffered >= self._task.flush_bytes:
            self.flush()

    def flush(self) -> None:
        if not self._buffered:
            return
        path = Path(self._task.folder, f"{self._task.name}-{len(self.chunks):05d}.arrow")
        index: list[tuple[int, int]] = []
        with pa.ipc.new_file(str(path), self._spill_schema) as writer:
            for bucket, rows in enumerate(self._rows):
                if rows:
                    writer.write_batch(self._batch(bucket))
                    index.append((bucket, len(index)))
        self.chunks.append((str(path), tuple(index)))
        self._rows = [[] for _ in range(self._task.buckets)]
        self._where = [[] for _ in range(self._task.buckets)]
        self._buffered = 0

    def _batch(self, bucket: int) -> pa.RecordBatch:
        where = self._where[bucket]
        try:
            batch = self._schema.to_batch(self._rows[bucket])
        except FieldError as exc:
            src, line_no = where[exc.row or 0]
            raise DataError(
                f"{self._paths[src]} line {line_no}: {exc}; this record cannot be exported"
            ) from None
        sources, lines = zip(*where, strict=True)
        positions = [pa.array(sources, pa.int32()), pa.array(lines, pa.int64())]
        return pa.RecordBatch.from_arrays([*batch.columns, *positions], schema=self._spill_schema)


# --- phase 2: dedupe each bucket into a sorted run --------------------------------------------


def _dedupe_buckets(
    schema: EndpointSchema,
    scans: list[_ScanOutput],
    buckets: int,
    spill: Path,
    limits: ExportLimits,
) -> tuple[list[Path], int]:
    """One id-sorted, duplicate-free run file per non-empty bucket; returns (runs, rows kept)."""
    pieces: list[list[tuple[str, int]]] = [[] for _ in range(buckets)]
    for scan in scans:
        for path, index in scan.chunks:
            for bucket, batch_no in index:
                pieces[bucket].append((path, batch_no))
    runs: list[Path] = []
    kept = 0
    for bucket, bucket_pieces in enumerate(pieces):
        if not bucket_pieces:
            continue
        table = _dedupe(pa.Table.from_batches([_read_batch(p, i) for p, i in bucket_pieces]))
        run = spill / f"run-{bucket:05d}.arrow"
        _write_run(run, table, schema, limits, len(pieces))
        runs.append(run)
        kept += table.num_rows
    return runs, kept


def _read_batch(path: str | Path, number: int) -> pa.RecordBatch:
    """One batch of an IPC file, opened just for it: runs and chunks may outnumber open fds."""
    with pa.OSFile(str(path)) as source:
        return pa.ipc.open_file(source).get_batch(number)


def _dedupe(table: pa.Table) -> pa.Table:
    """Sorted by id, the last version of each id (latest updated_at, then latest line)."""
    keys = table.select([name for name, _, _ in _ORDER])
    order = pc.sort_indices(keys, sort_keys=_ORDER)
    ids = table["id"].take(order).combine_chunks()
    if len(ids) > 1:
        changes = pc.not_equal(ids.slice(0, len(ids) - 1), ids.slice(1))
        order = order.filter(pa.concat_arrays([changes, pa.array([True])]))
    return table.take(order).drop_columns([f.name for f in _POSITION_FIELDS])


def _write_run(
    path: Path, table: pa.Table, schema: EndpointSchema, limits: ExportLimits, runs: int
) -> None:
    """Batches sized so that one batch of every run fits in ``merge_bytes`` together."""
    row_bytes = max(1, table.nbytes // max(1, table.num_rows))
    batch_rows = max(16, limits.merge_bytes // max(1, runs) // row_bytes)
    with pa.ipc.new_file(str(path), schema.arrow_schema) as writer:
        writer.write_table(table, max_chunksize=batch_rows)


# --- phase 3: merge the runs into Parquet -----------------------------------------------------


class _RunCursor:
    """Reads one sorted run batch by batch and hands out rows up to a given id."""

    def __init__(self, path: Path) -> None:
        self._path = path
        with pa.OSFile(str(path)) as source:
            self._batches = pa.ipc.open_file(source).num_record_batches
        self._next = 0
        self._batch: pa.RecordBatch | None = None
        self._ids: list[int] = []
        self._pos = 0
        self._advance()

    @property
    def exhausted(self) -> bool:
        return self._batch is None

    @property
    def last_id(self) -> int:
        return self._ids[-1]

    def take_upto(self, bound: int) -> pa.RecordBatch:
        assert self._batch is not None
        end = bisect_right(self._ids, bound, self._pos)
        piece = self._batch.slice(self._pos, end - self._pos)
        self._pos = end
        if end == len(self._ids):
            self._advance()
        return piece

    def _advance(self) -> None:
        self._batch = None
        while self._next < self._batches:
            batch = _read_batch(self._path, self._next)
            self._next += 1
            if batch.num_rows:
                self._batch, self._ids, self._pos = batch, batch["id"].to_pylist(), 0
                return


def _merge_runs(
    schema: EndpointSchema, runs: list[Path], out_dir: Path, limits: ExportLimits
) -> tuple[Path, ...]:
    """K-way merge by id, a batch at a time: each round empties at least one run's batch."""
    if not runs:
        return ()
    writer = _PartWriter(out_dir, limits)
    cursors = [_RunCursor(run) for run in runs]
    while cursors := [c for c in cursors if not c.exhausted]:
        bound = min(c.last_id for c in cursors)
        pieces = [p for p in (c.take_upto(bound) for c in cursors) if p.num_rows]
        table = pa.Table.from_batches(pieces, schema=schema.arrow_schema)
        writer.add(table if len(pieces) == 1 else table.sort_by("id"))
    return writer.close()


class _PartWriter:
    """Appends id-sorted rows to part-NNNNN.parquet files with deterministic cut points.

    A row group is the longest run of rows within ``row_group_rows`` and ``row_group_bytes``
    (raw text plus a fixed overhead per row) that doesn't cross a file boundary; cuts depend
    only on the rows, not on how they arrived, so re-runs write identical files.
    """

    def __init__(self, folder: Path, limits: ExportLimits) -> None:
        self._folder = folder
        self._limits = limits
        self._pending = CURATED_SCHEMA.empty_table()
        self._pending_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0
        self._files: list[Path] = []

    def add(self, table: pa.Table) -> None:
        self._pending = pa.concat_tables([self._pending, to_curated(table)])
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
            self._writer = pq.ParquetWriter(str(path), CURATED_SCHEMA, compression="zstd")
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


# --- publication: each step a function, so a test can make any of them fail ----------------


def _prepare(layout: _Layout) -> None:
    """Create the work folders; refuse when they are not on the live tree's filesystem."""
    layout.current.parent.mkdir(parents=True, exist_ok=True)
    layout.staging.mkdir(parents=True)
    layout.spill.mkdir(parents=True)
    if layout.work.stat().st_dev != layout.current.parent.stat().st_dev:
        raise StorageError(
            f"{layout.work} and {layout.current.parent} are on different filesystems; "
            "an atomic swap needs both under the same output root"
        )


def _publish(layout: _Layout) -> None:
    """Make the staging tree the live one; the old tree is removed only after the swap."""
    _sync_tree(layout.staging)
    if not layout.current.exists():
        _move_in(layout.staging, layout.current)
        _sync_parents(layout)
        return
    if _exchange(layout.staging, layout.current):
        _sync_parents(layout)
        _discard_previous(layout.staging)  # after the exchange it holds the old tree
        return
    _move_aside(layout.current, layout.aside)
    _move_in(layout.staging, layout.current)
    _sync_parents(layout)
    _discard_previous(layout.aside)


def _sync_tree(root: Path) -> None:
    """fsync every file and folder of the new tree before it becomes visible."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            _fsync_path(Path(folder, name))
        _fsync_path(Path(folder))


def _exchange(staging: Path, current: Path) -> bool:
    """Swap the two folders in one step (Linux renameat2); False where that is unsupported."""
    rename = _renameat2()
    if rename is None:
        return False
    if rename(-100, os.fsencode(staging), -100, os.fsencode(current), 2) == 0:  # AT_FDCWD, EXCHANGE
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), str(staging), None, str(current))


_Renameat2 = Callable[[int, bytes, int, bytes, int], int]


def _renameat2() -> _Renameat2 | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return cast(_Renameat2, function)


def _move_aside(current: Path, aside: Path) -> None:
    current.rename(aside)


def _move_in(staging: Path, current: Path) -> None:
    staging.rename(current)


def _sync_parents(layout: _Layout) -> None:
    _fsync_path(layout.current.parent)
    _fsync_path(layout.work)


def _discard_previous(old_tree: Path) -> None:
    """The new tree is live: deleting the old one may fail without harm (next export retries)."""
    try:
        shutil.rmtree(old_tree)
    except OSError as exc:
        log.warning("could not remove the previous curated tree %s: %s", old_tree, exc)


def _rollback(layout: _Layout) -> None:
    """After a failed step, put the dataset back as it was (the same as crash recovery)."""
    try:
        _recover(layout)
    except OSError as exc:  # the original error matters more; the next export retries
        log.warning("could not roll back the export in %s: %s", layout.work, exc)


def _recover(layout: _Layout) -> None:
    """Undo what an interrupted export left: restore a moved-aside tree, drop temp folders."""
    if layout.aside.exists():
        if layout.current.exists():
            shutil.rmtree(layout.aside)  # the new tree made it in; the old one is garbage
        else:
            layout.current.parent.mkdir(parents=True, exist_ok=True)
            layout.aside.rename(layout.current)
            _fsync_path(layout.current.parent)
    for leftover in (layout.staging, layout.spill):
        if leftover.exists():
            shutil.rmtree(leftover)


def _tidy(work: Path) -> None:
    """Remove the now empty work folders up to ``.curated-work``: only the output remains."""
    for folder in (work, *work.parents):
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (another target's work) or already gone
        if folder.name == WORK_DIR:
            return


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
