"""Raw JSONL storage: the exactly-once landing zone.

Each repo x endpoint has one append-only file. A page is appended in one write and flushed,
so the file size after the write is the offset the checkpoint records. Before any checkpoint
save, ``RawStore.sync`` fsyncs every file written since the last save (and the folders of
new files, which ALICE showed is needed for a new file to survive power loss), so a saved
checkpoint never counts bytes that are not durable. On resume a file is cut back to the
offset of the last save: whatever was written after it is fetched again, never kept twice.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import BinaryIO, TypeVar

from gh_collect.durable.atomic import atomic_write, fsync_path
from gh_collect.errors import RawDataMismatchError, StorageError

T = TypeVar("T")


class JsonlSink:
    """One repo x endpoint file, opened at the offset of the last saved checkpoint."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        self.created = not path.exists()
        _guard(path, lambda: path.parent.mkdir(parents=True, exist_ok=True))
        self._file: BinaryIO = _guard(path, lambda: _open_at(path, offset))
        self.offset = offset
        self.dirty = self.created

    def append(self, data: bytes) -> int:
        """Append whole lines; return the new offset, which is what a checkpoint may record."""
        if data:
            _guard(self.path, lambda: self._write(data))
            self.offset += len(data)
            self.dirty = True
        return self.offset

    def _write(self, data: bytes) -> None:
        try:
            self._file.write(data)
            self._file.flush()
        except OSError:
            # Leave no partial line behind: the file must end at a line boundary we recorded.
            self._file.seek(self.offset)
            self._file.truncate(self.offset)
            raise

    def sync(self) -> None:
        if self.dirty:
            _guard(self.path, lambda: os.fsync(self._file.fileno()))
            if self.created:  # the new file's entry, and its folder's, must be durable too
                _guard(self.path.parent, partial(_fsync_parents, self.path))
                self.created = False
            self.dirty = False

    def close(self) -> None:
        self._file.close()


class RawStore:
    """The files a run writes; ``sync`` is the checkpoint's before-save hook."""

    def __init__(self) -> None:
        self._sinks: dict[Path, JsonlSink] = {}
        self._closed_unsynced: dict[Path, bool] = {}  # path -> folder needs fsync too

    def open(self, path: Path, offset: int) -> JsonlSink:
        self.release(path)
        sink = JsonlSink(path, offset)
        self._sinks[path] = sink
        return sink

    def release(self, path: Path) -> None:
        """Close a finished file; its fsync waits for the next save, which needs it anyway."""
        sink = self._sinks.pop(path, None)
        if sink is None:
            return
        if sink.dirty:
            self._closed_unsynced[path] = self._closed_unsynced.get(path, False) or sink.created
        sink.close()

    def sync(self) -> None:
        for sink in self._sinks.values():
            sink.sync()
        for path, new_file in list(self._closed_unsynced.items()):
            _guard(path, partial(fsync_path, path))
            if new_file:
                _guard(path.parent, partial(_fsync_parents, path))
            del self._closed_unsynced[path]

    def take_sync(self) -> Callable[[], None]:
        """What ``sync`` would do, as a job to run later, on another thread.

        The files written so far are handed to the job and count as clean from now on, so
        the checkpoint that runs this job must not be written if the job fails (see
        ``checkpoint._GroupCommit``). fsync by path reaches the data written through any
        descriptor, including one closed since.
        """
        pending = dict(self._closed_unsynced)
        self._closed_unsynced.clear()
        for path, sink in self._sinks.items():
            if sink.dirty:
                pending[path] = sink.created
                sink.dirty = sink.created = False

        def run() -> None:
            for path, new_file in pending.items():
                _guard(path, partial(fsync_path, path))
                if new_file:
                    _guard(path.parent, partial(_fsync_parents, path))

        return run

    def close(self) -> None:
        for path in list(self._sinks):
            self.release(path)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` whole (see ``atomic``): a crash leaves the old or the new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)


def write_lines_atomic(path: Path, lines: Iterable[bytes]) -> None:
    _guard(path, lambda: write_atomic(path, b"".join(lines)))


def _fsync_parents(path: Path) -> None:
    """A new file's folder and the folder above (``endpoint=*`` may be new too)."""
    fsync_path(path.parent)
    fsync_path(path.parent.parent)


def _open_at(path: Path, offset: int) -> BinaryIO:
    """Open cut back to ``offset``; a file shorter than that (or gone) is left as it is."""
    if offset and not path.exists():
        raise _short(path, 0, offset)
    handle = path.open("r+b") if path.exists() else path.open("w+b")
    size = handle.seek(0, os.SEEK_END)
    if size < offset:
        handle.close()
        raise _short(path, size, offset)
    handle.truncate(offset)
    handle.seek(offset)
    return handle


def _short(path: Path, size: int, offset: int) -> RawDataMismatchError:
    return RawDataMismatchError(
        f"{path} is shorter ({size} bytes) than the checkpoint records ({offset}): it was "
        "changed outside gh-collect; restore it from a backup, or run with --force to "
        "start over (this deletes the raw data)"
    )


def _guard(path: Path, action: Callable[[], T]) -> T:
    """Turn OS errors into one-line StorageErrors that say what to do."""
    try:
        return action()
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            hint = "free some space and run the same command again to resume"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "make the output folder writable (output.root) and run again"
        else:
            hint = "check the output folder and run again"
        raise StorageError(f"cannot write {path}: {exc.strerror}; {hint}") from None
