"""Spill files: the Arrow batches the passes hand each other on disk, located by offset.

The scan writes bucketed chunks, the dedupe writes per-bucket runs cut into key ranges, the
part writer reads the ranges back: all three share this format, so it lives apart from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from gh_collect.curated.schemas import EndpointSchema

# Every spilled row carries its global (file, line) position: the tie-break of "latest wins".
POSITION_FIELDS = [pa.field("_src", pa.int32()), pa.field("_line", pa.int64())]


@dataclass(frozen=True)
class Piece:
    """Where one Arrow record batch sits in a spill file (an IPC message at ``offset``).

    Spill files are bare IPC messages located by our own index, not IPC files: reading one
    piece is one ``pread``, where an IPC file would have its whole footer parsed each time.
    """

    part: int  # the bucket (phase 1 chunks) or the id range (phase 2 runs) it belongs to
    path: str
    offset: int
    length: int


def spill_schema(schema: EndpointSchema) -> pa.Schema:
    """The endpoint's columns followed by the row's position (``POSITION_FIELDS``)."""
    return pa.schema([*schema.arrow_schema, *POSITION_FIELDS])


class SpillFile:
    """Appends record batches as IPC messages and says where each one went."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._sink = pa.OSFile(path, "wb")

    def __enter__(self) -> SpillFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sink.close()

    def write(self, part: int, batch: pa.RecordBatch) -> Piece:
        offset = self._sink.tell()
        message = batch.serialize()
        self._sink.write(message)
        return Piece(part, self._path, offset, message.size)


def read_piece(piece: Piece, schema: pa.Schema) -> pa.RecordBatch:
    with pa.OSFile(piece.path) as source:
        return pa.ipc.read_record_batch(source.read_at(piece.length, piece.offset), schema)
