"""Checkpoint: the progress state that lets a run stop at any instant and resume exactly.

Exactly-once rests on three things kept here:

* a saved checkpoint never counts bytes that are not durable: ``before_save`` (the storage
  layer's flush + fsync) runs before every save, and a save does not happen if it fails;
* a save is atomic: temp file in the same folder, fsync, ``os.replace``, fsync of the folder,
  so a crash at any instant leaves the old checkpoint or the new one, never a mix;
* a checkpoint that cannot be read is never overwritten: it raises CorruptCheckpointError.

The write steps are module-level functions named in ``SAVE_STEPS`` so that crash-point tests
can replace any one of them (raise, or ``os._exit``) and check what is left on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Protocol, TypeAlias

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gh_collect.atomic import SAVE_STEPS, atomic_write
from gh_collect.config import CheckpointSettings, Config, RateLimitSettings, describe_changes
from gh_collect.errors import (
    CheckpointError,
    CorruptCheckpointError,
    DigestMismatchError,
    StorageError,
    UsageError,
)
from gh_collect.lock import DatasetLock
from gh_collect.paths import safe_part, unique_part

__all__ = [
    "DISCOVERY_PHASE",
    "FORMAT_VERSION",
    "SAVE_STEPS",
    "AnyOf",
    "CheckpointManager",
    "CheckpointState",
    "CheckpointStatus",
    "DiscoveryProgress",
    "EndpointProgress",
    "EveryPages",
    "EveryRecords",
    "EverySeconds",
    "PhaseProgress",
    "RateLimitBelow",
    "RateLimitSnapshot",
    "RepoProgress",
    "SaveContext",
    "SaveStrategy",
    "atomic_write",
    "derive_repo_status",
    "read_checkpoint",
    "strategy_from_settings",
]

FORMAT_VERSION = 1
DISCOVERY_PHASE = "discovery"
# The atomic-save steps in order; each is a module function a crash-point test may replace.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_SAFE_PART = re.compile(r"[A-Za-z0-9._~%-]{1,230}")  # what paths.unique_part produces
_SignalHandler: TypeAlias = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- state models


class CheckpointStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    FAILED = "failed"


class _Model(BaseModel):
    # Unknown keys mean a hand-edited or foreign file: better refused than half understood.
    model_config = ConfigDict(extra="forbid")


class EndpointProgress(_Model):
    """One repo x endpoint: where its pages stand and what resuming needs."""

    status: CheckpointStatus = CheckpointStatus.PENDING
    pages_collected: int = Field(default=0, ge=0)
    records_collected: int = Field(default=0, ge=0)
    last_page_written: int = Field(default=0, ge=0)
    # The next page URL exactly as the Link header gave it (cursors, /repositories/{id} URLs);
    # None = start from the first page (no pages yet) or nothing left.
    next_url: str | None = None
    # Size of the repo x endpoint JSONL file at the last save: resume truncates back to it.
    byte_offset: int = Field(default=0, ge=0)
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    error: str | None = None
    retryable: bool | None = None
    # True while a completed unit is re-read with conditional requests (a refresh).
    refreshing: bool = False
    # Walks completed: 1 after the first harvest, +1 per refresh.
    passes: int = Field(default=0, ge=0)

    @property
    def holds_data(self) -> bool:
        """What this unit already holds (a walk completed, or bytes saved) must be kept by
        any walk that starts again from the first page: it re-walks as a refresh."""
        return self.passes > 0 or self.byte_offset > 0

    @property
    def pending(self) -> bool:
        """Not collected yet: neither complete nor failed."""
        return self.status in (CheckpointStatus.PENDING, CheckpointStatus.IN_PROGRESS)


class RepoProgress(_Model):
    full_name: str
    name: str
    # This repo's raw file part, chosen once when it entered the checkpoint so that no two
    # repos share a file (paths.unique_part); None (checkpoints before it): safe_part(name).
    file_part: str | None = None
    status: CheckpointStatus = CheckpointStatus.PENDING
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    error: str | None = None
    endpoints: dict[str, EndpointProgress] = Field(default_factory=dict)

    @field_validator("file_part")
    @classmethod
    def _one_safe_component(cls, value: str | None) -> str | None:
        """A hand-edited part must still be one harmless path component."""
        if value is not None and (not _SAFE_PART.fullmatch(value) or value.strip(".") == ""):
            raise ValueError(f"file_part {value!r} is not a safe file name part")
        return value

    @property
    def raw_part(self) -> str:
        """The part of its raw files' names (``DatasetPaths.unit_file``)."""
        return self.file_part or safe_part(self.name)


class DiscoveryProgress(_Model):
    """An unfinished discovery: where its walk over the repo listing stands.

    The repos read so far are in ``repos.partial.jsonl``, cut back to ``byte_offset`` on
    resume, so a run stopped mid-discovery (quota, signal, crash) continues from the next
    page instead of starting the listing over.
    """

    path: str | None = None  # the first page's path that answered (org or user listing)
    next_url: str | None = None  # the next page as Link gave it; None: the first page
    pages: int = Field(default=0, ge=0)
    conditional: bool = False  # a refresh asking "changed since?", nothing changed so far
    unchanged: int = Field(default=0, ge=0)  # pages unchanged so far in a conditional walk
    byte_offset: int = Field(default=0, ge=0)


class PhaseProgress(_Model):
    status: CheckpointStatus = CheckpointStatus.PENDING
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    error: str | None = None


class RateLimitSnapshot(_Model):
    limit: int = Field(ge=0)
    remaining: int = Field(ge=0)
    reset: float = Field(ge=0, allow_inf_nan=False)  # epoch seconds; JSON has no NaN
    resource: str | None = None
    seen_at: AwareDatetime


class CheckpointState(_Model):
    """The whole checkpoint.json. ``repos`` keeps discovery order through save and load."""

    format_version: int = Field(default=FORMAT_VERSION, ge=1, le=FORMAT_VERSION)
    config_digest: str
    config: dict[str, Any]  # Config.digest_inputs(), so a mismatch can name what changed
    created_at: AwareDatetime
    updated_at: AwareDatetime
    save_count: int = Field(default=0, ge=0)
    last_save_reason: str | None = None
    last_saved_at: AwareDatetime | None = None
    current_phase: str | None = None
    phases: dict[str, PhaseProgress]
    repos: dict[str, RepoProgress] = Field(default_factory=dict)
    rate_limit: RateLimitSnapshot | None = None
    requests_made: int = Field(default=0, ge=0)
    # Size of validators.jsonl (ETags of list pages) at this save; resume cuts back to it.
    validators_offset: int = Field(default=0, ge=0)
    refreshes: int = Field(default=0, ge=0)
    # An unfinished discovery walk (None: none under way).
    discovery: DiscoveryProgress | None = None
    # The harvest ended but its export and manifest were not written yet (a kill mid-export):
    # the next run only exports, it does not start a refresh.
    export_pending: bool = False

    @property
    def endpoints(self) -> list[str]:
        """The config's endpoints in phase order (every phase after discovery)."""
        return [name for name in self.phases if name != DISCOVERY_PHASE]

    @model_validator(mode="after")
    def _consistent(self) -> CheckpointState:
        """Catch hand edits that would make resuming misbehave rather than fail clearly."""
        if DISCOVERY_PHASE not in self.phases:
            raise ValueError(f"phases lacks '{DISCOVERY_PHASE}'")
        expected = set(self.endpoints)
        for key, repo in self.repos.items():
            if key != repo.full_name:
                raise ValueError(f"repos key {key!r} differs from its full_name {repo.full_name!r}")
            if set(repo.endpoints) != expected:
                raise ValueError(f"repo {key} endpoints {sorted(repo.endpoints)} != phases")
        return self


def derive_repo_status(endpoints: Iterable[EndpointProgress]) -> CheckpointStatus:
    """A repo is FAILED if any endpoint failed, COMPLETE if all are, IN_PROGRESS once started."""
    statuses = [progress.status for progress in endpoints]
    if CheckpointStatus.FAILED in statuses:
        return CheckpointStatus.FAILED
    if statuses and all(status == CheckpointStatus.COMPLETE for status in statuses):
        return CheckpointStatus.COMPLETE
    if any(status != CheckpointStatus.PENDING for status in statuses):
        return CheckpointStatus.IN_PROGRESS
    return CheckpointStatus.PENDING


# --------------------------------------------------------------------------- atomic save


def _remove_stale_temps(target: Path) -> None:
    """Temp files a killed run left behind; only called while holding the lock."""
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


# --------------------------------------------------------------------------- load


def _corrupt(path: Path, what: str) -> CorruptCheckpointError:
    what = " ".join(what.split())  # one line, whatever the parser said
    return CorruptCheckpointError(
        f"checkpoint {path} is corrupt ({what}): move it aside or run with --force to start over"
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}: run collect to create one") from None
    except OSError as exc:
        raise CorruptCheckpointError(
            f"cannot read checkpoint {path} ({exc.strerror}): fix its permissions, "
            "move it aside, or run with --force to start over"
        ) from None


def _parse_json(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _corrupt(path, f"not valid JSON, truncated? {exc.msg} at line {exc.lineno}") from None
    except ValueError:
        raise _corrupt(path, "not UTF-8 text") from None
    if not isinstance(data, dict):
        raise _corrupt(path, f"expected a JSON object, found {type(data).__name__}")
    return data


def _check_version(path: Path, data: dict[str, Any]) -> None:
    version = data.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise CorruptCheckpointError(
            f"checkpoint {path} has format version {version}, newer than this gh-collect "
            f"reads ({FORMAT_VERSION}): upgrade gh-collect, move it aside, "
            "or run with --force to start over"
        )


def _validate(path: Path, data: dict[str, Any]) -> CheckpointState:
    try:
        return CheckpointState.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "top level"
        raise _corrupt(path, f"{where}: {error['msg']}") from None


def read_checkpoint(path: Path) -> CheckpointState:
    """Read and validate ``path``; any defect raises CorruptCheckpointError, nothing is written."""
    data = _parse_json(path, _read_bytes(path))
    _check_version(path, data)
    return _validate(path, data)


# --------------------------------------------------------------------------- save strategies


@dataclass(frozen=True)
class SaveContext:
    """What a strategy sees: progress since the last save and the rate-limit budget."""

    pages_since_save: int = 0
    records_since_save: int = 0
    seconds_since_save: float = 0.0
    rate_remaining: int | None = None
    rate_limit: int | None = None


class SaveStrategy(Protocol):
    def reason(self, ctx: SaveContext) -> str | None:
        """Why to save now, or None to not save."""
        ...


def _plural(count: float, unit: str) -> str:
    return f"{count:g} {unit}" if count == 1 else f"{count:g} {unit}s"


class EveryPages:
    def __init__(self, pages: int) -> None:
        self.pages = pages

    def reason(self, ctx: SaveContext) -> str | None:
        return (
            f"every {_plural(self.pages, 'page')}" if ctx.pages_since_save >= self.pages else None
        )


class EveryRecords:
    def __init__(self, records: int) -> None:
        self.records = records

    def reason(self, ctx: SaveContext) -> str | None:
        if ctx.records_since_save >= self.records:
            return f"every {_plural(self.records, 'record')}"
        return None


class EverySeconds:
    """Time since the last save comes from the manager's clock, so any save restarts it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def reason(self, ctx: SaveContext) -> str | None:
        if ctx.seconds_since_save >= self.seconds:
            return f"every {_plural(self.seconds, 'second')}"
        return None


class RateLimitBelow:
    """Fires once when remaining/limit falls to ``fraction``; re-arms when the budget recovers.

    Saving on every response below the line would add a save per request exactly when the
    run can least afford slowness, so it fires once per crossing.
    """

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self._below = False

    def reason(self, ctx: SaveContext) -> str | None:
        if ctx.rate_remaining is None or not ctx.rate_limit:
            return None
        share = ctx.rate_remaining / ctx.rate_limit
        if share > self.fraction:
            self._below = False
            return None
        if self._below:
            return None
        self._below = True
        return f"rate limit {share:.0%} <= {self.fraction:.0%}"


class AnyOf:
    """Saves when any member fires; asks every member so stateful ones see each call."""

    def __init__(self, strategies: Sequence[SaveStrategy]) -> None:
        self.strategies = list(strategies)

    def reason(self, ctx: SaveContext) -> str | None:
        reasons = [r for r in (s.reason(ctx) for s in self.strategies) if r is not None]
        return "; ".join(reasons) or None


def strategy_from_settings(checkpoint: CheckpointSettings, rate_limit: RateLimitSettings) -> AnyOf:
    """The SPEC cadence: every N pages, N records, T seconds, and the rate-limit threshold."""
    return AnyOf(
        [
            EveryPages(checkpoint.every_pages),
            EveryRecords(checkpoint.every_records),
            EverySeconds(checkpoint.every_seconds),
            RateLimitBelow(rate_limit.save_below),
        ]
    )


# --------------------------------------------------------------------------- lock helpers


def _unknown_repo_message(wanted: str, repos: Sequence[RepoProgress]) -> str:
    names = {repo.full_name.lower(): repo.full_name for repo in repos}
    names.update({repo.name.lower(): repo.full_name for repo in repos})
    close = difflib.get_close_matches(wanted.strip().lower(), list(names), n=3, cutoff=0.6)
    suggestions = list(dict.fromkeys(names[match] for match in close))
    hint = f"did you mean {', '.join(suggestions)}?" if suggestions else "pass owner/name"
    return (
        f"--from-repo {wanted!r} is not among the {len(repos)} discovered repos: {hint} "
        "(see `gh-collect status`)"
    )


# --------------------------------------------------------------------------- the manager


class _Renderer:
    """checkpoint.json's bytes, serializing again only the repos touched since the last save.

    At 5,000 repos the file is ~6 MB and serializing it whole took 50 ms; saved every 10
    pages, that made a run's saving cost grow with repos squared. A repo's entry is cached
    until the manager touches the repo (every read-modify path goes through
    ``CheckpointManager._repo``) or the repo object is replaced. The output is the same
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


class _GroupCommit:
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


class CheckpointManager:
    """Owns checkpoint.json for one dataset: loads, mutates, decides when and how to save.

    Use it as a context manager: entering takes the dataset's lock (one run at a time), and
    every save or delete requires it. ``load`` and ``get_stats`` work without the lock, so
    ``gh-collect status`` can read while a run is going.
    """

    def __init__(
        self,
        checkpoint_path: Path,
        lock_path: Path,
        *,
        strategy: SaveStrategy | None = None,
        before_save: Callable[[], None] | None = None,
        take_sync: Callable[[], Callable[[], None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``before_save`` makes the data durable before a save; ``take_sync`` hands the same
        work over as a job, so that ``save_async`` can run it off the event loop."""
        self.checkpoint_path = Path(checkpoint_path)
        self.lock_path = Path(lock_path)
        self.strategy: SaveStrategy = strategy or strategy_from_settings(
            CheckpointSettings(), RateLimitSettings()
        )
        self.stop_signal: int | None = None
        self._before_save = before_save
        self._take_sync = take_sync
        self._commit = _GroupCommit(self._write)
        self._clock = clock
        self._state: CheckpointState | None = None
        self._renderer = _Renderer()
        self._lock: DatasetLock | None = None
        self._pages_since_save = 0
        self._records_since_save = 0
        self._last_save_clock = clock()
        self._signal_loop: asyncio.AbstractEventLoop | None = None
        self._previous_handlers: dict[int, _SignalHandler] = {}

    # ---- lock

    def __enter__(self) -> CheckpointManager:
        self._make_folder()
        lock = DatasetLock(self.lock_path.parent, self.lock_path)
        lock.acquire()
        self._lock = lock
        _remove_stale_temps(self.checkpoint_path)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore_signal_handlers()
        self._commit.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _make_folder(self) -> None:
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create {self.lock_path.parent}: {exc.strerror}; "
                "set output.root to a writable folder"
            ) from None

    def _require_lock(self) -> None:
        if self._lock is None or not self._lock.is_locked:
            raise RuntimeError(
                "the checkpoint lock is not held: use `with CheckpointManager(...)` to write"
            )

    # ---- state lifecycle

    @property
    def state(self) -> CheckpointState:
        if self._state is None:
            raise RuntimeError("no checkpoint state yet: call load() or create_new() first")
        return self._state

    def exists(self) -> bool:
        return self.checkpoint_path.exists()

    def load(self) -> CheckpointState:
        self._state = read_checkpoint(self.checkpoint_path)
        self._renderer.forget()
        self._reset_counters()
        return self._state

    def create_new(self, config: Config) -> CheckpointState:
        """A fresh checkpoint; refuses to replace an existing file (delete it first: --force)."""
        self._require_lock()
        if self.exists():
            raise CheckpointError(
                f"checkpoint {self.checkpoint_path} already exists: resume from it, "
                "or run with --force to start over"
            )
        now = _utcnow()
        self._renderer.forget()
        phases = [DISCOVERY_PHASE, *config.endpoints]
        self._state = CheckpointState(
            config_digest=config.digest,
            config=config.digest_inputs(),
            created_at=now,
            updated_at=now,
            phases={name: PhaseProgress() for name in phases},
        )
        self.save("created")
        return self._state

    def validate_config(self, config: Config) -> None:
        if self.state.config_digest == config.digest:
            return
        changed = describe_changes(self.state.config, config.digest_inputs()) or ["unknown"]
        raise DigestMismatchError(
            f"checkpoint {self.checkpoint_path} was made with different settings "
            f"(changed: {', '.join(changed)}); run with --force to start over, "
            "or restore the previous config"
        )

    def delete_if_exists(self) -> None:
        self._require_lock()
        self.checkpoint_path.unlink(missing_ok=True)
        self._state = None
        self._renderer.forget()

    # ---- saving

    def save(self, reason: str) -> None:
        """Make the data durable (``before_save``), then atomically write the state.

        Background saves asked for earlier land first (and if one failed, this raises).
        """
        self._require_lock()
        self._commit.wait()
        if self._before_save is not None:
            self._before_save()
        saved, data = self._snapshot(reason)
        self._write(data)
        self._state = saved
        self._reset_counters()

    async def save_async(self, reason: str) -> None:
        """``save``, with the fsyncs and the write on a background thread (group commit).

        The caller waits until its save has landed, but the event loop does not: other
        requests go on meanwhile. The state counts as saved from the snapshot on.
        """
        landed = self._submit_save(reason)
        if landed is not None:
            await asyncio.shield(asyncio.wrap_future(landed))  # a cancelled waiter leaves it be

    def _submit_save(self, reason: str) -> Future[None] | None:
        """The event loop's part of ``save_async``: the snapshot, handed to the writer."""
        if self._take_sync is None:
            self.save(reason)
            return None
        self._require_lock()
        sync = self._take_sync()
        saved, data = self._snapshot(reason)
        self._state = saved
        self._reset_counters()
        return self._commit.submit(sync, data)

    def maybe_save(self) -> str | None:
        reason = self.strategy.reason(self._save_context())
        if reason is not None:
            self.save(reason)
        return reason

    async def maybe_save_async(self) -> str | None:
        reason = self.strategy.reason(self._save_context())
        if reason is not None:
            await self.save_async(reason)
        return reason

    def _snapshot(self, reason: str) -> tuple[CheckpointState, bytes]:
        saved = self.state.model_copy(
            update={
                "save_count": self.state.save_count + 1,
                "last_save_reason": reason,
                "last_saved_at": _utcnow(),
            }
        )
        return saved, self._renderer.render(saved)

    def _write(self, data: bytes) -> None:
        try:
            atomic_write(self.checkpoint_path, data)
        except OSError as exc:
            raise StorageError(
                f"cannot save checkpoint {self.checkpoint_path}: {exc.strerror or exc}; "
                "free disk space or fix permissions, then run again to resume"
            ) from None

    def _save_context(self) -> SaveContext:
        rate = self.state.rate_limit
        return SaveContext(
            pages_since_save=self._pages_since_save,
            records_since_save=self._records_since_save,
            seconds_since_save=self._clock() - self._last_save_clock,
            rate_remaining=rate.remaining if rate else None,
            rate_limit=rate.limit if rate else None,
        )

    def _reset_counters(self) -> None:
        self._pages_since_save = 0
        self._records_since_save = 0
        self._last_save_clock = self._clock()

    def _touch(self) -> datetime:
        now = _utcnow()
        self.state.updated_at = now
        return now

    # ---- repos

    def update_repos(self, repos: list[dict[str, Any]]) -> None:
        """Adopt the discovery list in its order; known repos keep their progress.

        Repos known before but absent now are kept after the discovered ones: their data is
        on disk, and dropping them would hide it.
        """
        known = self.state.repos
        taken = _claim_parts(known.values())
        ordered: dict[str, RepoProgress] = {}
        for item in repos:
            full_name = str(item["full_name"])
            if full_name not in ordered:
                repo = known.get(full_name) or self._new_repo(item, taken)
                taken.add(repo.raw_part.lower())
                ordered[full_name] = repo
        for full_name, repo in known.items():
            ordered.setdefault(full_name, repo)
        for repo in ordered.values():
            self._add_missing_endpoints(repo)
        self.state.repos = ordered
        self._renderer.forget()
        self._touch()

    def _new_repo(self, item: dict[str, Any], taken: set[str]) -> RepoProgress:
        """A repo entering the checkpoint; its file part is decided here, once."""
        full_name = str(item["full_name"])
        name = str(item.get("name") or full_name.rsplit("/", 1)[-1])
        part = unique_part(name, taken, item.get("id"), full_name)
        return RepoProgress(full_name=full_name, name=name, file_part=part)

    def _add_missing_endpoints(self, repo: RepoProgress) -> None:
        for endpoint in self.state.endpoints:
            repo.endpoints.setdefault(endpoint, EndpointProgress())

    def get_repos_to_process(
        self,
        retry_failed: bool = False,
        from_repo: str | None = None,
        endpoint: str | None = None,
    ) -> list[str]:
        """Full names, in discovery order, with work left (on ``endpoint`` or on any)."""
        names = list(self.state.repos)
        if from_repo is not None:
            names = names[self._repo_index(from_repo) :]
        endpoints = [endpoint] if endpoint is not None else self.state.endpoints
        return [
            name
            for name in names
            if any(self.endpoint_has_work(name, ep, retry_failed=retry_failed) for ep in endpoints)
        ]

    def check_from_repo(self, wanted: str) -> None:
        """Refuse (UsageError) a ``--from-repo`` that names no repo of the checkpoint."""
        self._repo_index(wanted)

    def repos_before(self, wanted: str) -> list[str]:
        """Full names before ``--from-repo wanted`` in discovery order."""
        return list(self.state.repos)[: self._repo_index(wanted)]

    def endpoint_has_work(self, repo: str, endpoint: str, *, retry_failed: bool = False) -> bool:
        """Not complete; a FAILED one only with ``retry_failed`` and a retryable error."""
        progress = self._endpoint(repo, endpoint)
        if progress.status == CheckpointStatus.FAILED:
            return retry_failed and bool(progress.retryable)
        return progress.status != CheckpointStatus.COMPLETE

    def _repo_index(self, wanted: str) -> int:
        """Position of ``owner/name`` or bare ``name`` (any case) in discovery order."""
        key = wanted.strip().lower()
        repos = list(self.state.repos.values())
        for index, repo in enumerate(repos):
            if key in (repo.full_name.lower(), repo.name.lower()):
                return index
        raise UsageError(_unknown_repo_message(wanted, repos))

    # ---- repo x endpoint progress

    def _repo(self, repo: str) -> RepoProgress:
        """The repo's live progress; the caller may change it, so its cached JSON is dropped."""
        self._renderer.touch(repo)
        try:
            return self.state.repos[repo]
        except KeyError:
            raise KeyError(f"repo {repo!r} is not in the checkpoint") from None

    def _endpoint(self, repo: str, endpoint: str) -> EndpointProgress:
        try:
            return self._repo(repo).endpoints[endpoint]
        except KeyError:
            raise KeyError(f"endpoint {endpoint!r} is not tracked for {repo!r}") from None

    def _refresh_repo(self, repo: str, now: datetime) -> None:
        """Re-derive the repo's status, times and error from its endpoints."""
        progress = self._repo(repo)
        progress.status = derive_repo_status(progress.endpoints.values())
        starts = [ep.started_at for ep in progress.endpoints.values() if ep.started_at]
        progress.started_at = min(starts) if starts else None
        done = progress.status == CheckpointStatus.COMPLETE
        progress.completed_at = (progress.completed_at or now) if done else None
        errors = [f"{name}: {ep.error}" for name, ep in progress.endpoints.items() if ep.error]
        progress.error = "; ".join(errors) or None

    def is_repo_endpoint_complete(self, repo: str, endpoint: str) -> bool:
        return self._endpoint(repo, endpoint).status == CheckpointStatus.COMPLETE

    def endpoint_progress(self, repo: str, endpoint: str) -> EndpointProgress:
        """A copy: change progress through the mark_/update_ methods only."""
        return self._endpoint(repo, endpoint).model_copy()

    def get_resume_page(self, repo: str, endpoint: str) -> int:
        return self._endpoint(repo, endpoint).last_page_written + 1

    def mark_repo_endpoint_in_progress(self, repo: str, endpoint: str) -> None:
        """Start or resume; a retried failure keeps its pages, next URL and offset."""
        progress, now = self._endpoint(repo, endpoint), self._touch()
        progress.status = CheckpointStatus.IN_PROGRESS
        progress.started_at = progress.started_at or now
        progress.completed_at = None
        progress.error = None
        progress.retryable = None
        self._refresh_repo(repo, now)

    def update_progress(
        self,
        repo: str,
        endpoint: str,
        *,
        page: int,
        records: int,
        next_url: str | None,
        byte_offset: int,
        save: bool = True,
    ) -> str | None:
        """Record one written page, then save if a strategy fires (returns its reason).

        With ``save=False`` the caller asks ``maybe_save_async`` instead.
        """
        progress = self._endpoint(repo, endpoint)
        _check_forward(repo, endpoint, progress, page, byte_offset)
        if progress.status != CheckpointStatus.IN_PROGRESS:
            self.mark_repo_endpoint_in_progress(repo, endpoint)
        progress.pages_collected += 1
        progress.records_collected += records
        progress.last_page_written = page
        progress.next_url = next_url
        progress.byte_offset = byte_offset
        self._touch()
        self._pages_since_save += 1
        self._records_since_save += records
        return self.maybe_save() if save else None

    def mark_repo_endpoint_complete(self, repo: str, endpoint: str, *, byte_offset: int) -> None:
        progress, now = self._endpoint(repo, endpoint), self._touch()
        progress.status = CheckpointStatus.COMPLETE
        progress.started_at = progress.started_at or now
        progress.completed_at = now
        progress.next_url = None
        progress.byte_offset = byte_offset
        progress.error = None
        progress.retryable = None
        progress.refreshing = False
        progress.passes += 1
        self._refresh_repo(repo, now)

    def begin_refresh(self, repo: str, endpoint: str) -> None:
        """Re-walk a unit from its first page, keeping what its file holds and appending
        only what changed: a completed unit's refresh, and the retry of a failed unit that
        already holds data (a refresh that failed before its next page was saved)."""
        progress, now = self._endpoint(repo, endpoint), self._touch()
        progress.status = CheckpointStatus.IN_PROGRESS
        progress.refreshing = True
        progress.last_page_written = 0
        progress.next_url = None
        progress.completed_at = None
        self._refresh_repo(repo, now)

    def update_discovery(self, progress: DiscoveryProgress | None, *, pages: int = 0) -> None:
        """Record where the discovery walk stands (None: no walk under way); ``pages`` walked
        since the last call count toward the every-N-pages save."""
        self.state.discovery = progress
        self._pages_since_save += pages
        self._touch()

    def record_validators(self, offset: int) -> None:
        """The validators file grew to ``offset`` together with the data it describes."""
        self.state.validators_offset = offset

    def mark_repo_endpoint_failed(
        self, repo: str, endpoint: str, error: str, *, retryable: bool
    ) -> None:
        """FAILED, keeping the resume point so a retryable failure can continue from it."""
        progress, now = self._endpoint(repo, endpoint), self._touch()
        progress.status = CheckpointStatus.FAILED
        progress.completed_at = None
        progress.error = error
        progress.retryable = retryable
        self._refresh_repo(repo, now)

    def reset_repo_endpoint(self, repo: str, endpoint: str) -> None:
        """Back to PENDING with zero counts; the caller truncates the JSONL file to match."""
        self._endpoint(repo, endpoint)  # raises for an unknown endpoint name
        self._repo(repo).endpoints[endpoint] = EndpointProgress()
        self._refresh_repo(repo, self._touch())

    # ---- phases

    def _phase(self, phase: str) -> PhaseProgress:
        try:
            return self.state.phases[phase]
        except KeyError:
            known = ", ".join(self.state.phases)
            raise KeyError(f"unknown phase {phase!r}; phases are {known}") from None

    def set_current_phase(self, phase: str) -> None:
        """Enter a phase, even a completed one (``--retry-failed`` re-enters it)."""
        progress, now = self._phase(phase), self._touch()
        progress.status = CheckpointStatus.IN_PROGRESS
        progress.started_at = progress.started_at or now
        progress.completed_at = None
        progress.error = None
        self.state.current_phase = phase

    def mark_phase_complete(self, phase: str) -> None:
        progress, now = self._phase(phase), self._touch()
        progress.status = CheckpointStatus.COMPLETE
        progress.completed_at = now
        progress.error = None
        self.save(f"phase end: {phase}")

    def mark_phase_failed(self, phase: str, error: str) -> None:
        progress = self._phase(phase)
        self._touch()
        progress.status = CheckpointStatus.FAILED
        progress.completed_at = None
        progress.error = error
        self.save(f"phase end: {phase} (failed)")

    def is_phase_complete(self, phase: str) -> bool:
        return self._phase(phase).status == CheckpointStatus.COMPLETE

    # ---- budget and requests

    def record_rate_limit(
        self, limit: int, remaining: int, reset: float, resource: str | None
    ) -> str | None:
        """Remember the budget seen last; saves (returning the reason) if a strategy fires.

        The client parses these from headers and drops bad ones; a reading that still cannot
        be stored (NaN would be written as null, which no later load accepts) is ignored,
        so a server value never makes the checkpoint unreadable."""
        try:
            snapshot = RateLimitSnapshot(
                limit=limit, remaining=remaining, reset=reset, resource=resource, seen_at=_utcnow()
            )
        except ValidationError:
            return None
        self.state.rate_limit = snapshot
        return self.maybe_save()

    def count_request(self, n: int = 1) -> None:
        self.state.requests_made += n

    # ---- reporting

    def get_stats(self) -> dict[str, Any]:
        """JSON-ready summary for ``gh-collect status`` and the progress display."""
        state = self.state
        repo_statuses = [repo.status for repo in state.repos.values()]
        rate = state.rate_limit
        return {
            "total_repos": len(state.repos),
            "repos_complete": repo_statuses.count(CheckpointStatus.COMPLETE),
            "repos_in_progress": repo_statuses.count(CheckpointStatus.IN_PROGRESS),
            "repos_pending": repo_statuses.count(CheckpointStatus.PENDING),
            "repos_failed": repo_statuses.count(CheckpointStatus.FAILED),
            "endpoints": {name: self._endpoint_stats(name) for name in state.endpoints},
            "phases": {name: phase.status.value for name, phase in state.phases.items()},
            "current_phase": state.current_phase,
            "save_count": state.save_count,
            "last_save_reason": state.last_save_reason,
            "last_saved_at": state.last_saved_at.isoformat() if state.last_saved_at else None,
            "rate_limit": rate.model_dump(mode="json") if rate else None,
            "requests_made": state.requests_made,
            "failures": self._failures(),
        }

    def _endpoint_stats(self, endpoint: str) -> dict[str, int]:
        rows = [repo.endpoints[endpoint] for repo in self.state.repos.values()]
        statuses = [row.status for row in rows]
        return {
            "pages": sum(row.pages_collected for row in rows),
            "records": sum(row.records_collected for row in rows),
            "complete": statuses.count(CheckpointStatus.COMPLETE),
            "in_progress": statuses.count(CheckpointStatus.IN_PROGRESS),
            "pending": statuses.count(CheckpointStatus.PENDING),
            "failed": statuses.count(CheckpointStatus.FAILED),
        }

    def _failures(self) -> list[dict[str, Any]]:
        return [
            {"repo": name, "endpoint": ep, "error": row.error, "retryable": row.retryable}
            for name, repo in self.state.repos.items()
            for ep, row in repo.endpoints.items()
            if row.status == CheckpointStatus.FAILED
        ]

    # ---- signals

    def install_signal_handlers(
        self, on_signal: Callable[[int], object], loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """On SIGINT/SIGTERM record ``stop_signal`` and call ``on_signal(signum)``.

        Saving and exiting 128+signum is the caller's job: only it knows when fetching has
        stopped and the files are consistent.
        """
        self.restore_signal_handlers()

        def handle(signum: int) -> None:
            self.stop_signal = signum
            on_signal(signum)

        for signum in _STOP_SIGNALS:
            if loop is not None:
                loop.add_signal_handler(signum, handle, signum)
            else:
                self._previous_handlers[signum] = signal.signal(
                    signum, lambda num, _frame: handle(num)
                )
        self._signal_loop = loop

    def restore_signal_handlers(self) -> None:
        """Undo install_signal_handlers; safe to call twice or when nothing was installed."""
        if self._signal_loop is not None:
            for signum in _STOP_SIGNALS:
                with contextlib.suppress(RuntimeError, ValueError):
                    self._signal_loop.remove_signal_handler(signum)
            self._signal_loop = None
        for number, previous in self._previous_handlers.items():
            signal.signal(number, signal.SIG_DFL if previous is None else previous)
        self._previous_handlers.clear()


def _claim_parts(repos: Iterable[RepoProgress]) -> set[str]:
    """The (lower-cased) file parts of ``repos``, in order. A repo from a checkpoint older
    than ``file_part`` whose derived part an earlier repo already has, and that holds no
    data yet, gets a part of its own now; one holding data keeps it (its bytes are there)."""
    taken: set[str] = set()
    for repo in repos:
        holds = any(ep.holds_data for ep in repo.endpoints.values())
        if repo.file_part is None and repo.raw_part.lower() in taken and not holds:
            repo.file_part = unique_part(repo.name, taken, None, repo.full_name)
        taken.add(repo.raw_part.lower())
    return taken


def _check_forward(
    repo: str, endpoint: str, progress: EndpointProgress, page: int, byte_offset: int
) -> None:
    """Bookmarks only move forward; going back would count records twice or lose them."""
    if page <= progress.last_page_written or byte_offset < progress.byte_offset:
        raise ValueError(
            f"{repo} {endpoint}: page {page} at offset {byte_offset} does not follow "
            f"page {progress.last_page_written} at offset {progress.byte_offset}"
        )
