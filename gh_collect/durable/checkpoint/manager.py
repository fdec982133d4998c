"""``CheckpointManager``: owns checkpoint.json for one dataset while a run changes it.

Exactly once rests on three things kept here:

* a saved checkpoint never counts bytes that are not durable: the storage layer's fsync
  (``take_sync``) runs before every write, and the write does not happen if it fails;
* a save is atomic (``atomic.atomic_write``): a crash at any instant leaves the old
  checkpoint or the new one, never a mix;
* a checkpoint that cannot be read is never overwritten: it raises CorruptCheckpointError.

**One save path.** Changing progress only records (in memory); a run saves at its one async
point, ``maybe_save_async`` / ``save_async``, whose fsyncs and write run on the writer
thread (``writer.GroupCommit``), never on the event loop. The synchronous ``save`` is for
the moments nothing else runs: creating, migrating, stopping and finishing a run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from gh_collect.config import CheckpointSettings, Config, RateLimitSettings, describe_changes
from gh_collect.durable.atomic import atomic_write
from gh_collect.durable.checkpoint.load import load_checkpoint
from gh_collect.durable.checkpoint.migrate import V1_BACKUP_NAME
from gh_collect.durable.checkpoint.repos import adopt_listing, repo_index
from gh_collect.durable.checkpoint.state import (
    DISCOVERY_PHASE,
    CheckpointState,
    CheckpointStatus,
    DiscoveryProgress,
    PhaseProgress,
    RateLimitSnapshot,
    RepoProgress,
    UnitKey,
    UnitProgress,
    derive_repo_status,
)
from gh_collect.durable.checkpoint.strategies import (
    SaveContext,
    SaveStrategy,
    strategy_from_settings,
)
from gh_collect.durable.checkpoint.writer import GroupCommit, Renderer, remove_stale_temps
from gh_collect.durable.lock import DatasetLock
from gh_collect.errors import CheckpointError, DigestMismatchError, StorageError

__all__ = ["CheckpointManager"]

Sync = Callable[[], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _no_sync() -> Sync:
    return lambda: None


class CheckpointManager:
    """Loads, changes and saves one dataset's checkpoint (see the module docstring).

    Use it as a context manager: entering takes the dataset's lock (one run at a time), and
    every save or delete requires it. ``load`` works without the lock, so ``gh-collect
    status`` can read while a run is going (and an old format is then migrated in memory
    only). ``take_sync`` hands over the fsyncs the data written so far still needs, as a job.
    """

    def __init__(
        self,
        checkpoint_path: Path,
        lock_path: Path,
        *,
        strategy: SaveStrategy | None = None,
        take_sync: Callable[[], Sync] = _no_sync,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.checkpoint_path = Path(checkpoint_path)
        self.lock_path = Path(lock_path)
        self.strategy: SaveStrategy = strategy or strategy_from_settings(
            CheckpointSettings(), RateLimitSettings()
        )
        self._take_sync = take_sync
        self._commit = GroupCommit(self._write)
        self._clock = clock
        self._state: CheckpointState | None = None
        self._renderer = Renderer()
        self._lock: DatasetLock | None = None
        self._pages_since_save = 0
        self._records_since_save = 0
        self._last_save_clock = clock()
        # Set when a page's synchronous step failed half way: memory may then count what
        # the files lack (a page's ETag without its records), so nothing more is saved.
        self._halted: str | None = None

    # ---- lock

    def __enter__(self) -> CheckpointManager:
        self._make_folder()
        lock = DatasetLock(self.lock_path.parent, self.lock_path)
        lock.acquire()
        self._lock = lock
        remove_stale_temps(self.checkpoint_path)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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

    @property
    def locked(self) -> bool:
        return self._lock is not None and self._lock.is_locked

    def _require_lock(self) -> None:
        if not self.locked:
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
        """Read the checkpoint; an older format held under the lock is migrated on disk:
        the original kept as ``checkpoint.v1.json``, then the new file written atomically."""
        loaded = load_checkpoint(self.checkpoint_path)
        self._state = loaded.state
        self._renderer.forget()
        self._reset_counters()
        if loaded.version != loaded.state.format_version and self.locked:
            backup = self.checkpoint_path.with_name(V1_BACKUP_NAME)
            self._guard(backup, lambda: atomic_write(backup, loaded.raw))
            self.save(f"migrated from format {loaded.version}")
        return self.state

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
        self._state = CheckpointState(
            config_digest=config.digest,
            config=config.digest_inputs(),
            created_at=now,
            updated_at=now,
            phases={name: PhaseProgress() for name in [DISCOVERY_PHASE, *config.endpoints]},
        )
        self.save("created")
        return self._state

    def validate_config(self, config: Config) -> None:
        """Refuse a config that changes what the dataset IS (target, year, api_url); the
        endpoints may change (``adopt_endpoints``)."""
        if self.state.config_digest == config.digest:
            return
        changed = describe_changes(self.state.config, config.digest_inputs())
        binding = [name for name in changed if name != "endpoints"]
        if binding or not changed:
            raise DigestMismatchError(
                f"checkpoint {self.checkpoint_path} was made with different settings "
                f"(changed: {', '.join(binding or ['unknown'])}); run with --force to start "
                "over, or restore the previous config"
            )

    def adopt_endpoints(self, config: Config) -> list[str]:
        """Take the config's endpoints (the digest is per endpoint); returns those added.

        An endpoint new to the dataset gets its phase and a pending unit per known repo;
        one the config no longer lists keeps its phase, units and data, and is no longer
        walked (the run covers the config's endpoints only). Endpoints added to a dataset
        whose every phase had ended are remembered in ``extending``: until they finish,
        runs walk only them, not a sweep of what the finished dataset already holds."""
        state = self.state
        added = [name for name in config.endpoints if name not in state.phases]
        if not added and state.config_digest == config.digest:
            return []
        finished = not state.export_pending and all(
            phase.status in (CheckpointStatus.COMPLETE, CheckpointStatus.FAILED)
            for phase in state.phases.values()
        )
        for name in added:
            state.phases[name] = PhaseProgress()
            for repo in state.repos.values():
                repo.units.setdefault(name, UnitProgress())
        if added and finished and state.repos:
            state.extending = [*state.extending, *added]
        state.config = config.digest_inputs()
        state.config_digest = config.digest
        self._renderer.forget()
        self._touch()
        return added

    def delete_if_exists(self) -> None:
        self._require_lock()
        self.checkpoint_path.unlink(missing_ok=True)
        self.checkpoint_path.with_name(V1_BACKUP_NAME).unlink(missing_ok=True)
        self._state = None
        self._renderer.forget()

    # ---- saving

    def halt(self, why: str) -> None:
        """No save from now on in this run: a step that records a page failed half way, so
        the state in memory may not match the files (the last save stays, and a resumed
        run fetches what it does not count)."""
        self._halted = self._halted or why

    def save(self, reason: str) -> None:
        """Make the data durable, then atomically write the state, on this thread (see the
        module docstring for when). Saves handed to the writer earlier land first."""
        self._require_lock()
        self._commit.wait()
        if self._halted is not None:
            return
        try:
            self._take_sync()()
        except BaseException as exc:
            self._commit.fail(exc)  # the fsyncs it owed are lost: no later save may count them
            raise
        saved, data = self._snapshot(reason)
        self._write(data)
        self._state = saved
        self._reset_counters()

    async def save_async(self, reason: str) -> None:
        """``save`` with the fsyncs and the write on the writer thread (group commit).

        The caller waits until its save has landed, but the event loop does not: other
        requests go on meanwhile. The state counts as saved from the snapshot on.
        """
        landed = asyncio.wrap_future(self._submit_save(reason))
        # A cancelled waiter leaves the write be; its error is still read (here, so asyncio
        # never prints "exception was never retrieved" with a traceback) and raised by the
        # next save (``GroupCommit`` keeps it).
        landed.add_done_callback(_read_outcome)
        await asyncio.shield(landed)

    def _submit_save(self, reason: str) -> Future[None]:
        """The event loop's part of ``save_async``: the snapshot, handed to the writer."""
        self._require_lock()
        if self._halted is not None:
            skipped: Future[None] = Future()
            skipped.set_result(None)
            return skipped
        sync = self._take_sync()
        saved, data = self._snapshot(reason)
        self._state = saved
        self._reset_counters()
        return self._commit.submit(sync, data)

    async def maybe_save_async(self) -> str | None:
        """The run's one save point: save if a strategy says so (returns its reason).

        The save is handed to the writer and not waited for: the walk fetches its next page
        while the fsyncs run (a walk that waited added a disk's latency to every page). The
        state counts as saved from the snapshot on; a write that failed fails the next save
        point, and every later save, so no checkpoint counts bytes it did not sync.
        """
        self._commit.check()
        reason = self.strategy.reason(self._save_context())
        if reason is not None:
            self._submit_save(reason)
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
        self._guard(self.checkpoint_path, lambda: atomic_write(self.checkpoint_path, data))

    @staticmethod
    def _guard(path: Path, write: Callable[[], None]) -> None:
        try:
            write()
        except OSError as exc:
            raise StorageError(
                f"cannot save checkpoint {path}: {exc.strerror or exc}; "
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

    def update_repos(self, repos: Iterable[Mapping[str, Any]]) -> None:
        """Adopt the discovery list in its order; known repos keep their progress."""
        self.state.repos = adopt_listing(self.state.repos, repos, self.state.endpoints)
        self._renderer.forget()
        self._touch()

    def check_from_repo(self, wanted: str) -> None:
        """Refuse (UsageError) a ``--from-repo`` that names no repo of the checkpoint."""
        repo_index(list(self.state.repos.values()), wanted)

    def repos_before(self, wanted: str) -> list[str]:
        """Full names before ``--from-repo wanted`` in discovery order."""
        return list(self.state.repos)[: repo_index(list(self.state.repos.values()), wanted)]

    def units_to_process(
        self, endpoint: str, *, retry_failed: bool = False, from_repo: str | None = None
    ) -> list[UnitKey]:
        """The units of ``endpoint`` with work left, in discovery order (from ``from_repo``)."""
        skip = set(self.repos_before(from_repo)) if from_repo is not None else set()
        return [
            key
            for key, unit in self.state.units(endpoint)
            if key.repo not in skip and unit.has_work(retry_failed=retry_failed)
        ]

    # ---- units

    def _repo_entry(self, repo: str) -> RepoProgress:
        """The repo's live entry; the caller may change it, so its cached JSON is dropped."""
        self._renderer.touch(repo)
        try:
            return self.state.repos[repo]
        except KeyError:
            raise KeyError(f"repo {repo!r} is not in the checkpoint") from None

    def _unit(self, key: UnitKey) -> UnitProgress:
        try:
            return self._repo_entry(key.repo).units[key.name]
        except KeyError:
            raise KeyError(f"unit {key.name!r} is not tracked for {key.repo!r}") from None

    def unit(self, key: UnitKey) -> UnitProgress:
        """A copy: change progress through the methods below only."""
        return self._unit(key).model_copy()

    def add_unit(self, key: UnitKey) -> None:
        """Track a fan-out unit (a parent's share of an endpoint) if it is not yet."""
        if not key.parent or key.endpoint not in self.state.endpoints:
            raise ValueError(f"{key}: only a parent x endpoint unit of a phase can be added")
        self._repo_entry(key.repo).units.setdefault(key.name, UnitProgress())
        self._refresh_repo(key.repo, self._touch())

    def arm_fan_out(self, key: UnitKey, resume_token: str) -> None:
        """A fan-out unit to walk from ``resume_token`` (a parent's page found it overflow):
        created, or armed again, keeping its pages and file (a refresh that sees the pull
        overflow again: what the file holds is not written twice). Called in the same
        synchronous step as the page that revealed it."""
        if not key.parent or key.endpoint not in self.state.endpoints:
            raise ValueError(f"{key}: only a parent x endpoint unit of a phase can be armed")
        progress = self._repo_entry(key.repo).units.setdefault(key.name, UnitProgress())
        if progress.status in (CheckpointStatus.COMPLETE, CheckpointStatus.FAILED):
            progress.status = CheckpointStatus.PENDING
            progress.completed_at = None
            progress.error = progress.retryable = None
        progress.resume_token = resume_token
        self._refresh_repo(key.repo, self._touch())

    def _refresh_repo(self, repo: str, now: datetime) -> None:
        """Re-derive the repo's status, times and error from its units."""
        progress = self._repo_entry(repo)
        units = progress.units
        progress.status = derive_repo_status(units.values())
        starts = [unit.started_at for unit in units.values() if unit.started_at]
        progress.started_at = min(starts) if starts else None
        done = progress.status == CheckpointStatus.COMPLETE
        progress.completed_at = (progress.completed_at or now) if done else None
        errors = [f"{name}: {unit.error}" for name, unit in units.items() if unit.error]
        progress.error = "; ".join(errors) or None

    def start_unit(self, key: UnitKey) -> None:
        """Start or resume; a retried failure keeps its pages, resume token and offset."""
        progress, now = self._unit(key), self._touch()
        _mark_started(progress, now)
        progress.retryable = None
        self._refresh_repo(key.repo, now)

    def record_page(
        self,
        key: UnitKey,
        *,
        page: int,
        records: int,
        resume_token: str | None,
        byte_offset: int,
        pass_started_at: datetime | None = None,
    ) -> None:
        """One written page; the caller saves at its save point (``maybe_save_async``).
        ``pass_started_at``: the server's clock on a newest-first pass's first page."""
        progress = self._unit(key)
        _check_forward(key, progress, page, byte_offset)
        if progress.status != CheckpointStatus.IN_PROGRESS:
            self.start_unit(key)
        if progress.pass_started_at is None:
            progress.pass_started_at = pass_started_at
        progress.pass_pages += 1
        progress.pass_pending = False
        progress.pages_collected += 1
        progress.records_collected += records
        progress.last_page_written = page
        progress.resume_token = resume_token
        progress.byte_offset = byte_offset
        self._touch()
        self._pages_since_save += 1
        self._records_since_save += records

    def begin_pass(self, key: UnitKey, floor: datetime) -> None:
        """A catch-up pass of a newest-first walk: from the top of the list down to
        ``floor`` (the previous pass's start), in the same file and the same save step."""
        progress = self._unit(key)
        progress.resume_token = None
        progress.floor = floor
        progress.pass_started_at = None
        progress.pass_pages = 0
        progress.pass_pending = True
        progress.catch_ups += 1
        self._touch()

    def complete_unit(
        self, key: UnitKey, *, byte_offset: int, read_through: datetime | None = None
    ) -> None:
        progress, now = self._unit(key), self._touch()
        progress.read_through = read_through or progress.read_through
        _end_passes(progress)
        progress.status = CheckpointStatus.COMPLETE
        progress.started_at = progress.started_at or now
        progress.completed_at = now
        progress.resume_token = None
        progress.byte_offset = byte_offset
        progress.error = None
        progress.retryable = None
        progress.refreshing = False
        progress.passes += 1
        self._refresh_repo(key.repo, now)

    def begin_refresh(self, key: UnitKey) -> None:
        """Re-walk a unit from its first page, keeping what its file holds and appending
        only what changed: a completed unit's refresh, and the retry of a failed unit that
        already holds data (a refresh that failed before its next page was saved)."""
        progress, now = self._unit(key), self._touch()
        progress.status = CheckpointStatus.IN_PROGRESS
        progress.refreshing = True
        progress.last_page_written = 0
        progress.resume_token = None
        _end_passes(progress)
        progress.floor = progress.read_through  # a newest-first walk reads what changed since
        progress.completed_at = None
        self._refresh_repo(key.repo, now)

    def fail_unit(self, key: UnitKey, error: str, *, retryable: bool) -> None:
        """FAILED, keeping the resume point so a retryable failure can continue from it."""
        progress, now = self._unit(key), self._touch()
        progress.status = CheckpointStatus.FAILED
        progress.completed_at = None
        progress.error = error
        progress.retryable = retryable
        self._refresh_repo(key.repo, now)

    def reset_unit(self, key: UnitKey) -> None:
        """Back to PENDING with zero counts; the caller truncates the raw file to match."""
        self._unit(key)  # raises for an unknown unit
        self._repo_entry(key.repo).units[key.name] = UnitProgress()
        self._refresh_repo(key.repo, self._touch())

    # ---- discovery, validators, phases

    def update_discovery(self, progress: DiscoveryProgress | None, *, pages: int = 0) -> None:
        """Record where the discovery walk stands (None: no walk under way); ``pages`` walked
        since the last call count toward the every-N-pages save."""
        self.state.discovery = progress
        self._pages_since_save += pages
        self._touch()

    def record_validators(self, offset: int) -> None:
        """The validators file grew to ``offset`` together with the data it describes."""
        self.state.validators_offset = offset

    def _phase(self, phase: str) -> PhaseProgress:
        try:
            return self.state.phases[phase]
        except KeyError:
            known = ", ".join(self.state.phases)
            raise KeyError(f"unknown phase {phase!r}; phases are {known}") from None

    def set_current_phase(self, phase: str) -> None:
        """Enter a phase, even a completed one (``--retry-failed`` re-enters it)."""
        _mark_started(self._phase(phase), self._touch())
        self.state.current_phase = phase

    def end_phase(self, phase: str, error: str | None = None) -> None:
        """COMPLETE, or FAILED with ``error``; the caller saves."""
        progress, now = self._phase(phase), self._touch()
        progress.status = CheckpointStatus.COMPLETE if error is None else CheckpointStatus.FAILED
        progress.completed_at = now if error is None else None
        progress.error = error

    def is_phase_complete(self, phase: str) -> bool:
        return self._phase(phase).status == CheckpointStatus.COMPLETE

    # ---- budget and requests: recorded only, saved at the next save point

    def record_rate_limit(
        self, limit: int, remaining: int, reset: float, resource: str | None
    ) -> None:
        """Remember the budget seen last for its resource.

        The client parses these from headers and drops bad ones; a reading that still cannot
        be stored (NaN would be written as null, which no later load accepts) is ignored,
        so a server value never makes the checkpoint unreadable."""
        try:
            snapshot = RateLimitSnapshot(
                limit=limit, remaining=remaining, reset=reset, resource=resource, seen_at=_utcnow()
            )
        except ValidationError:
            return
        self.state.rate_limits[resource or "core"] = snapshot

    def count_request(self, n: int = 1) -> None:
        self.state.requests_made += n


def _mark_started(progress: UnitProgress | PhaseProgress, now: datetime) -> None:
    """Under way from now (started once, whatever came before); no longer ended or failed."""
    progress.status = CheckpointStatus.IN_PROGRESS
    progress.started_at = progress.started_at or now
    progress.completed_at = None
    progress.error = None


def _end_passes(progress: UnitProgress) -> None:
    """No pass under way: the next walk of the unit starts a first pass."""
    progress.floor = progress.pass_started_at = None
    progress.pass_pages = progress.catch_ups = 0
    progress.pass_pending = False


def _check_forward(key: UnitKey, progress: UnitProgress, page: int, byte_offset: int) -> None:
    """Bookmarks only move forward; going back would count records twice or lose them."""
    if page <= progress.last_page_written or byte_offset < progress.byte_offset:
        raise ValueError(
            f"{key}: page {page} at offset {byte_offset} does not follow "
            f"page {progress.last_page_written} at offset {progress.byte_offset}"
        )


def _read_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
