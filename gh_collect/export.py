"""Raw JSONL to a deduplicated, Hive-partitioned Parquet dataset, in bounded memory.

Output: ``<root>/curated/year=Y/source=github/target=T/endpoint=E/part-NNNNN.parquet``, rows
sorted by ``id``, one row per id (latest ``updated_at`` wins; on a tie the later line wins,
files taken in name order). ``repos.jsonl`` becomes ``endpoint=repos`` and is always exported
when present. An endpoint without rows gets no folder. Partition keys (year, source, target,
endpoint) live only in the path, never as data columns, so DuckDB, Polars and
``pyarrow.dataset`` add them as partition columns without a clash; every file has the same
schema (``schemas.CURATED_SCHEMA``) so whole-tree reads need no schema merging.

Bounded memory - an external sort in three passes, per endpoint:

1. Scan. Files are read a line at a time; each line becomes a typed row buffered in one of N
   hash buckets (``id % N``, N chosen from the raw size so a bucket holds ~``bucket_bytes``).
   Once ``flush_bytes`` of input is buffered, each bucket's rows go as one Arrow batch into a
   new spill chunk (bare Arrow IPC messages, located by offset). Every row carries its global
   (file, line) position, and a thinned sample of ids is kept. Large inputs are scanned by
   ``workers`` processes; positions make the result independent of how files were shared.
2. Dedupe. Per bucket (all versions of an id share a bucket): load its batches, sort by (id,
   updated_at, file, line), keep the last row per id, and write the winners cut into N id
   ranges chosen from the sampled ids (one batch per range). Buckets run in the workers too.
3. Write. Per id range, in order: gather that range's batch from every bucket, sort by id,
   append to Parquet. Row groups and files are cut at fixed row/byte counts of the sorted
   rows, so the output bytes do not depend on N, the sample or the workers.

What is exported. With a checkpoint (read from ``raw_dir`` unless given), the dataset is what
it says was collected: each repo x endpoint file is read up to the checkpoint's
``byte_offset`` (bytes after the last save are cut and fetched again on resume, so they are
never exported, a half-written last line included); a raw file missing or shorter than that
offset, or a missing ``repos.jsonl`` after discovery, refuses the export (``ExportRefused``)
before anything is touched, since publishing would replace good curated data with less.
Without a checkpoint (a raw tree built by hand) every byte of every file is read.

Bad data never blocks the export (issue "Nothing lost"): a value that cannot be typed is
null in its column, kept in ``raw`` and counted per endpoint and column
(``EndpointExport.untyped``); a record whose key (``id``) cannot be read cannot join the
table and is dropped, counted (``EndpointExport.unkeyed``); both are logged on one line with
the first place to look. Counts are over the records read, before deduplication. Only a line
that is not UTF-8 JSON (the raw file damaged on disk, which the collector never writes) is
a ``DataError``.

Each pass holds about one flush, one bucket or one range at a time, so peak memory stays at
a few hundred MiB whatever the dataset size, up to ``max_buckets * bucket_bytes`` (16 GiB) of
raw JSON per endpoint; beyond that, buckets grow with the data. Spill files need free disk
of about twice the largest endpoint's raw size, beside the output.

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
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from itertools import chain, pairwise
from pathlib import Path
from typing import TypeVar, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gh_collect.atomic import fsync_path
from gh_collect.checkpoint import (
    DISCOVERY_PHASE,
    CheckpointState,
    CheckpointStatus,
    read_checkpoint,
)
from gh_collect.errors import ConfigError, DataError, ExportRefused, StorageError
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
_T = TypeVar("_T")
_R = TypeVar("_R")
_MAX_SAMPLES = 65_536  # ids sampled per scan task to choose the id ranges
_ROW_OVERHEAD = 64  # bytes counted per row besides its raw text when sizing row groups
# Free text gets neither dictionaries (never pays off) nor min/max statistics (useless, and
# as long as the text); everything else keeps both, for compact files and predicate pushdown.
_FREE_TEXT = {"raw", "body", "title"}
_PARQUET_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": [f.name for f in CURATED_SCHEMA if f.name not in _FREE_TEXT],
    "write_statistics": [f.name for f in CURATED_SCHEMA if f.name not in _FREE_TEXT],
}


@dataclass(frozen=True)
class ExportLimits:
    """Memory and layout knobs; the defaults keep peak RSS to a few hundred MiB."""

    flush_bytes: int = 16 * MiB
    bucket_bytes: int = 16 * MiB
    max_buckets: int = 1024
    row_group_rows: int = 65_536
    row_group_bytes: int = 16 * MiB
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
    # column -> values that could not be typed: null in the column, kept in raw
    untyped: Mapping[str, int] = field(default_factory=dict)
    unkeyed: int = 0  # records dropped: their id cannot be read (still in the raw file)

    def problems(self) -> str:
        """One clause on what could not be typed or keyed; '' when all was clean."""
        parts = []
        if self.untyped:
            columns = ", ".join(f"{name} {count:,}" for name, count in self.untyped.items())
            parts.append(f"untyped values nulled ({columns})")
        if self.unkeyed:
            parts.append(f"{self.unkeyed:,} records without a readable id dropped")
        return f"{self.endpoint}: {' and '.join(parts)}" if parts else ""


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

    def __str__(self) -> str:
        parts = [
            f"{e.endpoint} {e.rows_written:,} rows ({e.duplicates_dropped:,} duplicates dropped)"
            for e in self.endpoints.values()
        ]
        problems = [p for p in (e.problems() for e in self.endpoints.values()) if p]
        tail = f"; {'; '.join(problems)}; all kept in the raw files" if problems else ""
        return f"{', '.join(parts)} in {self.elapsed_s:.1f}s{tail}"


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
    paths: DatasetPaths,
    endpoints: Sequence[str],
    *,
    limits: ExportLimits | None = None,
    state: CheckpointState | None = None,
) -> ExportResult:
    """Rebuild the curated dataset from the raw files and publish it atomically.

    ``state``: the checkpoint the raw files must match; None reads ``paths.checkpoint`` when
    it exists. Raises ExportRefused (nothing touched) when the raw files hold less than it.
    """
    limits = limits or ExportLimits()
    started = time.monotonic()
    if not paths.raw_dir.is_dir():
        raise ExportRefused(f"no dataset at {paths.raw_dir}: run `gh-collect collect` first")
    order = _endpoint_order(endpoints)
    if state is None and paths.checkpoint.exists():
        state = read_checkpoint(paths.checkpoint)
    if state is not None:
        _refuse_if_short(_expected_everywhere(paths, state, order))  # before anything is touched
    inputs = {e: _inputs(paths, state, e) for e in order}
    layout = _Layout.of(paths)
    try:
        _recover(layout)
        _prepare(layout)
        try:
            results = _build_staging(paths, layout, inputs, limits)
            _publish(layout)
        except BaseException:
            _rollback(layout)
            raise
        finally:
            shutil.rmtree(layout.spill, ignore_errors=True)
            _tidy(layout.work)
    except OSError as exc:
        raise _storage_error(layout, exc) from exc
    relocated = {e: _relocate(r, layout) for e, r in results.items()}
    return ExportResult(layout.current, relocated, time.monotonic() - started)


def require_dataset(paths: DatasetPaths, collect_command: str) -> None:
    """Refuse at once, creating nothing, when there is no dataset to export.

    Called before the lock is taken: the lock file would create the dataset's folders.
    ``collect_command`` is what the user should run instead.
    """
    root = paths.root
    if root.exists() and not root.is_dir():
        raise ConfigError(
            f"output.root {root} is not a folder: set output.root to the folder that holds "
            "the dataset (or a new, empty one)"
        )
    if not paths.checkpoint.is_file():
        raise ExportRefused(f"no dataset at {paths.raw_dir}: run `{collect_command}` first")


def _storage_error(layout: _Layout, exc: OSError) -> StorageError:
    """One line: where it failed, why, what to do; read-only root and ENOSPC alike."""
    where = f" at {exc.filename}" if exc.filename else ""
    reason = exc.strerror or str(exc)
    return StorageError(
        f"export to {layout.current} failed{where}: {reason}; free space, or make the output "
        "root a writable folder with nothing in the way, then run again; "
        "the previous curated data is kept"
    )


def _endpoint_order(endpoints: Sequence[str]) -> list[str]:
    """Repos first (always), then the requested endpoints once each; unknown ones fail early."""
    order = list(dict.fromkeys([REPOS_ENDPOINT, *endpoints]))
    for endpoint in order:
        schema_for(endpoint)
    return order


def _relocate(result: EndpointExport, layout: _Layout) -> EndpointExport:
    """The result with its files named where they live now that staging is published."""
    files = tuple(layout.current / f.relative_to(layout.staging) for f in result.output_files)
    return replace(result, output_files=files)


@dataclass(frozen=True)
class _Input:
    """One raw file and how many of its bytes are the dataset (None: all of them)."""

    path: Path
    limit: int | None = None

    @property
    def size(self) -> int:
        size = self.path.stat().st_size
        return size if self.limit is None else min(size, self.limit)


def _inputs(paths: DatasetPaths, state: CheckpointState | None, endpoint: str) -> list[_Input]:
    """The endpoint's raw files in name order (that order breaks updated_at ties).

    Each file the checkpoint knows is read up to its saved offset; others are read whole.
    """
    if endpoint == REPOS_ENDPOINT:
        return [_Input(paths.repos_file)] if paths.repos_file.is_file() else []
    expected = _expected_files(paths, state, endpoint) if state is not None else []
    offsets: dict[Path, int] = {}
    for path, offset in expected:
        offsets[path] = max(offset, offsets.get(path, 0))  # two units, one file: the larger
    folder = paths.endpoint_dir(endpoint)
    found = set(folder.glob("repo=*.jsonl")) if folder.is_dir() else set()
    found |= {path for path in offsets if path.is_file()}
    return [_Input(path, offsets.get(path)) for path in sorted(found)]


def _expected_files(
    paths: DatasetPaths, state: CheckpointState, endpoint: str
) -> list[tuple[Path, int]]:
    """(raw file, bytes the checkpoint says it holds) of each repo x ``endpoint`` unit.

    The one place that knows which file holds a unit.
    """
    return [
        (paths.unit_file(endpoint, repo), repo.endpoints[endpoint].byte_offset)
        for repo in state.repos.values()
        if endpoint in repo.endpoints
    ]


def _expected_everywhere(
    paths: DatasetPaths, state: CheckpointState, endpoints: Sequence[str]
) -> list[tuple[Path, int]]:
    """Every file the export will read that the checkpoint vouches for, with its size.

    ``repos.jsonl`` has no offset: once discovery finished with repos, it must not be empty.
    """
    discovery = state.phases.get(DISCOVERY_PHASE)
    discovered = discovery is not None and discovery.status == CheckpointStatus.COMPLETE
    expected = [(paths.repos_file, 1)] if discovered and state.repos else []
    for endpoint in endpoints:
        if endpoint != REPOS_ENDPOINT:
            expected += _expected_files(paths, state, endpoint)
    return expected


def _refuse_if_short(expected: Sequence[tuple[Path, int]]) -> None:
    """ExportRefused naming the damaged files, when any holds less than the checkpoint says."""
    problems = [p for p in (_shortfall(path, offset) for path, offset in expected) if p]
    if not problems:
        return
    if len(problems) == 1:
        what = f"raw file {problems[0]}"
    else:
        what = (
            f"{len(problems)} raw files are missing or shorter than the checkpoint says "
            f"(first: {problems[0]})"
        )
    raise ExportRefused(
        f"{what}: exporting would publish less than was collected, so the curated data is "
        "kept as it is; restore the raw files, or run `gh-collect collect --force` to "
        "harvest again"
    )


def _shortfall(path: Path, offset: int) -> str | None:
    """What is wrong with ``path`` if it holds fewer than ``offset`` bytes, else None."""
    if offset <= 0:
        return None
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"{path} is missing (the checkpoint counts {offset:,} bytes)"
    if size < offset:
        return f"{path} has {size:,} of the {offset:,} bytes the checkpoint counts"
    return None


# --- building the staging tree ---------------------------------------------------------------


def _build_staging(
    paths: DatasetPaths, layout: _Layout, inputs: Mapping[str, list[_Input]], limits: ExportLimits
) -> dict[str, EndpointExport]:
    """Write every endpoint's Parquet files under the staging folder."""
    results = {}
    for endpoint, files in inputs.items():
        out_dir = layout.staging / paths.curated_endpoint_dir(endpoint).name
        spill = layout.spill / paths.curated_endpoint_dir(endpoint).name
        results[endpoint] = _export_endpoint(schema_for(endpoint), files, out_dir, spill, limits)
    return results


def _export_endpoint(
    schema: EndpointSchema, files: list[_Input], out_dir: Path, spill: Path, limits: ExportLimits
) -> EndpointExport:
    """Scan into hash buckets, dedupe each into id ranges, write the ranges in order."""
    total_bytes = sum(f.size for f in files)
    buckets = max(1, min(limits.max_buckets, math.ceil(total_bytes / limits.bucket_bytes)))
    workers = limits.workers if total_bytes >= limits.parallel_min_bytes else 1
    spill.mkdir(parents=True, exist_ok=True)
    scans = _scan_all(schema, files, buckets, spill, limits, workers)
    bounds = _range_bounds([s.samples for s in scans], buckets)
    runs = _dedupe_all(schema, scans, buckets, bounds, spill, workers)
    _remove_files(path for scan in scans for path in scan.files)  # disk: one copy at a time
    written = _write_ranges(schema, runs, len(bounds) + 1, out_dir, limits)
    shutil.rmtree(spill)
    pa.default_memory_pool().release_unused()  # cached arenas back to the OS before the next
    read = sum(s.records for s in scans)
    skipped = sum(s.skipped for s in scans)
    unkeyed = sum(s.unkeyed for s in scans)
    kept = sum(r.rows for r in runs)
    untyped = _untyped_counts(schema, scans)
    result = EndpointExport(
        schema.endpoint,
        len(files),
        read,
        skipped,
        read - skipped - unkeyed - kept,
        kept,
        written,
        untyped,
        unkeyed,
    )
    _warn_problems(result, scans)
    return result


def _untyped_counts(schema: EndpointSchema, scans: Sequence[_ScanOutput]) -> dict[str, int]:
    """Summed over the scans, in column order (deterministic, whatever the workers)."""
    total: Counter[str] = Counter()
    for scan in scans:
        total.update(dict(scan.untyped))
    return {c.name: total[c.name] for c in schema.columns if total[c.name]}


def _warn_problems(result: EndpointExport, scans: Sequence[_ScanOutput]) -> None:
    """One log line per endpoint with bad data, naming the first record dropped."""
    problems = result.problems()
    if not problems:
        return
    firsts = [scan.first_unkeyed for scan in scans if scan.first_unkeyed]
    where = f"; first dropped: {min(firsts)[2]}" if firsts else ""
    log.warning("%s, kept in the raw files%s", problems, where)


def _remove_files(paths: Iterable[str]) -> None:
    for path in paths:
        Path(path).unlink()


def _map(function: Callable[[_T], _R], tasks: Sequence[_T], workers: int) -> list[_R]:
    """``map`` over worker processes, or in this process when one worker will do.

    Spawned, not forked: forking a process that runs pyarrow's thread pools is unsafe. If the
    workers cannot run (a script calling us without an ``if __name__ == "__main__"`` guard,
    a worker killed for memory), the work is redone here rather than failing the export.
    """
    if workers <= 1 or len(tasks) <= 1:
        return [function(task) for task in tasks]
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context) as pool:
            return list(pool.map(function, tasks))
    except BrokenProcessPool as exc:
        log.warning("export workers failed (%s); continuing in this process", exc)
        return [function(task) for task in tasks]


# --- phase 1: scan raw lines into bucketed spill chunks ------------------------------------


@dataclass(frozen=True)
class _ScanTask:
    """One worker's share of the files; picklable, so it runs the same anywhere."""

    endpoint: str
    files: tuple[tuple[int, str, int | None], ...]  # (global file index, path, bytes to read)
    buckets: int
    folder: str
    name: str
    flush_bytes: int


@dataclass(frozen=True)
class _Piece:
    """Where one Arrow record batch sits in a spill file (an IPC message at ``offset``).

    Spill files are bare IPC messages located by our own index, not IPC files: reading one
    piece is one ``pread``, where an IPC file would have its whole footer parsed each time.
    """

    part: int  # the bucket (phase 1 chunks) or the id range (phase 2 runs) it belongs to
    path: str
    offset: int
    length: int


@dataclass(frozen=True)
class _ScanOutput:
    pieces: tuple[_Piece, ...]  # part = bucket
    files: tuple[str, ...]
    records: int
    skipped: int
    samples: tuple[int, ...]  # every k-th id seen, to choose the id ranges of phase 2
    untyped: tuple[tuple[str, int], ...] = ()  # column -> values nulled
    unkeyed: int = 0  # records dropped: no readable id
    first_unkeyed: tuple[int, int, str] | None = None  # (file index, line, message)


def _scan_all(
    schema: EndpointSchema,
    files: list[_Input],
    buckets: int,
    spill: Path,
    limits: ExportLimits,
    workers: int,
) -> list[_ScanOutput]:
    shares = _split_files(files, workers * 2 if workers > 1 else 1)
    tasks = [
        _ScanTask(schema.endpoint, share, buckets, str(spill), f"t{n:04d}", limits.flush_bytes)
        for n, share in enumerate(shares)
    ]
    return _map(_scan, tasks, workers)


def _split_files(files: list[_Input], shares: int) -> list[tuple[tuple[int, str, int | None], ...]]:
    """Balance files by size over ``shares`` groups (largest first onto the lightest)."""
    groups: list[list[tuple[int, str, int | None]]] = [[] for _ in range(max(1, shares))]
    weights = [0] * len(groups)
    sized = sorted(((f.size, i, f) for i, f in enumerate(files)), key=lambda item: -item[0])
    for size, index, file in sized:
        lightest = weights.index(min(weights))
        groups[lightest].append((index, str(file.path), file.limit))
        weights[lightest] += size
    return [tuple(sorted(group, key=lambda item: item[0])) for group in groups if group]


def _scan(task: _ScanTask) -> _ScanOutput:
    """Read the task's files line by line into the bucket spiller."""
    schema = schema_for(task.endpoint)
    spiller = _Spiller(schema, task)
    tally = _Tally()
    for src, path, limit in task.files:
        for line_no, line in _lines(path, limit):
            row = tally.extract(schema, line, (src, path, line_no))
            if row is not None:
                spiller.add(row, src, line_no, len(line))
    spiller.flush()
    return _ScanOutput(
        tuple(spiller.pieces),
        tuple(spiller.files),
        tally.records,
        tally.skipped,
        tuple(spiller.samples),
        tuple(sorted(spiller.untyped.items())),
        tally.unkeyed,
        tally.first_unkeyed,
    )


class _Tally:
    """Lines read, skipped on purpose, and dropped for want of a readable key."""

    def __init__(self) -> None:
        self.records = self.skipped = self.unkeyed = 0
        self.first_unkeyed: tuple[int, int, str] | None = None

    def extract(
        self, schema: EndpointSchema, line: bytes, where: tuple[int, str, int]
    ) -> Row | None:
        """The line's row, or None when it is skipped or dropped (and counted)."""
        src, path, line_no = where
        self.records += 1
        try:
            row = _extract(schema, line, path, line_no)
        except FieldError as exc:  # no readable key: the record cannot join the table
            self.unkeyed += 1
            self.first_unkeyed = self.first_unkeyed or (
                src,
                line_no,
                f"{path} line {line_no}: {exc}",
            )
            return None
        if row is None:
            self.skipped += 1
        return row


def _lines(path: str, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank line in the first ``limit`` bytes, one at a time.

    The checkpoint's offsets fall between lines; a line cut by the limit is yielded cut (and
    then fails as JSON that is cut short).
    """
    left = math.inf if limit is None else limit
    with Path(path).open("rb") as handle:
        for line_no, line in enumerate(handle, 1):
            if left <= 0:
                return
            if len(line) > left:
                line = line[: int(left)]
            left -= len(line)
            if not line.isspace():
                yield line_no, line


def _extract(schema: EndpointSchema, line: bytes, path: str, line_no: int) -> Row | None:
    """The line's row; FieldError when its key cannot be read, DataError when not JSON."""
    try:
        return schema.extract(line)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} line {line_no}: not UTF-8 text ({exc.reason})") from None
    except ValueError as exc:  # json.JSONDecodeError
        cut = "" if line.endswith(b"\n") else " (last line, no newline: cut short?)"
        raise DataError(f"{path} line {line_no}: not valid JSON{cut}: {exc}") from None


class _Spiller:
    """Rows buffered per bucket; a flush writes every bucket's batch to one new chunk file.

    Also keeps a thinned sample of the ids (every ``step``-th row, the step doubling whenever
    ``_MAX_SAMPLES`` is reached), from which phase 2 picks evenly filled id ranges.
    """

    def __init__(self, schema: EndpointSchema, task: _ScanTask):
        self._schema = schema
        self._task = task
        self._spill_schema = _spill_schema(schema)
        self._rows: list[list[Row]] = [[] for _ in range(task.buckets)]
        self._where: list[list[tuple[int, int]]] = [[] for _ in range(task.buckets)]
        self._buffered = 0
        self._seen = 0
        self._step = 1
        self.untyped: Counter[str] = Counter()
        self.samples: list[int] = []
        self.pieces: list[_Piece] = []
        self.files: list[str] = []

    def add(self, row: Row, src: int, line_no: int, size: int) -> None:
        record_id = cast(int, row[0])  # checked by extract
        bucket = record_id % self._task.buckets
        self._rows[bucket].append(row)
        self._where[bucket].append((src, line_no))
        self._sample(record_id)
        self._buffered += size
        if self._buffered >= self._task.flush_bytes:
            self.flush()

    def _sample(self, record_id: int) -> None:
        self._seen += 1
        if self._seen % self._step:
            return
        self.samples.append(record_id)
        if len(self.samples) >= _MAX_SAMPLES:
            self.samples = self.samples[1::2]
            self._step *= 2

    def flush(self) -> None:
        if not self._buffered:
            return
        path = str(Path(self._task.folder, f"{self._task.name}-{len(self.files):05d}.spill"))
        with _SpillFile(path) as spill:
            for bucket, rows in enumerate(self._rows):
                if rows:
                    self.pieces.append(spill.write(bucket, self._batch(bucket)))
        self.files.append(path)
        self._rows = [[] for _ in range(self._task.buckets)]
        self._where = [[] for _ in range(self._task.buckets)]
        self._buffered = 0

    def _batch(self, bucket: int) -> pa.RecordBatch:
        where = self._where[bucket]
        batch = self._schema.to_batch(self._rows[bucket], self.untyped)
        sources, lines = zip(*where, strict=True)
        positions = [pa.array(sources, pa.int32()), pa.array(lines, pa.int64())]
        return pa.RecordBatch.from_arrays([*batch.columns, *positions], schema=self._spill_schema)


def _spill_schema(schema: EndpointSchema) -> pa.Schema:
    return pa.schema([*schema.arrow_schema, *_POSITION_FIELDS])


class _SpillFile:
    """Appends record batches as IPC messages and says where each one went."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._sink = pa.OSFile(path, "wb")

    def __enter__(self) -> _SpillFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sink.close()

    def write(self, part: int, batch: pa.RecordBatch) -> _Piece:
        offset = self._sink.tell()
        message = batch.serialize()
        self._sink.write(message)
        return _Piece(part, self._path, offset, message.size)


def _read_piece(piece: _Piece, schema: pa.Schema) -> pa.RecordBatch:
    with pa.OSFile(piece.path) as source:
        return pa.ipc.read_record_batch(source.read_at(piece.length, piece.offset), schema)


# --- phase 2: dedupe each bucket, cut it into id ranges -------------------------------------


@dataclass(frozen=True)
class _DedupeTask:
    endpoint: str
    pieces: tuple[_Piece, ...]  # every piece of one bucket
    bounds: tuple[int, ...]
    run: str


@dataclass(frozen=True)
class _Run:
    """A bucket's deduplicated rows, one piece per non-empty id range."""

    pieces: tuple[_Piece, ...]  # part = id range
    rows: int


def _range_bounds(samples: Sequence[Sequence[int]], ranges: int) -> tuple[int, ...]:
    """Ids that cut the id space into about ``ranges`` equally filled ranges.

    Range ``r`` holds ``bounds[r-1] <= id < bounds[r]``. The bounds only spread the work:
    rows come out sorted by id whatever they are, so output never depends on the sample.
    """
    ordered = sorted(chain.from_iterable(samples))
    if not ordered:
        return ()
    cuts = {ordered[len(ordered) * r // ranges] for r in range(1, ranges)}
    return tuple(sorted(cuts - {ordered[0]}))


def _dedupe_all(
    schema: EndpointSchema,
    scans: list[_ScanOutput],
    buckets: int,
    bounds: tuple[int, ...],
    spill: Path,
    workers: int,
) -> list[_Run]:
    by_bucket: list[list[_Piece]] = [[] for _ in range(buckets)]
    for scan in scans:
        for piece in scan.pieces:
            by_bucket[piece.part].append(piece)
    tasks = [
        _DedupeTask(schema.endpoint, tuple(found), bounds, str(spill / f"run-{bucket:05d}.spill"))
        for bucket, found in enumerate(by_bucket)
        if found
    ]
    return _map(_dedupe_bucket, tasks, workers)


def _dedupe_bucket(task: _DedupeTask) -> _Run:
    """Load one bucket (every version of its ids), keep the winners, write them by range."""
    schema = schema_for(task.endpoint)
    spill_schema = _spill_schema(schema)
    batches = [_read_piece(piece, spill_schema) for piece in task.pieces]
    table = _dedupe(pa.Table.from_batches(batches, schema=spill_schema)).combine_chunks()
    ids = table["id"].to_pylist()
    cuts = [0, *(bisect_left(ids, bound) for bound in task.bounds), len(ids)]
    with _SpillFile(task.run) as run:
        pieces = [
            run.write(number, table.slice(start, end - start).to_batches()[0])
            for number, (start, end) in enumerate(pairwise(cuts))
            if end > start
        ]
    return _Run(tuple(pieces), table.num_rows)


def _dedupe(table: pa.Table) -> pa.Table:
    """Sorted by id, the last version of each id (latest updated_at, then latest line)."""
    keys = table.select([name for name, _, _ in _ORDER])
    order = pc.sort_indices(keys, sort_keys=_ORDER)
    ids = table["id"].take(order).combine_chunks()
    if len(ids) > 1:
        changes = pc.not_equal(ids.slice(0, len(ids) - 1), ids.slice(1))
        order = order.filter(pa.concat_arrays([changes, pa.array([True])]))
    return table.take(order).drop_columns([f.name for f in _POSITION_FIELDS])


# --- phase 3: the id ranges in order, into Parquet --------------------------------------------


def _write_ranges(
    schema: EndpointSchema, runs: list[_Run], ranges: int, out_dir: Path, limits: ExportLimits
) -> tuple[Path, ...]:
    """Gather each id range from every run, sort it, append it: globally sorted output."""
    if not runs:
        return ()
    by_range: list[list[_Piece]] = [[] for _ in range(ranges)]
    for run in runs:
        for piece in run.pieces:
            by_range[piece.part].append(piece)
    writer = _PartWriter(out_dir, limits)
    for pieces in by_range:
        if pieces:
            batches = [_read_piece(piece, schema.arrow_schema) for piece in pieces]
            table = pa.Table.from_batches(batches, schema=schema.arrow_schema)
            writer.add(table.sort_by("id"))
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
            self._writer = pq.ParquetWriter(str(path), CURATED_SCHEMA, **_PARQUET_OPTIONS)
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
            fsync_path(Path(folder, name))
        fsync_path(Path(folder))


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
    fsync_path(layout.current.parent)
    fsync_path(layout.work)


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
            fsync_path(layout.current.parent)
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
