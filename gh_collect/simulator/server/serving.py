"""Serving: the threaded ``Simulator`` tests use, and ``serve``/``run_forever`` for the CLI.

Everything binds to 127.0.0.1 only. Changes from another thread (mutations, scripted
failures, added routes) are handed to the server's event loop and run between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from aiohttp import web

from gh_collect.simulator.model import OrgModel
from gh_collect.simulator.server.app import SimulatorApp
from gh_collect.simulator.server.config import LOOPBACK_HOSTS, SimulatorConfig
from gh_collect.simulator.server.fleet import Fleet
from gh_collect.simulator.server.owners import truth_without_disabled

T = TypeVar("T")


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on loopback only: the simulator must never be reachable from
    outside this machine."""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"the simulator only binds to 127.0.0.1, not {host!r}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


class _Served(Protocol):
    def build(self) -> web.Application: ...


async def _start(app: _Served, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(app.build(), access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    await web.SockSite(runner, sock, shutdown_timeout=0.2).start()
    return runner


class Simulator:
    """A simulated GitHub in a background thread: ``start()`` returns its URL."""

    def __init__(
        self,
        cfg: SimulatorConfig | None = None,
        model: OrgModel | None = None,
        *,
        others: Sequence[SimulatorConfig] = (),
    ) -> None:
        """``model`` serves an org generated earlier (benchmarks reuse one big org across
        latencies; generating it is the slow part); by default it is generated from ``cfg``.

        ``others``: more orgs on the same host (``fleet``), each generated from its own
        config (use another ``org`` and ``seed``); tokens, users, budgets and the app are
        ``cfg``'s, shared by all. The methods below act on ``cfg``'s org unless given ``org``.
        """
        self.cfg = cfg or SimulatorConfig()
        self._app = SimulatorApp(self.cfg, model)
        identities, apps = self._app.identities, self._app.apps
        more = [SimulatorApp(c, identities=identities, apps=apps) for c in others]
        self._fleet = Fleet([self._app, *more])
        self._url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def model(self) -> OrgModel:
        return self._app.model

    @property
    def now(self) -> str:
        """The simulated present (ISO): the configured ``now`` plus the real time served so
        far, plus one second per ``mutate`` edit. Every served timestamp and ``Date`` header
        is at or before it."""
        return self.model.now

    def mutate(
        self, *, update: int = 0, repos: Sequence[str] | None = None, seed: int = 0
    ) -> dict[str, dict[str, list[int]]]:
        """Edit ``update`` existing pulls/issues, chosen by ``seed`` among ``repos`` (default:
        all a default harvest collects); returns endpoint -> repo -> ids changed. Every
        later answer, ETag and ``ground_truth()`` reflects the edit. See ``OrgModel.mutate``.
        """
        return self._on_loop(lambda: self._app.mutate(update, repos, seed))

    def churn(self, ms: float) -> None:
        """Edit one random pull or issue every ``ms`` ms from now on, 0 to stop, often
        with a new or edited comment, now and then a push or a release in its repo
        (``OrgModel.churn``); also ``POST /__simulator/churn?ms=N``."""
        self._on_loop(lambda: self._app.churn.set(ms))

    @property
    def churn_edits(self) -> int:
        """Edits churn has made so far."""
        return self._app.churn.edits

    def add_repo(self, name: str, *, items: int = 20, seed: int = 0) -> None:
        """A new repo appears in the org listing with ``items`` pulls and issues."""
        self._on_loop(lambda: self._app.add_repo(name, items, seed))

    def add_pull(self, name: str, *, created_at: str) -> int:
        """A pull created at ``created_at`` appears in repo ``name``; returns its id."""
        return self._on_loop(lambda: self._app.add_pull(name, created_at))

    def add_alias(self, owner: str, name: str, *, of: str) -> None:
        """The listing shows ``owner/name`` too (its own id), serving repo ``of``'s data."""
        self._on_loop(lambda: self._app.add_alias(owner, name, of))

    def fail(self, needle: str, *, status: int = 502, times: int | None = None) -> None:
        """Answer ``status`` to GETs whose path contains ``needle`` (``times`` of them, or
        all until ``clear_failures``)."""
        self._on_loop(lambda: self._app.fail(needle, status, times))

    def clear_failures(self) -> None:
        self._on_loop(self._app.clear_failures)

    def add_list_route(
        self, path: str, items: Callable[[str], Sequence[Mapping[str, Any]]]
    ) -> None:
        """Serve one more repo list endpoint, e.g. ``/repos/{owner}/{repo}/toys`` (also as
        ``/repositories/{repo_id}/toys``, the form its Link headers use).

        The repo is resolved like the other repo routes (404 unknown or vanished, 301 for
        the renamed repo's old name); then ``items(full_name)`` is called, on every request
        and on the server's thread, with the repo's discovered ``owner/name``, and its
        objects are served in that order like the other lists: ``per_page``/``page``, Link
        header, weak ETag and free 304, rate-limit headers and charge, secondary limits,
        faults, latency, stats under ``path``. Unknown query parameters are ignored.
        Callable before or after ``start()``; ValueError for a path outside
        ``/repos/{owner}/{repo}/`` or one already routed."""
        self._on_loop(lambda: self._app.add_list_route(path, items))

    def _on_loop(self, change: Callable[[], T]) -> T:
        """Run a change on the server's event loop, between requests: handlers never await
        while reading the model, so no request ever sees half a change."""
        if self._loop is None:
            return change()

        async def apply() -> T:
            return change()

        return asyncio.run_coroutine_threadsafe(apply(), self._loop).result()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the simulator is not running: call start() first")
        return self._url

    def _org(self, org: str | None) -> SimulatorApp:
        return self._app if org is None else self._fleet.org(org)

    def app_stats(self) -> dict[str, int]:
        """The GitHub App's counters: installation tokens minted, the most minted at once,
        JWTs refused (``apps``); all zero without an app."""
        apps = self._app.apps
        if apps is None:
            return {"mints": 0, "max_concurrent_mints": 0, "jwt_refused": 0}
        stats = apps.stats
        return {
            "mints": stats.mints,
            "max_concurrent_mints": stats.max_concurrent_mints,
            "jwt_refused": stats.jwt_refused,
        }

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 at ``port`` (0: a free one); returns ``http://127.0.0.1:PORT``.

        A fixed port is for datasets made earlier: ``api_url`` is part of their digest."""
        if self._thread is not None:
            return self.url
        sock = _bind("127.0.0.1", port)
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=self._run, args=(loop, sock, ready, failure), name="gh-simulator", daemon=True
        )
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            raise RuntimeError("the simulator failed to start") from failure[0]
        self._url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._loop, self._thread = loop, thread
        return self._url

    def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        ready: threading.Event,
        failure: list[BaseException],
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            runner = loop.run_until_complete(_start(self._fleet, sock))
        except BaseException as exc:  # handed to start(), which raises it
            failure.append(exc)
            sock.close()
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        """Stop serving; requests still held (timeout faults) are cut."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread, self._loop, self._url = None, None, None

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stats(self, org: str | None = None) -> dict[str, Any]:
        return self._org(org).stats.snapshot()

    def reset_stats(self) -> None:
        for app in self._fleet.apps:
            app.stats.reset()

    def ground_truth(
        self,
        year: int = 2025,
        endpoints: Iterable[str] = ("pulls", "issues"),
        repos: Iterable[str] = (),
        exclude: Iterable[str] = (),
        include_forks: bool = False,
        include_archived: bool = True,
        *,
        base_url: str | None = None,
        org: str | None = None,
    ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """What a correct harvest must contain, as served at ``base_url`` (default: here):
        ``endpoints`` may name any of ``ENDPOINTS`` (``OrgModel.ground_truth`` has the
        rules); ``org``: another org of the host (``others``)."""
        app = self._org(org)
        truth = app.model.ground_truth(
            base_url or self.url, year, endpoints, repos, exclude, include_forks, include_archived
        )
        return truth_without_disabled(app.cfg, truth)


async def serve(
    cfg: SimulatorConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve until cancelled; ``announce`` gets the URL once the port is open."""
    sock = _bind(host, port)
    runner = await _start(SimulatorApp(cfg), sock)
    try:
        if announce is not None:
            announce(f"http://127.0.0.1:{sock.getsockname()[1]}")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run_forever(
    cfg: SimulatorConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    announce: Callable[[str], None] = print,
) -> None:
    """Blocking, for ``gh-collect simulate``: serves until Ctrl+C."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(cfg, host, port, announce=announce))
