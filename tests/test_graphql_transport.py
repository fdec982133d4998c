"""The GraphQL transport against respx mocks on fake time: what each answer GitHub sends means.

Failures inside HTTP 200 (a spent budget, a secondary limit, a timeout, a refused query,
NOT_FOUND), partial data, untrusted bodies, the budget from headers or from ``rateLimit``,
pacing on points, page sizes, GHES's URL, and a token in no message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from gh_collect.errors import (
    ApiError,
    BadCredentialsError,
    GraphQLQueryError,
    RateLimitExit,
    RetriableApiError,
    SkippableApiError,
    SlowPageError,
)
from gh_collect.github.client import GitHubClient
from gh_collect.github.graphql import (
    FirstSizer,
    GraphQLProblem,
    GraphQLResult,
    GraphQLTransport,
    PointsPacer,
    QueryCost,
    graphql_url,
    smaller_first,
)

from .test_client import API, TOKEN, FakeTime, make_client, run_with

URL = f"{API}/graphql"
QUERY = "query { viewer { login } }"
RATE = {"cost": 1, "limit": 5000, "remaining": 4990, "used": 10, "resetAt": "2025-06-15T16:00:00Z",
        "nodeCount": 550}  # fmt: skip


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


def graphql_headers(remaining: int, reset: float, limit: int = 5000) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(int(reset)),
        "x-ratelimit-used": str(limit - remaining),
        "x-ratelimit-resource": "graphql",
    }


def ask(
    client: GitHubClient,
    query: str = QUERY,
    variables: dict[str, Any] | None = None,
    *,
    times: int = 1,
    pacer: PointsPacer | None = None,
    **kwargs: Any,
) -> GraphQLResult:
    async def use(gh: GitHubClient) -> GraphQLResult:
        transport = GraphQLTransport(gh, pacer=pacer)
        result = None
        for _ in range(times):
            result = await transport.query(query, variables, **kwargs)
        assert result is not None
        return result

    return run_with(client, use)


def failure(client: GitHubClient, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        ask(client, **kwargs)
    error = caught.value
    text = str(error)
    assert "\n" not in text and TOKEN not in text, text
    return error


# -- where queries go -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_url", "expected"),
    [
        ("https://api.github.com", "https://api.github.com/graphql"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com/api/graphql"),
        ("https://ghe.example.com/api/v3/", "https://ghe.example.com/api/graphql"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/graphql"),
    ],
)
def test_the_graphql_url_of_an_api_root(api_url: str, expected: str) -> None:
    assert graphql_url(api_url) == expected


def test_a_query_goes_to_ghes_api_graphql_with_the_token_and_its_variables(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    route = router.post("https://ghe.example.com/api/graphql").mock(
        return_value=httpx.Response(200, json={"data": {"viewer": {"login": "me"}}})
    )
    client = make_client(ft, api_url="https://ghe.example.com/api/v3")
    result = ask(client, variables={"n": 1}, operation_name="Me")
    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert httpx.Response(200, content=sent.content).json() == {
        "query": QUERY,
        "variables": {"n": 1},
        "operationName": "Me",
    }
    assert result.data == {"viewer": {"login": "me"}} and not result.partial
    assert result.url == "https://ghe.example.com/api/graphql"


# -- the budget ---------------------------------------------------------------------------------


def test_the_graphql_budget_comes_from_headers_and_the_cost_from_rate_limit(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    router.post(URL).mock(
        return_value=httpx.Response(
            200,
            json={"data": {"rateLimit": RATE}},
            headers=graphql_headers(4990, ft.now + 900),
        )
    )
    client = make_client(ft)
    result = ask(client)
    assert result.rate_limit == QueryCost(
        cost=1, limit=5000, remaining=4990, used=10, node_count=550, reset_at=1_750_003_200.0
    )
    assert result.rate is not None and result.rate.resource == "graphql"
    assert client.rates["graphql"].reset == int(ft.now + 900)  # the headers', not the body's


def test_without_headers_the_rate_limit_object_is_the_budget(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    router.post(URL).mock(return_value=httpx.Response(200, json={"data": {"rateLimit": RATE}}))
    client = make_client(ft)
    ask(client)
    budget = client.rates["graphql"]
    assert (budget.limit, budget.remaining, budget.reset) == (5000, 4990, 1_750_003_200.0)


def test_an_untrusted_rate_limit_object_is_read_field_by_field(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    odd = {"cost": -3, "limit": "5000", "remaining": True, "used": 2**60, "nodeCount": 7,
           "resetAt": "9999-01-01T00:00:00Z"}  # fmt: skip
    router.post(URL).mock(return_value=httpx.Response(200, json={"data": {"rateLimit": odd}}))
    client = make_client(ft)
    result = ask(client)
    assert result.rate_limit == QueryCost(node_count=7)
    assert "graphql" not in client.rates


@pytest.mark.parametrize(
    "spent",
    [
        {"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."},
        {"type": "RATE_LIMIT", "code": "graphql_rate_limit",
         "message": "API rate limit already exceeded for user ID 1."},
    ],
)  # fmt: skip
def test_a_spent_budget_inside_a_200_waits_for_the_graphql_reset(
    ft: FakeTime, router: respx.MockRouter, spent: dict[str, str]
) -> None:
    reset = ft.now + 1200
    route = router.post(URL).mock(
        side_effect=[
            httpx.Response(200, json={"errors": [spent]}, headers=graphql_headers(0, reset)),
            httpx.Response(200, json={"data": {"viewer": {"login": "me"}}}),
        ]
    )
    result = ask(make_client(ft))
    assert route.call_count == 2 and result.data == {"viewer": {"login": "me"}}
    assert ft.sleeps == [pytest.approx(1201)]


def test_a_spent_budget_with_exit_stops_with_75_naming_graphql(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    spent = {"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded."}]}
    router.post(URL).mock(
        return_value=httpx.Response(200, json=spent, headers=graphql_headers(0, ft.now + 600))
    )
    with pytest.raises(RateLimitExit, match=r"^graphql rate limit spent until") as caught:
        ask(make_client(ft, on_rate_limit="exit"))
    assert caught.value.exit_code == 75


def test_a_secondary_limit_inside_a_200_backs_off(ft: FakeTime, router: respx.MockRouter) -> None:
    limited = {"errors": [{"message": "You have exceeded a secondary rate limit. Please wait."}]}
    route = router.post(URL).mock(
        side_effect=[
            httpx.Response(200, json=limited, headers={"retry-after": "30"}),
            httpx.Response(403, json={"message": "You have exceeded a secondary rate limit."}),
            httpx.Response(200, json={"data": {}}),
        ]
    )
    ask(make_client(ft))
    assert route.call_count == 3
    assert ft.sleeps == [pytest.approx(30), pytest.approx(120)]  # retry-after, then 60 x 2


# -- what else an answer can mean ---------------------------------------------------------------


def test_partial_data_comes_back_with_its_errors(ft: FakeTime, router: respx.MockRouter) -> None:
    body = {
        "data": {"nodes": [None, {"id": "PR_2"}]},
        "errors": [{"type": "NOT_FOUND", "path": ["nodes", 0], "message": "Could not resolve."}],
    }
    router.post(URL).mock(return_value=httpx.Response(200, json=body))
    result = ask(make_client(ft))
    assert result.partial and result.data == body["data"]
    assert result.errors == (GraphQLProblem("Could not resolve.", "NOT_FOUND", None, ("nodes", 0)),)


def test_what_the_query_asked_for_not_found_is_skippable(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    body = {
        "data": {"rateLimit": RATE, "repository": None},
        "errors": [{"type": "NOT_FOUND", "path": ["repository"],
                    "message": "Could not resolve to a Repository with the name 'o/gone'."}],
    }  # fmt: skip
    route = router.post(URL).mock(return_value=httpx.Response(200, json=body))
    error = failure(make_client(ft))
    assert isinstance(error, SkippableApiError) and route.call_count == 1
    assert "NOT_FOUND: Could not resolve to a Repository with the name 'o/gone'." in str(error)


@pytest.mark.parametrize(
    "refusal",
    [
        {"extensions": {"code": "undefinedField", "typeName": "PullRequest", "fieldName": "x"},
         "message": "Field 'x' doesn't exist on type 'PullRequest'"},
        {"type": "MAX_NODE_LIMIT_EXCEEDED",
         "message": "This query requests up to 1,010,100 possible nodes which exceeds the "
                    "maximum limit of 500,000."},
        {"type": "MISSING_PAGINATION_BOUNDARIES", "path": ["repository", "pullRequests"],
         "message": "You must provide a `first` or `last` value to properly paginate."},
        {"message": 'Parse error on "}" (RCURLY) at [1, 22]'},
    ],
)  # fmt: skip
def test_a_query_refused_as_written_stops_the_run_without_retries(
    ft: FakeTime, router: respx.MockRouter, refusal: dict[str, Any]
) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(200, json={"errors": [refusal]}))
    error = failure(make_client(ft))
    assert isinstance(error, GraphQLQueryError) and error.exit_code == 1
    assert route.call_count == 1
    assert refusal["message"] in str(error) and "refused the GraphQL query" in str(error)


@pytest.mark.parametrize(
    "cut",
    [
        httpx.Response(502, json={"data": None, "errors": [{"message": "Something went wrong"}]}),
        httpx.Response(504, text="We couldn't respond to your request in time."),
        httpx.Response(200, json={"data": None, "errors": [{"message": (
            "Something went wrong while executing your query. This may be the result of a "
            "timeout, or it could be a GitHub bug.")}]}),
    ],
)  # fmt: skip
def test_a_query_cut_short_is_a_slow_page_at_once_when_asked(
    ft: FakeTime, router: respx.MockRouter, cut: httpx.Response
) -> None:
    route = router.post(URL).mock(return_value=cut)
    error = failure(make_client(ft, max_attempts=4), cut_short_fails=True)
    assert isinstance(error, SlowPageError) and route.call_count == 1


def test_a_query_cut_short_is_retried_otherwise(ft: FakeTime, router: respx.MockRouter) -> None:
    timed_out = {"data": None, "errors": [{"message": "Something went wrong while executing."}]}
    route = router.post(URL).mock(
        side_effect=[httpx.Response(200, json=timed_out), httpx.Response(200, json={"data": {}})]
    )
    assert ask(make_client(ft)).data == {}
    assert route.call_count == 2


def test_bad_credentials_stop_the_run(ft: FakeTime, router: respx.MockRouter) -> None:
    router.post(URL).mock(return_value=httpx.Response(401, json={"message": "Bad credentials"}))
    assert isinstance(failure(make_client(ft)), BadCredentialsError)


# -- untrusted bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "says"),
    [
        (httpx.Response(200, text="<html>Unicorn!</html>"), "not JSON"),
        (httpx.Response(200, json=[{"data": {}}]), "a JSON list where an object was expected"),
        (httpx.Response(200, json={"data": "yes"}), "'data' is a JSON string, not an object"),
        (httpx.Response(200, json={"data": None, "errors": "boom"}), "'errors' is not a list"),
        (httpx.Response(200, json={"errors": [1, 2]}), "'errors' is not a list of objects"),
        (httpx.Response(200, json={}), "neither 'data' nor 'errors'"),
    ],
)
def test_a_body_of_another_shape_is_a_retriable_one_line_error(
    ft: FakeTime, router: respx.MockRouter, response: httpx.Response, says: str
) -> None:
    route = router.post(URL).mock(return_value=response)
    error = failure(make_client(ft, max_attempts=2))
    assert isinstance(error, RetriableApiError) and says in str(error)
    assert route.call_count == 2


def test_a_huge_body_is_refused_at_the_cap(ft: FakeTime, router: respx.MockRouter) -> None:
    huge = {"data": {"blob": "x" * 5000}}
    router.post(URL).mock(return_value=httpx.Response(200, json=huge))
    error = failure(make_client(ft, max_attempts=1, max_body_bytes=1024))
    assert isinstance(error, RetriableApiError) and "more than 1 KiB" in str(error)


def test_server_messages_are_bounded_to_one_line(ft: FakeTime, router: respx.MockRouter) -> None:
    rambling = "line\n" * 2000
    body = {"data": {"x": None}, "errors": [{"message": rambling, "type": "NOT FOUND\n",
                                             "path": ["x", {"a": 1}, True, -1]}]}  # fmt: skip
    router.post(URL).mock(return_value=httpx.Response(200, json=body))
    (problem,) = ask(make_client(ft)).errors
    assert "\n" not in problem.message and len(problem.message) <= 300
    assert problem.type is None and problem.path == ("x", "{'a': 1}", "True", "-1")


def test_no_message_carries_the_token(ft: FakeTime, router: respx.MockRouter) -> None:
    gone = {"type": "NOT_FOUND", "path": ["r"], "message": "no"}
    answers = [
        httpx.Response(200, json={"errors": [{"message": "Field 'x' doesn't exist"}]}),
        httpx.Response(200, json={"data": {"r": None}, "errors": [gone]}),
        httpx.Response(500, json={"message": "Server Error"}),
        httpx.Response(200, text="not json"),
    ]  # fmt: skip
    for answer in answers:
        router.post(URL).mock(return_value=answer)
        error = failure(make_client(ft, max_attempts=1))
        assert error.url == URL


# -- pacing and page sizes ----------------------------------------------------------------------


def test_points_are_paced_under_the_per_minute_limit(ft: FakeTime) -> None:
    pacer = PointsPacer(10, safety=1.0, clock=ft.clock, sleep=ft.sleep)

    async def spend() -> list[float]:
        starts = []
        for cost in (4, 4, 4):
            entry = await pacer.acquire(cost)
            starts.append(ft.now)
            pacer.settle(entry, cost)
        return starts

    starts = asyncio.run(spend())
    assert starts[1] == starts[0] and starts[2] == pytest.approx(starts[0] + 60)
    assert pacer.spent_last_window == 4.0  # the first two left the window


def test_a_query_is_expected_to_cost_what_it_cost_last_time(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    router.post(URL).mock(
        return_value=httpx.Response(200, json={"data": {"rateLimit": {**RATE, "cost": 6}}})
    )
    pacer = PointsPacer(10, safety=1.0, clock=ft.clock, sleep=ft.sleep)
    ask(make_client(ft), times=2, pacer=pacer)
    # the first is expected to cost 1 and costs 6; the second is expected to cost 6 too, and
    # 6 + 6 points would pass 10 a minute: it waits for the first to leave the window
    assert ft.sleeps == [pytest.approx(60)]


def test_first_is_halved_down_to_the_smallest_and_grows_back() -> None:
    assert [smaller_first(n) for n in (50, 3, 1)] == [25, 1, None]
    assert smaller_first(10, smallest=8) == 8 and smaller_first(8, smallest=8) is None
    sizer = FirstSizer(50)
    shrunk = []
    while sizer.shrink():
        shrunk.append(sizer.first)
    assert shrunk == [25, 12, 6, 3, 1]
    sizer.passed()
    assert sizer.first == 1
    sizer.passed()
    assert sizer.first == 2
    for _ in range(20):
        sizer.passed()
    assert sizer.first == 50
    with pytest.raises(ValueError, match="FirstSizer"):
        FirstSizer(101)
