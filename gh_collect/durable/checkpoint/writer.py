"""Writing checkpoint.json: what a save costs, and where it runs.

``Renderer`` serialises only the repos touched since the last save; ``GroupCommit`` runs the
fsyncs and the atomic write on one background thread, so the event loop never waits on a
disk (saves asked for meanwhile share one write). Both are the manager's internals.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from gh_collect.durable.checkpoint.state import CheckpointState, RepoProgress

__all__ = ["GroupCommit", "Renderer", "remove_stale_temps"]


def remove_stale_temps(target: Path) -> None:
    """Temp files a killed run left behind; only called while holding the lock."""
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


class Renderer:
    """checkpoint.json's bytes, serializing again only the repos touched since the last save.

    At 5,000 repos the file is ~6 MB and serializing it whole took 50 ms; saved every 10
    pages, that made a run's saving cost grow with repos squared. A repo's entry is cached
    until the manager touches the repo (every read-modify path goes through
    ``CheckpointManager._repo_entry``) or the repo object is replaced. The output is the same
    indented JSON as ``model_dump_json(indent=2)``, with ``repos`` as the last key.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[RepoProgress, str]] = {}

    def touch(self, name: str) -> None:
        self._entries.pop(name, None)

    def forget(self) -> None:
        self._entries.clear()

    def render(self, state: CheckpointState) -> bytes:
        head = state.model_dump_json(indent=2, exclude={"repos"})
        if not state.repos:
            return (head[: -len("\n}")] + ',\n  "repos": {}\n}\n').encode()
        entries = ",\n    ".join(self._entry(name, repo) for name, repo in state.repos.items())
        return (head[: -len("\n}")] + ',\n  "repos": {\n    ' + entries + "\n  }\n}\n").encode()

    def _entry(self, name: str, repo: RepoProgress) -> str:
        cached = self._entries.get(name)
        if cached is None or cached[0] is not repo:
            value = repo.model_dump_json(indent=2).replace("\n", "\n    ")
            cached = (repo, f"{json.dumps(name, ensure_ascii=False)}: {value}")
            self._entries[name] = cached
        return cached[1]


class _Batch:
    __slots__ = ("data", "future", "syncs")

    def __init__(self) -> None:
        self.syncs: list[Callable[[], None]] = []
        self.data = b""
        self.future: Future[None] = Future()


class GroupCommit:
    """Checkpoint writes on one background thread; saves asked for meanwhile share a write.

    A save waits on fsyncs (the data files, the temp file, the folder), a few milliseconds
    that, spent on the event loop, stalled every request in flight. Here the loop only takes
    a snapshot (which files to fsync, the checkpoint's bytes) and the thread writes it.
    Writes land in the order asked; a save asked while another is being written joins the
    next write, which fsyncs the files of every save in it and writes the newest state
    (group commit, as databases do with their logs). Once a write fails every later one
    fails with the same error: the fsyncs it owed were lost with it, so no later checkpoint
    may count those bytes.
    """

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self._next: _Batch | None = None
        self._last: Future[None] | None = None
        self._failed: BaseException | None = None
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, sync: Callable[[], None], data: bytes) -> Future[None]:
        with self._lock:
            if self._next is None:
                self._next = _Batch()
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(1, thread_name_prefix="checkpoint")
                self._executor.submit(self._write_next)
            batch = self._next
            batch.syncs.append(sync)
            batch.data = data
            self._last = batch.future
            return batch.future

    def _write_next(self) -> None:
        with self._lock:
            batch, self._next = self._next, None
        assert batch is not None
        try:
            if self._failed is not None:
                raise self._failed
            for sync in batch.syncs:
                sync()
            self._write(batch.data)
        except BaseException as exc:
            self._failed = self._failed or exc
            batch.future.set_exception(exc)
        else:
            batch.future.set_result(None)

    def fail(self, exc: BaseException) -> None:
        """A save outside the writer lost its fsyncs: every later write fails with it."""
        with self._lock:
            self._failed = self._failed or exc

    def check(self) -> None:
        """Raise the error of a write that failed, if one did."""
        if self._failed is not None:
            raise self._failed

    def wait(self) -> None:
        """Block until every write asked for has landed; raises if one failed."""
        last = self._last
        if last is not None:
            last.result()
        if self._failed is not None:
            raise self._failed

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
