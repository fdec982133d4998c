"""The queries gh_collect sends: valid on GitHub's published schema, within its limits, at the
cost the docs give, and answered by the simulator with the REST routes' data.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, get_variable_values, parse, validate

from gh_collect.config import GitHubSettings, RateLimitSettings
from gh_collect.github import graphql_queries as queries
from gh_collect.github.client import GitHubClient
from gh_collect.github.graphql import GraphQLResult, GraphQLTransport
from gh_collect.simulator import SCENARIO_REPOS, Simulator, SimulatorConfig
from gh_collect.simulator.graphql import Measure, github_schema, measure

ORG = "sample-org"
HUNDRED = SCENARIO_REPOS["hundred"]


def operation_of(query: str) -> tuple[Any, OperationDefinitionNode]:
    document = parse(query)
    (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return document, operation


def measured(query: str, variables: dict[str, Any]) -> Measure:
    schema = github_schema()
    document, operation = operation_of(query)
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
    assert not isinstance(coerced, list), [error.message for error in coerced]
    return measure(schema, document, operation, coerced)


@pytest.mark.parametrize("name", sorted(queries.QUERIES))
def test_every_query_is_valid_on_github_s_schema(name: str) -> None:
    query = queries.QUERIES[name]
    document, operation = operation_of(query)
    assert validate(github_schema(), document) == []
    assert operation.name is not None and operation.name.value == name


def test_every_query_module_string_is_in_queries() -> None:
    public = {k: v for k, v in vars(queries).items() if not k.startswith("_") and k.isupper()}
    texts = [v for v in public.values() if isinstance(v, str)]
    assert sorted(texts) == sorted(queries.QUERIES.values())


def test_a_page_of_50_pulls_with_10_reviews_costs_one_point() -> None:
    variables = queries.pulls_with_reviews_variables(ORG, HUNDRED, after=None)
    cost = measured(queries.PULLS_WITH_REVIEWS, variables)
    # pullRequests once; reviews and commits { totalCount } once per pull
    assert (variables["first"], variables["reviews"]) == (50, 10)
    assert (cost.requests, cost.nodes, cost.cost) == (1 + 50 + 50, 50 + 50 * 10, 1)


def test_the_largest_batch_stays_far_below_the_node_limit() -> None:
    variables = queries.pulls_with_reviews_variables(ORG, HUNDRED, first=100, reviews=100)
    cost = measured(queries.PULLS_WITH_REVIEWS, variables)
    assert (cost.requests, cost.nodes, cost.cost) == (201, 10_100, 2)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (queries.PULL_REVIEWS, queries.pull_reviews_variables("PR_x", after="c")),
        (
            queries.PULL_REVIEWS_BY_NUMBER,
            queries.pull_reviews_by_number_variables(ORG, HUNDRED, 7, after=None),
        ),
    ],
)
def test_a_follow_up_costs_one_point(query: str, variables: dict[str, Any]) -> None:
    cost = measured(query, variables)
    assert (cost.requests, cost.nodes, cost.cost) == (1, 100, 1)


def test_no_query_asks_the_deprecated_32_bit_database_id() -> None:
    for query in queries.QUERIES.values():
        assert not re.search(r"\bdatabaseId\b", query)


# -- against the simulator, through the transport ---------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(seed=7, repos=10, org=ORG)) as simulator:
        yield simulator


def run(sim: Simulator, steps: Any) -> Any:
    async def main() -> Any:
        settings = GitHubSettings(api_url=sim.url, timeout_s=10)
        client = GitHubClient(settings, "queries-test", rate_settings=RateLimitSettings())
        async with client as gh:
            return await steps(GraphQLTransport(gh))

    return asyncio.run(main())


async def all_pulls(gql: GraphQLTransport, name: str) -> list[dict[str, Any]]:
    """A repo's pulls through PULLS_WITH_REVIEWS, reviews completed by PULL_REVIEWS."""
    pulls: list[dict[str, Any]] = []
    after = None
    while True:
        variables = queries.pulls_with_reviews_variables(ORG, name, after=after)
        result = await gql.query(queries.PULLS_WITH_REVIEWS, variables)
        assert not result.partial and result.rate_limit is not None
        assert result.rate_limit.cost == 1
        page = result.data["repository"]["pullRequests"]
        for pull in page["nodes"]:
            pull["reviews"]["nodes"] += await follow_ups(gql, pull)
            pulls.append(pull)
        if not page["pageInfo"]["hasNextPage"]:
            return pulls
        after = page["pageInfo"]["endCursor"]


async def follow_ups(gql: GraphQLTransport, pull: dict[str, Any]) -> list[dict[str, Any]]:
    more: list[dict[str, Any]] = []
    page = pull["reviews"]["pageInfo"]
    while page["hasNextPage"]:
        variables = queries.pull_reviews_variables(pull["id"], after=page["endCursor"])
        result: GraphQLResult = await gql.query(queries.PULL_REVIEWS, variables)
        reviews = result.data["node"]["reviews"]
        more += reviews["nodes"]
        page = reviews["pageInfo"]
    return more


AUTH = {"Authorization": "bearer queries-test", "User-Agent": "t"}


def rest(sim: Simulator, path: str, **params: Any) -> list[Any]:
    """Every item of a REST list, following its Link headers (which carry the query)."""
    response = httpx.get(sim.url + path, params=params, headers=AUTH, timeout=30)
    items: list[Any] = []
    while True:
        assert response.status_code == 200
        items += response.json()
        following = response.links.get("next")
        if following is None:
            return items
        response = httpx.get(following["url"], headers=AUTH, timeout=30)


def test_the_queries_read_a_repo_as_rest_serves_it(sim: Simulator) -> None:
    pulls = run(sim, lambda gql: all_pulls(gql, HUNDRED))
    listed = rest(sim, f"/repos/{ORG}/{HUNDRED}/pulls", state="all", sort="updated",
                  direction="desc", per_page=100)  # fmt: skip
    assert [(p["number"], p["fullDatabaseId"]) for p in pulls] == [
        (p["number"], str(p["id"])) for p in listed
    ]
    heavy = max(pulls, key=lambda pull: pull["reviews"]["totalCount"])
    assert heavy["reviews"]["totalCount"] == len(heavy["reviews"]["nodes"]) == 251
    for pull in (heavy, *pulls[:20]):
        reviews = rest(sim, f"/repos/{ORG}/{HUNDRED}/pulls/{pull['number']}/reviews")
        assert [r["fullDatabaseId"] for r in pull["reviews"]["nodes"]] == [
            str(r["id"]) for r in reviews
        ]
        path = f"/repos/{ORG}/{HUNDRED}/pulls/{pull['number']}"
        full = httpx.get(sim.url + path, headers=AUTH, timeout=30).json()
        assert (pull["additions"], pull["deletions"], pull["changedFiles"]) == (
            full["additions"], full["deletions"], full["changed_files"])  # fmt: skip
        assert pull["commits"]["totalCount"] == full["commits"]
    assert sim.stats()["graphql_queries"] >= 2 + 3  # two pages, three follow-ups


def test_both_follow_ups_read_the_same_reviews(sim: Simulator) -> None:
    async def both(gql: GraphQLTransport) -> tuple[list[str], list[str]]:
        first = await gql.query(
            queries.PULLS_WITH_REVIEWS, queries.pulls_with_reviews_variables(ORG, HUNDRED)
        )
        pull = max(first.data["repository"]["pullRequests"]["nodes"],
                   key=lambda p: p["reviews"]["totalCount"])  # fmt: skip
        after = pull["reviews"]["pageInfo"]["endCursor"]
        by_id = await gql.query(
            queries.PULL_REVIEWS, queries.pull_reviews_variables(pull["id"], after=after)
        )
        by_number = await gql.query(
            queries.PULL_REVIEWS_BY_NUMBER,
            queries.pull_reviews_by_number_variables(ORG, HUNDRED, pull["number"], after=after),
        )
        return (
            [r["id"] for r in by_id.data["node"]["reviews"]["nodes"]],
            [r["id"] for r in by_number.data["repository"]["pullRequest"]["reviews"]["nodes"]],
        )

    by_id, by_number = run(sim, both)
    assert by_id == by_number and len(by_id) == 100
