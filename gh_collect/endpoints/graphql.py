"""The endpoints read through GitHub's GraphQL API: ``reviews`` and ``pull_stats``.

Both come from one query (``PULLS_WITH_REVIEWS``): a page of a repo's pull requests,
newest-updated first like ``pulls`` (the walk stops at the first pull updated before its
floor, then catches up on what moved meanwhile), each pull with its stats and its first
reviews. ``pull_stats`` keeps the pulls ``pulls`` keeps, as served; ``reviews`` keeps their
review nodes submitted in the year (a PENDING review has no ``submittedAt``: skipped). A
pull whose reviews overflow the batch gets a fan-out unit (``reviews/<number>``) that reads
the rest with ``PULL_REVIEWS`` (``harvest/graphql_walk.py``).

A raw record is identified by ``fullDatabaseId`` (a BigInt served as a string: the REST
``id``); the curated ``id`` is that number. Curated columns are the same whichever
transport served a review (``by_source``): a bot's login gets REST's ``[bot]`` suffix back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gh_collect.curated.columns import (
    FETCHED_AT,
    ID,
    NODE_ID,
    REPO,
    UNTYPED,
    Column,
    by_source,
    col,
    derived,
)
from gh_collect.endpoints.activity import number_at_end
from gh_collect.endpoints.base import SERVER_FILTERED, Endpoint, JsonObject, Order, WindowRule
from gh_collect.github.graphql_cursor import PULL_REVIEWS_LIST, CursorToken

__all__ = ["GRAPHQL_NEWEST_UPDATED_FIRST", "PULL_STATS", "PULL_WINDOW", "REVIEWS", "REVIEWS_REST"]

GRAPHQL_NEWEST_UPDATED_FIRST = Order({}, stops_past_window=False, newest_first=True,
                                     moves_on_update=True)  # fmt: skip
"""``orderBy: {field: UPDATED_AT, direction: DESC}``: the query names it, no URL does."""
PULL_WINDOW = WindowRule(created="createdAt", updated="updatedAt")
"""The pulls ``pulls`` keeps, in GraphQL's field names."""
SUBMITTED_IN_YEAR = WindowRule(created="submittedAt", updated="submittedAt")
SUBMITTED_IN_YEAR_REST = WindowRule(created="submitted_at", updated="submitted_at")


def _database_id(value: object) -> object:
    """``fullDatabaseId`` (a BigInt as a decimal string) as the REST ``id``."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else UNTYPED


def _review_nodes(pull: JsonObject) -> list[JsonObject]:
    """The review nodes a pull node holds (none where the shape is not a connection)."""
    reviews = pull.get("reviews")
    nodes = reviews.get("nodes") if isinstance(reviews, dict) else None
    return [n for n in nodes if isinstance(n, dict)] if isinstance(nodes, list) else []


def _overflow(pull: JsonObject) -> tuple[str, str] | None:
    """A pull whose reviews overflow the batch: its number (the fan-out unit's parent) and
    the token its follow-up walk starts from (``PULL_REVIEWS`` by node id after the
    batch's ``endCursor``)."""
    reviews, number, node = pull.get("reviews"), pull.get("number"), pull.get("id")
    info = reviews.get("pageInfo") if isinstance(reviews, dict) else None
    if not isinstance(info, dict) or info.get("hasNextPage") is not True:
        return None
    cursor = info.get("endCursor")
    if not isinstance(cursor, str) or not isinstance(node, str) or not isinstance(number, int):
        return None
    token = CursorToken(PULL_REVIEWS_LIST.name, {"id": node}, cursor, PULL_REVIEWS_LIST.largest)
    return str(number), token.dumps()


def _is_pending(review: Mapping[str, Any]) -> bool:
    """A review still being written (no ``submittedAt``; REST: no ``submitted_at``)."""
    return review.get("state") == "PENDING"


def _rest_login(author: Mapping[str, Any], envelope: Mapping[str, Any]) -> object:
    """GraphQL's ``author`` as REST's ``user.login``: a ``Bot`` gets its ``[bot]`` back."""
    value = author.get("author")
    if value is None:
        return None
    if not isinstance(value, dict):
        return UNTYPED
    login = value.get("login")
    if not isinstance(login, str):
        return None if login is None else UNTYPED
    bot = value.get("__typename") == "Bot" and not login.endswith("[bot]")
    return f"{login}[bot]" if bot else login


def _first_review_at(pull: Mapping[str, Any], envelope: Mapping[str, Any]) -> object:
    """The earliest ``submittedAt`` among the review nodes served with the pull."""
    stamps = [r.get("submittedAt") for r in _review_nodes(dict(pull))]
    texts = [s for s in stamps if isinstance(s, str)]
    return min(texts) if texts else None


def _both(name: str, kind: Any, rest: str, graphql: str) -> Column:
    return by_source(rest=col(name, kind, rest), graphql=col(name, kind, graphql))


REVIEW_COLUMNS = (
    by_source(rest=ID, graphql=derived("id", "int", "fullDatabaseId", _database_id)),
    by_source(rest=NODE_ID, graphql=col("node_id", "str", "id")),
    REPO,
    by_source(
        rest=derived("pull_number", "int", "pull_request_url", number_at_end),
        graphql=col("pull_number", "int", "pullRequest.number"),
    ),
    by_source(
        rest=col("user_login", "str", "user.login"),
        graphql=Column("user_login", "str", "author.login", _rest_login),
    ),
    col("state", "str"),
    _both("submitted_at", "timestamp", "submitted_at", "submittedAt"),
    _both("commit_id", "str", "commit_id", "commit.oid"),
    _both("author_association", "str", "author_association", "authorAssociation"),
    col("body", "str"),
    _both("html_url", "str", "html_url", "url"),
    FETCHED_AT,
)
"""The curated ``reviews`` table, whichever transport read it (``by_source``)."""

REVIEWS_REST = Endpoint(
    name="reviews",
    path="/repos/{full_name}/pulls/{parent}/reviews",
    key="id",
    version=None,
    parent="pulls",
    window=SUBMITTED_IN_YEAR_REST,
    order=SERVER_FILTERED,
    skip=_is_pending,
    columns=REVIEW_COLUMNS,
)
"""``reviews`` without GraphQL (``github.graphql: false``, a GHES without it): one unit per
pull request ``pulls`` keeps (``reviews/<number>``), each ``GET .../pulls/{n}/reviews``
read to its end (chronological, 100 a page), kept where submitted in the year."""

REVIEWS = Endpoint(
    name="reviews",
    path="/repos/{full_name}/pulls/{parent}/reviews",
    transport="graphql",
    source="github_graphql",
    key="id",
    version=None,
    raw_key="fullDatabaseId",
    window=SUBMITTED_IN_YEAR,
    list_window=PULL_WINDOW,
    order=GRAPHQL_NEWEST_UPDATED_FIRST,
    records_in=_review_nodes,
    fan_out=_overflow,
    skip=_is_pending,
    columns=REVIEW_COLUMNS,
    rest_fallback=REVIEWS_REST,
)

PULL_STATS = Endpoint(
    name="pull_stats",
    path="/repos/{full_name}/pulls",
    transport="graphql",
    source="github_graphql",
    key="id",
    version="fetched_at",  # one file per repo: the latest fetch holds the latest version
    raw_key="fullDatabaseId",
    raw_version="updatedAt",
    window=PULL_WINDOW,
    order=GRAPHQL_NEWEST_UPDATED_FIRST,
    columns=(
        derived("id", "int", "fullDatabaseId", _database_id),
        col("node_id", "str", "id"),
        REPO,
        col("number", "int"),
        col("additions", "int"),
        col("deletions", "int"),
        col("changed_files", "int", "changedFiles"),
        col("commits", "int", "commits.totalCount"),
        col("merged_by", "str", "mergedBy.login"),
        col("review_decision", "str", "reviewDecision"),
        Column("first_review_at", "timestamp", "reviews.nodes[].submittedAt", _first_review_at),
        FETCHED_AT,
    ),
)
