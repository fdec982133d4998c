"""``collect --dry-run``: how many requests a full harvest will make, and how long it needs.

Per repo x endpoint it reads the same first page the harvest would read. One page with no
``next`` link is exact. Otherwise ``rel="last"`` gives the page count T, and since the walk
stops at the first page holding an item created after the window (lists are oldest first),
a binary search over page numbers finds that page in about log2(T) requests. Cursor-paged
lists give no ``last``; they are counted as a guess and reported as such. Nothing is written.

GraphQL endpoints (``reviews``, ``pull_stats``) are counted by walking: their pages come by
cursor, newest-updated first, so only the walk knows where the year ends. The dry run walks
each repo's first pass as the harvest would (one walk for both endpoints), and adds the
follow-up queries of every pull whose reviews overflow its batch (``totalCount`` says how
many). Its GraphQL points are shown apart from REST requests: a separate budget.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from gh_collect import endpoints
from gh_collect.config import Config
from gh_collect.endpoints import Endpoint, Window
from gh_collect.endpoints.graphql import PULL_WINDOW
from gh_collect.errors import SkippableApiError
from gh_collect.github.client import GitHubClient, RateLimit
from gh_collect.github.credentials import Credentials
from gh_collect.github.graphql import GraphQLTransport
from gh_collect.github.graphql_queries import REVIEWS_PER_QUERY
from gh_collect.github.pagination import PER_PAGE, PageRequest
from gh_collect.github.pool import CredentialPool, PoolView
from gh_collect.harvest.listing import discover_repos
from gh_collect.harvest.walk import PageWalk, paginator_for

CURSOR_GUESS_PAGES = 11  # cursor paging starts where page numbers stop being served


@dataclass
class Plan:
    repos: int = 0
    discovery_pages: int = 0
    pages: dict[str, int] = field(default_factory=dict)
    guessed_units: int = 0
    queries: dict[str, int] = field(default_factory=dict)  # GraphQL, by the leading endpoint
    per_parent: dict[str, str] = field(default_factory=dict)  # REST reviews: one list a pull
    spent: int = 0
    rate: RateLimit | None = None

    @property
    def requests(self) -> int:
        return self.discovery_pages + sum(self.pages.values())

    def describe(self, requests_per_second: float) -> str:
        minutes = self.requests / requests_per_second / 60
        lines = [
            f"dry run: {self.repos} repos; a full harvest needs about {self.requests} requests "
            f"({self.discovery_pages} discovery, "
            + ", ".join(f"{n} {name}" for name, n in self.pages.items())
            + ")",
            f"at most ~{requests_per_second:.0f} requests/s (GitHub's secondary limits): "
            f"about {minutes:.1f} min of requests",
        ]
        if self.queries:
            names = " + ".join(self.queries)
            lines.append(
                f"GraphQL ({names}, one walk per repo): about {sum(self.queries.values())} "
                "queries of 1 point each, on the graphql budget"
            )
        for child, parent in self.per_parent.items():
            lines.append(
                f"{child}: one request per item {parent} keeps, counted as {parent} pages x "
                f"{PER_PAGE} (at most)"
            )
        if self.rate is not None:
            lines.append(self._budget_line())
        if self.guessed_units:
            lines.append(f"{self.guessed_units} cursor-paged lists counted as a guess")
        lines.append(f"this estimate spent {self.spent} requests")
        return "\n".join(lines)

    def _budget_line(self) -> str:
        assert self.rate is not None
        rate, short = self.rate, self.requests - self.rate.remaining
        reset = datetime.fromtimestamp(rate.reset, UTC).strftime("%H:%M UTC")
        if short <= 0:
            return f"budget: {rate.remaining}/{rate.limit} left (resets {reset}): enough"
        hours = math.ceil(short / max(rate.limit, 1))
        return (
            f"budget: {rate.remaining}/{rate.limit} left (resets {reset}): "
            f"needs about {hours} more reset(s), at least {hours} h of waiting"
        )


async def estimate(
    config: Config,
    token: str | Credentials,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Plan:
    """What harvesting ``config``'s one org (``target.org``) would take, from first pages."""
    graphql = [n for n in config.endpoints if config.endpoint(n).transport == "graphql"]
    plan = Plan(pages={name: 0 for name in config.endpoints if name not in graphql})
    plan.queries = {name: 0 for name in graphql}
    plan.per_parent = {
        n: parent for n in config.endpoints if (parent := config.endpoint(n).parent) is not None
    }
    window = Window(config.window_start, config.window_end)
    credentials: str | PoolView
    if isinstance(token, Credentials):
        pool = CredentialPool(token, pause_below=config.rate_limit.pause_below)
        credentials = pool.view(config.target.org)
    else:
        credentials = token
    async with GitHubClient(
        config.github, credentials, rate_settings=config.rate_limit, transport=transport
    ) as client:
        repos = await discover_repos(client, config.target) or []
        plan.repos = len(repos)
        plan.discovery_pages = max(1, math.ceil(len(repos) / 100))
        jobs = [
            (repo.fields["full_name"], name)
            for repo in repos
            for name in [*plan.pages, *graphql[:1]]  # one GraphQL walk serves them all
            if name not in plan.per_parent  # counted from its parent's pages below
            if not endpoints.get(name).turned_off(repo.fields)  # no request: zero records
        ]
        semaphore = asyncio.Semaphore(config.github.concurrency)
        gql = GraphQLTransport(client)

        async def one(full_name: str, endpoint: str) -> None:
            async with semaphore:
                if endpoint in plan.queries:
                    walked = await _graphql_queries(gql, full_name, endpoint, window)
                    plan.queries[endpoint] += walked  # after the await: no lost update
                    return
                pages, guessed = await _unit_pages(client, full_name, endpoint, window)
            plan.pages[endpoint] += pages
            plan.guessed_units += guessed

        await asyncio.gather(*(one(full_name, endpoint) for full_name, endpoint in jobs))
        for child, parent in plan.per_parent.items():
            plan.pages[child] = plan.pages.get(parent, 0) * PER_PAGE
        plan.spent, plan.rate = client.stats.requests, client.rate
    return plan


async def _unit_pages(
    client: GitHubClient, full_name: str, endpoint: str, window: Window
) -> tuple[int, int]:
    """Requests the harvest walk will make for one unit, and 1 if that number is a guess."""
    spec = endpoints.get(endpoint)
    walk = PageWalk(
        client, paginator_for(spec, full_name, window), stop=lambda i: spec.stops(i, window)
    )
    try:
        first = await walk.next()
    except SkippableApiError:
        return 1, 0  # the harvest will try once and mark it failed
    assert first is not None  # a fresh walk has a first page
    hops = 1 if first.page.moved_to else 0  # a renamed repo's first page costs a 301 first
    if first.next_token is None:
        return 1 + hops, 0
    total = _page_number(first.page.last_url)
    if total is None:
        return CURSOR_GUESS_PAGES + hops, 1
    request = spec.first_request(full_name, window)
    return await _stop_page(client, spec, request, total, window) + hops, 0


async def _graphql_queries(
    gql: GraphQLTransport, full_name: str, endpoint: str, window: Window
) -> int:
    """Queries a GraphQL unit's first pass makes, follow-ups included (walked, as the
    harvest walks it: the dry run spends what the pass will)."""
    spec = endpoints.get(endpoint)
    paginator = paginator_for(spec, full_name, window, graphql_url=gql.url)
    walk = PageWalk(gql.client, paginator, graphql=gql, stop=lambda i: spec.stops(i, window))
    queries = 0
    try:
        while (step := await walk.next()) is not None:
            queries += 1 + sum(_follow_ups(pull, window) for pull in step.items or [])
    except SkippableApiError:
        return queries + 1  # the harvest will try once and mark it failed
    return queries


def _follow_ups(pull: Any, window: Window) -> int:
    """Queries to read the reviews of ``pull`` that overflow its batch (100 a query)."""
    reviews = pull.get("reviews") if isinstance(pull, dict) else None
    if not isinstance(reviews, dict) or not PULL_WINDOW.keeps(pull, window):
        return 0
    total, served = reviews.get("totalCount"), reviews.get("nodes")
    if not isinstance(total, int) or not isinstance(served, list) or total <= len(served):
        return 0
    return math.ceil((total - len(served)) / REVIEWS_PER_QUERY)


async def _stop_page(
    client: GitHubClient, spec: Endpoint, request: PageRequest, total: int, window: Window
) -> int:
    """The first page (of ``total``) holding an item past the window: the walk's last.

    Probes by page number: the first page's ``last`` link says how many there are, and
    lists are oldest first, so "past the window" is monotonic in the page number."""
    params = dict(request.params or {})

    async def past(page: int) -> bool:
        answer = await client.get_page(request.url, params={**params, "page": page})
        return spec.stops(answer.items, window)

    if not await past(total):
        return total
    low, high = 2, total  # page 1 is not past the window; page ``total`` is
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if await past(middle) else (middle + 1, high)
    return low


def _page_number(url: str | None) -> int | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("page")
    return int(values[0]) if values and values[0].isdigit() else None


def requests_per_second(config: Config) -> float:
    """Our pacing ceiling: the per-endpoint minute limit (with its margin), one phase at a time."""
    return config.github.max_requests_per_minute * 0.9 / 60


def estimate_sync(config: Config, token: str | Credentials, **kwargs: Any) -> Plan:
    return asyncio.run(estimate(config, token, **kwargs))
