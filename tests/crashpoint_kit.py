"""Crash-point injection shared by tests/test_crashpoints.py and the crashing child process.

Kept apart from the test module so the ``os._exit`` child imports only gh_collect (no pytest,
no test fixtures): a crash test's cost is then mostly the harvest, not the imports.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gh_collect.curated import publish as publish_module
from gh_collect.durable.atomic import SAVE_STEPS

CRASH_EXIT = 99  # the child's exit status when the crash point fired
TOKEN_ENV = "GH_CRASH_TOKEN"


class InjectedCrash(RuntimeError):
    """An exception where no I/O happens: stands for a bug surfacing at that point."""


@dataclass(frozen=True)
class Point:
    """A named place to fail: ``owner.attr`` fails on its ``at_call``-th call.

    ``torn``: do half the work first (a write cut short); ``after``: fail once the call has
    returned; ``io``: the real step fails with OSError, which must reach the user as a
    one-line StorageError; ``fallback``: publish without renameat2 (move aside, move in).
    """

    id: str
    owner: str
    attr: str
    at_call: int
    torn: bool = False
    after: bool = False
    io: bool = True
    fallback: bool = False


WRITE_POINTS = [
    Point("append-page-torn", "gh_collect.durable.storage:JsonlSink", "_write", 4, torn=True),
    Point(
        "update-state",
        "gh_collect.durable.checkpoint:CheckpointManager",
        "record_page",
        4,
        io=False,
    ),
    Point("fsync-data", "gh_collect.durable.storage", "fsync_path", 1),  # a data file, first
    Point("fsync-new-file-folder", "gh_collect.durable.storage", "fsync_path", 2),
    Point("discovery-repos-file", "gh_collect.durable.storage", "write_atomic", 1),
    *(
        Point(f"save-{step.lstrip('_')}", "gh_collect.durable.atomic", step, 4)
        for step in SAVE_STEPS
    ),
    Point("save-write_temp-torn", "gh_collect.durable.atomic", "_write_temp", 4, torn=True),
    Point(
        "save-done",
        "gh_collect.durable.checkpoint:CheckpointManager",
        "_write",
        4,
        after=True,
        io=False,
    ),
]
PUBLISH_STEPS = ("_build_staging", "_sync_tree", "_exchange", "_sync_parents", "_discard_previous")
FALLBACK_STEPS = ("_move_aside", "_move_in", "_sync_parents", "_discard_previous")


def _step_module(step: str) -> str:
    """Where a publication step lives: staging is built by export, the rest is publish's."""
    return "gh_collect.curated.export" if step == "_build_staging" else "gh_collect.curated.publish"


EXPORT_POINTS = [
    *(Point(f"publish{step}", _step_module(step), step, 1) for step in PUBLISH_STEPS),
    *(Point(f"fallback{s}", _step_module(s), s, 1, fallback=True) for s in FALLBACK_STEPS),
]
FIRST_EXPORT_POINTS = [
    Point(f"first{step}", _step_module(step), step, 1)
    for step in ("_build_staging", "_sync_tree", "_move_in", "_sync_parents")
]
ALL_POINTS = {p.id: p for p in [*WRITE_POINTS, *EXPORT_POINTS, *FIRST_EXPORT_POINTS]}
VARIANTS = ("exception", "exit")


# --- injection ---------------------------------------------------------------------------------


class _OsProxy:
    """``os`` as storage sees it, with one function replaced: checkpoint's os stays real."""

    def __init__(self, **replaced: Any) -> None:
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def _owner(point: Point) -> tuple[Any, str]:
    module_name, _, cls = point.owner.partition(":")
    module = importlib.import_module(module_name)
    return (getattr(module, cls) if cls and cls != "os" else module), cls


def _fail(point: Point, variant: str) -> None:
    if variant == "exit":
        os._exit(CRASH_EXIT)
    if point.io:
        raise OSError(errno.EIO, f"injected failure at {point.id}")
    raise InjectedCrash(point.id)


class _TornFile:
    """The sink's file, whose next write stops halfway and fails as a full disk does."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def write(self, data: bytes) -> int:
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, "injected: no space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def _torn(point: Point, variant: str, real: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """A write cut short. A crash leaves the half on disk; an error runs the real step's own
    recovery, which is what is under test (for appends: cut the file back to its offset)."""
    if point.attr == "_write_temp":
        fd, data = args
        real(fd, data[: len(data) // 2])
        return _fail(point, variant)
    sink, data = args  # JsonlSink._write(self, data)
    if variant == "exit":
        sink._file.write(data[: len(data) // 2])
        sink._file.flush()
        return _fail(point, variant)
    file, sink._file = sink._file, _TornFile(sink._file)
    try:
        return real(sink, data)
    finally:
        sink._file = file


def install(point: Point, variant: str, setattr_: Callable[[Any, str, Any], None]) -> list[int]:
    """Replace the point's function; returns a one-item list counting the crashes fired."""
    owner, kind = _owner(point)
    real = getattr(os if kind == "os" else owner, point.attr)
    state = {"calls": 0}
    fired = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state["calls"] += 1
        if state["calls"] != point.at_call:
            return real(*args, **kwargs)
        fired[0] += 1
        if point.after:
            result = real(*args, **kwargs)
            _fail(point, variant)
            return result
        if point.torn:
            return _torn(point, variant, real, args)
        _fail(point, variant)
        return None

    if kind == "os":
        setattr_(owner, "os", _OsProxy(**{point.attr: wrapper}))
    else:
        setattr_(owner, point.attr, wrapper)
    if point.fallback:
        setattr_(publish_module, "_exchange", lambda _staging, _current: False)
    return fired


def child_main(point_id: str, action: str, config_path: str, endpoints: str = "") -> None:
    """Entry of the ``os._exit`` variant: crash at the point inside a real process."""
    point = ALL_POINTS[point_id]
    install(point, "exit", setattr)
    from gh_collect.config import load_config
    from gh_collect.curated.export import export_dataset
    from gh_collect.durable.paths import DatasetPaths
    from gh_collect.harvest.run import RunOptions, collect

    config = load_config(Path(config_path))
    if action == "collect":
        collect(config, os.environ[TOKEN_ENV], RunOptions(export=False))
    else:
        paths = DatasetPaths(config.output.root, config.year, config.target.org)
        export_dataset(paths, endpoints.split(","))
    os._exit(0)  # the crash point was never reached


if __name__ == "__main__":
    child_main(*sys.argv[1:])
