"""One request loop for GET and POST: mappers, per-resource budgets, the observer, the quota.

Against respx mocks on fake time, as in test_client: what reaches the "server" is counted
exactly, and waits are asserted, not slept.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from gh_collect.errors import RateLimitExit, RetriableApiError
from gh_collect.github.client import GitHubClient, Page
from gh_collect.github.observer import ClientObserver
from gh_collect.github.pacing import Pacer
from gh_collect.github.pagination import PageRequest
from gh_collect.github.pool import CredentialPool, Lease
from gh_collect.github.quota import Quota, QuotaReached
from gh_collect.github.ratelimit import RateLimit, resource_for
from gh_collect.github.responses import REST, Exchange
from gh_collect.harvest.observer import RunObserver

from .test_client import API, TOKEN, FakeTime, Recorder, make_client, rate_headers, run_with

GRAPHQL_URL = f"{API}/graphql"
QUERY = {"query": "query { viewer { login } }", "variables": {"n": 1}}


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


def resource_headers(remaining: int, reset: float, resource: str) -> dict[str, str]:
    return {**rate_headers(remaining, reset), "x-ratelimit-resource": resource}


def post(client: GitHubClient, body: Any = QUERY, **kwargs: Any) -> Page:
    request = PageRequest("/graphql", method="POST", body=body)
    return run_with(client, lambda gh: gh.fetch(request, **kwargs))


class CountingPacer(Pacer):
    """A pacer that counts the slots it hands out."""

    def __init__(self, ft: FakeTime) -> None:
        super().__init__(8, 900, 90.0, clock=ft.clock, sleep=ft.sleep)
        self.slots = 0

    def slot(self, endpoint_key: str) -> Any:
        self.slots += 1
        return super().slot(endpoint_key)


class Progress:
    def __init__(self) -> None:
        self.requests = 0
        self.rates: list[tuple[int, int]] = []

    def request(self) -> None:
        self.requests += 1

    def rate(self, remaining: int, limit: int) -> None:
        self.rates.append((remaining, limit))


class Ledger:
    def __init__(self) -> None:
        self.requests = 0
        self.rates: list[tuple[int, int, float, str | None]] = []

    def count_request(self, n: int = 1) -> None:
        self.requests += n

    def record_rate_limit(
        self, limit: int, remaining: int, reset: float, resource: str | None
    ) -> str | None:
        self.rates.append((limit, remaining, reset, resource))
        return None


# -- GET and POST through one fetch ----------------------------------------------------------


def test_post_sends_its_body_as_json_and_never_validators(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    route = router.post(GRAPHQL_URL).mock(
        return_value=httpx.Response(200, json={"data": {"viewer": {"login": "me"}}})
    )
    page = post(make_client(ft), etag='W/"x"', last_modified="Tue, 10 Oct 2017 16:00:00 GMT")
    sent = route.calls.last.request
    assert json.loads(sent.content) == QUERY
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert "if-none-match" not in sent.headers and "if-modified-since" not in sent.headers
    assert page.data == {"data": {"viewer": {"login": "me"}}} and page.items == []


def test_get_page_and_fetch_of_a_get_are_the_same_request(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    route = router.get(f"{API}/repos/o/r/pulls").mock(return_value=httpx.Response(200, json=[1]))
    request = PageRequest("/repos/o/r/pulls", {"per_page": 100})
    fetched = run_with(make_client(ft), lambda gh: gh.fetch(request, etag="e"))
    assert fetched.items == [1]
    sent = route.calls.last.request
    assert sent.method == "GET" and sent.url.params["per_page"] == "100"
    assert sent.headers["if-none-match"] == "e" and not sent.content


def test_a_post_is_retried_like_a_get_and_its_messages_say_post(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    route = router.post(GRAPHQL_URL).mock(
        return_value=httpx.Response(502, json={"message": "Server Error"})
    )
    with pytest.raises(RetriableApiError) as caught:
        post(make_client(ft, max_attempts=3))
    text = str(caught.value)
    assert route.call_count == 3
    assert f"POST {GRAPHQL_URL} failed after 3 attempts" in text
    assert f"502 from POST {GRAPHQL_URL}" in text
    assert "GET" not in text and TOKEN not in text and "\n" not in text


# -- mappers: what an answer means is chosen per request -------------------------------------


class ToyGraphQL:
    """What a GraphQL mapper will do: a 200 can still fail, inside its body."""

    def __init__(self) -> None:
        self.read_count = 0

    def read(self, exchange: Exchange) -> Any:
        self.read_count += 1
        data = REST.read(exchange)
        if isinstance(data, dict) and data.get("errors"):
            message = f"{exchange.method} {exchange.url}: {data['errors'][0]['message']}"
            raise RetriableApiError(message, status=exchange.response.status_code, url=exchange.url)
        return data


def test_a_mapper_s_error_is_retried_then_the_answer_is_used(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    errors = {"errors": [{"message": "Something went wrong while executing your query."}]}
    router.post(GRAPHQL_URL).mock(
        side_effect=[httpx.Response(200, json=errors), httpx.Response(200, json={"data": {}})]
    )
    mapper = ToyGraphQL()
    client = make_client(ft)
    assert post(client, mapper=mapper).data == {"data": {}}
    assert mapper.read_count == 2 and client.stats.retries == 1


def test_a_mapper_s_error_surfaces_after_the_last_attempt(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    errors = {"errors": [{"message": "timedout"}]}
    route = router.post(GRAPHQL_URL).mock(return_value=httpx.Response(200, json=errors))
    with pytest.raises(RetriableApiError, match=r"failed after 2 attempts.*timedout") as caught:
        post(make_client(ft, max_attempts=2), mapper=ToyGraphQL())
    assert route.call_count == 2 and caught.value.status == 200


def test_the_rest_mapper_ignores_errors_inside_a_200(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    body = {"errors": [{"message": "x"}]}
    router.post(GRAPHQL_URL).mock(return_value=httpx.Response(200, json=body))
    assert post(make_client(ft)).data == body


# -- one budget per resource -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "resource"),
    [
        ("GET", "/repos/o/r/pulls", "core"),
        ("GET", f"{API}/search/issues?q=x", "search"),
        ("GET", "/search/code", "code_search"),
        ("POST", "/graphql", "graphql"),
        ("POST", "https://ghe.example.com/api/graphql", "graphql"),
        ("GET", "/graphql", "core"),
        ("GET", "https://ghe.example.com/api/v3/search/commits", "search"),
    ],
)
def test_a_request_knows_its_budget_before_it_is_sent(method: str, url: str, resource: str) -> None:
    assert resource_for(method, url) == resource


def test_a_spent_graphql_budget_does_not_pause_core(ft: FakeTime, router: respx.MockRouter) -> None:
    reset = ft.now + 900
    router.post(GRAPHQL_URL).mock(
        return_value=httpx.Response(
            200, json={"data": {}}, headers=resource_headers(0, reset, "graphql")
        )
    )
    core = router.get(f"{API}/repos/o/r/pulls").mock(
        return_value=httpx.Response(200, json=[], headers=resource_headers(4000, reset, "core"))
    )
    client = make_client(ft, pause_below=50)

    async def both(gh: GitHubClient) -> None:
        await gh.fetch(PageRequest("/graphql", method="POST", body=QUERY))
        await gh.get_page("/repos/o/r/pulls")
        await gh.get_page("/repos/o/r/pulls")

    run_with(client, both)
    assert ft.sleeps == [] and core.call_count == 2
    assert {name: rate.remaining for name, rate in client.rates.items()} == {
        "graphql": 0,
        "core": 4000,
    }
    assert client.rate is not None and client.rate.resource == "core"


def test_a_spent_core_budget_does_not_pause_graphql_but_pauses_core(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    reset = ft.now + 600
    graphql = router.post(GRAPHQL_URL).mock(
        return_value=httpx.Response(
            200, json={"data": {}}, headers=resource_headers(4000, reset, "graphql")
        )
    )
    router.get(f"{API}/repos/o/r/pulls").mock(
        return_value=httpx.Response(200, json=[], headers=resource_headers(10, reset, "core"))
    )
    client = make_client(ft, pause_below=50)

    async def core_then_graphql(gh: GitHubClient) -> None:
        await gh.get_page("/repos/o/r/pulls")
        await gh.fetch(PageRequest("/graphql", method="POST", body=QUERY))
        assert ft.sleeps == []
        await gh.get_page("/repos/o/r/pulls")  # core is below pause_below: waits for reset

    run_with(client, core_then_graphql)
    assert graphql.call_count == 1 and ft.sleeps == [pytest.approx(601)]


def test_a_spent_graphql_budget_with_exit_names_it(ft: FakeTime, router: respx.MockRouter) -> None:
    router.post(GRAPHQL_URL).mock(
        return_value=httpx.Response(
            200, json={"data": {}}, headers=resource_headers(0, ft.now + 300, "graphql")
        )
    )
    client = make_client(ft, on_rate_limit="exit")

    async def twice(gh: GitHubClient) -> None:
        request = PageRequest("/graphql", method="POST", body=QUERY)
        await gh.fetch(request)
        await gh.fetch(request)

    with pytest.raises(RateLimitExit, match=r"^graphql rate limit spent until"):
        run_with(client, twice)


def test_an_answer_without_a_resource_counts_for_its_request_s_bucket(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    headers = rate_headers(20, ft.now + 60, limit=30)
    del headers["x-ratelimit-resource"]
    router.get(f"{API}/search/issues").mock(
        return_value=httpx.Response(200, json={"items": []}, headers=headers)
    )
    recorder = Recorder()
    client = make_client(ft, observer=recorder)
    run_with(client, lambda gh: gh.get_page("/search/issues", params={"q": "x"}))
    assert list(client.rates) == ["search"] and client.rates["search"].remaining == 20
    assert client.rate is client.rates["search"]  # core never seen: the latest stands in
    assert recorder.events == [("admit", "search"), ("sent", "search")]
    assert recorder.rates[0].resource is None  # as the server said it: nothing


# -- the observer admits before anything is paced or sent --------------------------------------


def quota_client(ft: FakeTime, quota: Quota, **options: Any) -> tuple[GitHubClient, Ledger]:
    ledger = Ledger()
    observer: ClientObserver = RunObserver(quota, Progress(), ledger)
    options.setdefault("pacer", CountingPacer(ft))
    client = make_client(ft, observer=observer, **options)
    return client, ledger


@pytest.mark.parametrize("cap", [1, 3])
def test_a_quota_of_n_sends_exactly_n(ft: FakeTime, router: respx.MockRouter, cap: int) -> None:
    route = router.get(f"{API}/repos/o/r/pulls").mock(return_value=httpx.Response(200, json=[]))
    quota = Quota(max_requests=cap, budget_fraction=1.0)
    client, ledger = quota_client(ft, quota)
    refused = 0

    async def many(gh: GitHubClient) -> None:
        nonlocal refused
        for _ in range(cap + 3):
            try:
                await gh.get_page("/repos/o/r/pulls")
            except QuotaReached:
                refused += 1

    run_with(client, many)
    assert isinstance(client.pacer, CountingPacer)
    assert route.call_count == cap and client.pacer.slots == cap
    assert client.stats.requests == cap and quota.requests == cap and ledger.requests == cap
    assert refused == 3


def test_a_retry_is_a_new_request_the_quota_may_refuse(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    route = router.get(f"{API}/repos/o/r/pulls").mock(
        return_value=httpx.Response(502, json={"message": "Server Error"})
    )
    quota = Quota(max_requests=2, budget_fraction=1.0)
    client, _ledger = quota_client(ft, quota)
    with pytest.raises(QuotaReached):
        run_with(client, lambda gh: gh.get_page("/repos/o/r/pulls"))
    assert isinstance(client.pacer, CountingPacer)
    assert route.call_count == 2 and client.pacer.slots == 2 and client.stats.requests == 2


def test_a_redirect_hop_is_never_refused_but_counted(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    router.get(f"{API}/repos/o/old/pulls").mock(
        return_value=httpx.Response(301, headers={"location": f"{API}/repositories/1/pulls"})
    )
    final = router.get(f"{API}/repositories/1/pulls").mock(
        return_value=httpx.Response(200, json=[])
    )
    quota = Quota(max_requests=1, budget_fraction=1.0)
    client, ledger = quota_client(ft, quota)
    page = run_with(client, lambda gh: gh.get_page("/repos/o/old/pulls"))
    assert page.moved_to == f"{API}/repositories/1/pulls" and final.call_count == 1
    assert quota.requests == 2 and ledger.requests == 2 and client.stats.requests == 2


def test_a_refused_request_never_waits_for_a_reset(ft: FakeTime, router: respx.MockRouter) -> None:
    route = router.get(f"{API}/repos/o/r/pulls").mock(
        return_value=httpx.Response(200, json=[], headers=rate_headers(10, ft.now + 3000))
    )
    quota = Quota(max_requests=1, budget_fraction=1.0)
    client, _ledger = quota_client(ft, quota, pause_below=50)

    async def twice(gh: GitHubClient) -> None:
        await gh.get_page("/repos/o/r/pulls")
        await gh.get_page("/repos/o/r/pulls")

    with pytest.raises(QuotaReached):
        run_with(client, twice)
    assert route.call_count == 1 and ft.sleeps == []


def test_the_run_observer_records_what_the_callbacks_did(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    reset = ft.now + 100
    router.get(f"{API}/repos/o/r/pulls").mock(
        return_value=httpx.Response(200, json=[], headers=rate_headers(4000, reset))
    )
    quota, progress, ledger = Quota(max_requests=None, budget_fraction=1.0), Progress(), Ledger()
    client = make_client(ft, observer=RunObserver(quota, progress, ledger))
    run_with(client, lambda gh: gh.get_page("/repos/o/r/pulls"))
    assert progress.requests == 1 and progress.rates == [(4000, 5000)]
    assert ledger.requests == 1 and ledger.rates == [(5000, 4000, int(reset), "core")]
    assert quota.requests == 1


# -- the quota's budget share, per resource ----------------------------------------------------


def rate(remaining: int, resource: str, reset: float = 2e9, limit: int = 100) -> RateLimit:
    return RateLimit(limit=limit, remaining=remaining, reset=reset, resource=resource)


def test_the_budget_share_is_kept_per_resource() -> None:
    quota = Quota(max_requests=None, budget_fraction=0.5)
    for remaining in (99, 98, 97):  # the first answer opens the window at 100
        quota.before_request("graphql")
        quota.observe(rate(remaining, "graphql"), "graphql")
    quota.before_request("core")
    quota.observe(rate(4999, "core", limit=5000), "core")
    for remaining in range(96, 49, -1):  # down to 50 left: 50 of 100 spent
        quota.before_request("graphql")
        quota.observe(rate(remaining, "graphql"), "graphql")
    with pytest.raises(QuotaReached, match=r"50 of 100 of the graphql budget spent"):
        quota.before_request("graphql")


def test_a_spent_share_of_one_resource_is_not_charged_to_another() -> None:
    quota = Quota(max_requests=None, budget_fraction=0.5)
    quota.before_request("core")
    quota.observe(rate(0, "graphql", limit=10), "graphql")  # graphql: window at 1, 1 spent
    quota.before_request("core")  # core has no window yet: nothing to hold it to
    assert quota.reached is None
    with pytest.raises(QuotaReached):
        quota.before_request("graphql")


def test_quota_defaults_keep_the_old_core_only_calls_working() -> None:
    quota = Quota(max_requests=None, budget_fraction=0.5)
    quota.before_request()
    quota.observe(rate(9, "core", limit=10))
    quota.count_sent()
    assert quota.requests == 2 and quota.reached is None


def test_the_pool_keeps_in_flight_per_resource(ft: FakeTime) -> None:
    """A budget is never spent below pause_below, its requests in flight counted; graphql
    requests in flight do not spend core."""
    pool = CredentialPool.single(TOKEN, "GITHUB_TOKEN", pause_below=50, clock=ft.clock)
    view = pool.view("")

    async def learn(resource: str, remaining: int) -> None:
        first = await view.acquire(resource, "GET", "/x", unused_sender)
        assert first is not None
        view.observe(first, rate(remaining, resource, reset=ft.now + 100), resource)
        view.release(first)

    async def check() -> None:
        await learn("core", 60)
        await learn("graphql", 5000)
        graphql = [await view.acquire("graphql", "POST", "/graphql", unused_sender)
                   for _ in range(30)]  # fmt: skip
        assert all(lease is not None for lease in graphql) and view.can_spend("core")
        core = [await view.acquire("core", "GET", "/x", unused_sender) for _ in range(10)]
        assert all(lease is not None for lease in core)
        assert await view.acquire("core", "GET", "/x", unused_sender) is None  # 60 - 10 = 50
        assert view.blocked_until("core") == ft.now + 100

    asyncio.run(check())


def test_while_a_budget_is_unknown_one_request_learns_it_and_the_others_wait(
    ft: FakeTime,
) -> None:
    """At a run's start (or past a reset) the budget may be spent: one request goes, the
    others wait for its answer instead of bursting into a 403 each."""
    view = CredentialPool.single(TOKEN, "GITHUB_TOKEN", clock=ft.clock).view("")
    order: list[str] = []

    async def request(name: str) -> None:
        lease = await view.acquire("core", "GET", "/x", unused_sender)
        order.append(f"{name} sent" if lease is not None else f"{name} refused")
        if name == "first":
            await asyncio.sleep(0)  # the others queue up meanwhile
            assert lease is not None
            view.observe(lease, rate(0, "core", reset=ft.now + 100), "core")
            view.release(lease)

    async def check() -> None:
        await asyncio.gather(request("first"), request("second"), request("third"))

    asyncio.run(check())
    assert order == ["first sent", "second refused", "third refused"]


async def unused_sender(request: PageRequest, lease: Lease) -> tuple[Any, Any]:
    raise AssertionError("one token: no /user check, no JWT")
