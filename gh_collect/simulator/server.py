"""The simulator's HTTP server: GitHub's REST API for the endpoints gh_collect harvests.

It behaves like the service as github-api.md documents it, not like our client expects:
Link headers in the ``/repositories/{id}`` form, cursor pagination on big issue lists, a
primary budget per token that counts down and resets, secondary limits that are ENFORCED
(concurrency, requests per minute per endpoint, server time per minute), weak ETags with free
304s, renamed and vanished repos, and seeded faults. Everything binds to 127.0.0.1 only.

Per request, in order: latency, request checks (User-Agent, API version, token), secondary
limits, a fault draw, simulated server time, the primary budget, the answer, then the charge.
The budget is checked and charged with no ``await`` in between, so concurrent requests can
never overspend it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from aiohttp import web
from multidict import MultiDictProxy

from gh_collect.simulator import faults as fault_kit
from gh_collect.simulator.details import Details
from gh_collect.simulator.faults import FaultInjector, validate_faults
from gh_collect.simulator.model import (
    API_PLACEHOLDER_BYTES,
    OrgModel,
    RepoData,
    Selection,
    decode_cursor,
    encode_cursor,
    iso,
    parse_time,
    position_after,
    position_before,
)

DOCS = "https://docs.github.com/rest"
API_VERSIONS = ("2022-11-28", "2026-03-10")
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
    "again. If you reach out to GitHub Support for help, please include the request ID {rid}."
)
DEEP_PAGE_MESSAGE = (
    "Pagination with the page parameter is not supported for large datasets, please use "
    "cursor based pagination (after/before)"
)
MAX_CURSOR_PAGE = 10
WINDOW_S = 60.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
T = TypeVar("T")


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that shapes a simulated GitHub; the defaults are GitHub's documented ones.

    ``token=None`` accepts any non-empty token (each one a user with its own budget).
    ``latency_ms`` delays every answer but is not server time; ``server_time_ms`` is, and
    counts toward ``max_server_seconds_per_minute``. ``sizes`` overrides the item count
    (pulls plus issues) of the ordinary repos, cycled, e.g. ``(2000,)`` for benchmarks.
    ``now`` is the simulated present: all timestamps are before it, and the scenario repos'
    items fall in the year before it. ``scenarios=False``: ordinary repos only (benchmarks).
    """

    seed: int = 0
    repos: int = 12
    org: str = "sample-org"
    token: str | None = None
    rate_limit: int = 5000
    reset_seconds: float = 3600.0
    latency_ms: float = 0.0
    server_time_ms: float = 0.0
    faults: Mapping[str, float] = field(default_factory=dict)
    fault_seed: int | None = None
    max_in_flight: int = 100
    max_per_minute: int = 900
    max_server_seconds_per_minute: float = 90.0
    secondary_retry_after: int = 60
    timeout_hold_s: float = 60.0
    cursor_threshold: int = 1000
    now: str = "2026-07-01T00:00:00Z"
    sizes: tuple[int, ...] | None = None
    scenarios: bool = True

    def __post_init__(self) -> None:
        validate_faults(self.faults)
        positive = {
            "rate_limit": self.rate_limit,
            "reset_seconds": self.reset_seconds,
            "max_in_flight": self.max_in_flight,
            "max_per_minute": self.max_per_minute,
            "max_server_seconds_per_minute": self.max_server_seconds_per_minute,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"SimulatorConfig.{name} must be positive, got {value}")
        if self.repos < 0 or self.latency_ms < 0 or self.server_time_ms < 0:
            raise ValueError("SimulatorConfig: repos, latency_ms and server_time_ms must be >= 0")
        if self.sizes is not None and any(size < 0 for size in self.sizes):
            raise ValueError("SimulatorConfig.sizes must hold item counts >= 0")
        parse_time(self.now)


# ---------------------------------------------------------------------------------------------
# bookkeeping


class _Stats:
    """Counters a test or benchmark reads to see what the client really did; thread-safe
    because ``Simulator.stats()`` is called from outside the server's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._by_route: dict[str, int] = {}
            self._by_status: dict[str, int] = {}
            self._counters = dict.fromkeys(
                ("not_modified", "budget_spent", "secondary_limited", "primary_limited"), 0
            )
            self._faults: dict[str, int] = {}
            self._max_in_flight = self._in_flight

    def enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def record(self, route: str, status: str) -> None:
        with self._lock:
            self._requests += 1
            self._by_route[route] = self._by_route.get(route, 0) + 1
            self._by_status[status] = self._by_status.get(status, 0) + 1

    def count(self, name: str) -> None:
        with self._lock:
            self._counters[name] += 1

    def fault(self, name: str) -> None:
        with self._lock:
            self._faults[name] = self._faults.get(name, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "by_route": dict(self._by_route),
                "by_status": dict(self._by_status),
                **self._counters,
                "max_in_flight": self._max_in_flight,
                "in_flight": self._in_flight,
                "faults": dict(self._faults),
            }


@dataclass
class _Budget:
    """The primary limit of one token: the window opens at the first charged request."""

    limit: int
    window_s: float
    used: int = 0
    reset_at: float | None = None

    def refresh(self, now: float) -> None:
        if self.reset_at is not None and now >= self.reset_at:
            self.used, self.reset_at = 0, None

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def charge(self, now: float) -> None:
        if self.reset_at is None:
            self.reset_at = now + self.window_s
        self.used += 1

    def reset_epoch(self, now: float) -> int:
        """Rounded UP: a client that sleeps until this second finds the budget refilled."""
        return math.ceil(self.reset_at if self.reset_at is not None else now + self.window_s)

    def core(self, now: float) -> dict[str, int]:
        return {
            "limit": self.limit,
            "used": min(self.used, self.limit),
            "remaining": self.remaining,
            "reset": self.reset_epoch(now),
        }

    def headers(self, now: float) -> dict[str, str]:
        core = self.core(now)
        return {
            "X-RateLimit-Limit": str(core["limit"]),
            "X-RateLimit-Remaining": str(core["remaining"]),
            "X-RateLimit-Reset": str(core["reset"]),
            "X-RateLimit-Used": str(core["used"]),
            "X-RateLimit-Resource": "core",
        }


@dataclass
class _Client:
    """Per-token state: the primary budget and the secondary-limit windows."""

    budget: _Budget
    in_flight: int = 0
    hits: dict[str, deque[float]] = field(default_factory=dict)
    work: deque[tuple[float, float]] = field(default_factory=deque)
    work_sum: float = 0.0

    def admit(self, cfg: SimulatorConfig, endpoint: str, now: float) -> bool:
        """Whether GitHub's secondary limits let this request through; admitted requests
        are recorded in the rolling windows, refused ones are not."""
        if self.in_flight > cfg.max_in_flight:
            return False
        hits = self.hits.setdefault(endpoint, deque())
        while hits and hits[0] <= now - WINDOW_S:
            hits.popleft()
        while self.work and self.work[0][0] <= now - WINDOW_S:
            self.work_sum -= self.work.popleft()[1]
        cost = cfg.server_time_ms / 1000.0
        if len(hits) >= cfg.max_per_minute:
            return False
        if cost and self.work_sum + cost > cfg.max_server_seconds_per_minute + 1e-9:
            return False
        hits.append(now)
        if cost:
            self.work.append((now, cost))
            self.work_sum += cost
        return True


# ---------------------------------------------------------------------------------------------
# routing


@dataclass(frozen=True)
class _Route:
    template: str
    endpoint: str
    handler: str
    faultable: bool
    pattern: re.Pattern[str]


def _route(template: str, handler: str, endpoint: str = "", faultable: bool = False) -> _Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return _Route(template, endpoint or template, handler, faultable, re.compile(f"^{regex}$"))


_REPO = "/repos/{owner}/{repo}"
ROUTES: tuple[_Route, ...] = (
    _route("/rate_limit", "rate_limit"),
    _route("/orgs/{org}", "org"),
    _route("/orgs/{org}/repos", "org_repos", faultable=True),
    _route("/organizations/{org_id}/repos", "org_repos", "/orgs/{org}/repos", True),
    _route("/users/{user}/repos", "org_repos", faultable=True),
    _route("/user/{org_id}/repos", "org_repos", "/users/{user}/repos", True),
    _route(_REPO, "repo"),
    _route(f"{_REPO}/pulls", "pulls", faultable=True),
    _route(f"{_REPO}/issues", "issues", faultable=True),
    _route("/repositories/{repo_id}", "repo", _REPO),
    _route("/repositories/{repo_id}/pulls", "pulls", f"{_REPO}/pulls", True),
    _route("/repositories/{repo_id}/issues", "issues", f"{_REPO}/issues", True),
    # per-item details, for peers that fan out per item (Perceval); gh_collect reads lists
    _route(f"{_REPO}/pulls/{{number}}", "pull"),
    _route(f"{_REPO}/pulls/{{number}}/reviews", "reviews"),
    _route(f"{_REPO}/pulls/{{number}}/comments", "review_comments"),
    _route(f"{_REPO}/pulls/{{number}}/commits", "commits"),
    _route(f"{_REPO}/pulls/{{number}}/requested_reviewers", "requested_reviewers"),
    _route(f"{_REPO}/pulls/comments/{{comment_id}}/reactions", "review_comment_reactions"),
    _route(f"{_REPO}/issues/{{number}}/comments", "issue_comments"),
    _route(f"{_REPO}/issues/{{number}}/reactions", "issue_reactions"),
    _route(f"{_REPO}/issues/comments/{{comment_id}}/reactions", "comment_reactions"),
    _route("/users/{login}", "user"),
    _route("/users/{login}/orgs", "user_orgs"),
)
_REPO_PATH = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)(?P<rest>/.*)?$")
_ANY_REPO_ROUTE = _Route(f"{_REPO}/...", f"{_REPO}/...", "", False, _REPO_PATH)
_UNKNOWN_ROUTE = _Route("<unknown>", "<unknown>", "", False, re.compile("$^"))


def _match(path: str) -> tuple[_Route, dict[str, str]]:
    for route in ROUTES:
        found = route.pattern.match(path)
        if found:
            return route, found.groupdict()
    found = _REPO_PATH.match(path)
    if found:
        return _ANY_REPO_ROUTE, found.groupdict()
    return _UNKNOWN_ROUTE, {}


@dataclass
class _Scripted:
    """A scripted failure: ``status`` for paths containing ``needle``, ``times`` left."""

    needle: str
    status: int
    times: int | None


@dataclass
class _Reply:
    """An answer before headers common to all answers are added."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"
    etag: str | None = None


class _Answer(Exception):
    """Raised deep in a handler to answer at once (404, 422, 301)."""

    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _json(status: int, payload: object, **headers: str) -> _Reply:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return _Reply(status, body, dict(headers))


def _error(status: int, message: str, docs: str = DOCS, **extra: object) -> _Reply:
    """GitHub's basic-error shape."""
    return _json(
        status, {"message": message, **extra, "documentation_url": docs, "status": str(status)}
    )


def _invalid(resource: str, name: str) -> _Answer:
    return _Answer(
        _error(
            422,
            "Validation Failed",
            errors=[{"resource": resource, "field": name, "code": "invalid"}],
        )
    )


@dataclass
class _Call:
    """One request as the handlers see it."""

    request: web.Request
    path: str
    prefix: str
    route: _Route
    args: dict[str, str]
    client: _Client | None
    version: str

    @property
    def query(self) -> MultiDictProxy[str]:
        return self.request.rel_url.query

    @property
    def base(self) -> str:
        """The API root this request used: its own host, plus ``/api/v3`` if it used that."""
        return f"{self.request.scheme}://{self.request.host}{self.prefix}"


# ---------------------------------------------------------------------------------------------
# the application


class SimulatorApp:
    """The request logic, independent of how and where it is served."""

    def __init__(self, cfg: SimulatorConfig, model: OrgModel | None = None) -> None:
        self.cfg = cfg
        self.model = model or OrgModel.generate(
            cfg.seed, cfg.repos, cfg.org, cfg.now, cfg.sizes, cfg.scenarios
        )
        self.stats = _Stats()
        seed = cfg.fault_seed if cfg.fault_seed is not None else f"derived:{cfg.seed}"
        self.faults = FaultInjector(cfg.faults, seed)
        self._clients: dict[str, _Client] = {}
        self._selections: dict[tuple[object, ...], Selection] = {}
        self._request_ids = 0
        self._renderers: dict[str, _Renderer] = {}
        self._scripted: list[_Scripted] = []
        self._handlers: dict[str, Callable[[_Call], _Reply]] = {
            "rate_limit": self._rate_limit,
            "org": self._org,
            "org_repos": self._org_repos,
            "repo": self._repo,
            "pulls": self._pulls,
            "issues": self._issues,
            **self._detail_handlers(),
        }

    def mutate(
        self, update: int, repos: Sequence[str] | None, seed: int
    ) -> dict[str, dict[str, list[int]]]:
        """Edit objects (``OrgModel.mutate``); must run where requests are served."""
        return self._edit(lambda: self.model.mutate(update, repos, seed))

    def add_repo(self, name: str, items: int, seed: int) -> None:
        """Add a repo (``OrgModel.add_repo``); must run where requests are served."""
        self._edit(lambda: self.model.add_repo(name, items, seed))

    def add_pull(self, name: str, created_at: str) -> int:
        """Add a pull (``OrgModel.add_pull``); must run where requests are served."""
        return self._edit(lambda: self.model.add_pull(name, created_at))

    def add_alias(self, owner: str, name: str, of: str) -> None:
        """List one more repo serving ``of``'s data (``OrgModel.add_alias``)."""
        self._edit(lambda: self.model.add_alias(owner, name, of))

    def _edit(self, change: Callable[[], T]) -> T:
        """Apply a change to the model, then drop what was derived from the old one."""
        try:
            return change()
        finally:
            self._forget()

    def fail(self, needle: str, status: int, times: int | None) -> None:
        """Answer ``status`` to the next ``times`` GETs (None: all) whose path contains
        ``needle``, before any other fault; a scripted outage of one list."""
        self._scripted.append(_Scripted(needle, status, times))

    def clear_failures(self) -> None:
        self._scripted.clear()

    def _scripted_failure(self, call: _Call) -> _Reply | None:
        for script in self._scripted:
            if script.needle in call.path and script.times != 0:
                if script.times is not None:
                    script.times -= 1
                self.stats.fault(f"scripted {script.status}")
                return _error(script.status, "Server Error")
        return None

    def _forget(self) -> None:
        """Drop what was derived from the old state. Renderers too: they cache by object
        identity, and a replaced object's id may be reused by a new one."""
        self._selections.clear()
        self._renderers.clear()

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    # -- the pipeline ------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        prefix = "/api/v3" if request.path.startswith("/api/v3/") else ""
        path = request.path[len(prefix) :].rstrip("/") or "/"
        if path.startswith("/__simulator/"):
            return self._internal(path)
        client = self._client_for(request)
        self.stats.enter()
        if client is not None:
            client.in_flight += 1
        try:
            return await self._serve(request, path, prefix, client)
        finally:
            self.stats.leave()
            if client is not None:
                client.in_flight -= 1

    async def _serve(
        self, request: web.Request, path: str, prefix: str, client: _Client | None
    ) -> web.StreamResponse:
        if self.cfg.latency_ms:
            await asyncio.sleep(self.cfg.latency_ms / 1000.0)
        route, args = _match(path)
        version = request.headers.get("X-GitHub-Api-Version", API_VERSIONS[0])
        call = _Call(request, path, prefix, route, args, client, version)
        reply = await self._answer(call)
        if reply is None:
            self.stats.record(route.template, "reset")
            return web.Response(status=500)
        self.stats.record(route.template, str(reply.status))
        return self._finish(call, reply)

    async def _answer(self, call: _Call) -> _Reply | None:
        """The reply for a call, or None when the connection was dropped on purpose."""
        refused = self._gatekeep(call)
        if refused is not None:
            return refused
        assert call.client is not None
        scripted = self._scripted_failure(call) if call.request.method == "GET" else None
        if scripted is not None:
            return scripted
        if not call.client.admit(self.cfg, call.route.endpoint, time.monotonic()):
            self.stats.count("secondary_limited")
            return self._secondary()
        fault = (
            self.faults.draw() if call.route.faultable and call.request.method == "GET" else None
        )
        if fault is not None:
            self.stats.fault(fault)
        if fault == "secondary":
            return self._secondary()
        if fault == "reset":
            fault_kit.reset_connection(call.request)
            return None
        await self._work(fault)
        return self._charged(call, call.client, fault)

    def _gatekeep(self, call: _Call) -> _Reply | None:
        """What GitHub refuses before looking at the route: no User-Agent, an unknown API
        version, a missing or wrong token."""
        headers = call.request.headers
        if not headers.get("User-Agent"):
            return _Reply(
                403,
                b"Request forbidden by administrative rules. Please make sure your request has "
                b"a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-"
                b"the-rest-api#user-agent-required). Check https://developer.github.com for "
                b"other possible causes.\n",
                content_type="text/plain; charset=utf-8",
            )
        if call.version not in API_VERSIONS:
            return _error(400, f"API version '{call.version}' is not supported.")
        if call.client is None:
            return _error(401, "Bad credentials")
        return None

    async def _work(self, fault: str | None) -> None:
        if self.cfg.server_time_ms:
            await asyncio.sleep(self.cfg.server_time_ms / 1000.0)
        if fault == "timeout":
            await asyncio.sleep(self.cfg.timeout_hold_s)

    def _charged(self, call: _Call, client: _Client, fault: str | None) -> _Reply:
        """Budget check, answer and charge with no await in between (no overspending)."""
        now = time.time()
        budget = client.budget
        budget.refresh(now)
        if call.route.handler != "rate_limit" and budget.remaining <= 0:
            self.stats.count("primary_limited")
            reply = _error(403, "API rate limit exceeded for user ID 1.", _PRIMARY_DOCS)
        elif fault in fault_kit.ERROR_FAULTS:
            reply = self._from_response(fault_kit.error_response(fault))
            self._charge(budget, now)
        else:
            reply = self._dispatch(call)
            if call.route.handler != "rate_limit" and not self._not_modified(call, reply):
                self._charge(budget, now)
            if fault in fault_kit.BODY_FAULTS and reply.status == 200:
                reply.body = fault_kit.corrupt(fault, reply.body)
        reply.headers.update(budget.headers(now))
        return reply

    def _charge(self, budget: _Budget, now: float) -> None:
        budget.charge(now)
        self.stats.count("budget_spent")

    def _not_modified(self, call: _Call, reply: _Reply) -> bool:
        """Turn ``reply`` into a 304 when the client already holds this body (free)."""
        wanted = call.request.headers.get("If-None-Match")
        if reply.status != 200 or reply.etag is None or not wanted:
            return False
        if not _etag_matches(wanted, reply.etag):
            return False
        reply.status, reply.body = 304, b""
        self.stats.count("not_modified")
        return True

    def _dispatch(self, call: _Call) -> _Reply:
        if call.route is _UNKNOWN_ROUTE or call.request.method not in ("GET", "HEAD"):
            return _error(404, "Not Found")
        try:
            if call.route is _ANY_REPO_ROUTE:
                self._resolve_repo(call)
                return _error(404, "Not Found")
            return self._handlers[call.route.handler](call)
        except _Answer as answer:
            return answer.reply

    def _secondary(self) -> _Reply:
        """403 with retry-after and, as GitHub sends it (recorded 2026), no x-ratelimit."""
        message = SECONDARY_MESSAGE.format(rid=self._next_request_id())
        reply = _error(403, message, _SECONDARY_DOCS)
        reply.headers["Retry-After"] = str(self.cfg.secondary_retry_after)
        return reply

    def _finish(self, call: _Call, reply: _Reply) -> web.Response:
        headers = {
            "Content-Type": reply.content_type,
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Api-Version-Selected": call.version
            if call.version in API_VERSIONS
            else API_VERSIONS[0],
            "X-GitHub-Request-Id": self._next_request_id(),
            "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
            "Access-Control-Expose-Headers": _EXPOSED,
            **reply.headers,
        }
        if reply.etag is not None:
            headers["ETag"] = reply.etag
            headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
        return web.Response(status=reply.status, body=reply.body or None, headers=headers)

    def _next_request_id(self) -> str:
        self._request_ids += 1
        return f"0000:{self._request_ids:05X}:{self.cfg.seed:07X}:0000000:00000000"

    @staticmethod
    def _from_response(response: web.Response) -> _Reply:
        body = response.body if isinstance(response.body, bytes) else b""
        return _Reply(response.status, body, content_type=response.headers["Content-Type"])

    def _client_for(self, request: web.Request) -> _Client | None:
        """The token's state, or None for a missing or wrong token."""
        token = _bearer(request.headers.get("Authorization", ""))
        if not token or (self.cfg.token is not None and token != self.cfg.token):
            return None
        client = self._clients.get(token)
        if client is None:
            client = _Client(_Budget(self.cfg.rate_limit, self.cfg.reset_seconds))
            self._clients[token] = client
        return client

    def _internal(self, path: str) -> web.Response:
        """``/__simulator/stats``: free, unauthenticated, never faulty, never counted."""
        if path == "/__simulator/stats":
            return web.json_response(self.stats.snapshot())
        return web.json_response({"message": "Not Found"}, status=404)

    # -- handlers ----------------------------------------------------------------------------

    def _rate_limit(self, call: _Call) -> _Reply:
        assert call.client is not None
        core = call.client.budget.core(time.time())
        reset = core["reset"]
        resources = {"core": {**core, "resource": "core"}}
        for name, limit in (("search", 30), ("graphql", 5000), ("code_search", 10)):
            resources[name] = {"limit": limit, "used": 0, "remaining": limit, "reset": reset}
            resources[name]["resource"] = name
        payload: dict[str, Any] = {"resources": resources}
        if call.version < "2026-03-10":
            payload["rate"] = resources["core"]
        return _json(200, payload)

    def _org(self, call: _Call) -> _Reply:
        if call.args["org"].lower() != self.model.org.lower():
            raise _Answer(_error(404, "Not Found"))
        return self._object(call, self.model.org_object)

    def _repo(self, call: _Call) -> _Reply:
        return self._object(call, self._resolve_repo(call).current)

    def _object(self, call: _Call, fragments: tuple[bytes, ...]) -> _Reply:
        body = self._renderer(call.base).one(fragments)
        reply = _Reply(200, body, etag=f'"{_digest(body)}"')
        reply.headers["Last-Modified"] = _http_date(parse_time(self.model.now))
        return reply

    def _detail_handlers(self) -> dict[str, Callable[[_Call], _Reply]]:
        """The per-item detail routes (``details.Details``): generated on request."""
        details = Details(self.model)
        by_number: dict[str, Callable[[RepoData, int], object | None]] = {
            "pull": details.pull,
            "reviews": details.reviews,
            "review_comments": details.review_comments,
            "commits": details.commits,
            "requested_reviewers": details.requested_reviewers,
            "issue_comments": details.issue_comments,
            "issue_reactions": details.issue_reactions,
            "comment_reactions": details.comment_reactions,
            "review_comment_reactions": lambda _repo, _id: [],
        }
        handlers: dict[str, Callable[[_Call], _Reply]] = {
            name: partial(self._detail, produce) for name, produce in by_number.items()
        }
        handlers["user"] = partial(self._user_detail, details.user)
        handlers["user_orgs"] = partial(self._user_detail, details.user_orgs)
        return handlers

    def _detail(self, produce: Callable[[RepoData, int], object | None], call: _Call) -> _Reply:
        repo = self._resolve_repo(call)
        number = call.args.get("number") or call.args.get("comment_id")
        return self._detail_reply(call, produce(repo, _int(number, -1)))

    def _user_detail(self, produce: Callable[[str], object | None], call: _Call) -> _Reply:
        return self._detail_reply(call, produce(call.args["login"]))

    def _detail_reply(self, call: _Call, payload: object | None) -> _Reply:
        if payload is None:
            raise _Answer(_error(404, "Not Found"))
        raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        body = raw.replace(API_PLACEHOLDER_BYTES, call.base.encode())
        return _Reply(200, body, etag=f'W/"{_digest(body)}"')

    def _org_repos(self, call: _Call) -> _Reply:
        self._check_owner(call)
        kind = _choice(call.query, "type", _REPO_TYPES, "all")
        sort = _choice(call.query, "sort", tuple(_REPO_SORTS), "created")
        default = "asc" if sort == "full_name" else "desc"
        descending = _choice(call.query, "direction", ("asc", "desc"), default) == "desc"
        repos = sorted(
            (r for r in (*self.model.repos, *self.model.aliases) if _repo_type_ok(r, kind)),
            key=_REPO_SORTS[sort],
        )
        is_org = call.route.template.startswith(("/orgs", "/organizations"))
        link_path = f"/{'organizations' if is_org else 'user'}/{self.model.org_id}/repos"
        page = _Page.by_number(call, len(repos), descending)
        chunk = page.take(repos)
        reply = self._list_reply(call, [r.listing for r in chunk], [r.updated_at for r in chunk])
        _add_link(reply, page.links(call, link_path, lambda _: ""))
        return reply

    def _check_owner(self, call: _Call) -> None:
        org = self.model
        name = call.args.get("org") or call.args.get("user")
        ok = name.lower() == org.org.lower() if name else call.args.get("org_id") == str(org.org_id)
        if not ok:
            raise _Answer(_error(404, "Not Found"))

    def _pulls(self, call: _Call) -> _Reply:
        repo = self._resolve_repo(call)
        state = _choice(call.query, "state", ("open", "closed", "all"), "open")
        sort = _choice(call.query, "sort", _PULL_SORTS, "created")
        default = "desc" if sort == "created" else "asc"
        descending = _choice(call.query, "direction", ("asc", "desc"), default) == "desc"
        selection = self._select(repo, "pulls", state, sort, None)
        return self._items_reply(call, repo, "pulls", selection, descending, cursors=False)

    def _issues(self, call: _Call) -> _Reply:
        repo = self._resolve_repo(call)
        state = _choice(call.query, "state", ("open", "closed", "all"), "open")
        sort = _choice(call.query, "sort", ("created", "updated", "comments"), "created")
        descending = _choice(call.query, "direction", ("asc", "desc"), "desc") == "desc"
        since = _since(call.query.get("since"))
        selection = self._select(repo, "issues", state, sort, since)
        big = len(selection) > self.cfg.cursor_threshold
        cursors = big or "after" in call.query or "before" in call.query
        if big and _int(call.query.get("page"), 1) > MAX_CURSOR_PAGE:
            raise _Answer(
                _error(422, DEEP_PAGE_MESSAGE, f"{DOCS}/issues/issues#list-repository-issues")
            )
        return self._items_reply(call, repo, "issues", selection, descending, cursors)

    def _items_reply(
        self,
        call: _Call,
        repo: RepoData,
        kind: str,
        selection: Selection,
        descending: bool,
        cursors: bool,
    ) -> _Reply:
        if cursors:
            page = _Page.by_cursor(call, selection, descending)
        else:
            page = _Page.by_number(call, len(selection), descending)
        chunk = page.take(selection.items)
        reply = self._list_reply(call, [i.fragments for i in chunk], [i.updated_at for i in chunk])
        keys = page.take(selection.keys)

        def cursor(rel: str) -> str:
            return encode_cursor(keys[-1] if rel == "next" else keys[0])

        _add_link(reply, page.links(call, f"/repositories/{repo.id}/{kind}", cursor))
        return reply

    def _list_reply(
        self, call: _Call, fragments: Sequence[tuple[bytes, ...]], updated: Sequence[str]
    ) -> _Reply:
        body = self._renderer(call.base).many(fragments)
        reply = _Reply(200, body, etag=f'W/"{_digest(body)}"')
        newest = max(updated, default=self.model.now)
        reply.headers["Last-Modified"] = _http_date(parse_time(newest))
        return reply

    def _select(
        self, repo: RepoData, kind: str, state: str, sort: str, since: str | None
    ) -> Selection:
        """Filtered lists are cached: a client walking pages asks the same query each time."""
        key = (repo.id, kind, state, sort, since)
        selection = self._selections.get(key)
        if selection is None:
            if len(self._selections) > 1024:
                self._selections.clear()
            selection = repo.select(kind, state, sort, since)
            self._selections[key] = selection
        return selection

    def _renderer(self, base: str) -> _Renderer:
        """One renderer per API base a client used (few: a host, maybe with /api/v3)."""
        renderer = self._renderers.get(base)
        if renderer is None:
            if len(self._renderers) >= 8:
                self._renderers.clear()
            renderer = self._renderers[base] = _Renderer(base)
        return renderer

    def _resolve_repo(self, call: _Call) -> RepoData:
        """The repo a ``/repos/{o}/{r}`` or ``/repositories/{id}`` call names; raises the 404
        (unknown, vanished) or the 301 (renamed: old name) GitHub would send."""
        alias = self.model.alias_for(call.args.get("owner", ""), call.args.get("repo", ""))
        if "repo_id" in call.args:
            repo = self.model.repo_by_id(_int(call.args["repo_id"], -1))
        elif alias is not None:
            repo = alias
        elif call.args["owner"].lower() != self.model.org.lower():
            repo = None
        else:
            repo = self.model.repo_by_name(call.args["repo"])
            moved = self.model.renamed_from(call.args["repo"]) if repo is None else None
            if moved is not None:
                raise _Answer(_moved(call, moved))
        if repo is None or repo.vanished:
            raise _Answer(_error(404, "Not Found"))
        return repo


_REPO_TYPES = ("all", "public", "private", "forks", "sources", "member", "owner")
_PULL_SORTS = ("created", "updated", "popularity", "long-running")
_PRIMARY_DOCS = f"{DOCS}/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
_SECONDARY_DOCS = f"{DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
_EXPOSED = (
    "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, "
    "X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, "
    "X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, "
    "X-GitHub-Request-Id, Deprecation, Sunset"
)
_REPO_SORTS: dict[str, Callable[[RepoData], tuple[str, int]]] = {
    "created": lambda r: (r.created_at, r.id),
    "updated": lambda r: (r.updated_at, r.id),
    "pushed": lambda r: (r.pushed_at or "", r.id),
    "full_name": lambda r: (r.name.lower(), r.id),
}


def _repo_type_ok(repo: RepoData, kind: str) -> bool:
    if kind == "forks":
        return repo.fork
    if kind == "sources":
        return not repo.fork
    if kind == "private":
        return repo.private
    if kind == "public":
        return not repo.private
    return True


def _moved(call: _Call, repo: RepoData) -> _Reply:
    """301 to the ``/repositories/{id}`` form, same path suffix and query, as GitHub does."""
    found = _REPO_PATH.match(call.path)
    rest = found.group("rest") or "" if found else ""
    location = f"{call.base}/repositories/{repo.id}{rest}"
    if call.request.query_string:
        location += f"?{call.request.query_string}"
    reply = _json(
        301,
        {
            "message": "Moved Permanently",
            "url": location,
            "documentation_url": "https://docs.github.com/v3/#http-redirects",
        },
    )
    reply.headers["Location"] = location
    return reply


# ---------------------------------------------------------------------------------------------
# pagination


@dataclass(frozen=True)
class _Page:
    """One page of a list: a window [start, end) in traversal order (ascending storage walked
    backwards when descending), plus how its Link header is written."""

    start: int
    end: int
    total: int
    descending: bool
    per_page: int
    number: int | None

    @classmethod
    def by_number(cls, call: _Call, total: int, descending: bool) -> _Page:
        per_page = _per_page(call.query)
        number = max(1, _int(call.query.get("page"), 1))
        start = (number - 1) * per_page
        return cls(start, start + per_page, total, descending, per_page, number)

    @classmethod
    def by_cursor(cls, call: _Call, selection: Selection, descending: bool) -> _Page:
        per_page = _per_page(call.query)
        total = len(selection)
        after, before = call.query.get("after"), call.query.get("before")
        try:
            if after:
                start = position_after(selection.keys, decode_cursor(after), descending)
                return cls(start, start + per_page, total, descending, per_page, None)
            if before:
                end = position_before(selection.keys, decode_cursor(before), descending)
                return cls(max(0, end - per_page), end, total, descending, per_page, None)
        except ValueError:
            raise _Answer(_error(422, "Invalid cursor value")) from None
        page = cls.by_number(call, total, descending)
        return cls(page.start, page.end, total, descending, per_page, None)

    def take(self, ascending: Sequence[T]) -> list[T]:
        """This page's elements of a list stored ascending, in traversal order."""
        n = len(ascending)
        start, end = min(self.start, n), min(self.end, n)
        if not self.descending:
            return list(ascending[start:end])
        return list(reversed(ascending[n - end : n - start]))

    def links(self, call: _Call, path: str, cursor: Callable[[str], str]) -> list[tuple[str, str]]:
        """(rel, url) pairs in GitHub's order; empty when everything fits on one page."""
        if self.number is None:
            return self._cursor_links(call, path, cursor)
        last = max(1, math.ceil(self.total / self.per_page))
        if self.number == 1 and last == 1:
            return []
        rels: list[tuple[str, int]] = []
        if self.number > 1:
            rels.append(("prev", self.number - 1))
        if self.number < last:
            rels += [("next", self.number + 1), ("last", last)]
        if self.number > 1:
            rels.append(("first", 1))
        return [(rel, _link_url(call, path, "page", str(n))) for rel, n in rels]

    def _cursor_links(
        self, call: _Call, path: str, cursor: Callable[[str], str]
    ) -> list[tuple[str, str]]:
        if min(self.end, self.total) <= self.start:
            return []
        links: list[tuple[str, str]] = []
        if self.start > 0:
            links.append(("prev", _link_url(call, path, "before", cursor("prev"))))
        if self.end < self.total:
            links.append(("next", _link_url(call, path, "after", cursor("next"))))
        return links


def _link_url(call: _Call, path: str, name: str, value: str) -> str:
    """The request's own query, minus any pagination position, plus the new one."""
    kept = [(k, v) for k, v in call.query.items() if k not in ("page", "after", "before")]
    query = urlencode([*kept, (name, value)], quote_via=quote, safe=":,")
    return f"{call.base}{path}?{query}"


def _add_link(reply: _Reply, links: Iterable[tuple[str, str]]) -> None:
    header = ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links)
    if header:
        reply.headers["Link"] = header


# ---------------------------------------------------------------------------------------------
# small helpers


def _bearer(header: str) -> str:
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() in ("token", "bearer") else ""


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _per_page(query: MultiDictProxy[str]) -> int:
    """GitHub's rule: 30 by default, at most 100."""
    value = _int(query.get("per_page"), 30)
    return 30 if value < 1 else min(value, 100)


def _choice(query: MultiDictProxy[str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = query.get(name, default)
    if value not in allowed:
        raise _invalid("Issue", name)
    return value


def _since(text: str | None) -> str | None:
    """``since`` as a comparable timestamp string; 422 when it is not ISO 8601."""
    if text is None:
        return None
    try:
        return iso(parse_time(text))
    except ValueError:
        raise _invalid("Issue", "since") from None


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses weak comparison: ``W/`` is ignored on both sides."""
    mine = etag.removeprefix("W/")
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == mine:
            return True
    return False


def _digest(body: bytes) -> str:
    return hashlib.sha1(body, usedforsecurity=False).hexdigest()[:32]


def _http_date(ts: int) -> str:
    return formatdate(ts, usegmt=True)


class _Renderer:
    """Pages as bytes for one API base. Each stored fragment has the placeholder swapped for
    the base once, then is reused: swapping on every page cost more than everything else a
    request does (a 100-pull page holds ~15,000 URLs)."""

    def __init__(self, base: str) -> None:
        self._base = base.encode()
        self._objects: dict[int, tuple[bytes, ...]] = {}
        self._fragments: dict[int, bytes] = {}

    def one(self, fragments: tuple[bytes, ...]) -> bytes:
        return b"".join(self._rebased(fragments))

    def many(self, objects: Sequence[tuple[bytes, ...]]) -> bytes:
        parts: list[bytes] = [b"["]
        for index, fragments in enumerate(objects):
            if index:
                parts.append(b",")
            parts.extend(self._rebased(fragments))
        parts.append(b"]")
        return b"".join(parts)

    def _rebased(self, fragments: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """Keyed by identity: the model keeps every fragment tuple alive, so ids are stable."""
        done = self._objects.get(id(fragments))
        if done is None:
            done = tuple(self._fragment(fragment) for fragment in fragments)
            self._objects[id(fragments)] = done
        return done

    def _fragment(self, fragment: bytes) -> bytes:
        done = self._fragments.get(id(fragment))
        if done is None:
            done = fragment.replace(API_PLACEHOLDER_BYTES, self._base)
            self._fragments[id(fragment)] = done
        return done


# ---------------------------------------------------------------------------------------------
# serving


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


async def _start(app: SimulatorApp, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(app.build(), access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    await web.SockSite(runner, sock, shutdown_timeout=0.2).start()
    return runner


class Simulator:
    """A simulated GitHub in a background thread: ``start()`` returns its URL."""

    def __init__(self, cfg: SimulatorConfig | None = None, model: OrgModel | None = None) -> None:
        """``model`` serves an org generated earlier (benchmarks reuse one big org across
        latencies; generating it is the slow part); by default it is generated from ``cfg``."""
        self.cfg = cfg or SimulatorConfig()
        self._app = SimulatorApp(self.cfg, model)
        self._url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def model(self) -> OrgModel:
        return self._app.model

    @property
    def now(self) -> str:
        """The simulated present (ISO): every served timestamp is at or before it; each edit
        by ``mutate`` moves it one second on."""
        return self.model.now

    def mutate(
        self, *, update: int = 0, repos: Sequence[str] | None = None, seed: int = 0
    ) -> dict[str, dict[str, list[int]]]:
        """Edit ``update`` existing pulls/issues, chosen by ``seed`` among ``repos`` (default:
        all a default harvest collects); returns endpoint -> repo -> ids changed. Every
        later answer, ETag and ``ground_truth()`` reflects the edit. See ``OrgModel.mutate``.
        """
        return self._on_loop(lambda: self._app.mutate(update, repos, seed))

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
            runner = loop.run_until_complete(_start(self._app, sock))
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

    def stats(self) -> dict[str, Any]:
        return self._app.stats.snapshot()

    def reset_stats(self) -> None:
        self._app.stats.reset()

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
    ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """What a correct harvest must contain, as served at ``base_url`` (default: here)."""
        return self.model.ground_truth(
            base_url or self.url, year, endpoints, repos, exclude, include_forks, include_archived
        )


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
