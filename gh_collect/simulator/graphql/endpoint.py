"""``POST /graphql`` (and GHES's ``/api/graphql``): one query's pipeline, from token to body.

In order, as GitHub does it: the token (GraphQL always needs one: 401 without), the
request checks REST makes too (User-Agent), secondary limits (concurrency and requests a
minute, shared with REST's accounting; then points a minute, GraphQL's own), a fault
draw, the body (JSON with a ``query`` string), parsing and validation against GitHub's
real schema, variables, the limits every query must keep (``first``/``last``, 500,000
nodes: refused with HTTP 200, uncharged), the primary budget (points, separate from REST's
core: spent, the answer is HTTP 200 with ``type: RATE_LIMITED``), the ``slow_queries`` cut
(held, then 502, charged extra), the charge, and execution.

The budget is checked and charged with no ``await`` in between, as the REST pipeline does,
so concurrent queries never overspend it; execution never awaits either, so a query sees
the model as one state. ``rateLimit`` in a query reports the budget after its own charge.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    execute_sync,
    get_operation_ast,
    get_variable_values,
    parse,
    validate,
)

from gh_collect.simulator import faults as fault_kit
from gh_collect.simulator.faults import FaultInjector
from gh_collect.simulator.graphql.cost import Measure, QueryRefused, measure
from gh_collect.simulator.graphql.errors import (
    BAD_JSON,
    GRAPHQL_DOCS,
    NO_QUERY,
    UNAUTHENTICATED,
    GitHubError,
    execution_error,
    parse_error,
    rate_limited,
    timed_out,
    validation_errors,
    variable_errors,
)
from gh_collect.simulator.graphql.resolvers import (
    Context,
    ModelCache,
    QueryView,
    resolve_field,
    resolve_type,
)
from gh_collect.simulator.graphql.schema import github_schema
from gh_collect.simulator.model import OrgModel, RepoData, iso
from gh_collect.simulator.model.details import Details
from gh_collect.simulator.server import owners
from gh_collect.simulator.server.config import WINDOW_S, SimulatorConfig
from gh_collect.simulator.server.limits import _Budget, _Stats
from gh_collect.simulator.server.rendering import _error, _json, _Reply
from gh_collect.simulator.server.routes import _Call, bearer

__all__ = ["ENDPOINT", "TIMEOUT_PENALTY", "GraphQLEndpoint", "PointsBudget"]

ENDPOINT = "POST /graphql"  # what the secondary limits count it as
TIMEOUT_PENALTY = 10  # extra points a timed-out query costs (GitHub: "additional points")
_PREPARED_CACHE = 256  # distinct query texts kept parsed and validated


@dataclass
class PointsBudget(_Budget):
    """The primary GraphQL budget of one token: points an hour, its window opening at the
    first charge, apart from REST's core budget."""

    def spend(self, now: float, points: int) -> None:
        if self.reset_at is None:
            self.reset_at = now + self.window_s
        self.used += points

    def headers(self, now: float) -> dict[str, str]:
        return {**super().headers(now), "X-RateLimit-Resource": "graphql"}


@dataclass
class _Spender:
    """One token's GraphQL state: its budget and the points it spent in the last minute."""

    budget: PointsBudget
    recent: deque[tuple[float, int]] = field(default_factory=deque)
    recent_sum: int = 0

    def points_last_minute(self, now: float) -> int:
        while self.recent and self.recent[0][0] <= now - WINDOW_S:
            self.recent_sum -= self.recent.popleft()[1]
        return self.recent_sum

    def spend(self, now: float, points: int) -> None:
        self.budget.spend(now, points)
        self.recent.append((now, points))
        self.recent_sum += points


@dataclass(frozen=True)
class _Prepared:
    """A query text parsed and validated once (a walk sends the same text each page)."""

    document: DocumentNode | None
    errors: list[GitHubError]


@dataclass(frozen=True)
class _Query:
    """A query ready to charge and run."""

    document: DocumentNode
    operation: OperationDefinitionNode
    variables: dict[str, Any]
    measure: Measure


class _Refusal(Exception):
    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


class GraphQLEndpoint:
    """Answers GraphQL requests for one model; ``forget`` when the model changes."""

    def __init__(
        self,
        cfg: SimulatorConfig,
        model: OrgModel,
        stats: _Stats,
        faults: FaultInjector,
        *,
        refuse: Callable[[_Call], _Reply | None],
        secondary: Callable[[], _Reply],
        request_id: Callable[[], str],
    ) -> None:
        """``refuse``: the REST request checks (User-Agent...); ``secondary``: the
        secondary-limit answer; ``request_id``: the next ``X-GitHub-Request-Id``."""
        self.cfg, self.model, self.stats, self.faults = cfg, model, stats, faults
        self._refuse, self._secondary, self._request_id = refuse, secondary, request_id
        self._cache = ModelCache(model)
        self._details = Details(model)
        self._spenders: dict[str, _Spender] = {}
        self._prepared: OrderedDict[str, _Prepared] = OrderedDict()

    def forget(self) -> None:
        self._cache.forget()

    def resource(self, call: _Call) -> dict[str, int]:
        """The ``graphql`` entry of ``GET /rate_limit`` for this call's token."""
        return self._spender(call).budget.core(time.time())

    async def answer(self, call: _Call) -> _Reply | None:
        """The reply, or None when the connection was dropped on purpose (a reset fault)."""
        try:
            reply = await self._answer(call)
        except _Refusal as refusal:
            reply = refusal.reply
        if reply is not None and _uncharged(reply) and call.client is not None:
            reply.headers.update(self._spender(call).budget.headers(time.time()))
        return reply

    async def _answer(self, call: _Call) -> _Reply | None:
        self._gatekeep(call)
        fault = self.faults.draw()
        if fault is not None:
            self.stats.fault(fault)
        if fault == "secondary":
            return self._secondary()
        if fault == "reset":
            fault_kit.reset_connection(call.request)
            return None
        await self._work(fault)
        if fault in fault_kit.ERROR_FAULTS:
            return _from_response(fault_kit.error_response(fault))
        query = self._query(await call.request.read())
        reply = await self._charged(call, query)
        if fault in fault_kit.BODY_FAULTS and reply.status == 200:
            reply.body = fault_kit.corrupt(fault, reply.body)
        return reply

    def _gatekeep(self, call: _Call) -> None:
        """401 without a usable token (GraphQL has no anonymous access), then REST's checks
        and the request-count secondary limits."""
        if call.request.method != "POST" or call.prefix:  # not under GHES's /api/v3
            raise _Refusal(_error(404, "Not Found", GRAPHQL_DOCS))
        if call.client is None:
            has_token = bool(bearer(call.request.headers.get("Authorization", "")))
            body = {"message": "Bad credentials", "documentation_url": GRAPHQL_DOCS}
            raise _Refusal(_json(401, body if has_token else UNAUTHENTICATED))
        refused = self._refuse(call)
        if refused is not None:
            raise _Refusal(refused)
        if not call.client.admit(self.cfg, ENDPOINT, time.monotonic()):
            self.stats.count("secondary_limited")
            raise _Refusal(self._secondary())

    async def _work(self, fault: str | None) -> None:
        if self.cfg.server_time_ms:
            await asyncio.sleep(self.cfg.server_time_ms / 1000.0)
        if fault == "timeout":
            await asyncio.sleep(self.cfg.timeout_hold_s)

    # -- the request body to a query ready to run ------------------------------------------

    def _query(self, raw: bytes) -> _Query:
        """The query a body asks, refused (``_Refusal``) as GitHub refuses it before running
        anything: not JSON, no query, not valid, bad variables, over a limit."""
        text, variables, name = _request_body(raw)
        prepared = self._prepare(text)
        if prepared.document is None:
            raise _refused(prepared.errors)
        operation = get_operation_ast(prepared.document, name)
        if operation is None:
            message = f'No operation named "{name}"' if name else "An operation name is required"
            raise _refused([{"message": message}])
        schema = github_schema()
        coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):
            raise _refused(variable_errors(coerced, operation, variables))
        try:
            measured = measure(schema, prepared.document, operation, coerced)
        except QueryRefused as refused:
            raise _refused(refused.errors) from None
        return _Query(prepared.document, operation, variables, measured)

    def _prepare(self, text: str) -> _Prepared:
        prepared = self._prepared.get(text)
        if prepared is not None:
            self._prepared.move_to_end(text)
            return prepared
        prepared = _parse_and_validate(text)
        self._prepared[text] = prepared
        if len(self._prepared) > _PREPARED_CACHE:
            self._prepared.popitem(last=False)
        return prepared

    # -- budget, charge, execution ---------------------------------------------------------

    async def _charged(self, call: _Call, query: _Query) -> _Reply:
        """Check and charge the budget with no await between; a slow query is charged
        extra, then held and cut."""
        now = time.time()
        spender = self._spender(call)
        spender.budget.refresh(now)
        cost = query.measure.cost
        if spender.budget.remaining < cost:
            self.stats.count("graphql_limited")
            reply = _json(200, {"errors": [rate_limited(1)]})
        elif spender.points_last_minute(now) + cost > self.cfg.graphql_points_per_minute:
            self.stats.count("secondary_limited")
            return self._secondary()
        elif self._too_heavy(query.measure):
            return await self._timed_out(spender, now, cost)
        else:
            self._spend(spender, now, cost)
            reply = self._execute(call, query, spender, now)
        reply.headers.update(spender.budget.headers(now))
        return reply

    async def _timed_out(self, spender: _Spender, now: float, cost: int) -> _Reply:
        """GitHub's cut at ~10 s: charged (with extra points) at once, answered after the
        hold with a 502 and no data."""
        self._spend(spender, now, cost + TIMEOUT_PENALTY)
        headers = spender.budget.headers(now)
        await asyncio.sleep(self.cfg.slow_page_hold_s)
        self.stats.fault("graphql timeout")
        reply = _json(502, {"data": None, "errors": [timed_out(self._request_id())]})
        reply.headers.update(headers)
        return reply

    def _spend(self, spender: _Spender, now: float, points: int) -> None:
        spender.spend(now, points)
        self.stats.add("graphql_points", points)
        self.stats.count("graphql_queries")

    def _too_heavy(self, measured: Measure) -> bool:
        """A ``slow_queries`` repo asked for more pull requests with nested reviews than it
        answers in GitHub's ~10 s."""
        bounds = {name.lower(): bound for name, bound in self.cfg.slow_queries.items()}
        for use in measured.connections:
            bound = bounds.get((use.repository or "").lower())
            if use.field != "pullRequests" or bound is None or use.size <= bound:
                continue
            if any(
                use.encloses(inner) and inner.field == "reviews" for inner in measured.connections
            ):
                return True
        return False

    def _execute(self, call: _Call, query: _Query, spender: _Spender, now: float) -> _Reply:
        """Run the query on the model; field errors come beside the data, as GitHub's do."""
        context = self._context(call, query, spender, now)
        result = execute_sync(
            github_schema(),
            query.document,
            root_value=QueryView(context),
            context_value=context,
            variable_values=query.variables,
            operation_name=query.operation.name.value if query.operation.name else None,
            field_resolver=resolve_field,
            type_resolver=resolve_type,
        )
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [execution_error(error) for error in result.errors]
        return _json(200, payload)

    def _context(self, call: _Call, query: _Query, spender: _Spender, now: float) -> Context:
        """What resolvers see: this token's login and visibility, the budget after this
        query's charge (``rateLimit``)."""
        budget = spender.budget.core(now)
        return Context(
            model=self.model,
            details=self._details,
            cache=self._cache,
            viewer=owners.viewer_login(self.cfg, call),
            can_see=lambda repo: _visible(self.cfg, call, repo),
            rate_limit={
                "cost": query.measure.cost,
                "limit": budget["limit"],
                "nodeCount": query.measure.nodes,
                "remaining": budget["remaining"],
                "resetAt": iso(budget["reset"]),
                "used": budget["used"],
            },
        )

    def _spender(self, call: _Call) -> _Spender:
        """The points budget of the call's owner (``identities``: a user's tokens share one),
        or of its token when it has none."""
        owner = call.client.owner if call.client is not None else ""
        key = owner or bearer(call.request.headers.get("Authorization", ""))
        spender = self._spenders.get(key)
        if spender is None:
            budget = PointsBudget(self.cfg.graphql_rate_limit, self.cfg.reset_seconds)
            spender = self._spenders[key] = _Spender(budget)
        return spender


def _request_body(raw: bytes) -> tuple[str, dict[str, Any], str | None]:
    """``query``, ``variables`` and ``operationName`` of a request body."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _Refusal(_json(400, BAD_JSON)) from None
    text = body.get("query") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise _refused([{"message": NO_QUERY}])
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise _refused([{"message": "Variables must be a JSON object"}])
    name = body.get("operationName")
    return text, variables, name if isinstance(name, str) and name else None


def _parse_and_validate(text: str) -> _Prepared:
    try:
        document = parse(text)
    except GraphQLSyntaxError as error:
        return _Prepared(None, [parse_error(error, text)])
    except GraphQLError as error:  # e.g. a document nested too deeply
        return _Prepared(None, [{"message": error.message}])
    errors = validate(github_schema(), document)
    if errors:
        return _Prepared(None, validation_errors(errors, document))
    return _Prepared(document, [])


def _refused(errors: list[GitHubError]) -> _Refusal:
    """A query GitHub refuses before running it: HTTP 200, ``errors`` only, uncharged."""
    return _Refusal(_json(200, {"errors": errors}))


def _uncharged(reply: _Reply | None) -> bool:
    """A refusal GitHub answers with the budget's headers (secondary limits have none)."""
    return (
        reply is not None
        and reply.status in (200, 400)
        and "X-RateLimit-Limit" not in reply.headers
    )


def _visible(cfg: SimulatorConfig, call: _Call, repo: RepoData) -> bool:
    return not repo.private or owners.is_owner(cfg, call)


def _from_response(response: Any) -> _Reply:
    body = response.body if isinstance(response.body, bytes) else b""
    return _Reply(response.status, body, content_type=response.headers["Content-Type"])
