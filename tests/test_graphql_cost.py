"""A query's cost and node count, computed as GitHub documents them, on GitHub's real schema.

The numbers are GitHub's own examples (docs: "Rate limits and query limits for the GraphQL
API", github-api.md): ``repository { pullRequests(first: 100) { nodes { reviews(first: 100)
}}}`` is 101 requests, 1 point, 10,100 nodes; one more level of 100 is 1,010,100 nodes,
refused; the docs' 100 x 50 x 60 example is 5,101 requests, 51 points.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import OperationDefinitionNode, get_variable_values, parse, validate

from gh_collect.simulator.graphql import Measure, github_schema, measure
from gh_collect.simulator.graphql.cost import QueryRefused


def measured(query: str, variables: dict[str, Any] | None = None) -> Measure:
    schema = github_schema()
    document = parse(query)
    assert validate(schema, document) == []
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    assert not isinstance(coerced, list), coerced
    return measure(schema, document, operation, coerced)


def refused(query: str, variables: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with pytest.raises(QueryRefused) as caught:
        measured(query, variables)
    return caught.value.errors


PRS_WITH_REVIEWS = """
{ repository(owner: "o", name: "r") {
    pullRequests(first: 100) { nodes { number reviews(first: 100) { nodes { state } } } } } }
"""


def test_github_s_example_is_101_requests_one_point_10100_nodes() -> None:
    result = measured(PRS_WITH_REVIEWS)
    assert (result.requests, result.cost, result.nodes) == (101, 1, 10_100)


def test_one_more_level_of_100_is_over_the_node_limit_and_refused() -> None:
    query = """
    { repository(owner: "o", name: "r") { pullRequests(first: 100) { nodes {
        reviews(first: 100) { nodes { comments(first: 100) { nodes { body } } } } } } } }
    """
    errors = refused(query)
    assert errors == [
        {
            "type": "MAX_NODE_LIMIT_EXCEEDED",
            "message": "This query requests up to 1,010,100 possible nodes which exceeds the "
            "maximum limit of 500,000.",
        }
    ]


def test_the_docs_example_of_100_x_50_x_60_costs_51_points() -> None:
    query = """
    { viewer { login repositories(first: 100) { edges { node { id
        issues(first: 50) { edges { node { id labels(first: 60) { edges { node { name } } } } } }
    } } } } }
    """
    result = measured(query)
    assert (result.requests, result.cost) == (1 + 100 + 100 * 50, 51)
    assert result.nodes == 100 + 100 * 50 + 100 * 50 * 60


def test_a_connection_without_first_or_last_is_refused_where_it_is() -> None:
    query = (
        '{\n  repository(owner: "o", name: "r") {\n    pullRequests { nodes { number } }\n  }\n}'
    )
    assert refused(query) == [
        {
            "type": "MISSING_PAGINATION_BOUNDARIES",
            "path": ["repository", "pullRequests"],
            "locations": [{"line": 3, "column": 5}],
            "message": "You must provide a `first` or `last` value to properly paginate the "
            "`pullRequests` connection.",
        }
    ]


@pytest.mark.parametrize(("argument", "value"), [("first", 101), ("last", 250)])
def test_more_than_100_records_are_refused(argument: str, value: int) -> None:
    query = f'{{ repository(owner: "o", name: "r") {{ pullRequests({argument}: {value}) {{ '
    errors = refused(query + "nodes { id } } } }")
    assert [(e["type"], e["message"]) for e in errors] == [
        (
            "EXCESSIVE_PAGINATION",
            f"Requesting {value} records on the `pullRequests` connection exceeds the "
            f"`{argument}` limit of 100 records.",
        )
    ]


def test_limits_apply_to_values_given_as_variables() -> None:
    query = """query($n: Int!) { repository(owner: "o", name: "r") {
        pullRequests(first: $n) { nodes { id } } } }"""
    assert measured(query, {"n": 100}).nodes == 100
    assert refused(query, {"n": 101})[0]["type"] == "EXCESSIVE_PAGINATION"


def test_a_count_only_connection_needs_no_first_but_is_a_request() -> None:
    query = """{ repository(owner: "o", name: "r") { pullRequests(first: 50) { nodes {
        commits { totalCount } reviews(first: 10) { totalCount } } } } }"""
    result = measured(query)
    assert (result.requests, result.nodes, result.cost) == (1 + 50 + 50, 50 + 500, 1)


def test_fragments_and_aliases_are_measured_like_fields() -> None:
    query = """
    query { a: repository(owner: "o", name: "r") { ...Pulls }
            b: repository(owner: "o", name: "s") { ...Pulls } }
    fragment Pulls on Repository { pullRequests(first: 100) { edges { node { ... on PullRequest {
        reviews(first: 100) { nodes { id } } } } } } }
    """
    result = measured(query)
    assert (result.requests, result.nodes, result.cost) == (202, 20_200, 2)
    assert {use.repository for use in result.connections} == {"r", "s"}


def test_nodes_by_id_multiply_what_lies_under_them() -> None:
    query = """query($ids: [ID!]!) { nodes(ids: $ids) { ... on PullRequest {
        reviews(first: 100) { nodes { id } } } } }"""
    result = measured(query, {"ids": ["a", "b", "c"]})
    assert (result.requests, result.nodes) == (3, 300)


def test_rounding_is_half_up_and_at_least_one_point() -> None:
    assert Measure(0, 0, ()).cost == 1
    assert Measure(149, 0, ()).cost == 1
    assert Measure(150, 0, ()).cost == 2
    assert Measure(5101, 0, ()).cost == 51
