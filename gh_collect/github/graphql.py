"""GraphQL over the one request loop: ``POST {api_url}/graphql``, answers read as GitHub sends them.

Queries go through ``GitHubClient.fetch`` like every REST page (retries, pacing, deadlines,
body caps, the token only to ``api_url``'s origin, the ``graphql`` budget's waits); what is
GraphQL's own is here:

- where it is: ``{api_url}/graphql``; on GitHub Enterprise Server, whose REST root is
  ``https://HOST/api/v3``, it is ``https://HOST/api/graphql`` (``graphql_url``);
- what an answer means (``GraphQLMapper``): GitHub fails inside HTTP 200 too. A spent budget
  (``type: RATE_LIMITED``, or ``RATE_LIMIT``/``code: graphql_rate_limit`` as recorded in
  2026) is a ``RateLimitError`` on the graphql budget, waited out or exited on like REST's;
  a secondary-limit message is a ``SecondaryRateLimitError``; a timeout ("Something went
  wrong while executing your query...", or 502/504) a ``SlowPageError``, so a walk can ask
  for a smaller ``first``; ``NOT_FOUND`` (or ``FORBIDDEN``) of what a query asked for at its
  root a ``SkippableApiError``; a query GitHub refuses as written (unknown field, missing
  ``first``, too many nodes) a ``GraphQLQueryError``, which stops the run; data with errors
  beside it is returned with them (``GraphQLResult.errors``): the caller decides;
- the budget: ``x-ratelimit-*`` headers (resource ``graphql``) as for REST; a ``rateLimit``
  object in the data stands in when the headers are missing; ``QueryCost`` is what it says;
- pacing (``PointsPacer``): GitHub's secondary limit of 2,000 points a minute, kept with a
  margin by waiting before a query whose expected cost (its last cost) would pass it;
- page sizes (``FirstSizer``): halved when GitHub cuts a query short, grown back after
  queries that pass.

Bodies are untrusted like REST's: not JSON, not an object, ``data`` not an object,
``errors`` not a list of objects: a retriable one-line error; strings are bounded and
flattened to one line; numbers are checked like headers.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gh_collect.errors import (
    ApiError,
    GraphQLQueryError,
    RateLimitError,
    RetriableApiError,
    SecondaryRateLimitError,
    SkippableApiError,
    SlowPageError,
)
from gh_collect.github.client import GitHubClient, Page
from gh_collect.github.pagination import PageRequest
from gh_collect.github.ratelimit import (
    GRAPHQL,
    MAX_HEADER_NUMBER,
    RateLimit,
    retry_after_seconds,
)
from gh_collect.github.responses import (
    SECONDARY_DEFAULT_WAIT,
    Exchange,
    decode_body,
)
from gh_collect.github.sizing import PageSizer

__all__ = [
    "GRAPHQL_POINTS_PER_MINUTE",
    "MAX_FIRST",
    "FirstSizer",
    "GraphQLMapper",
    "GraphQLProblem",
    "GraphQLResult",
    "GraphQLTransport",
    "PointsPacer",
    "QueryCost",
    "graphql_url",
    "smaller_first",
]

GRAPHQL_POINTS_PER_MINUTE = 2000  # GitHub's secondary limit for GraphQL
MAX_FIRST = 100  # first/last: 1 to 100
MAX_RESET_AHEAD = 86400.0  # a rateLimit.resetAt further ahead than a day is bad data
_MESSAGE_CHARS = 300
_SHOWN_ERRORS = 3
_RATE_LIMITED_TYPES = frozenset({"RATE_LIMITED", "RATE_LIMIT"})
_GONE_TYPES = frozenset({"NOT_FOUND", "FORBIDDEN"})
_QUERY_TYPES = frozenset(
    {"MISSING_PAGINATION_BOUNDARIES", "EXCESSIVE_PAGINATION", "MAX_NODE_LIMIT_EXCEEDED"}
)
_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_SECONDARY = re.compile(r"secondary rate|abuse detection", re.IGNORECASE)
_TIMED_OUT = re.compile(
    r"something went wrong while executing your query|timeout|timed out", re.IGNORECASE
)
_QUERY_MESSAGES = re.compile(
    r"^(parse error|a query attribute must be specified|variable \$\w+ of type)", re.IGNORECASE
)

Sleep = Callable[[float], Awaitable[None]]


def graphql_url(api_url: str) -> str:
    """The GraphQL endpoint of a REST root: ``https://api.github.com`` ->
    ``https://api.github.com/graphql``; GHES ``https://HOST/api/v3`` ->
    ``https://HOST/api/graphql`` (beside the REST root, not under it)."""
    parts = urlsplit(api_url)
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v3") + "/graphql" if path.endswith("/api/v3") else path + "/graphql"
    return urlunsplit(parts._replace(path=path, query="", fragment=""))


# -- what an answer carries -------------------------------------------------------------------


@dataclass(frozen=True)
class GraphQLProblem:
    """One entry of an answer's ``errors``, bounded: ``type`` (GitHub's: NOT_FOUND...),
    ``code`` (``extensions.code`` or a top-level ``code``), ``path`` into the data."""

    message: str
    type: str | None = None
    code: str | None = None
    path: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class QueryCost:
    """GitHub's ``rateLimit`` object, as a query asked for it (None where absent or bad);
    ``reset_at`` in epoch seconds."""

    cost: int | None = None
    limit: int | None = None
    remaining: int | None = None
    used: int | None = None
    node_count: int | None = None
    reset_at: float | None = None

    def as_rate(self) -> RateLimit | None:
        """The budget it reports, as headers would, if it reports a whole one."""
        if not self.limit or self.remaining is None or self.reset_at is None:
            return None
        return RateLimit(self.limit, self.remaining, self.reset_at, self.used, GRAPHQL)


@dataclass(frozen=True)
class GraphQLResult:
    """A usable answer: ``data`` (an object), the ``errors`` that came with it (partial
    data: the caller decides), the ``rateLimit`` the query asked for, and the budget the
    headers reported."""

    data: dict[str, Any]
    errors: tuple[GraphQLProblem, ...] = ()
    rate_limit: QueryCost | None = None
    rate: RateLimit | None = None
    url: str = ""

    @property
    def partial(self) -> bool:
        return bool(self.errors)


class GraphQLMapper:
    """What a GraphQL answer means: a ``GraphQLResult``, or the error it stands for
    (a ``ResponseMapper``: no I/O, no waiting)."""

    def read(self, exchange: Exchange) -> GraphQLResult:
        response = exchange.response
        where = f"{exchange.method} {exchange.url}"
        if response.status_code != 200:
            raise exchange.error() or RetriableApiError(
                f"{where}: unexpected status {response.status_code} for a GraphQL query",
                status=response.status_code,
                url=exchange.url,
            )
        body = decode_body(response, url=exchange.url, method=exchange.method, body=exchange.body)
        data, problems = _parts(body, where, exchange.url)
        error = _error_for(data, problems, exchange, where)
        if error is not None:
            raise error
        assert data is not None  # _error_for refuses an answer without data
        return GraphQLResult(data, problems, _query_cost(data.get("rateLimit"), exchange.now))


GRAPHQL_MAPPER = GraphQLMapper()


def _parts(
    body: Any, where: str, url: str
) -> tuple[dict[str, Any] | None, tuple[GraphQLProblem, ...]]:
    """``data`` and ``errors`` of a body, or a retriable error for a body of another shape."""
    if not isinstance(body, dict):
        raise _malformed(where, url, f"a JSON {_kind(body)} where an object was expected")
    data, errors = body.get("data"), body.get("errors")
    if data is not None and not isinstance(data, dict):
        raise _malformed(where, url, f"'data' is a JSON {_kind(data)}, not an object")
    if errors is None:
        errors = []
    if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
        raise _malformed(where, url, "'errors' is not a list of objects")
    if data is None and not errors:
        raise _malformed(where, url, "neither 'data' nor 'errors'")
    return data, tuple(_problem(error) for error in errors)


def _error_for(
    data: dict[str, Any] | None,
    problems: tuple[GraphQLProblem, ...],
    exchange: Exchange,
    where: str,
) -> ApiError | None:
    """The error an answer with ``errors`` stands for; None when its data is usable."""
    url, status = exchange.url, exchange.response.status_code
    summary = _summary(problems)
    if any(p.type in _RATE_LIMITED_TYPES or p.code == "graphql_rate_limit" for p in problems):
        text = f"{where}: graphql rate limit spent ({summary})"
        return RateLimitError(text, reset_at=_reset_at(exchange), status=status, url=url)
    if any(_SECONDARY.search(p.message) for p in problems):
        wait = retry_after_seconds(exchange.response.headers.get("retry-after"), exchange.now)
        text = f"{where}: secondary rate limit ({summary})"
        wait = SECONDARY_DEFAULT_WAIT if wait is None else wait
        return SecondaryRateLimitError(text, retry_after=wait, status=status, url=url)
    if data is None:
        return _failure(problems, where, summary, status, url)
    gone = [p for p in problems if p.type in _GONE_TYPES and len(p.path) == 1]
    if gone and all(data.get(str(p.path[0])) is None for p in gone):
        text = f"{where}: {summary}; skipped, the run goes on"
        return SkippableApiError(text, status=status, url=url)
    return None


def _failure(
    problems: tuple[GraphQLProblem, ...], where: str, summary: str, status: int, url: str
) -> ApiError:
    """An answer without data: why nothing came back."""
    if any(_TIMED_OUT.search(p.message) for p in problems):
        return SlowPageError(f"{where}: GitHub cut the query short ({summary})", url=url)
    if any(p.type in _GONE_TYPES for p in problems):
        return SkippableApiError(f"{where}: {summary}; skipped, the run goes on", url=url)
    if any(_refused_as_written(p) for p in problems):
        text = (
            f"{where}: GitHub refused the GraphQL query as written ({summary}); a bug of "
            "gh_collect or a change of GitHub's schema: report it"
        )
        return GraphQLQueryError(text, status=status, url=url)
    return RetriableApiError(f"{where}: GraphQL query failed ({summary})", status=status, url=url)


def _refused_as_written(problem: GraphQLProblem) -> bool:
    """Validation (``extensions.code``), parse errors, and GitHub's query limits."""
    return (
        problem.type in _QUERY_TYPES
        or (problem.code is not None and problem.code != "graphql_rate_limit")
        or bool(_QUERY_MESSAGES.search(problem.message))
    )


def _problem(error: dict[str, Any]) -> GraphQLProblem:
    """One ``errors`` entry, every part checked and bounded."""
    extensions = error.get("extensions")
    code = extensions.get("code") if isinstance(extensions, dict) else None
    code = code if code is not None else error.get("code")
    path = error.get("path")
    steps = path[:20] if isinstance(path, list) else []
    return GraphQLProblem(
        message=_one_line(error.get("message")) or "(no message)",
        type=_name(error.get("type")),
        code=_name(code),
        path=tuple(_step(step) for step in steps),
    )


def _step(step: Any) -> str | int:
    if isinstance(step, int) and not isinstance(step, bool) and 0 <= step <= MAX_HEADER_NUMBER:
        return step
    return _one_line(step)[:100]


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and _NAME.fullmatch(value) else None


def _one_line(value: Any) -> str:
    text = value if isinstance(value, str) else ("" if value is None else repr(value))
    flat = " ".join(text.split())
    return flat if len(flat) <= _MESSAGE_CHARS else flat[: _MESSAGE_CHARS - 1] + "…"


def _summary(problems: Sequence[GraphQLProblem]) -> str:
    """The first few errors on one line: ``NOT_FOUND: Could not resolve...; ...``."""
    shown = [f"{p.type}: {p.message}" if p.type else p.message for p in problems[:_SHOWN_ERRORS]]
    more = len(problems) - _SHOWN_ERRORS
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def _reset_at(exchange: Exchange) -> float:
    """When a spent graphql budget refills: the headers' reset, else a minute from now."""
    rate = RateLimit.from_headers(exchange.response.headers, now=exchange.now)
    return rate.reset if rate is not None else exchange.now + SECONDARY_DEFAULT_WAIT


def _query_cost(value: Any, now: float) -> QueryCost | None:
    """A ``rateLimit`` object, each field checked like a header; None if it is absent."""
    if not isinstance(value, dict):
        return None
    return QueryCost(
        cost=_count(value.get("cost")),
        limit=_count(value.get("limit")),
        remaining=_count(value.get("remaining")),
        used=_count(value.get("used")),
        node_count=_count(value.get("nodeCount")),
        reset_at=_epoch(value.get("resetAt"), now),
    )


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_HEADER_NUMBER else None


def _epoch(value: Any, now: float) -> float | None:
    """An ISO 8601 ``resetAt`` as epoch seconds; None if unreadable, past-naive or far."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    epoch = when.timestamp()
    return epoch if math.isfinite(epoch) and 0 <= epoch <= now + MAX_RESET_AHEAD else None


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, int | float) else "null"
    )


def _malformed(where: str, url: str, what: str) -> RetriableApiError:
    return RetriableApiError(f"malformed GraphQL response from {where}: {what}", url=url)


# -- pacing and page sizes ------------------------------------------------------------------


class _Spend:
    """Points one query took (expected until its cost is known), and when it started."""

    __slots__ = ("points", "start")

    def __init__(self, start: float, points: float) -> None:
        self.start, self.points = start, points


class PointsPacer:
    """GitHub's secondary limit on GraphQL points (2,000 a minute), kept with a margin: a
    query waits until the points spent in the last minute plus its expected cost fit.

    ``clock`` and ``sleep`` must agree (monotonic time and ``asyncio.sleep``, or fakes).
    """

    def __init__(
        self,
        points_per_minute: int = GRAPHQL_POINTS_PER_MINUTE,
        *,
        safety: float = 0.9,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._budget = max(1, int(points_per_minute * safety))
        self._window = window_s
        self._clock, self._sleep = clock, sleep
        self._spent: deque[_Spend] = deque()
        self._sum = 0.0

    @property
    def spent_last_window(self) -> float:
        """Points of the queries started in the last window (expected ones included)."""
        self._expire(self._clock())
        return self._sum

    async def acquire(self, expected: int) -> _Spend:
        """Wait until ``expected`` points fit; returns the entry ``settle`` corrects."""
        while True:
            now = self._clock()
            self._expire(now)
            if not self._spent or self._sum + expected <= self._budget:
                entry = _Spend(now, float(expected))
                self._spent.append(entry)
                self._sum += expected
                return entry
            await self._sleep(max(self._wait(expected, now), 0.001))

    def settle(self, entry: _Spend, points: int) -> None:
        """The query cost ``points`` (its ``rateLimit.cost``), not what was expected."""
        if any(spent is entry for spent in self._spent):
            self._sum += points - entry.points
        entry.points = float(points)

    def _wait(self, expected: int, now: float) -> float:
        """Until enough old queries leave the window for ``expected`` more points."""
        excess = self._sum + expected - self._budget
        freed = 0.0
        for spent in self._spent:
            freed += spent.points
            if freed >= excess:
                return spent.start + self._window - now
        return self._window

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0].start <= now - self._window:
            self._sum -= self._spent.popleft().points
        if not self._spent:
            self._sum = 0.0


def smaller_first(first: int, *, smallest: int = 1) -> int | None:
    """Half of ``first`` (what GitHub's advice on heavy queries amounts to), not below
    ``smallest``; None when ``first`` is already there."""
    half = max(smallest, first // 2)
    return half if half < first else None


class FirstSizer:
    """How many items a batched query asks (its ``first``): halved when GitHub cuts the
    query short, doubled back (up to where it began) after queries that pass, as a REST
    walk's ``per_page`` (``sizing.PageSizer`` decides when)."""

    def __init__(self, largest: int, *, smallest: int = 1) -> None:
        if not 1 <= smallest <= largest <= MAX_FIRST:
            raise ValueError(f"FirstSizer: need 1 <= smallest <= largest <= {MAX_FIRST}")
        self.first = self._largest = largest
        self._smallest = smallest
        self._timing = PageSizer()

    def shrink(self) -> bool:
        """Ask for fewer next time; False when already at the smallest (give up)."""
        smaller = smaller_first(self.first, smallest=self._smallest)
        if smaller is None:
            return False
        self.first = smaller
        self._timing.shrunk()
        return True

    def passed(self) -> None:
        """A query passed; after enough of them, ask for more again."""
        if self.first < self._largest and self._timing.passed():
            self.first = min(self._largest, self.first * 2)
            self._timing.grew()


# -- the transport ------------------------------------------------------------------------


class GraphQLTransport:
    """GraphQL queries through a ``GitHubClient`` (inside its ``async with``)::

        gql = GraphQLTransport(gh)
        result = await gql.query(PULLS_WITH_REVIEWS, {"owner": o, "name": r, ...})

    ``pacer``: the points pacer (default: GitHub's 2,000 a minute on the monotonic clock).
    """

    def __init__(self, client: GitHubClient, *, pacer: PointsPacer | None = None) -> None:
        self._client = client
        self.pacer = pacer or PointsPacer()
        self._last_cost: dict[str, int] = {}

    @property
    def url(self) -> str:
        return graphql_url(self._client.api_url)

    @property
    def client(self) -> GitHubClient:
        return self._client

    async def query(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        cut_short_fails: bool = False,
    ) -> GraphQLResult:
        """Send one query until it has a usable answer (retried, paced and waited for like
        any request); raises the domain error an unusable one stands for.

        ``cut_short_fails``: a 502, 504, timeout or GitHub's "Something went wrong while
        executing your query" raises ``SlowPageError`` at once, for a walk that asks again
        with a smaller ``first`` (``FirstSizer``) instead of repeating a query too heavy.
        """
        body: dict[str, Any] = {"query": query, "variables": dict(variables or {})}
        if operation_name is not None:
            body["operationName"] = operation_name
        request = PageRequest(self.url, method="POST", body=body)
        page = await self.fetch(request, cut_short_fails=cut_short_fails)
        result: GraphQLResult = page.data
        return result

    async def fetch(self, request: PageRequest, *, cut_short_fails: bool = False) -> Page:
        """One query as a ``Page`` (a walk's request, ``PageRequest(url, method="POST",
        body=...)``): paced by points, sent, its cost settled; ``data`` is the
        ``GraphQLResult`` (with the budget and URL) and ``date`` the server's clock."""
        text = request.body.get("query", "") if isinstance(request.body, dict) else ""
        entry = await self.pacer.acquire(self._last_cost.get(text, 1))
        page = await self._client.fetch(
            request, mapper=GRAPHQL_MAPPER, cut_short_fails=cut_short_fails
        )
        result: GraphQLResult = page.data
        cost = result.rate_limit.cost if result.rate_limit is not None else None
        if cost is not None:
            self._last_cost[text] = cost
            self.pacer.settle(entry, cost)
        if page.rate is None and result.rate_limit is not None:
            body_rate = result.rate_limit.as_rate()
            if body_rate is not None:
                self._client.observe_rate(body_rate, GRAPHQL)
        return replace(page, data=replace(result, rate=page.rate, url=page.url))
