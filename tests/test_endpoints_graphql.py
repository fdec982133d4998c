"""The GraphQL endpoints' declarations: curated column shapes, the window, fan-outs, cursors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gh_collect import endpoints
from gh_collect.curated.columns import UNTYPED
from gh_collect.endpoints import Window
from gh_collect.errors import PaginationLoop, RetriableApiError
from gh_collect.github.graphql import GraphQLProblem, GraphQLResult
from gh_collect.github.graphql_cursor import CursorToken
from gh_collect.github.graphql_pagination import CursorPaginator

YEAR = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
GQL = {"source": "github_graphql", "repo": "o/r", "fetched_at": "2026-01-02T00:00:00Z"}
REST = {**GQL, "source": "github_rest"}

GRAPHQL_REVIEW: dict[str, Any] = {
    "id": "PRR_7001",
    "fullDatabaseId": "7001",
    "author": {"__typename": "Bot", "login": "dependabot"},
    "authorAssociation": "NONE",
    "state": "APPROVED",
    "submittedAt": "2025-03-01T10:00:00Z",
    "body": "LGTM",
    "commit": {"oid": "abc123"},
    "url": "https://github.com/o/r/pull/5#pullrequestreview-7001",
    "pullRequest": {"number": 5, "fullDatabaseId": "500"},
}
REST_REVIEW: dict[str, Any] = {
    "id": 7001,
    "node_id": "PRR_7001",
    "user": {"login": "dependabot[bot]", "type": "Bot"},
    "author_association": "NONE",
    "state": "APPROVED",
    "submitted_at": "2025-03-01T10:00:00Z",
    "body": "LGTM",
    "commit_id": "abc123",
    "html_url": "https://github.com/o/r/pull/5#pullrequestreview-7001",
    "pull_request_url": "https://api.github.com/repos/o/r/pulls/5",
}


def row(endpoint: str, data: dict[str, Any], envelope: dict[str, Any]) -> dict[str, object]:
    return {c.name: c.get(data, envelope) for c in endpoints.get(endpoint).columns}


def test_a_review_has_the_same_curated_row_whichever_transport_served_it() -> None:
    via_graphql, via_rest = row("reviews", GRAPHQL_REVIEW, GQL), row("reviews", REST_REVIEW, REST)
    assert via_graphql == via_rest
    assert via_graphql["id"] == 7001 and via_graphql["pull_number"] == 5
    assert via_graphql["user_login"] == "dependabot[bot]"  # REST's bot convention
    assert via_graphql["commit_id"] == "abc123" and via_graphql["node_id"] == "PRR_7001"


def test_review_columns_keep_the_report_names() -> None:
    names = [c.name for c in endpoints.get("reviews").columns]
    assert {"repo", "pull_number", "user_login", "state", "submitted_at"} <= set(names)


@pytest.mark.parametrize(
    ("author", "login"),
    [
        ({"__typename": "User", "login": "octocat"}, "octocat"),
        ({"__typename": "Bot", "login": "renovate"}, "renovate[bot]"),
        ({"__typename": "Bot", "login": "x[bot]"}, "x[bot]"),
        (None, None),  # a deleted ("ghost") account
        ("octocat", UNTYPED),
    ],
)
def test_user_login_of_a_graphql_author(author: Any, login: object) -> None:
    assert row("reviews", {**GRAPHQL_REVIEW, "author": author}, GQL)["user_login"] == login


@pytest.mark.parametrize(("value", "typed"), [("7001", 7001), (7001, 7001), ("7e3", UNTYPED)])
def test_the_id_is_the_bigint_as_an_integer(value: object, typed: object) -> None:
    assert row("reviews", {**GRAPHQL_REVIEW, "fullDatabaseId": value}, GQL)["id"] == typed


def pull(
    number: int = 5, reviews: list[dict[str, Any]] | None = None, more: bool = False
) -> dict[str, Any]:
    return {
        "id": f"PR_{number}", "fullDatabaseId": str(500 + number), "number": number,
        "createdAt": "2025-02-01T00:00:00Z", "updatedAt": "2025-06-01T00:00:00Z",
        "additions": 10, "deletions": 3, "changedFiles": 2, "commits": {"totalCount": 4},
        "mergedBy": {"login": "octocat"}, "reviewDecision": "APPROVED",
        "reviews": {"totalCount": 12 if more else len(reviews or []),
                    "pageInfo": {"hasNextPage": more, "endCursor": "Y3Vyc29y"},
                    "nodes": reviews or []},
    }  # fmt: skip


def test_pull_stats_columns() -> None:
    reviews = [
        {**GRAPHQL_REVIEW, "submittedAt": "2025-04-02T00:00:00Z"},
        {**GRAPHQL_REVIEW, "submittedAt": None, "state": "PENDING"},
        {**GRAPHQL_REVIEW, "submittedAt": "2025-03-09T00:00:00Z"},
    ]
    got = row("pull_stats", pull(reviews=reviews), GQL)
    assert got == {
        "id": 505, "node_id": "PR_5", "repo": "o/r", "number": 5, "additions": 10,
        "deletions": 3, "changed_files": 2, "commits": 4, "merged_by": "octocat",
        "review_decision": "APPROVED", "first_review_at": "2025-03-09T00:00:00Z",
        "fetched_at": "2026-01-02T00:00:00Z",
    }  # fmt: skip
    assert row("pull_stats", pull(reviews=[]), GQL)["first_review_at"] is None


def test_reviews_keeps_submitted_in_the_year_and_skips_pending() -> None:
    reviews = [
        GRAPHQL_REVIEW,
        {**GRAPHQL_REVIEW, "fullDatabaseId": "2", "submittedAt": None, "state": "PENDING"},
        {**GRAPHQL_REVIEW, "fullDatabaseId": "3", "submittedAt": "2024-12-31T23:59:59Z"},
        {**GRAPHQL_REVIEW, "fullDatabaseId": "4", "submittedAt": "2026-01-01T00:00:00Z"},
    ]
    kept = endpoints.get("reviews").keep([pull(reviews=reviews)], YEAR)
    assert [r["fullDatabaseId"] for r in kept] == ["7001"]
    assert endpoints.get("pull_stats").keep([pull()], YEAR) == [pull()]


def test_the_walk_stops_below_its_floor_by_the_pulls_updated_at() -> None:
    old = {**pull(), "updatedAt": "2024-11-01T00:00:00Z"}
    for name in ("reviews", "pull_stats"):
        assert endpoints.get(name).stops([pull(), old], YEAR)
        assert not endpoints.get(name).stops([old, pull()], YEAR)


def test_a_pull_whose_reviews_overflow_names_its_fan_out() -> None:
    fan_out = endpoints.get("reviews").fan_out
    assert fan_out is not None
    assert fan_out(pull(reviews=[GRAPHQL_REVIEW])) is None
    parent, token = fan_out(pull(7, reviews=[GRAPHQL_REVIEW], more=True)) or ("", "")
    assert parent == "7"
    assert CursorToken.loads(token) == CursorToken("PullReviews", {"id": "PR_7"}, "Y3Vyc29y", 100)


def answer(nodes: list[dict[str, Any]], more: bool, cursor: str = "c2") -> GraphQLResult:
    connection = {"nodes": nodes, "pageInfo": {"hasNextPage": more, "endCursor": cursor}}
    return GraphQLResult({"repository": {"pullRequests": connection}})


def test_the_cursor_paginator_pages_resumes_and_shrinks() -> None:
    token = CursorToken("PullsWithReviews", {"owner": "o", "name": "r"}, None, 50)
    pages = CursorPaginator("http://h/graphql", token)
    body = pages.request.body
    assert pages.request.method == "POST" and body["variables"]["first"] == 50
    assert body["variables"]["after"] is None and body["variables"]["reviews"] == 10
    assert [pages.shrink(), pages.shrink(), pages.shrink()] == [25, 12, 6]
    assert pages.items(answer([pull()], True, "c1"), "u") == [pull()]
    pages.advance(pages.next_token(None))  # type: ignore[arg-type]
    resumed = CursorPaginator("http://h/graphql", CursorToken.loads(pages.resume_token or ""))
    assert resumed.request.body["variables"]["after"] == "c1"
    assert resumed.request.body == pages.request.body
    pages.items(answer([], True, "c1"), "u")
    with pytest.raises(PaginationLoop):
        pages.advance(pages.next_token(None))  # type: ignore[arg-type]
    pages.items(answer([], False), "u")
    assert pages.next_token(None) is None  # type: ignore[arg-type]


def test_partial_data_fails_the_page_in_one_line() -> None:
    pages = CursorPaginator(
        "http://h/graphql", CursorToken("PullsWithReviews", {"owner": "o", "name": "r"}, None, 50)
    )
    partial = GraphQLResult(answer([pull()], False).data, (GraphQLProblem("timeout\\nhere"),))
    with pytest.raises(RetriableApiError) as caught:
        pages.items(partial, "http://h/graphql")
    assert "\n" not in str(caught.value) and "not written" in str(caught.value)


@pytest.mark.parametrize(
    "token", ["", "{}", json.dumps({"query": "Other", "subject": {}, "after": None, "first": 5})]
)
def test_a_token_this_code_did_not_write_is_refused(token: str) -> None:
    with pytest.raises(RetriableApiError):
        CursorToken.loads(token)
