"""Route handlers: the answer of every route, read from the model.

Handlers never await: the whole answer is computed between two awaits of the pipeline, so
a mutation (run on the same loop) is never seen half done. Filtered lists and renderers are
cached here and dropped by ``forget`` whenever the model changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from multidict import MultiDictProxy

from gh_collect.simulator.model import (
    API_PLACEHOLDER_BYTES,
    OrgModel,
    RepoData,
    Selection,
    encode_cursor,
    iso,
    parse_time,
)
from gh_collect.simulator.model.details import Details
from gh_collect.simulator.model.reviews import visible_reviews
from gh_collect.simulator.server import owners
from gh_collect.simulator.server.activity import ActivityAnswers
from gh_collect.simulator.server.config import (
    DEEP_PAGE_MESSAGE,
    DOCS,
    MAX_CURSOR_PAGE,
    SimulatorConfig,
)
from gh_collect.simulator.server.paging import _add_link, _int, _Page
from gh_collect.simulator.server.rendering import (
    _Answer,
    _digest,
    _error,
    _http_date,
    _invalid,
    _json,
    _Renderer,
    _Reply,
)
from gh_collect.simulator.server.routes import _REPO_PATH, _Call

ListItems = Callable[[str], Sequence[Mapping[str, Any]]]
"""What ``Simulator.add_list_route`` serves: a repo's full name to the list's objects."""


class _Handlers:
    """The answers of the routes, by handler name (``handlers``), for one model."""

    def __init__(self, cfg: SimulatorConfig, model: OrgModel) -> None:
        self.cfg = cfg
        self.model = model
        self._selections: dict[tuple[object, ...], Selection] = {}
        self._renderers: dict[str, _Renderer] = {}
        self._activity = ActivityAnswers(cfg, self.resolve_repo, self._list_reply)
        self._details = Details(model)
        # The token's GraphQL budget for GET /rate_limit, when GraphQL is served (app.py).
        self.graphql_resource: Callable[[_Call], dict[str, int]] | None = None
        self.handlers: dict[str, Callable[[_Call], _Reply]] = {
            "rate_limit": self._rate_limit,
            "org": self._org,
            "org_repos": self._org_repos,
            "repo": self._repo,
            "pulls": self._pulls,
            "issues": self._issues,
            "me": self._me,
            **self._activity.handlers(),
            **self._detail_handlers(),
        }

    def forget(self) -> None:
        """Drop what was derived from the old state. Renderers too: they cache by object
        identity, and a replaced object's id may be reused by a new one."""
        self._selections.clear()
        self._renderers.clear()
        self._activity.forget()

    def _rate_limit(self, call: _Call) -> _Reply:
        assert call.client is not None
        core = call.client.budget.core(time.time())
        reset = core["reset"]
        resources = {"core": {**core, "resource": "core"}}
        for name, limit in (("search", 30), ("graphql", 5000), ("code_search", 10)):
            resources[name] = {"limit": limit, "used": 0, "remaining": limit, "reset": reset}
            resources[name]["resource"] = name
        if self.graphql_resource is not None:
            resources["graphql"] = {**self.graphql_resource(call), "resource": "graphql"}
        payload: dict[str, Any] = {"resources": resources}
        if call.version < "2026-03-10":
            payload["rate"] = resources["core"]
        return _json(200, payload)

    def _org(self, call: _Call) -> _Reply:
        if call.args["org"].lower() != self.model.org.lower() or owners.org_hidden(self.cfg, call):
            raise _Answer(_error(404, "Not Found"))
        return self._object(call, self.model.org_object)

    def _me(self, call: _Call) -> _Reply:
        return self._detail_reply(call, owners.me(self.cfg, self.model, call))

    def _repo(self, call: _Call) -> _Reply:
        return self._object(call, self.resolve_repo(call).current)

    def _object(self, call: _Call, fragments: tuple[bytes, ...]) -> _Reply:
        body = self._renderer(call.base).one(fragments)
        reply = _Reply(200, body, etag=f'"{_digest(body)}"')
        reply.headers["Last-Modified"] = _http_date(parse_time(self.model.now))
        return reply

    def _detail_handlers(self) -> dict[str, Callable[[_Call], _Reply]]:
        """The per-item detail routes (``details.Details``): generated on request."""
        details = self._details
        by_number: dict[str, Callable[[RepoData, int], object | None]] = {
            "pull": details.pull,
            "review_comments": details.review_comments,
            "commits": details.commits,
            "requested_reviewers": details.requested_reviewers,
            "issue_comments": details.issue_comments,
            "issue_reactions": details.issue_reactions,
            "comment_reactions": details.comment_reactions,
            "review_comment_reactions": lambda _repo, _id: [],
        }
        handlers: dict[str, Callable[[_Call], _Reply]] = {
            name: partial(self._detail, produce) for name, produce in by_number.items()
        }
        handlers["reviews"] = self._reviews
        handlers["user"] = partial(self._user_detail, details.user)
        handlers["user_orgs"] = partial(self._user_detail, details.user_orgs)
        return handlers

    def _detail(self, produce: Callable[[RepoData, int], object | None], call: _Call) -> _Reply:
        repo = self.resolve_repo(call)
        number = call.args.get("number") or call.args.get("comment_id")
        return self._detail_reply(call, produce(repo, _int(number, -1)))

    def _reviews(self, call: _Call) -> _Reply:
        """A pull's reviews in submission order, paged like GitHub's (30 a page by default,
        at most 100, Link headers); a PENDING review only to its author (``GET /user``)."""
        repo = self.resolve_repo(call)
        number = _int(call.args["number"], -1)
        reviews = self._details.reviews(repo, number)
        if reviews is None:
            raise _Answer(_error(404, "Not Found"))
        shown = visible_reviews(reviews, owners.viewer_login(self.cfg, call))
        page = _Page.by_number(call, len(shown), descending=False)
        reply = self._detail_reply(call, page.take(shown))
        path = f"/repositories/{repo.id}/pulls/{number}/reviews"
        _add_link(reply, page.links(call, path, lambda _: ""))
        return reply

    def _user_detail(self, produce: Callable[[str], object | None], call: _Call) -> _Reply:
        return self._detail_reply(call, produce(call.args["login"]))

    def _detail_reply(self, call: _Call, payload: object | None) -> _Reply:
        if payload is None:
            raise _Answer(_error(404, "Not Found"))
        raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        body = raw.replace(API_PLACEHOLDER_BYTES, call.base.encode())
        return _Reply(200, body, etag=f'W/"{_digest(body)}"')

    def _org_repos(self, call: _Call) -> _Reply:
        self._check_owner(call)
        kind = _choice(call.query, "type", _REPO_TYPES, "all")
        sort = _choice(call.query, "sort", tuple(_REPO_SORTS), "created")
        default = "asc" if sort == "full_name" else "desc"
        descending = _choice(call.query, "direction", ("asc", "desc"), default) == "desc"
        listed = owners.listed_repos(self.cfg, self.model, call)
        repos = sorted((r for r in listed if _repo_type_ok(r, kind)), key=_REPO_SORTS[sort])
        is_org = call.route.template.startswith(("/orgs", "/organizations"))
        link_path = f"/{'organizations' if is_org else 'user'}/{self.model.org_id}/repos"
        if call.route.endpoint == owners.OWN_REPOS:
            link_path = owners.OWN_REPOS
        page = _Page.by_number(call, len(repos), descending)
        chunk = page.take(repos)
        reply = self._list_reply(call, [r.listing for r in chunk])
        _add_link(reply, page.links(call, link_path, lambda _: ""))
        return reply

    def _check_owner(self, call: _Call) -> None:
        if owners.org_hidden(self.cfg, call):
            raise _Answer(_error(404, "Not Found"))
        if call.route.endpoint == owners.OWN_REPOS:
            return  # whose repos: the token's (``owners.listed_repos``)
        org = self.model
        name = call.args.get("org") or call.args.get("user")
        ok = name.lower() == org.org.lower() if name else call.args.get("org_id") == str(org.org_id)
        if not ok:
            raise _Answer(_error(404, "Not Found"))

    def _pulls(self, call: _Call) -> _Reply:
        repo = self.resolve_repo(call)
        state = _choice(call.query, "state", ("open", "closed", "all"), "open")
        sort = _choice(call.query, "sort", _PULL_SORTS, "created")
        default = "desc" if sort == "created" else "asc"
        descending = _choice(call.query, "direction", ("asc", "desc"), default) == "desc"
        selection = self._select(repo, "pulls", state, sort, None)
        return self._items_reply(call, repo, "pulls", selection, descending, cursors=False)

    def _issues(self, call: _Call) -> _Reply:
        repo = self.resolve_repo(call)
        owners.check_issues(self.cfg, repo)
        state = _choice(call.query, "state", ("open", "closed", "all"), "open")
        sort = _choice(call.query, "sort", ("created", "updated", "comments"), "created")
        descending = _choice(call.query, "direction", ("asc", "desc"), "desc") == "desc"
        since = _since(call.query.get("since"))
        selection = self._select(repo, "issues", state, sort, since)
        big = len(selection) > self.cfg.cursor_threshold
        cursors = big or "after" in call.query or "before" in call.query
        if big and _int(call.query.get("page"), 1) > MAX_CURSOR_PAGE:
            raise _Answer(
                _error(422, DEEP_PAGE_MESSAGE, f"{DOCS}/issues/issues#list-repository-issues")
            )
        return self._items_reply(call, repo, "issues", selection, descending, cursors)

    def _items_reply(
        self,
        call: _Call,
        repo: RepoData,
        kind: str,
        selection: Selection,
        descending: bool,
        cursors: bool,
    ) -> _Reply:
        if cursors:
            page = _Page.by_cursor(call, selection, descending)
        else:
            page = _Page.by_number(call, len(selection), descending)
        chunk = page.take(selection.items)
        reply = self._list_reply(call, [i.fragments for i in chunk])
        keys = page.take(selection.keys)

        def cursor(rel: str) -> str:
            return encode_cursor(keys[-1] if rel == "next" else keys[0])

        _add_link(reply, page.links(call, f"/repositories/{repo.id}/{kind}", cursor))
        return reply

    def _list_reply(self, call: _Call, fragments: Sequence[tuple[bytes, ...]]) -> _Reply:
        """A list page: a weak ETag and, as on GitHub (recorded fixtures), no Last-Modified."""
        body = self._renderer(call.base).many(fragments)
        return _Reply(200, body, etag=f'W/"{_digest(body)}"')

    def added_list(self, items: ListItems, call: _Call) -> _Reply:
        """A list a test added (``SimulatorApp.add_list_route``): ``items`` is asked for the
        repo's objects on every request, by the repo's discovered full name, and they are
        served in its order, paged by number like the pulls list (``per_page``, ``page``;
        other query parameters are ignored). API URLs may use ``API_PLACEHOLDER``."""
        repo = self.resolve_repo(call)
        objects = items(repo.full_name)
        page = _Page.by_number(call, len(objects), descending=False)
        chunk = page.take(objects)
        raw = json.dumps([dict(obj) for obj in chunk], ensure_ascii=False, separators=(",", ":"))
        body = raw.encode().replace(API_PLACEHOLDER_BYTES, call.base.encode())
        reply = _Reply(200, body, etag=f'W/"{_digest(body)}"')
        depth = 4 if call.path.startswith("/repos/") else 3  # the segments naming the repo
        rest = call.path.split("/", depth)[depth]
        _add_link(reply, page.links(call, f"/repositories/{repo.id}/{rest}", lambda _: ""))
        return reply

    def _select(
        self, repo: RepoData, kind: str, state: str, sort: str, since: str | None
    ) -> Selection:
        """Filtered lists are cached: a client walking pages asks the same query each time."""
        key = (repo.id, kind, state, sort, since)
        selection = self._selections.get(key)
        if selection is None:
            if len(self._selections) > 1024:
                self._selections.clear()
            selection = repo.select(kind, state, sort, since)
            self._selections[key] = selection
        return selection

    def _renderer(self, base: str) -> _Renderer:
        """One renderer per API base a client used (few: a host, maybe with /api/v3)."""
        renderer = self._renderers.get(base)
        if renderer is None:
            if len(self._renderers) >= 8:
                self._renderers.clear()
            renderer = self._renderers[base] = _Renderer(base)
        return renderer

    def resolve_repo(self, call: _Call) -> RepoData:
        """The repo a ``/repos/{o}/{r}`` or ``/repositories/{id}`` call names; raises the 404
        (unknown, vanished) or the 301 (renamed: old name) GitHub would send."""
        alias = self.model.alias_for(call.args.get("owner", ""), call.args.get("repo", ""))
        if "repo_id" in call.args:
            repo = self.model.repo_by_id(_int(call.args["repo_id"], -1))
        elif alias is not None:
            repo = alias
        elif call.args["owner"].lower() != self.model.org.lower():
            repo = None
        else:
            repo = self.model.repo_by_name(call.args["repo"])
            moved = self.model.renamed_from(call.args["repo"]) if repo is None else None
            if moved is not None:
                raise _Answer(_moved(call, moved))
        if repo is None or repo.vanished:
            raise _Answer(_error(404, "Not Found"))
        owners.check_visible(self.cfg, call, repo)
        return repo


_REPO_TYPES = ("all", "public", "private", "forks", "sources", "member", "owner")
_PULL_SORTS = ("created", "updated", "popularity", "long-running")
_REPO_SORTS: dict[str, Callable[[RepoData], tuple[str, int]]] = {
    "created": lambda r: (r.created_at, r.id),
    "updated": lambda r: (r.updated_at, r.id),
    "pushed": lambda r: (r.pushed_at or "", r.id),
    "full_name": lambda r: (r.name.lower(), r.id),
}


def _repo_type_ok(repo: RepoData, kind: str) -> bool:
    if kind == "forks":
        return repo.fork
    if kind == "sources":
        return not repo.fork
    if kind == "private":
        return repo.private
    if kind == "public":
        return not repo.private
    return True


def _moved(call: _Call, repo: RepoData) -> _Reply:
    """301 to the ``/repositories/{id}`` form, same path suffix and query, as GitHub does."""
    found = _REPO_PATH.match(call.path)
    rest = found.group("rest") or "" if found else ""
    location = f"{call.base}/repositories/{repo.id}{rest}"
    if call.request.query_string:
        location += f"?{call.request.query_string}"
    reply = _json(
        301,
        {
            "message": "Moved Permanently",
            "url": location,
            "documentation_url": "https://docs.github.com/v3/#http-redirects",
        },
    )
    reply.headers["Location"] = location
    return reply


def _choice(query: MultiDictProxy[str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = query.get(name, default)
    if value not in allowed:
        raise _invalid("Issue", name)
    return value


def _since(text: str | None) -> str | None:
    """``since`` as a comparable timestamp string; 422 when it is not ISO 8601."""
    if text is None:
        return None
    try:
        return iso(parse_time(text))
    except ValueError:
        raise _invalid("Issue", "since") from None
