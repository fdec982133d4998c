"""Replacing a whole file so that a crash at any instant leaves the old or the new content.

The steps are named module functions (``SAVE_STEPS``) so crash-point tests can inject a
failure at each one: create a temp file beside the target, write it, fsync it, rename it
over the target, fsync the folder. The last step is the one applications forget (ALICE): a
rename that is not made durable can come back as the old name after a power cut.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

SAVE_STEPS = ("_create_temp", "_write_temp", "_fsync_file", "_replace", "_fsync_dir")


def _create_temp(target: Path) -> tuple[int, Path]:
    """A fresh temp file beside ``target`` (same filesystem, so the rename is atomic).

    Mode 0o666 lets the user's umask decide permissions, as for any file they create.
    """
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    return os.open(temp, flags, 0o666), temp


def _write_temp(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_file(fd: int) -> None:
    os.fsync(fd)


def _replace(temp: Path, target: Path) -> None:
    temp.replace(target)  # os.replace: atomic on POSIX when both are in one folder


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; without it a power cut can bring the old name back."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some filesystems cannot sync a directory; there is nothing more we can do there.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def atomic_write(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` so that a crash leaves the old or the new content.

    On any exception before the rename the temp file is removed and ``target`` is untouched.
    """
    fd, temp = _create_temp(target)
    try:
        try:
            _write_temp(fd, data)
            _fsync_file(fd)
        finally:
            os.close(fd)
        _replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder's entries are what make a new file findable)."""
    if path.is_dir():
        _fsync_dir(path)
    else:
        _fsync_regular(path)


def _fsync_regular(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
