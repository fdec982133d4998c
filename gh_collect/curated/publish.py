"""Atomic publication of the curated tree: staging, the swap, rollback and crash recovery.

The complete new tree is built in ``<root>/.curated-work/<partition>/staging`` (outside
``curated/`` so readers' ``curated/**`` globs never see it, on the same filesystem so renames
are atomic), fsynced, then swapped with the live folder: one ``renameat2(RENAME_EXCHANGE)`` on
Linux (readers see the old or the new tree, never none), elsewhere "move the live tree aside,
move the new one in". The old tree is then deleted. Each step is a small function
(``_sync_tree``, ``_exchange``, ``_move_aside``, ``_move_in``, ``_sync_parents``,
``_discard_previous``), looked up on this module when called, so a test can make any of them
fail. A failing step is rolled back at once (``rollback``); after a hard crash the next
export's ``recover`` puts a moved-aside tree back (or drops it if the new one made it in) and
removes leftover staging and spill folders. Callers must not run two exports of one dataset
at once (the CLI holds the dataset lock).

Its own module because it is the only code that touches the live ``curated/`` folder: what it
does to the files is independent of what is in them.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from gh_collect.durable.atomic import fsync_path
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import StorageError

log = logging.getLogger(__name__)

WORK_DIR = ".curated-work"  # beside curated/, never inside it: readers glob curated/**


@dataclass(frozen=True)
class Layout:
    """The live folder and the work folders of one dataset's export."""

    current: Path
    work: Path

    @classmethod
    def of(cls, paths: DatasetPaths) -> Layout:
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


def prepare(layout: Layout) -> None:
    """Create the work folders; refuse when they are not on the live tree's filesystem."""
    layout.current.parent.mkdir(parents=True, exist_ok=True)
    layout.staging.mkdir(parents=True)
    layout.spill.mkdir(parents=True)
    if layout.work.stat().st_dev != layout.current.parent.stat().st_dev:
        raise StorageError(
            f"{layout.work} and {layout.current.parent} are on different filesystems; "
            "an atomic swap needs both under the same output root"
        )


def publish(layout: Layout) -> None:
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


def _sync_parents(layout: Layout) -> None:
    fsync_path(layout.current.parent)
    fsync_path(layout.work)


def _discard_previous(old_tree: Path) -> None:
    """The new tree is live: deleting the old one may fail without harm (next export retries)."""
    try:
        shutil.rmtree(old_tree)
    except OSError as exc:
        log.warning("could not remove the previous curated tree %s: %s", old_tree, exc)


def rollback(layout: Layout) -> None:
    """After a failed step, put the dataset back as it was (the same as crash recovery)."""
    try:
        recover(layout)
    except OSError as exc:  # the original error matters more; the next export retries
        log.warning("could not roll back the export in %s: %s", layout.work, exc)


def recover(layout: Layout) -> None:
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


def tidy(work: Path) -> None:
    """Remove the now empty work folders up to ``.curated-work``: only the output remains."""
    for folder in (work, *work.parents):
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (another target's work) or already gone
        if folder.name == WORK_DIR:
            return
