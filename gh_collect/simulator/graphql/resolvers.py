"""The model seen through GitHub's GraphQL types: what a query's fields resolve to.

Only what gh_collect reads is simulated (``rateLimit``, ``viewer``, ``repository`` with its
``pullRequests``/``pullRequest``, ``node``/``nodes`` for pull requests, their stats and
``reviews``); any other field of the real schema validates, and then resolves to null with
an error naming it, so a query that strays is noticed, never silently answered with nothing.

Every value comes from where the REST routes take it, so both APIs serve the same data:
pull requests are the repo's pulls (``databaseId``/``fullDatabaseId`` = the REST ``id``,
ordering by ``UPDATED_AT DESC`` = REST ``sort=updated&direction=desc``), their stats the
full pull of ``GET /pulls/{n}`` and their reviews the list of ``GET /pulls/{n}/reviews``
(``details.Details``), PENDING ones shown to their author only, as REST shows them. Where
GitHub's GraphQL differs from its REST, this follows GraphQL: a bot's ``login`` has no
``[bot]`` suffix and its ``url`` is ``https://github.com/apps/NAME``; a ``databaseId`` beyond
32 bits is an error (GitHub deprecated it for ``fullDatabaseId``, a BigInt string).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from graphql import GraphQLAbstractType, GraphQLResolveInfo

from gh_collect.simulator.graphql.connections import connection
from gh_collect.simulator.graphql.errors import FieldProblem
from gh_collect.simulator.model import OrgModel, RepoData, Selection, SortKey
from gh_collect.simulator.model.details import Details
from gh_collect.simulator.model.records import Item
from gh_collect.simulator.model.reviews import visible_reviews

__all__ = ["Context", "ModelCache", "QueryView", "resolve_field", "resolve_type"]

JsonObject = dict[str, Any]
Args = Mapping[str, Any]

_ORDER_FIELDS = {"CREATED_AT": "created", "UPDATED_AT": "updated", "COMMENTS": "comments"}
_ALL_STATES = frozenset({"OPEN", "CLOSED", "MERGED"})
_DECISIVE = frozenset({"APPROVED", "CHANGES_REQUESTED"})


class ModelCache:
    """What is derived from the model for GraphQL: orderings and a pull index. The app
    drops it (``forget``) whenever the model changes, as it drops the REST caches."""

    def __init__(self, model: OrgModel) -> None:
        self.model = model
        self._orders: dict[tuple[int, str], Selection] = {}
        self._pulls: dict[int, tuple[RepoData, int]] | None = None

    def forget(self) -> None:
        self._orders.clear()
        self._pulls = None

    def ordered_pulls(self, repo: RepoData, sort: str) -> Selection:
        """A repo's pulls ascending by (sort key, id): a walk asks the same one each page."""
        key = (repo.id, sort)
        selection = self._orders.get(key)
        if selection is None:
            if len(self._orders) > 1024:
                self._orders.clear()
            selection = self._orders[key] = repo.select("pulls", "all", sort, None)
        return selection

    def pull_by_id(self, pull_id: int) -> tuple[RepoData, Item] | None:
        """The repo and pull with REST id ``pull_id`` (looked up by number: edits replace
        items, numbers stay)."""
        if self._pulls is None:
            self._pulls = {
                item.id: (repo, item.number) for repo in self.model.repos for item in repo.pulls
            }
        found = self._pulls.get(pull_id)
        if found is None:
            return None
        repo, number = found
        item = next((i for i in repo.pulls if i.number == number), None)
        return (repo, item) if item is not None else None


@dataclass
class Context:
    """One request's view: ``viewer`` is the token's login (``GET /user``), ``can_see`` says
    whether this token may see a repo, ``rate_limit`` is what ``rateLimit`` answers."""

    model: OrgModel
    details: Details
    cache: ModelCache
    viewer: str
    can_see: Callable[[RepoData], bool]
    rate_limit: JsonObject = field(default_factory=dict)


def resolve_field(source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
    """graphql-core's field resolver: views resolve their fields, plain objects are read by
    key; anything else is a field the simulator does not serve."""
    if isinstance(source, _View):
        return source.resolve(info.field_name, args)
    if isinstance(source, Mapping) and info.field_name in source:
        return source[info.field_name]
    raise _not_simulated(info.parent_type.name, info.field_name)


def resolve_type(value: Any, info: GraphQLResolveInfo[Any], abstract: GraphQLAbstractType) -> str:
    """The concrete type of an interface value (``Node``, ``Actor``)."""
    if isinstance(value, _View):
        return value.typename
    return str(value["__typename"])


def _not_simulated(type_name: str, field_name: str) -> FieldProblem:
    return FieldProblem(
        f"gh_collect's simulator does not serve {type_name}.{field_name} (only the fields "
        "gh_collect reads are simulated)"
    )


class _View:
    typename = ""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def resolve(self, name: str, args: Args) -> Any:
        raise _not_simulated(self.typename, name)


class QueryView(_View):
    typename = "Query"

    def resolve(self, name: str, args: Args) -> Any:
        if name == "rateLimit":
            return self.ctx.rate_limit
        if name == "viewer":
            return {"__typename": "User", "login": self.ctx.viewer}
        if name == "repository":
            return RepositoryView(self.ctx, find_repository(self.ctx, args["owner"], args["name"]))
        if name == "node":
            return self._node(args["id"])
        if name == "nodes":
            return [self._node_or_problem(node_id) for node_id in args["ids"]]
        return super().resolve(name, args)

    def _node(self, node_id: str) -> PullView:
        found = _pull_of_node_id(self.ctx, node_id)
        if found is None:
            message = f"Could not resolve to a node with the global id of '{node_id}'"
            raise FieldProblem(message, "NOT_FOUND")
        return PullView(self.ctx, *found)

    def _node_or_problem(self, node_id: str) -> PullView | FieldProblem:
        """A list item that is an exception becomes null plus a located error."""
        try:
            return self._node(node_id)
        except FieldProblem as problem:
            return problem


def find_repository(ctx: Context, owner: str, name: str) -> RepoData:
    """As the REST routes find it (case-insensitive, an alias exactly, the renamed repo by
    its old name too); NOT_FOUND for what does not exist, vanished or is hidden."""
    model = ctx.model
    repo = model.alias_for(owner, name)
    if repo is None and owner.lower() == model.org.lower():
        repo = model.repo_by_name(name) or model.renamed_from(name)
    if repo is None or repo.vanished or not ctx.can_see(repo):
        message = f"Could not resolve to a Repository with the name '{owner}/{name}'."
        raise FieldProblem(message, "NOT_FOUND")
    return repo


def _pull_of_node_id(ctx: Context, node_id: str) -> tuple[RepoData, Item] | None:
    """A pull's legacy node id (base64 of ``011:PullRequest<id>``, its REST ``node_id``)."""
    try:
        text = base64.b64decode(node_id.encode(), validate=True).decode("ascii")
        length, _, rest = text.partition(":")
        kind, ident = rest[: int(length[1:])], rest[int(length[1:]) :]
    except (binascii.Error, UnicodeError, ValueError):
        return None
    if kind != "PullRequest" or not ident.isdigit():
        return None
    found = ctx.cache.pull_by_id(int(ident))
    if found is None or found[0].vanished or not ctx.can_see(found[0]):
        return None
    return found


class RepositoryView(_View):
    typename = "Repository"

    def __init__(self, ctx: Context, repo: RepoData) -> None:
        super().__init__(ctx)
        self.repo = repo

    @cached_property
    def current(self) -> JsonObject:
        loaded: JsonObject = json.loads(b"".join(self.repo.current))
        return loaded

    def resolve(self, name: str, args: Args) -> Any:
        scalar = _REPOSITORY_SCALARS.get(name)
        if scalar is not None:
            return scalar(self.current)
        if name == "pullRequests":
            return self._pull_requests(args)
        if name == "pullRequest":
            return self._pull_request(args["number"])
        return super().resolve(name, args)

    def _pull_requests(self, args: Args) -> JsonObject:
        for unsupported in ("labels", "headRefName", "baseRefName"):
            if args.get(unsupported) is not None:
                raise _not_simulated("Repository", f"pullRequests({unsupported}:)")
        order = args.get("orderBy") or {}
        sort = _ORDER_FIELDS.get(order.get("field", "CREATED_AT"))
        if sort is None:
            raise _not_simulated("Repository", f"pullRequests(orderBy: {order['field']})")
        selection = self.ctx.cache.ordered_pulls(self.repo, sort)
        items, keys = _with_states(selection, args.get("states"))
        return connection(
            items,
            keys,
            descending=order.get("direction") == "DESC",
            ordering=f"pulls:{sort}",
            args=args,
            view=lambda item: PullView(self.ctx, self.repo, item),
        )

    def _pull_request(self, number: int) -> PullView:
        item = next((i for i in self.repo.pulls if i.number == number), None)
        if item is None:
            message = f"Could not resolve to a PullRequest with the number of {number}."
            raise FieldProblem(message, "NOT_FOUND")
        return PullView(self.ctx, self.repo, item)


_REPOSITORY_SCALARS: dict[str, Callable[[JsonObject], Any]] = {
    "id": lambda repo: repo["node_id"],
    "databaseId": lambda repo: repo["id"],
    "name": lambda repo: repo["name"],
    "nameWithOwner": lambda repo: repo["full_name"],
    "url": lambda repo: repo["html_url"],
    "isArchived": lambda repo: repo["archived"],
    "isFork": lambda repo: repo["fork"],
    "isPrivate": lambda repo: repo["private"],
}


def _with_states(
    selection: Selection, states: list[str] | None
) -> tuple[list[Item], list[SortKey]]:
    """The pulls in ``states`` (OPEN, CLOSED, MERGED), keys alongside. Telling CLOSED from
    MERGED needs the pull's object, read only when the filter separates them."""
    wanted = set(states or _ALL_STATES)
    if wanted >= _ALL_STATES:
        return list(selection.items), list(selection.keys)
    chosen = [
        (item, key)
        for item, key in zip(selection.items, selection.keys, strict=True)
        if _state_of(item, wanted) in wanted
    ]
    return [item for item, _ in chosen], [key for _, key in chosen]


def _state_of(item: Item, wanted: set[str]) -> str:
    if item.state == "open":
        return "OPEN"
    if {"CLOSED", "MERGED"} <= wanted:
        return "CLOSED"  # either will do: no need to read the object
    merged = item.to_json("")["merged_at"] is not None
    return "MERGED" if merged else "CLOSED"


class PullView(_View):
    """A pull request: its full REST object (``GET /pulls/{n}``) read once, when a field
    first needs it."""

    typename = "PullRequest"

    def __init__(self, ctx: Context, repo: RepoData, item: Item) -> None:
        super().__init__(ctx)
        self.repo, self.item = repo, item

    @cached_property
    def full(self) -> JsonObject:
        pull = self.ctx.details.pull(self.repo, self.item.number)
        assert pull is not None  # the item is one of the repo's pulls
        return pull

    @cached_property
    def reviews(self) -> list[JsonObject]:
        """The reviews this token may see, in REST's order (submission, by id)."""
        every = self.ctx.details.reviews(self.repo, self.item.number) or []
        return visible_reviews(every, self.ctx.viewer)

    def resolve(self, name: str, args: Args) -> Any:
        scalar = _PULL_SCALARS.get(name)
        if scalar is not None:
            return scalar(self.full)
        if name == "reviews":
            return self._reviews(args)
        if name == "commits":
            return {"totalCount": self.full["commits"]}
        if name == "reviewDecision":
            return review_decision(self.reviews)
        if name == "repository":
            return RepositoryView(self.ctx, self.repo)
        return super().resolve(name, args)

    def _reviews(self, args: Args) -> JsonObject:
        if args.get("author") is not None:
            raise _not_simulated("PullRequest", "reviews(author:)")
        states = set(args.get("states") or ())
        reviews = [r for r in self.reviews if not states or r["state"] in states]
        return connection(
            reviews,
            [(review["id"], review["id"]) for review in reviews],
            descending=False,
            ordering="reviews",
            args=args,
            view=lambda review: ReviewView(self.ctx, review, self),
        )


def review_decision(reviews: list[JsonObject]) -> str:
    """GitHub's rule, simplified: a reviewer's latest approval or change request counts;
    any change request wins, then any approval; without either a review is required."""
    latest: dict[str, str] = {}
    for review in reviews:
        if review["state"] in _DECISIVE:
            latest[_login(review.get("user")) or ""] = review["state"]
    if "CHANGES_REQUESTED" in latest.values():
        return "CHANGES_REQUESTED"
    return "APPROVED" if "APPROVED" in latest.values() else "REVIEW_REQUIRED"


def _pull_state(pull: JsonObject) -> str:
    if pull["merged_at"] is not None:
        return "MERGED"
    return "OPEN" if pull["state"] == "open" else "CLOSED"


_PULL_SCALARS: dict[str, Callable[[JsonObject], Any]] = {
    "id": lambda pull: pull["node_id"],
    "databaseId": lambda pull: pull["id"],
    "fullDatabaseId": lambda pull: str(pull["id"]),
    "number": lambda pull: pull["number"],
    "title": lambda pull: pull["title"],
    "body": lambda pull: pull["body"] or "",
    "url": lambda pull: pull["html_url"],
    "state": _pull_state,
    "isDraft": lambda pull: pull["draft"],
    "locked": lambda pull: pull["locked"],
    "merged": lambda pull: pull["merged_at"] is not None,
    "createdAt": lambda pull: pull["created_at"],
    "updatedAt": lambda pull: pull["updated_at"],
    "closedAt": lambda pull: pull["closed_at"],
    "mergedAt": lambda pull: pull["merged_at"],
    "author": lambda pull: actor(pull["user"]),
    "authorAssociation": lambda pull: pull["author_association"],
    "additions": lambda pull: pull["additions"],
    "deletions": lambda pull: pull["deletions"],
    "changedFiles": lambda pull: pull["changed_files"],
    "mergedBy": lambda pull: actor(pull["merged_by"]),
    "baseRefName": lambda pull: pull["base"]["ref"],
    "headRefName": lambda pull: pull["head"]["ref"],
    "baseRefOid": lambda pull: pull["base"]["sha"],
    "headRefOid": lambda pull: pull["head"]["sha"],
}


class ReviewView(_View):
    """A review as ``GET /pulls/{n}/reviews`` lists it."""

    typename = "PullRequestReview"

    def __init__(self, ctx: Context, review: JsonObject, pull: PullView) -> None:
        super().__init__(ctx)
        self.review, self.pull = review, pull

    def resolve(self, name: str, args: Args) -> Any:
        scalar = _REVIEW_SCALARS.get(name)
        if scalar is not None:
            return scalar(self.review)
        if name in ("createdAt", "updatedAt"):  # a pending review: written, not submitted
            return self.review.get("submitted_at") or self.pull.item.updated_at
        if name == "pullRequest":
            return self.pull
        if name == "viewerDidAuthor":
            return _login(self.review.get("user")) == self.ctx.viewer
        return super().resolve(name, args)


_REVIEW_SCALARS: dict[str, Callable[[JsonObject], Any]] = {
    "id": lambda review: review["node_id"],
    "databaseId": lambda review: review["id"],
    "fullDatabaseId": lambda review: str(review["id"]),
    "author": lambda review: actor(review["user"]),
    "authorAssociation": lambda review: review["author_association"],
    "state": lambda review: review["state"],
    "submittedAt": lambda review: review.get("submitted_at"),
    "publishedAt": lambda review: review.get("submitted_at"),
    "body": lambda review: review["body"],
    "bodyText": lambda review: review["body"],
    "commit": lambda review: {"__typename": "Commit", "oid": review["commit_id"]},
    "url": lambda review: review["html_url"],
    "isMinimized": lambda review: False,
}


def actor(user: JsonObject | None) -> JsonObject | None:
    """A REST user object as GraphQL's ``Actor``: a bot's login loses ``[bot]``."""
    if user is None:
        return None
    login = str(user["login"])
    if user.get("type") == "Bot":
        name = login.removesuffix("[bot]")
        return {"__typename": "Bot", "login": name, "url": f"https://github.com/apps/{name}",
                "avatarUrl": user.get("avatar_url")}  # fmt: skip
    return {"__typename": "User", "login": login, "url": user.get("html_url"),
            "avatarUrl": user.get("avatar_url")}  # fmt: skip


def _login(user: Any) -> str | None:
    return user.get("login") if isinstance(user, dict) else None
