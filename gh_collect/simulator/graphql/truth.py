"""Ground truth of the GraphQL endpoints: ``reviews`` and ``pull_stats`` as GraphQL serves them.

A record's bytes are what the harvest's own queries return (``PULLS_WITH_REVIEWS``,
``PULL_REVIEWS``), so the truth runs those very queries on the model, through the same
resolvers the ``/graphql`` route uses, for an org token (``someone-else``: it sees no
PENDING review, which has no ``submittedAt`` anyway) and with no budget charged:

- ``pull_stats``: the pull nodes ``pulls`` keeps (created before the year's end, updated
  at or after its start), newest-updated first;
- ``reviews``: every review of every pull submitted in the year, each once, as served.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from graphql import execute_sync, parse

from gh_collect.github.graphql_queries import (
    PULL_REVIEWS,
    PULLS_WITH_REVIEWS,
    pull_reviews_variables,
    pulls_with_reviews_variables,
)
from gh_collect.simulator.graphql.resolvers import (
    Context,
    ModelCache,
    QueryView,
    resolve_field,
    resolve_type,
)
from gh_collect.simulator.graphql.schema import github_schema
from gh_collect.simulator.model.details import Details
from gh_collect.simulator.model.records import RepoData, iso, year_start

__all__ = ["graphql_truth"]

ORG_TOKEN_VIEWER = "someone-else"  # server.owners.OTHER_USER
JsonObject = dict[str, Any]
_UNCHARGED: JsonObject = {"cost": 0, "limit": 0, "nodeCount": 0, "remaining": 0,
                          "resetAt": "1970-01-01T00:00:00Z", "used": 0}  # fmt: skip


def graphql_truth(
    model: Any, repos: Iterable[RepoData], year: int, endpoint: str
) -> dict[str, list[JsonObject]]:
    """``endpoint``'s records per repo name (``repos`` already filtered, vanished left out)."""
    ctx = Context(model, Details(model), ModelCache(model), ORG_TOKEN_VIEWER, lambda _r: True,
                  rate_limit=_UNCHARGED)  # fmt: skip
    low, high = iso(year_start(year)), iso(year_start(year + 1))
    truth: dict[str, list[JsonObject]] = {}
    for repo in repos:
        pulls = list(_pull_nodes(ctx, model.org, repo.name))
        if endpoint == "pull_stats":
            truth[repo.name] = [p for p in pulls if p["createdAt"] < high and p["updatedAt"] >= low]
        else:
            reviews = (r for p in pulls for r in _reviews_of(ctx, p))
            truth[repo.name] = [r for r in reviews if low <= (r.get("submittedAt") or "") < high]
    return truth


def _run(ctx: Context, query: str, variables: dict[str, Any]) -> JsonObject:
    result = execute_sync(
        github_schema(), parse(query), root_value=QueryView(ctx), context_value=ctx,
        variable_values=variables, field_resolver=resolve_field, type_resolver=resolve_type,
    )  # fmt: skip
    if result.errors or result.data is None:
        raise RuntimeError(f"ground truth query failed: {result.errors}")
    return result.data


def _pull_nodes(ctx: Context, owner: str, name: str) -> Iterator[JsonObject]:
    after: str | None = None
    while True:
        variables = pulls_with_reviews_variables(owner, name, first=100, after=after)
        page = _run(ctx, PULLS_WITH_REVIEWS, variables)["repository"]["pullRequests"]
        yield from page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return
        after = page["pageInfo"]["endCursor"]


def _reviews_of(ctx: Context, pull: JsonObject) -> Iterator[JsonObject]:
    """The pull's reviews: the batch served with it, then the follow-ups after it."""
    batch = pull["reviews"]
    yield from batch["nodes"]
    info = batch["pageInfo"]
    while info["hasNextPage"]:
        variables = pull_reviews_variables(pull["id"], after=info["endCursor"])
        page = _run(ctx, PULL_REVIEWS, variables)["node"]["reviews"]
        yield from page["nodes"]
        info = page["pageInfo"]
