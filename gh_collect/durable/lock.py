"""One run at a time per dataset: an advisory lock on the dataset folder itself.

The lock used to be a ``flock`` on ``checkpoint.json.lock``. Deleting that file (a natural
reaction to what looks like a stale lock) let a second run lock a new file of the same name
while the first still ran, and two exports at once left the curated data unreadable. The
lock is now a ``flock`` on the dataset folder (``raw_dir``), which nobody deletes by hand
while keeping the data; the kernel drops it when the holder exits, even on ``kill -9``, so
it is never stale. ``checkpoint.json.lock`` still receives the holder's pid, only so that a
refused run can name it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from gh_collect.errors import LockHeldError, StorageError

__all__ = ["DatasetLock"]


class DatasetLock:
    """Exclusive, non-blocking lock on ``folder``; ``holder_file`` gets the holder's pid.

    ``action`` ends the refusal message: what the refused user should do.
    """

    def __init__(
        self, folder: Path, holder_file: Path, *, action: str = "wait for it or stop it"
    ) -> None:
        self.folder, self.holder_file, self.action = Path(folder), Path(holder_file), action
        self._fd: int | None = None

    @property
    def is_locked(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise LockHeldError (exit 3); the folder must exist."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise StorageError(f"cannot lock {self.folder}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeldError(self._held_message()) from None
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"cannot lock {self.folder}: {exc.strerror or exc}") from None
        self._fd = fd
        self._write_holder()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> DatasetLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _write_holder(self) -> None:
        try:
            fd = os.open(self.holder_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            finally:
                os.close(fd)
        except OSError as exc:
            self.release()
            raise StorageError(
                f"cannot write {self.holder_file}: {exc.strerror or exc}; "
                "make the output folder writable (output.root) and run again"
            ) from None

    def _held_message(self) -> str:
        pid = _read_pid(self.holder_file)
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        return f"another gh-collect run holds {self.holder_file} ({holder}); {self.action}"


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
