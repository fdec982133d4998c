"""A collect run: opens the dataset, runs discovery and the phases, exports, writes the manifest.

The stages live beside it: ``discovery`` (the listing, page by page), ``phases`` (each
endpoint's units, page by page, through the one ``walk``), ``plan`` (a dry run). This
module only sequences them and decides how a run ends: its exit code, its last save, and
what a stop (a signal, the rate limit, an error) leaves behind, which is always a
checkpoint that counts exactly the data on disk.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from gh_collect.config import Config
from gh_collect.durable.checkpoint import (
    CheckpointManager,
    CheckpointStatus,
    strategy_from_settings,
)
from gh_collect.durable.paths import DatasetPaths
from gh_collect.durable.storage import RawStore
from gh_collect.durable.validators import ValidatorStore
from gh_collect.errors import (
    ConfigError,
    GhCollectError,
    Interrupted,
    RateLimitExit,
    UsageError,
)
from gh_collect.github.client import GitHubClient
from gh_collect.github.credentials import Credentials
from gh_collect.github.graphql import GraphQLTransport
from gh_collect.github.pool import CredentialPool, PoolView
from gh_collect.github.quota import Quota
from gh_collect.harvest.context import DISCOVERY, RunContext, RunOptions
from gh_collect.harvest.discovery import discover
from gh_collect.harvest.listing import ListingHints, listing_hints
from gh_collect.harvest.observer import RunObserver
from gh_collect.harvest.phases import run_phase
from gh_collect.report.manifest import build_manifest, write_manifest
from gh_collect.report.progress import LogReporter, Reporter

__all__ = ["RunOptions", "RunResult", "collect", "make_pool"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class RunResult:
    exit_code: int
    paths: DatasetPaths
    records: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)


def collect(
    config: Config,
    token: str | Credentials,
    options: RunOptions | None = None,
    *,
    reporter: Reporter | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RunResult:
    """Run (or resume) the harvest described by ``config``; raise a GhCollectError on failure.

    ``token``: the token (held by ``github.token_env``), or ``Credentials`` (a pool, an app:
    ``resolve_credentials``). One org only: ``collect_orgs`` runs ``target.orgs``.
    """
    orgs = config.orgs
    if len(orgs) > 1:
        raise UsageError(
            f"target.orgs lists {len(orgs)} organizations: collect_orgs harvests them "
            "(gh-collect collect does)"
        )
    reporter = reporter or LogReporter(quiet=True)
    credentials = as_credentials(token, config)
    run = _Run(config.for_org(orgs[0]), options or RunOptions(), reporter)

    async def harvest() -> RunResult:
        pool = make_pool(config, credentials, reporter)
        return await run.execute(pool.view(orgs[0]), transport)

    with _fewer_gc_passes():
        return asyncio.run(harvest())


def as_credentials(token: str | Credentials, config: Config) -> Credentials:
    """A bare token is 0.1.0's one token, held by ``github.token_env``."""
    if isinstance(token, Credentials):
        return token
    return Credentials.token(token, config.github.token_env)


def make_pool(config: Config, credentials: Credentials, reporter: Reporter) -> CredentialPool:
    """The run's one pool (every org's), telling ``reporter`` what it does: which credentials
    (never a value), tokens of one user, SAML refusals, installation tokens minted."""
    reporter.info(credentials.describe())
    return CredentialPool(
        credentials,
        pause_below=config.rate_limit.pause_below,
        notify=reporter.info,
        warn=reporter.warning,
    )


@contextmanager
def _fewer_gc_passes() -> Iterator[None]:
    """Every page parses into thousands of acyclic objects (freed by reference counting),
    which trip the cyclic collector's default threshold (700 allocations) thousands of
    times a run for nothing: about 7% of a harvest's CPU. Raised for the run, restored."""
    before = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _Run:
    def __init__(
        self,
        config: Config,
        options: RunOptions,
        reporter: Reporter,
        *,
        quota: Quota | None = None,
    ) -> None:
        self.config = config
        self.options = options
        self.reporter = reporter
        self.paths = DatasetPaths(config.output.root, config.year, config.target.org)
        self.store = RawStore()
        self.started_at = datetime.now(UTC)
        self.phases = _phases(config, options)
        self.stop_signal: int | None = None
        self.quota = quota or Quota(
            max_requests=options.max_requests, budget_fraction=config.rate_limit.budget_fraction
        )

    async def execute(
        self, credentials: PoolView, transport: httpx.AsyncBaseTransport | None
    ) -> RunResult:
        _ensure_writable(self.paths.raw_dir)
        strategy = strategy_from_settings(self.config.checkpoint, self.config.rate_limit)
        checkpoint = CheckpointManager(
            self.paths.checkpoint,
            self.paths.lock,
            strategy=strategy,
            take_sync=self.store.take_sync,
        )
        with checkpoint:
            self.cp = checkpoint
            self._open_checkpoint()
            if self.options.from_repo is not None and checkpoint.state.repos:
                checkpoint.check_from_repo(self.options.from_repo)  # before any request
            validators = ValidatorStore(
                self.paths.validators, checkpoint.state.validators_offset, self.store
            )
            self.ctx = RunContext(
                self.config, self.options, self.paths, checkpoint, self.store, validators,
                self.reporter, self.phases,
            )  # fmt: skip
            loop = asyncio.get_running_loop()
            self._catch_stop_signals(loop)
            try:
                async with self._client(credentials, transport) as client:
                    await self._harvest(client)
                    requests = client.stats.requests
            except asyncio.CancelledError:
                _release_stop_signals(loop)
                self._stop(f"signal {_signal_name(self.stop_signal)}")
                raise Interrupted(self.stop_signal or signal.SIGINT) from None
            except GhCollectError as exc:
                _release_stop_signals(loop)
                self._stop(f"stopped: {type(exc).__name__}")
                if isinstance(exc, RateLimitExit):
                    exc.message += f"; {self._units_left()} repo x endpoint pairs left to do"
                raise
            finally:
                self.store.close()
            try:
                return await self._finish(requests)
            except asyncio.CancelledError:  # a signal while exporting: stop as mid-harvest
                self._stop(f"signal {_signal_name(self.stop_signal)}")
                raise Interrupted(self.stop_signal or signal.SIGINT) from None
            finally:
                _release_stop_signals(loop)

    def _client(
        self, credentials: PoolView, transport: httpx.AsyncBaseTransport | None
    ) -> GitHubClient:
        return GitHubClient(
            self.config.github,
            credentials,
            rate_settings=self.config.rate_limit,
            on_rate_limit=self.options.on_rate_limit,
            transport=transport,
            observer=RunObserver(self.quota, self.reporter, self.cp),
        )

    def _catch_stop_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        """SIGINT/SIGTERM cancel the harvest; ``execute`` then saves and exits 128+signum
        (only it knows when fetching has stopped and the files are consistent)."""
        main = asyncio.current_task()
        assert main is not None

        def stop(signum: int) -> None:
            self.stop_signal = signum
            main.cancel()

        for signum in _STOP_SIGNALS:
            loop.add_signal_handler(signum, stop, signum)

    def _open_checkpoint(self) -> None:
        cp = self.cp
        if self.options.force:
            cp.delete_if_exists()
            _remove_raw_data(self.paths)
        if cp.exists():
            cp.load()  # a format-1 checkpoint is migrated here, before anything else
            cp.validate_config(self.config)
            added = cp.adopt_endpoints(self.config)
            if added:
                self.reporter.info(f"endpoints added to the dataset: {', '.join(added)}")
            return
        if _has_raw_data(self.paths):
            raise UsageError(
                f"{self.paths.raw_dir} holds data but no checkpoint.json: "
                "run with --force to start over (this deletes that data)"
            )
        cp.create_new(self.config)

    async def _harvest(self, client: GitHubClient) -> None:
        self.ctx.graphql = GraphQLTransport(client)
        if any(name in self.cp.state.extending for name in self.phases):
            pass  # endpoints added to a finished dataset: only they are walked
        elif self._finished_before():
            if self.cp.state.export_pending:  # still a refresh: the org moved on meanwhile
                self.reporter.info("the last run stopped while exporting: exporting again")
            await self._begin_refresh()
        elif self.cp.state.repos and self._rewalk_completed_units():
            await self.cp.save_async("resume: sweep of the units earlier runs completed")
        if not self.cp.is_phase_complete(DISCOVERY):
            await discover(self.ctx, client)
        hints = listing_hints(self.paths.repos_file, self.phases)
        await self._run_phases(client, hints)
        if self.quota.reached is not None:
            raise self.quota.reached

    async def _run_phases(self, client: GitHubClient, hints: ListingHints) -> None:
        """The phases in their order, each starting once the one before has started its
        last unit: its tail (its biggest repos' last pages, one after another) overlaps
        the next phase instead of idling the other workers. ``concurrency`` units at most
        are walked at once, across phases."""
        slots = asyncio.Semaphore(self.config.github.concurrency)
        running: list[asyncio.Task[None]] = []
        try:
            for endpoint in self.phases:
                if self.quota.reached is not None:
                    break
                dispatched = asyncio.Event()
                phase = run_phase(
                    self.ctx, client, endpoint, hints, slots=slots, dispatched=dispatched
                )
                running.append(asyncio.create_task(phase))
                await _first(dispatched.wait(), running[-1])
                if running[-1].done():
                    await running[-1]  # a phase that failed early: its error, now
            for task in running:
                await task
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def _finished_before(self) -> bool:
        """Every phase this run covers ended: the run refreshes instead of doing nothing."""
        phases = [DISCOVERY, *self.phases]
        ended = (CheckpointStatus.COMPLETE, CheckpointStatus.FAILED)
        return all(self.cp.state.phases[name].status in ended for name in phases)

    async def _begin_refresh(self) -> None:
        """Mark every completed unit (from ``--from-repo`` on) for a conditional re-walk,
        in one save; repos before it keep their complete data untouched."""
        cp = self.cp
        cp.state.refreshes += 1
        cp.set_current_phase(DISCOVERY)
        self._rewalk_completed_units()
        await cp.save_async(f"refresh {cp.state.refreshes} start")
        self.reporter.info("dataset complete: refreshing what changed since the last run")

    def _rewalk_completed_units(self) -> int:
        """Mark the completed units this run covers (from ``--from-repo`` on) to be walked
        again, conditionally, keeping their data: a refresh of a finished dataset, and the
        closing sweep of a resumed one. A unit completed by an earlier run may have missed
        what changed while no run was reading it (an item that entered the year while a
        killed run was down); re-read from what it last read, unchanged pages answer 304
        (free), so the finished dataset holds every item in the year when this run began."""
        cp, count = self.cp, 0
        skip = set(cp.repos_before(self.options.from_repo)) if self.options.from_repo else set()
        for endpoint in self.phases:
            cp.set_current_phase(endpoint)
            for key, unit in cp.state.units(endpoint):
                # A fan-out unit is re-armed by its parent's walk, if that sees it overflow.
                if key.parent is not None:
                    continue
                if key.repo not in skip and unit.status == CheckpointStatus.COMPLETE:
                    cp.begin_refresh(key)
                    count += 1
        return count

    def _units_left(self) -> int:
        retry = self.options.retry_failed
        return sum(
            unit.has_work(retry_failed=retry)
            for endpoint in self.phases
            for _key, unit in self.cp.state.units(endpoint)
        )

    def _stop(self, reason: str) -> None:
        """Save what is durable; a save that itself fails leaves the previous checkpoint.

        Synchronous on purpose: every request has stopped, nothing else runs."""
        try:
            self.cp.save(reason)
        except (GhCollectError, OSError) as exc:
            self.reporter.warning(f"could not save the checkpoint ({exc}); the previous one stays")

    async def _finish(self, requests: int) -> RunResult:
        state = self.cp.state
        failures = state.failures()
        pending = self._warn_pending()
        state.export_pending = True
        await self.cp.save_async("harvest done: exporting")
        exported = None
        if self.options.export:
            # pyarrow: 0.2 s of imports a harvest never needs
            from gh_collect.curated.export import export_dataset

            exported = export_dataset(self.paths, ["repos", *self.config.endpoints])
        manifest = build_manifest(
            self.config, self.paths, self.cp.state, self.started_at, requests, failures, exported
        )
        if pending:  # exit 0 and "complete" mean the whole dataset: this run left some out
            manifest["status"] = "partial"
        write_manifest(self.paths.manifest, manifest)
        self.cp.state.export_pending = False
        self.cp.state.extending = []
        await self.cp.save_async("run end")
        records = {name: count["records"] for name, count in manifest["counts"].items()}
        code = 1 if failures or pending else 0
        return RunResult(code, self.paths, records, failures, requests, manifest)

    def _warn_pending(self) -> int:
        """Repos this run left uncollected (``--from-repo``, ``--only``), with what to do."""
        configured = set(self.config.endpoints)  # an endpoint taken out is not waited for
        pending = [
            name
            for name, repo in self.cp.state.repos.items()
            if any(
                unit.pending
                for key, unit in repo.units.items()
                if key.partition("/")[0] in configured
            )
        ]
        wanted = self.options.from_repo
        if wanted is not None and pending:
            before = set(self.cp.repos_before(wanted))
            count = sum(name in before for name in pending)
            self.reporter.warning(
                f"{count} repos before {wanted} are not collected yet: "
                "run without --from-repo to finish"
            )
        elif pending:
            self.reporter.warning(
                f"{len(pending)} repos are not collected yet for every endpoint: "
                "run without --only to finish"
            )
        return len(pending)


async def _first(wait: Coroutine[Any, Any, bool], task: asyncio.Task[None]) -> None:
    """Until ``wait`` is done or ``task`` ends (a phase that fails before dispatching all)."""
    waiter = asyncio.ensure_future(wait)
    try:
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


def _release_stop_signals(loop: asyncio.AbstractEventLoop) -> None:
    for signum in _STOP_SIGNALS:
        loop.remove_signal_handler(signum)


def _phases(config: Config, options: RunOptions) -> list[str]:
    if not options.only:
        return list(config.endpoints)
    unknown = [name for name in options.only if name not in config.endpoints]
    if unknown:
        raise UsageError(
            f"--only {','.join(unknown)}: not among the configured endpoints "
            f"({', '.join(config.endpoints)})"
        )
    return [name for name in config.endpoints if name in options.only]


def _ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the output folder {folder}: {exc.strerror}; "
            "set output.root to a writable folder"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"the output folder {folder} is not writable: set output.root to a writable folder"
        )


def _has_raw_data(paths: DatasetPaths) -> bool:
    listed = paths.repos_file.exists() or paths.discovery_pages.exists()
    return listed or any(paths.raw_dir.glob("endpoint=*/*.jsonl"))


def _remove_raw_data(paths: DatasetPaths) -> None:
    for folder in paths.raw_dir.glob("endpoint=*"):
        shutil.rmtree(folder)
    for path in (paths.repos_file, paths.discovery_pages, paths.manifest, paths.validators):
        path.unlink(missing_ok=True)


def _signal_name(signum: int | None) -> str:
    return signal.Signals(signum).name if signum else "SIGINT"
