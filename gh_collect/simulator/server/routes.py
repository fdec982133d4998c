"""Routing: which handler answers a path, and the request as handlers see it (``_Call``).

Built-in routes are a fixed table (``ROUTES``); repo routes come in GitHub's two forms,
``/repos/{owner}/{repo}/...`` and ``/repositories/{id}/...`` (the form Link headers and
redirects use). ``list_routes`` makes the pair for a list endpoint a test adds at run time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiDictProxy

from gh_collect.simulator.server.limits import _Client


@dataclass(frozen=True)
class _Route:
    template: str
    endpoint: str
    handler: str
    faultable: bool
    pattern: re.Pattern[str]


def _route(template: str, handler: str, endpoint: str = "", faultable: bool = False) -> _Route:
    """``{name}`` matches one path segment; everything else literally."""
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return _Route(template, endpoint or template, handler, faultable, re.compile(f"^{regex}$"))


_REPO = "/repos/{owner}/{repo}"
ROUTES: tuple[_Route, ...] = (
    _route("/rate_limit", "rate_limit"),
    _route("/orgs/{org}", "org"),
    _route("/orgs/{org}/repos", "org_repos", faultable=True),
    _route("/organizations/{org_id}/repos", "org_repos", "/orgs/{org}/repos", True),
    _route("/users/{user}/repos", "org_repos", faultable=True),
    _route("/user/{org_id}/repos", "org_repos", "/users/{user}/repos", True),
    _route("/user", "me"),
    _route("/user/repos", "org_repos", faultable=True),
    _route(_REPO, "repo"),
    _route(f"{_REPO}/pulls", "pulls", faultable=True),
    _route(f"{_REPO}/issues", "issues", faultable=True),
    _route("/repositories/{repo_id}", "repo", _REPO),
    _route("/repositories/{repo_id}/pulls", "pulls", f"{_REPO}/pulls", True),
    _route("/repositories/{repo_id}/issues", "issues", f"{_REPO}/issues", True),
    # repo-wide activity lists (``activity``); before the per-item routes: ``/pulls/comments``
    # would otherwise be the pull numbered "comments"
    *(
        route
        for path, handler in (
            ("issues/comments", "list_issue_comments"),
            ("pulls/comments", "list_review_comments"),
            ("commits", "list_commits"),
            ("releases", "list_releases"),
        )
        for route in (
            _route(f"{_REPO}/{path}", handler, faultable=True),
            _route(f"/repositories/{{repo_id}}/{path}", handler, f"{_REPO}/{path}", True),
        )
    ),
    # per-item details, for peers that fan out per item (Perceval); gh_collect reads lists
    _route(f"{_REPO}/pulls/{{number}}", "pull"),
    _route(f"{_REPO}/pulls/{{number}}/reviews", "reviews"),
    _route(
        "/repositories/{repo_id}/pulls/{number}/reviews",
        "reviews",
        f"{_REPO}/pulls/{{number}}/reviews",
    ),
    _route(f"{_REPO}/pulls/{{number}}/comments", "review_comments"),
    _route(f"{_REPO}/pulls/{{number}}/commits", "commits"),
    _route(f"{_REPO}/pulls/{{number}}/requested_reviewers", "requested_reviewers"),
    _route(f"{_REPO}/pulls/comments/{{comment_id}}/reactions", "review_comment_reactions"),
    _route(f"{_REPO}/issues/{{number}}/comments", "issue_comments"),
    _route(f"{_REPO}/issues/{{number}}/reactions", "issue_reactions"),
    _route(f"{_REPO}/issues/comments/{{comment_id}}/reactions", "comment_reactions"),
    _route("/users/{login}", "user"),
    _route("/users/{login}/orgs", "user_orgs"),
    # GraphQL: POST only; GHES serves it at /api/graphql, beside (not under) /api/v3
    _route("/graphql", "graphql", "/graphql", True),
    _route("/api/graphql", "graphql", "/graphql", True),
)
_REPO_PATH = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)(?P<rest>/.*)?$")
_ANY_REPO_ROUTE = _Route(f"{_REPO}/...", f"{_REPO}/...", "", False, _REPO_PATH)
_UNKNOWN_ROUTE = _Route("<unknown>", "<unknown>", "", False, re.compile("$^"))


def _match(path: str, added: Sequence[_Route] = ()) -> tuple[_Route, dict[str, str]]:
    """The built-in routes first, then the ``added`` ones, then any other repo path."""
    for route in (*ROUTES, *added):
        found = route.pattern.match(path)
        if found:
            return route, found.groupdict()
    found = _REPO_PATH.match(path)
    if found:
        return _ANY_REPO_ROUTE, found.groupdict()
    return _UNKNOWN_ROUTE, {}


_SEGMENT = re.compile(r"^(\{\w+\}|[A-Za-z0-9_.~-]+)$")


def list_routes(template: str, handler: str) -> tuple[_Route, _Route]:
    """The two forms of a repo list a test adds: ``template`` as given, which must start
    with ``/repos/{owner}/{repo}/``, and its ``/repositories/{repo_id}/...`` twin (the form
    Link headers and 301s point to). Both count as the template's endpoint for the
    secondary limits and are faultable, like the built-in lists."""
    rest = template.removeprefix(_REPO)
    segments = rest.split("/")[1:]
    names = [segment for segment in segments if segment.startswith("{")]
    if (
        rest == template
        or not rest.startswith("/")
        or not all(_SEGMENT.match(segment) for segment in segments)
        or len(set(names)) != len(names)
        or {"{owner}", "{repo}", "{repo_id}"} & set(names)
    ):
        raise ValueError(
            f"a list route must look like {_REPO}/<segment>[/...], with distinct "
            f"{{name}} placeholders; got {template!r}"
        )
    return (
        _route(template, handler, faultable=True),
        _route(f"/repositories/{{repo_id}}{rest}", handler, template, True),
    )


def bearer(header: str) -> str:
    """The token of an ``Authorization`` header (``token X`` or ``Bearer X``), or ''."""
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() in ("token", "bearer") else ""


@dataclass
class _Call:
    """One request as the handlers see it."""

    request: web.Request
    path: str
    prefix: str
    route: _Route
    args: dict[str, str]
    client: _Client | None
    version: str

    @property
    def query(self) -> MultiDictProxy[str]:
        return self.request.rel_url.query

    @property
    def base(self) -> str:
        """The API root this request used: its own host, plus ``/api/v3`` if it used that."""
        return f"{self.request.scheme}://{self.request.host}{self.prefix}"
