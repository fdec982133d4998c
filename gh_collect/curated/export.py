"""Raw JSONL to a deduplicated, Hive-partitioned Parquet dataset, in bounded memory.

Output: ``<root>/curated/year=Y/source=github/target=T/endpoint=E/part-NNNNN.parquet``, rows
sorted by the endpoint's key (``id``), one row per key (the latest version, ``updated_at``,
wins; on a tie the later line wins, files taken in name order); key and version come from the
endpoint's declaration. ``repos.jsonl`` becomes ``endpoint=repos`` and is always exported
when present. An endpoint without rows gets no folder. Partition keys (year, source, target,
endpoint) live only in the path, never as data columns, so DuckDB, Polars and
``pyarrow.dataset`` add them as partition columns without a clash; every file has the same
schema (``schemas.curated_schema()``) so whole-tree reads need no schema merging.

This module is the entry point and the per-endpoint orchestration; each step of the flow
lives in its own module, in the order it runs:

* ``inputs``: which raw files, and how many bytes of each, checked against the checkpoint;
  ``ExportRefused`` before anything is touched when they hold less than it says.
* ``scan`` (pass 1): lines into typed rows, spilled in hash buckets (``spill``), keys sampled.
* ``dedupe`` (pass 2): per bucket, one row per key, the latest version winning, cut into key
  ranges.
* ``parts`` (pass 3): the ranges in key order into Parquet files of ``curated_schema()``.
* ``publish``: the new tree built in staging, swapped in atomically, rolled back or recovered.

Bounded memory: each pass holds about one flush, one bucket or one range at a time, so peak
memory stays at a few hundred MiB whatever the dataset size, up to ``max_buckets *
bucket_bytes`` (16 GiB) of raw JSON per endpoint; beyond that, buckets grow with the data.
Spill files need free disk of about twice the largest endpoint's raw size, beside the output.
Large inputs are scanned and deduplicated by ``workers`` processes (module ``workers``).

Bad data never blocks the export (issue "Nothing lost"): a value that cannot be typed is
null in its column, kept in ``raw`` and counted per endpoint and column
(``EndpointExport.untyped``); a record whose key (``id``) cannot be read cannot join the
table and is dropped, counted (``EndpointExport.unkeyed``); both are logged on one line with
the first place to look. Counts are over the records read, before deduplication. Only a line
that is not UTF-8 JSON (the raw file damaged on disk, which the collector never writes) is
a ``DataError``.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa

from gh_collect.curated import parts, publish
from gh_collect.curated.dedupe import dedupe_all
from gh_collect.curated.inputs import (
    REPOS_ENDPOINT,
    Input,
    expected_everywhere,
    inputs_of,
    refuse_if_short,
)
from gh_collect.curated.limits import ExportLimits, MiB
from gh_collect.curated.publish import WORK_DIR, Layout
from gh_collect.curated.scan import ScanOutput, range_bounds, scan_all
from gh_collect.curated.schemas import EndpointSchema, schema_for
from gh_collect.durable.checkpoint import CheckpointState, read_checkpoint
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import ConfigError, ExportRefused, StorageError

__all__ = [
    "REPOS_ENDPOINT",
    "WORK_DIR",
    "EndpointExport",
    "ExportLimits",
    "ExportResult",
    "MiB",
    "export_dataset",
    "require_dataset",
]

log = logging.getLogger(__name__)


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
        clauses = []
        if self.untyped:
            columns = ", ".join(f"{name} {count:,}" for name, count in self.untyped.items())
            clauses.append(f"untyped values nulled ({columns})")
        if self.unkeyed:
            clauses.append(f"{self.unkeyed:,} records without a readable id dropped")
        return f"{self.endpoint}: {' and '.join(clauses)}" if clauses else ""


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
        counts = [
            f"{e.endpoint} {e.rows_written:,} rows ({e.duplicates_dropped:,} duplicates dropped)"
            for e in self.endpoints.values()
        ]
        problems = [p for p in (e.problems() for e in self.endpoints.values()) if p]
        tail = f"; {'; '.join(problems)}; all kept in the raw files" if problems else ""
        return f"{', '.join(counts)} in {self.elapsed_s:.1f}s{tail}"


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
        refuse_if_short(expected_everywhere(paths, state, order))  # before anything is touched
    sources = {e: inputs_of(paths, state, e) for e in order}
    layout = Layout.of(paths)
    try:
        publish.recover(layout)
        publish.prepare(layout)
        try:
            results = _build_staging(paths, layout, sources, limits)
            publish.publish(layout)
        except BaseException:
            publish.rollback(layout)
            raise
        finally:
            shutil.rmtree(layout.spill, ignore_errors=True)
            publish.tidy(layout.work)
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


def _storage_error(layout: Layout, exc: OSError) -> StorageError:
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


def _relocate(result: EndpointExport, layout: Layout) -> EndpointExport:
    """The result with its files named where they live now that staging is published."""
    files = tuple(layout.current / f.relative_to(layout.staging) for f in result.output_files)
    return replace(result, output_files=files)


# --- building the staging tree ---------------------------------------------------------------


def _build_staging(
    paths: DatasetPaths, layout: Layout, inputs: Mapping[str, list[Input]], limits: ExportLimits
) -> dict[str, EndpointExport]:
    """Write every endpoint's Parquet files under the staging folder."""
    results = {}
    for endpoint, files in inputs.items():
        out_dir = layout.staging / paths.curated_endpoint_dir(endpoint).name
        spill = layout.spill / paths.curated_endpoint_dir(endpoint).name
        results[endpoint] = _export_endpoint(schema_for(endpoint), files, out_dir, spill, limits)
    return results


def _export_endpoint(
    schema: EndpointSchema, files: list[Input], out_dir: Path, spill: Path, limits: ExportLimits
) -> EndpointExport:
    """Scan into hash buckets, dedupe each into key ranges, write the ranges in order."""
    total_bytes = sum(f.size for f in files)
    buckets = max(1, min(limits.max_buckets, math.ceil(total_bytes / limits.bucket_bytes)))
    workers = limits.workers if total_bytes >= limits.parallel_min_bytes else 1
    spill.mkdir(parents=True, exist_ok=True)
    scans = scan_all(schema, files, buckets, spill, limits, workers)
    bounds = range_bounds([s.samples for s in scans], buckets)
    runs = dedupe_all(schema, scans, buckets, bounds, spill, workers)
    _remove_files(path for scan in scans for path in scan.files)  # disk: one copy at a time
    written = parts.write_ranges(schema, runs, len(bounds) + 1, out_dir, limits)
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


def _untyped_counts(schema: EndpointSchema, scans: Sequence[ScanOutput]) -> dict[str, int]:
    """Summed over the scans, in column order (deterministic, whatever the workers)."""
    total: Counter[str] = Counter()
    for scan in scans:
        total.update(dict(scan.untyped))
    return {c.name: total[c.name] for c in schema.columns if total[c.name]}


def _warn_problems(result: EndpointExport, scans: Sequence[ScanOutput]) -> None:
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
