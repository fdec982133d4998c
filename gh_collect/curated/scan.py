"""Pass 1 of the export: raw JSONL lines into typed rows, spilled in hash buckets.

Files are read a line at a time; each line becomes a typed row buffered in one of N hash
buckets (``key % N``, a text key by its CRC-32; N chosen from the raw size so a bucket
holds ~``bucket_bytes``). Once
``flush_bytes`` of input is buffered, each bucket's rows go as one Arrow batch into a new spill
chunk. Every row carries its global (file, line) position, and a thinned sample of keys is
kept, from which ``range_bounds`` picks the key ranges of the later passes. Large inputs are
scanned by ``workers`` processes; positions make the result independent of how files were
shared.

Its own module because it is the only place raw bytes are read, and what goes wrong with them
(a line that is not JSON, a record without a readable key) is decided and counted here. Keys
are integers (``id``) or text (a commit's ``sha``); either kind is sampled and cut by its
own order.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import cast

import pyarrow as pa

from gh_collect.curated.inputs import Input
from gh_collect.curated.limits import ExportLimits
from gh_collect.curated.schemas import EndpointSchema, FieldError, Row, schema_for
from gh_collect.curated.spill import Piece, SpillFile, spill_schema
from gh_collect.curated.workers import run_tasks
from gh_collect.errors import DataError

_MAX_SAMPLES = 65_536  # keys sampled per scan task to choose the key ranges

Key = int | str


@dataclass(frozen=True)
class ScanTask:
    """One worker's share of the files; picklable, so it runs the same anywhere."""

    endpoint: str
    files: tuple[tuple[int, str, int | None], ...]  # (global file index, path, bytes to read)
    buckets: int
    folder: str
    name: str
    flush_bytes: int


@dataclass(frozen=True)
class ScanOutput:
    pieces: tuple[Piece, ...]  # part = bucket
    files: tuple[str, ...]
    records: int
    skipped: int
    samples: tuple[Key, ...]  # every k-th key seen, to choose the key ranges of phase 2
    untyped: tuple[tuple[str, int], ...] = ()  # column -> values nulled
    unkeyed: int = 0  # records dropped: no readable key
    first_unkeyed: tuple[int, int, str] | None = None  # (file index, line, message)


def scan_all(
    schema: EndpointSchema,
    files: list[Input],
    buckets: int,
    spill: Path,
    limits: ExportLimits,
    workers: int,
) -> list[ScanOutput]:
    shares = _split_files(files, workers * 2 if workers > 1 else 1)
    tasks = [
        ScanTask(schema.endpoint, share, buckets, str(spill), f"t{n:04d}", limits.flush_bytes)
        for n, share in enumerate(shares)
    ]
    return run_tasks(_scan, tasks, workers)


def range_bounds(samples: Sequence[Sequence[Key]], ranges: int) -> tuple[Key, ...]:
    """Keys that cut the key space into about ``ranges`` equally filled ranges.

    Range ``r`` holds ``bounds[r-1] <= key < bounds[r]``. The bounds only spread the work:
    rows come out sorted by key whatever they are, so output never depends on the sample.
    """
    ordered: list[Key] = sorted(chain.from_iterable(samples))
    if not ordered:
        return ()
    cuts = {ordered[len(ordered) * r // ranges] for r in range(1, ranges)}
    return tuple(sorted(cuts - {ordered[0]}))


def _bucket(key: object, buckets: int) -> int:
    """A key's hash bucket: the integer itself, a text key's CRC-32 (stable across runs and
    processes, unlike ``hash``)."""
    if isinstance(key, int):
        return key % buckets
    return zlib.crc32(str(key).encode("utf-8", "surrogatepass")) % buckets


def _split_files(files: list[Input], shares: int) -> list[tuple[tuple[int, str, int | None], ...]]:
    """Balance files by size over ``shares`` groups (largest first onto the lightest)."""
    groups: list[list[tuple[int, str, int | None]]] = [[] for _ in range(max(1, shares))]
    weights = [0] * len(groups)
    sized = sorted(((f.size, i, f) for i, f in enumerate(files)), key=lambda item: -item[0])
    for size, index, file in sized:
        lightest = weights.index(min(weights))
        groups[lightest].append((index, str(file.path), file.limit))
        weights[lightest] += size
    return [tuple(sorted(group, key=lambda item: item[0])) for group in groups if group]


def _scan(task: ScanTask) -> ScanOutput:
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
    return ScanOutput(
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

    Also keeps a thinned sample of the keys (every ``step``-th row, the step doubling whenever
    ``_MAX_SAMPLES`` is reached), from which phase 2 picks evenly filled key ranges.
    """

    def __init__(self, schema: EndpointSchema, task: ScanTask):
        self._schema = schema
        self._key = schema.key_index
        self._task = task
        self._spill_schema = spill_schema(schema)
        self._rows: list[list[Row]] = [[] for _ in range(task.buckets)]
        self._where: list[list[tuple[int, int]]] = [[] for _ in range(task.buckets)]
        self._buffered = 0
        self._seen = 0
        self._step = 1
        self.untyped: Counter[str] = Counter()
        self.samples: list[Key] = []
        self.pieces: list[Piece] = []
        self.files: list[str] = []

    def add(self, row: Row, src: int, line_no: int, size: int) -> None:
        record_id = cast(Key, row[self._key])  # an int or a str: checked by extract
        bucket = _bucket(record_id, self._task.buckets)
        self._rows[bucket].append(row)
        self._where[bucket].append((src, line_no))
        self._sample(record_id)
        self._buffered += size
        if self._buffered >= self._task.flush_bytes:
            self.flush()

    def _sample(self, record_id: Key) -> None:
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
        with SpillFile(path) as spill:
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
