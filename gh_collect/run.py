"""A collect run: the one module that ties config, client, checkpoint and storage together.

Exactly once rests on three rules kept here: a page is appended and the checkpoint's offset
advanced in one synchronous step (no ``await`` between them, so every checkpoint taken at any
point is consistent); every save first fsyncs the data it counts (``RawStore.sync`` is the
checkpoint's before-save hook); and every file is opened cut back to its saved offset.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from gh_collect.checkpoint import (
    CheckpointManager,
    CheckpointStatus,
    DiscoveryProgress,
    EndpointProgress,
    strategy_from_settings,
)
from gh_collect.client import GitHubClient, RateLimit
from gh_collect.conditional import KnownVersions, ValidatorStore, request_key
from gh_collect.config import Config
from gh_collect.discovery import ListingPosition, RepoListing, read_listing
from gh_collect.endpoints import ENDPOINTS, JsonObject, Window
from gh_collect.errors import (
    ConfigError,
    EmptyRepositoryError,
    GhCollectError,
    Interrupted,
    RateLimitExit,
    RetriableApiError,
    SkippableApiError,
    UsageError,
)
from gh_collect.manifest import build_manifest, write_manifest
from gh_collect.pagination import PER_PAGE, LinkPaginator, object_items
from gh_collect.paths import DatasetPaths
from gh_collect.progress import LogReporter, Reporter
from gh_collect.quota import Quota, QuotaReached
from gh_collect.storage import (
    RawStore,
    encode_lines,
    envelope,
    envelope_line,
    now_iso,
    read_jsonl,
    write_lines_atomic,
)

DISCOVERY = "discovery"


@dataclass(frozen=True)
class RunOptions:
    from_repo: str | None = None
    force: bool = False
    retry_failed: bool = False
    only: tuple[str, ...] | None = None
    on_rate_limit: Literal["wait", "exit"] = "wait"
    export: bool = True
    max_requests: int | None = None


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
    token: str,
    options: RunOptions | None = None,
    *,
    reporter: Reporter | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RunResult:
    """Run (or resume) the harvest described by ``config``; raise a GhCollectError on failure."""
    run = _Run(config, options or RunOptions(), reporter or LogReporter(quiet=True))
    return asyncio.run(run.execute(token, transport))


class _Run:
    def __init__(self, config: Config, options: RunOptions, reporter: Reporter) -> None:
        self.config = config
        self.options = options
        self.reporter = reporter
        self.paths = DatasetPaths(config.output.root, config.year, config.target.org)
        self.window = Window(config.window_start, config.window_end)
        self.store = RawStore()
        self.started_at = datetime.now(UTC)
        self.phases = _phases(config, options)
        self._size_hints: dict[str, int] | None = None
        self.quota = Quota(
            max_requests=options.max_requests, budget_fraction=config.rate_limit.budget_fraction
        )

    async def execute(self, token: str, transport: httpx.AsyncBaseTransport | None) -> RunResult:
        _ensure_writable(self.paths.raw_dir)
        strategy = strategy_from_settings(self.config.checkpoint, self.config.rate_limit)
        checkpoint = CheckpointManager(
            self.paths.checkpoint,
            self.paths.lock,
            strategy=strategy,
            before_save=self.store.sync,
            take_sync=self.store.take_sync,
        )
        with checkpoint:
            self.cp = checkpoint
            self._open_checkpoint()
            if self.options.from_repo is not None and checkpoint.state.repos:
                checkpoint.check_from_repo(self.options.from_repo)  # before any request
            self.validators = ValidatorStore(
                self.paths.validators, checkpoint.state.validators_offset, self.store
            )
            main = asyncio.current_task()
            assert main is not None
            checkpoint.install_signal_handlers(lambda _s: main.cancel(), asyncio.get_running_loop())
            try:
                async with self._client(token, transport) as client:
                    await self._harvest(client)
                    requests = client.stats.requests
            except asyncio.CancelledError:
                self._stop(f"signal {_signal_name(checkpoint.stop_signal)}")
                raise Interrupted(checkpoint.stop_signal or signal.SIGINT) from None
            except GhCollectError as exc:
                self._stop(f"stopped: {type(exc).__name__}")
                if isinstance(exc, RateLimitExit):
                    exc.message += f"; {self._units_left()} repo x endpoint pairs left to do"
                raise
            finally:
                self.store.close()
            return self._finish(requests)

    def _client(self, token: str, transport: httpx.AsyncBaseTransport | None) -> GitHubClient:
        return GitHubClient(
            self.config.github,
            token,
            rate_settings=self.config.rate_limit,
            on_rate_limit=self.options.on_rate_limit,
            transport=transport,
            on_rate_seen=self._rate_seen,
            on_request=self._request_sent,
            on_redirect=self._redirect_followed,
        )

    def _open_checkpoint(self) -> None:
        cp = self.cp
        if self.options.force:
            cp.delete_if_exists()
            _remove_raw_data(self.paths)
        if cp.exists():
            cp.load()
            cp.validate_config(self.config)
            return
        if _has_raw_data(self.paths):
            raise UsageError(
                f"{self.paths.raw_dir} holds data but no checkpoint.json: "
                "run with --force to start over (this deletes that data)"
            )
        cp.create_new(self.config)

    async def _harvest(self, client: GitHubClient) -> None:
        if self._finished_before():
            if self.cp.state.export_pending:
                self.reporter.info("the last run stopped while exporting: exporting again")
            else:
                self._begin_refresh()
        if not self.cp.is_phase_complete(DISCOVERY):
            await self._discover(client)
        for endpoint in self.phases:
            await self._run_phase(client, endpoint)
            if self.quota.reached is not None:
                raise self.quota.reached

    def _finished_before(self) -> bool:
        """Every phase this run covers ended: the run refreshes instead of doing nothing."""
        phases = [DISCOVERY, *self.phases]
        ended = (CheckpointStatus.COMPLETE, CheckpointStatus.FAILED)
        return all(self.cp.state.phases[name].status in ended for name in phases)

    def _begin_refresh(self) -> None:
        """Mark every completed unit (from ``--from-repo`` on) for a conditional re-walk,
        in one save; repos before it keep their complete data untouched."""
        self.cp.state.refreshes += 1
        self.cp.set_current_phase(DISCOVERY)
        repos = list(self.cp.state.repos)
        if self.options.from_repo is not None:
            repos = repos[len(self.cp.repos_before(self.options.from_repo)) :]
        for endpoint in self.phases:
            self.cp.set_current_phase(endpoint)
            for repo in repos:
                if self.cp.is_repo_endpoint_complete(repo, endpoint):
                    self.cp.begin_refresh(repo, endpoint)
        self.cp.save(f"refresh {self.cp.state.refreshes} start")
        self.reporter.info("dataset complete: refreshing what changed since the last run")

    async def _discover(self, client: GitHubClient) -> None:
        """Walk the listing page by page, each page saved with the checkpoint that counts it
        (repos.partial.jsonl), so a stopped discovery resumes at its next page."""
        self.cp.set_current_phase(DISCOVERY)
        self.reporter.info(f"discovering repos of {self.config.target.org}")
        fresh = DiscoveryProgress(conditional=self.cp.state.refreshes > 0)
        saved = self.cp.state.discovery or fresh
        position = ListingPosition(**saved.model_dump(exclude={"byte_offset"}))
        listing = RepoListing(client, self.config.target, self.validators, position)
        pages = _LazySink(self.store, self.paths.discovery_pages, saved.byte_offset)
        try:
            while (page := await listing.next_page()) is not None:
                fetched_at = now_iso()
                lines = (
                    envelope_line("repos", r.fields["full_name"], page.number, fetched_at, r.text)
                    for r in page.repos
                )
                pages.append(b"".join(lines))
                self._record_discovery(listing.position, pages.offset, pages=1)
                await self.cp.maybe_save_async()
        finally:  # a stop mid-page: the position as of the last page (and org or user)
            self._record_discovery(listing.position, pages.offset)
            pages.release()
        if listing.unchanged:  # every page as stored: the listing did not change
            self._end_discovery()
        else:
            self._adopt_listing(pages.offset)

    def _record_discovery(self, position: ListingPosition, offset: int, pages: int = 0) -> None:
        """Where the walk stands, with the bytes and validators it counts: one step."""
        progress = DiscoveryProgress(**asdict(position), byte_offset=offset)
        self.cp.update_discovery(progress, pages=pages)
        self.cp.record_validators(self.validators.offset)

    def _adopt_listing(self, offset: int) -> None:
        """The walk is done: its repos become repos.jsonl and the checkpoint's repo list."""
        lines, repos = read_listing(self.paths.discovery_pages, offset)
        self._report_vanished(repos)
        write_lines_atomic(self.paths.repos_file, lines)
        self.cp.update_repos(repos)
        self._size_hints = None
        self._end_discovery()
        self.reporter.info(f"discovered {len(repos)} repos", repos=len(repos))

    def _end_discovery(self) -> None:
        self.cp.update_discovery(None)
        self.cp.mark_phase_complete(DISCOVERY)  # saves: the partial pages are not needed now
        self.paths.discovery_pages.unlink(missing_ok=True)

    async def _run_phase(self, client: GitHubClient, endpoint: str) -> None:
        todo = self.cp.get_repos_to_process(
            self.options.retry_failed, self.options.from_repo, endpoint=endpoint
        )
        self.cp.set_current_phase(endpoint)
        self.reporter.phase(endpoint, len(todo))
        todo = self._largest_first(todo)
        jobs = [_bind(self._collect_unit, client, repo, endpoint) for repo in todo]
        await _run_bounded(jobs, self.config.github.concurrency)
        self._close_phase(endpoint)

    def _largest_first(self, repos: list[str]) -> list[str]:
        """Big repos first (longest-processing-time-first scheduling).

        A repo's pages come one after another, so a phase lasts at least as long as its
        biggest repo; started last, a big repo leaves a tail with one request in flight and
        the other workers idle. The listing's ``open_issues_count`` is the only size hint
        GitHub gives before the walk; ties keep discovery order.
        """
        if self._size_hints is None:
            self._size_hints = _open_issue_counts(self.paths.repos_file)
        hints = self._size_hints
        return sorted(repos, key=lambda name: -hints.get(name, 0))

    def _report_vanished(self, repos: list[JsonObject]) -> None:
        listed = {repo["full_name"] for repo in repos}
        for name in self.cp.state.repos:
            if name not in listed:
                self.reporter.warning(f"{name} is no longer listed; its data is kept", repo=name)

    def _close_phase(self, endpoint: str) -> None:
        states = [self.cp.endpoint_progress(repo, endpoint).status for repo in self.cp.state.repos]
        failed = states.count(CheckpointStatus.FAILED)
        if failed:
            self.cp.mark_phase_failed(endpoint, f"{failed} repos failed")
        elif all(status == CheckpointStatus.COMPLETE for status in states):
            self.cp.mark_phase_complete(endpoint)
        else:
            self.cp.save(f"phase end: {endpoint} (partial)")

    async def _collect_unit(self, client: GitHubClient, repo: str, endpoint: str) -> None:
        try:
            pages, records = await self._walk(client, repo, endpoint)
        except EmptyRepositoryError:
            pages, records = 0, 0
            self.cp.mark_repo_endpoint_complete(repo, endpoint, byte_offset=0)
        except QuotaReached:
            return  # stopped before sending; the unit's saved progress is its resume point
        except (SkippableApiError, RetriableApiError) as exc:
            retryable = isinstance(exc, RetriableApiError)
            self.cp.mark_repo_endpoint_failed(repo, endpoint, str(exc), retryable=retryable)
            self.reporter.unit_done(repo, endpoint, "failed", str(exc))
            return
        self.reporter.unit_done(repo, endpoint, "complete", f"{pages} pages, {records} records")

    async def _walk(self, client: GitHubClient, repo: str, endpoint: str) -> tuple[int, int]:
        """Fetch the pages of one repo x endpoint not yet saved, appending each exactly once."""
        progress = self._walk_start(repo, endpoint)
        path = self.paths.unit_file(endpoint, self.cp.state.repos[repo])
        sink = self.store.open(path, progress.byte_offset)
        known = KnownVersions(path, progress.byte_offset) if progress.refreshing else None
        try:
            self.cp.mark_repo_endpoint_in_progress(repo, endpoint)
            paginator = self._paginator(repo, endpoint)
            page_number, records = progress.last_page_written, 0
            while paginator is not None and not paginator.finished:
                key = request_key(paginator.current_url, paginator.current_params)
                kept, next_url = await self._fetch(client, paginator, endpoint, key, known)
                page_number += 1
                fetched_at = now_iso()
                offset = sink.append(
                    encode_lines(envelope(endpoint, repo, page_number, i, fetched_at) for i in kept)
                )
                paginator.advance(next_url)
                self.cp.update_progress(
                    repo, endpoint, page=page_number, records=len(kept), next_url=next_url,
                    byte_offset=offset, save=False,
                )  # fmt: skip
                await self.cp.maybe_save_async()
                records += len(kept)
                self.reporter.page(repo, endpoint, len(kept))
            self.cp.mark_repo_endpoint_complete(repo, endpoint, byte_offset=sink.offset)
            return page_number, records
        finally:
            self.store.release(path)

    def _walk_start(self, repo: str, endpoint: str) -> EndpointProgress:
        """A retried failure with no saved next page walks again from the first page: as a
        refresh if the unit holds data (kept, only changes appended; a refresh that failed
        on its first page), from zero if it holds nothing."""
        progress = self.cp.endpoint_progress(repo, endpoint)
        if progress.status == CheckpointStatus.FAILED and not progress.next_url:
            if progress.holds_data:
                self.cp.begin_refresh(repo, endpoint)
            else:
                self.cp.reset_repo_endpoint(repo, endpoint)
            progress = self.cp.endpoint_progress(repo, endpoint)
        return progress

    async def _fetch(
        self,
        client: GitHubClient,
        paginator: LinkPaginator,
        endpoint: str,
        key: str,
        known: KnownVersions | None,
    ) -> tuple[list[JsonObject], str | None]:
        """One page: the records to append and the next URL (None: the walk is done).

        A refresh asks "changed since?" with the stored ETag; 304 costs no budget and means
        nothing to append. A full last page is read in full instead (see
        ``Validator.settled``). Pages read in full record their ETag in the same step as
        their data.
        """
        stored = self.validators.get(key) if known is not None else None
        ask = stored if stored is not None and stored.may_answer_304 else None
        moved = stored.location if stored else None
        page = await client.get_page(
            moved or paginator.current_url,
            params=None if moved else paginator.current_params,
            etag=ask.etag if ask else None,
            last_modified=ask.last_modified if ask else None,
        )
        if page.status == 304 and ask is not None:
            return [], ask.next_url
        items = object_items(page.data, page.url)
        kept, past_window = ENDPOINTS[endpoint].select(items, self.window)
        next_url = None if past_window else page.next_url
        if known is not None:
            kept = known.changed(kept)
        self.cp.record_validators(
            self.validators.remember(
                key, page.etag, page.last_modified, next_url, page.moved_to or moved,
                settled=past_window or len(items) < PER_PAGE,
            )
        )  # fmt: skip
        return kept, next_url

    def _paginator(self, repo: str, endpoint: str) -> LinkPaginator | None:
        """Where this walk starts: the saved next URL, the first page, or nowhere (done)."""
        progress = self.cp.endpoint_progress(repo, endpoint)
        if progress.last_page_written and progress.next_url is None:
            return None  # the last page was saved; only the completion was not
        if progress.last_page_written and progress.next_url:
            return LinkPaginator(progress.next_url, start_page=progress.last_page_written + 1)
        url, params = ENDPOINTS[endpoint].first_request(repo, self.window)
        return LinkPaginator(url, params)

    def _rate_seen(self, rate: RateLimit) -> None:
        self.quota.observe(rate)
        self.reporter.rate(rate.remaining, rate.limit)
        self.cp.record_rate_limit(rate.limit, rate.remaining, rate.reset, rate.resource)

    def _request_sent(self) -> None:
        self.quota.before_request()
        self.reporter.request()
        self.cp.count_request()

    def _redirect_followed(self) -> None:
        self.quota.count_sent()
        self.reporter.request()
        self.cp.count_request()

    def _units_left(self) -> int:
        return sum(
            self.cp.endpoint_has_work(repo, endpoint, retry_failed=self.options.retry_failed)
            for repo in self.cp.state.repos
            for endpoint in self.phases
        )

    def _stop(self, reason: str) -> None:
        """Save what is durable; a save that itself fails leaves the previous checkpoint."""
        try:
            self.cp.save(reason)
        except (GhCollectError, OSError) as exc:
            self.reporter.warning(f"could not save the checkpoint ({exc}); the previous one stays")

    def _finish(self, requests: int) -> RunResult:
        failures = _failures(self.cp)
        pending = self._warn_pending()
        self.cp.state.export_pending = True
        self.cp.save("harvest done: exporting")
        exported = None
        if self.options.export:
            from gh_collect.export import export_dataset  # pyarrow: 0.2 s a harvest never needs

            exported = export_dataset(self.paths, ["repos", *self.config.endpoints])
        manifest = build_manifest(
            self.config, self.paths, self.cp.state, self.started_at, requests, failures, exported
        )
        if pending:  # exit 0 and "complete" mean the whole dataset: this run left some out
            manifest["status"] = "partial"
        write_manifest(self.paths.manifest, manifest)
        self.cp.state.export_pending = False
        self.cp.save("run end")
        records = {name: count["records"] for name, count in manifest["counts"].items()}
        code = 1 if failures or pending else 0
        return RunResult(code, self.paths, records, failures, requests, manifest)

    def _warn_pending(self) -> int:
        """Units this run left uncollected (``--from-repo``, ``--only``), with what to do."""
        state = self.cp.state
        pending = [
            name
            for name, repo in state.repos.items()
            if any(repo.endpoints[endpoint].pending for endpoint in state.endpoints)
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


class _LazySink:
    """A raw file opened (cut back to ``offset``) only once there is something to keep in it
    or it exists: a discovery stopped before its first repo leaves no empty file behind."""

    def __init__(self, store: RawStore, path: Path, offset: int) -> None:
        self.store, self.path, self.offset = store, path, offset
        self._sink = store.open(path, offset) if offset or path.exists() else None

    def append(self, data: bytes) -> None:
        if data and self._sink is None:
            self._sink = self.store.open(self.path, self.offset)
        if self._sink is not None:
            self.offset = self._sink.append(data)

    def release(self) -> None:
        if self._sink is not None:
            self.store.release(self.path)


def _open_issue_counts(repos_file: Path) -> dict[str, int]:
    """Full name -> open issues, from repos.jsonl; {} if it cannot be read (order only)."""
    try:
        return {
            str(line["repo"]): int(line["data"].get("open_issues_count") or 0)
            for line in read_jsonl(repos_file)
        }
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


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


def _bind(
    func: Callable[[GitHubClient, str, str], Awaitable[None]],
    client: GitHubClient,
    repo: str,
    endpoint: str,
) -> Callable[[], Awaitable[None]]:
    return lambda: func(client, repo, endpoint)


async def _run_bounded(jobs: Sequence[Callable[[], Awaitable[None]]], limit: int) -> None:
    """Run jobs with at most ``limit`` at once; the first error cancels the rest and is raised."""
    queue: Iterator[Callable[[], Awaitable[None]]] = iter(jobs)

    async def worker() -> None:
        for job in queue:
            await job()

    tasks = [asyncio.create_task(worker()) for _ in range(min(limit, len(jobs)))]
    if not tasks:
        return
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _failures(cp: CheckpointManager) -> list[dict[str, Any]]:
    failures = []
    for full_name, repo in cp.state.repos.items():
        for endpoint, progress in repo.endpoints.items():
            if progress.status == CheckpointStatus.FAILED:
                failures.append(
                    {
                        "repo": full_name,
                        "endpoint": endpoint,
                        "error": progress.error,
                        "retryable": progress.retryable,
                    }
                )
    return failures


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
