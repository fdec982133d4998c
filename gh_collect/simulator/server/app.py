"""The application: every request's pipeline, from gatekeeping to the budget charge.

Per request, in order: latency, request checks (User-Agent, API version, token), secondary
limits, a fault draw, simulated server time, the primary budget, the answer, then the charge.
The budget is checked and charged with no ``await`` in between, so concurrent requests can
never overspend it. What each route answers is in ``handlers``; whose budget a credential
spends in ``identities``; the GitHub App routes (JWT in, installation token out) in ``apps``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from aiohttp import web

from gh_collect.simulator import faults as fault_kit
from gh_collect.simulator.faults import FaultInjector, SlowPages
from gh_collect.simulator.graphql.endpoint import GraphQLEndpoint
from gh_collect.simulator.model import OrgModel
from gh_collect.simulator.model.reviews import ManyReviews, many_reviews_pull
from gh_collect.simulator.server.apps import AppEndpoints
from gh_collect.simulator.server.config import (
    API_VERSIONS,
    DOCS,
    SECONDARY_MESSAGE,
    SimulatorConfig,
)
from gh_collect.simulator.server.control import Churn, Control
from gh_collect.simulator.server.handlers import ListItems, _Handlers
from gh_collect.simulator.server.identities import Identities, salted_etag
from gh_collect.simulator.server.limits import _Budget, _Client, _Stats
from gh_collect.simulator.server.owners import OTHER_USER, apply_options, saml_refusal
from gh_collect.simulator.server.paging import _per_page
from gh_collect.simulator.server.rendering import (
    _Answer,
    _error,
    _etag_matches,
    _http_date,
    _Reply,
)
from gh_collect.simulator.server.routes import (
    _ANY_REPO_ROUTE,
    _UNKNOWN_ROUTE,
    ROUTES,
    _Call,
    _match,
    _Route,
    list_routes,
)

T = TypeVar("T")


@dataclass
class _Scripted:
    """A scripted failure: ``status`` for paths containing ``needle``, ``times`` left."""

    needle: str
    status: int
    times: int | None


class SimulatorApp:
    """The request logic, independent of how and where it is served."""

    def __init__(
        self,
        cfg: SimulatorConfig,
        model: OrgModel | None = None,
        *,
        identities: Identities | None = None,
        apps: AppEndpoints | None = None,
    ) -> None:
        """``identities`` and ``apps``: shared with the other orgs of one simulated GitHub
        (``fleet``); by default this org's own, from ``cfg``."""
        self.cfg = cfg
        self.model = model or OrgModel.generate(
            cfg.seed, cfg.repos, cfg.org, cfg.now, cfg.sizes, cfg.scenarios,
            cfg.history_years, cfg.touched_share,
        )  # fmt: skip
        apply_options(cfg, self.model)
        _apply_many_reviews(cfg, self.model)
        self.stats = _Stats()
        seed = cfg.fault_seed if cfg.fault_seed is not None else f"derived:{cfg.seed}"
        self.faults = FaultInjector(cfg.faults, seed)
        self.slow_pages = SlowPages(cfg.slow_pages)
        self.identities = identities or Identities(cfg, self.model.clock)
        if apps is None and cfg.app is not None:
            apps = AppEndpoints(cfg.app, self.identities)
        self.apps = apps
        if apps is not None:
            apps.serve_org(self.model.org)
        self._request_ids = 0
        self._scripted: list[_Scripted] = []
        self._answers = _Handlers(cfg, self.model)
        self._graphql = GraphQLEndpoint(
            cfg,
            self.model,
            self.stats,
            self.faults,
            refuse=self._gatekeep,
            secondary=self._secondary,
            request_id=self._next_request_id,
        )
        self._answers.graphql_resource = self._graphql.resource
        self._routes: tuple[_Route, ...] = ()
        self.churn = Churn(self._churn_edit, cfg.seed, cfg.churn_ms)
        self._control = Control(self.model, self.stats, self.churn)

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

    def _churn_edit(self, rng: random.Random) -> None:
        """One churn edit (``OrgModel.churn``), run on the server's loop by ``Churn``."""
        self._edit(lambda: self.model.churn(rng))

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

    def add_list_route(self, template: str, items: ListItems) -> None:
        """Serve one more repo list, ``template`` (e.g. ``/repos/{owner}/{repo}/toys``) and
        its ``/repositories/{repo_id}/...`` form, from ``items(full_name)`` asked on every
        request (``_Handlers.added_list``); must run where requests are served. ValueError
        for a template that is not under ``/repos/{owner}/{repo}/`` or is already routed."""
        pair = list_routes(template, f"list {template}")
        taken = {route.template for route in (*ROUTES, *self._routes)}
        clash = [route.template for route in pair if route.template in taken]
        if clash:
            raise ValueError(f"{clash[0]!r} is already routed")
        self._answers.handlers[pair[0].handler] = partial(self._answers.added_list, items)
        self._routes = (*self._routes, *pair)

    def _forget(self) -> None:
        """Drop what was derived from the old state (``_Handlers.forget``)."""
        self._answers.forget()
        self._graphql.forget()

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._started)
        app.on_cleanup.append(self._stopping)
        return app

    async def _started(self, _app: web.Application) -> None:
        """The simulated clock runs from here; churn configured before now begins."""
        self.model.clock.start()
        self.churn.set(self.churn.ms)

    async def _stopping(self, _app: web.Application) -> None:
        await self.churn.stop()

    # -- the pipeline ------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        prefix = "/api/v3" if request.path.startswith("/api/v3/") else ""
        path = request.path[len(prefix) :].rstrip("/") or "/"
        if path.startswith("/__simulator/"):
            base = f"{request.scheme}://{request.host}{prefix}"
            return self._dated(self._control.answer(request, path, base))
        if self.apps is not None and self.apps.handles(path):
            return self._dated(await self._app_route(request, path, prefix))
        client = self._client_for(request)
        self.stats.enter()
        if client is not None:
            client.in_flight += 1
        try:
            return self._dated(await self._serve(request, path, prefix, client))
        finally:
            self.stats.leave()
            if client is not None:
                client.in_flight -= 1

    async def _app_route(self, request: web.Request, path: str, prefix: str) -> web.Response:
        """A GitHub App route (``apps``): a JWT's, outside every installation's budget."""
        assert self.apps is not None
        if self.cfg.latency_ms:
            await asyncio.sleep(self.cfg.latency_ms / 1000.0)
        version = request.headers.get("X-GitHub-Api-Version", API_VERSIONS[0])
        call = _Call(request, path, prefix, _UNKNOWN_ROUTE, {}, None, version)
        authorization = request.headers.get("Authorization", "")
        reply = await self.apps.answer(request.method, path, authorization, call.base)
        self.stats.record(path if reply.status < 300 else "/app <refused>", str(reply.status))
        return self._finish(call, reply)

    def _dated(self, response: web.StreamResponse) -> web.StreamResponse:
        """``Date`` from the simulated clock, the one that stamps edits (aiohttp would send
        the wall clock): a client may use it as a watermark against ``updated_at``."""
        response.headers["Date"] = _http_date(self.model.clock.now())
        return response

    async def _serve(
        self, request: web.Request, path: str, prefix: str, client: _Client | None
    ) -> web.StreamResponse:
        if self.cfg.latency_ms:
            await asyncio.sleep(self.cfg.latency_ms / 1000.0)
        route, args = _match(path, self._routes)
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
        if call.route.handler == "graphql":
            return await self._graphql.answer(call)  # its own token rule, limits and charge
        authorised = self.identities.sso_authorized(call.request.headers.get("Authorization", ""))
        refused = self._gatekeep(call) or saml_refusal(self.cfg, call, authorised=authorised)
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
        if fault is None and self.slow_pages:
            fault = await self._cut_short(call)
        if fault is not None:
            self.stats.fault(fault)
        if fault == "secondary":
            return self._secondary()
        if fault == "reset":
            fault_kit.reset_connection(call.request)
            return None
        await self._work(fault)
        return self._charged(call, call.client, fault)

    async def _cut_short(self, call: _Call) -> str | None:
        """A heavy page of a ``slow_pages`` repo: held, then answered 502 or 504."""
        if not call.route.faultable or not {"repo", "repo_id"} & call.args.keys():
            return None
        try:
            repo = self._answers.resolve_repo(call)
        except _Answer:
            return None  # answered as usual: 404, 301
        cut = self.slow_pages.cut(repo.name, _per_page(call.query))
        if cut is not None:
            await asyncio.sleep(self.cfg.slow_page_hold_s)
        return cut

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
            reply = _error(
                self.cfg.limit_status, "API rate limit exceeded for user ID 1.", _PRIMARY_DOCS
            )
        elif fault in fault_kit.ERROR_FAULTS:
            reply = self._from_response(fault_kit.error_response(fault))
            self._charge(budget, now)
        else:
            reply = self._dispatch(call)
            if reply.etag is not None and client.etag_salt:  # GitHub: Vary: Authorization
                reply.etag = salted_etag(reply.etag, client.etag_salt)
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
                self._answers.resolve_repo(call)
                return _error(404, "Not Found")
            return self._answers.handlers[call.route.handler](call)
        except _Answer as answer:
            return answer.reply

    def _secondary(self) -> _Reply:
        """403 (or 429: ``limit_status``) with retry-after and, as GitHub sends it (recorded
        2026), no x-ratelimit."""
        message = SECONDARY_MESSAGE.format(rid=self._next_request_id())
        reply = _error(self.cfg.limit_status, message, _SECONDARY_DOCS)
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
        """The credential's owner (``identities``), or None for a missing or wrong token."""
        return self.identities.client_for(request.headers.get("Authorization", ""))


def _apply_many_reviews(cfg: SimulatorConfig, model: OrgModel) -> None:
    """The scenario pull with many reviews (``model.reviews``), when the org has scenario
    repos; its PENDING review is by the login ``GET /user`` gives an org target's tokens."""
    pull = many_reviews_pull(model.repos) if cfg.many_reviews else None
    if pull is not None:
        model.many_reviews[pull.id] = ManyReviews(cfg.many_reviews, OTHER_USER)


_PRIMARY_DOCS = f"{DOCS}/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
_SECONDARY_DOCS = f"{DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
_EXPOSED = (
    "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, "
    "X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, "
    "X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, "
    "X-GitHub-Request-Id, Deprecation, Sunset"
)
