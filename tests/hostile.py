"""A hostile GitHub API on 127.0.0.1, and the scenarios gh-collect must survive.

Everything a server sends is untrusted (SPEC, "Bad input and hostile servers"). The built-in
simulator behaves like GitHub; this server misbehaves on purpose: the org name in the
requested path selects a scenario (a ``World``: its repos, their items on all six REST lists
gh-collect reads, and hooks that answer a request in some hostile way). Without a hook, a
list is served as GitHub serves it (``since``/``until``, ``sort``/``direction``, pages, ETag
and 304). Each scenario drives the real CLI in a subprocess through one or more steps and
checks what a user would: the exit code, a one-line error and never a traceback, the data on
disk afterwards (every endpoint, by its key), a readable checkpoint, and that the token
appears in no output and no file.

    tests/test_hostile.py               one test per scenario
    scripts/torture.py --mode hostile   all of them, as a table
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml
from aiohttp import web

from gh_collect import endpoints
from gh_collect.durable.checkpoint import read_checkpoint
from gh_collect.durable.envelope import read_envelopes
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import GhCollectError

TOKEN = "ghp_hostileSECRETtoken0123456789"
TOKEN_ENV = "GH_HOSTILE_TOKEN"
YEAR = 2025
PER_PAGE_MAX = 100
ERROR_PREFIX = "gh-collect: error:"
Hook = Callable[["Call"], Awaitable[web.StreamResponse | None]]


# --------------------------------------------------------------------------- the world

ENDPOINTS = ("pulls", "issues", "issue_comments", "review_comments", "commits", "releases")
"""Every REST endpoint gh-collect harvests: the harness's config lists them all."""
API = "https://api.github.com"
WEB = "https://github.com"
START = datetime(YEAR, 1, 1, tzinfo=UTC)
END = datetime(YEAR + 1, 1, 1, tzinfo=UTC)
USER = {
    "login": "octocat",
    "id": 1,
    "node_id": "MDQ6VXNlcjE=",
    "type": "User",
    "site_admin": False,
    "url": f"{API}/users/octocat",
    "html_url": f"{WEB}/octocat",
}


@dataclass
class Repo:
    full_name: str
    id: int
    pulls: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    issue_comments: list[dict[str, Any]] = field(default_factory=list)
    review_comments: list[dict[str, Any]] = field(default_factory=list)
    commits: list[dict[str, Any]] = field(default_factory=list)  # any order: served by date
    releases: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    empty_git: bool = False  # commits answer 409 "Git Repository is empty."

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]

    @property
    def api(self) -> str:
        return f"{API}/repos/{self.full_name}"

    def items(self, endpoint: str) -> list[dict[str, Any]]:
        """The list behind ``endpoint`` (one of ``ENDPOINTS``)."""
        items: list[dict[str, Any]] = getattr(self, endpoint)
        return items

    def listing(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "node_id": f"R_{self.id}",
            "name": self.name,
            "full_name": self.full_name,
            "fork": False,
            "archived": False,
            "private": False,
            "default_branch": "main",
            "open_issues_count": len(self.issues),
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2025-06-01T00:00:00Z",
            **self.extra,
        }


@dataclass
class Call:
    """One request as the server saw it, and the world it was for."""

    request: web.Request
    world: World
    route: str  # "repos", "rate_limit", an endpoint of ``ENDPOINTS``, or "other"
    repo: Repo | None = None


@dataclass(frozen=True)
class Exchange:
    """One answer the server gave: its route, the raw path with query, the status."""

    route: str
    path: str
    status: int


class World:
    """One scenario's GitHub: repos, items, hostile hooks, and the requests it received.

    Every item the world makes is in the year (``YEAR``); a scenario that wants one outside
    says so (``created_at=...``, ``add_commit(at=...)``). ``truth`` is what the year keeps.
    """

    def __init__(self, org: str) -> None:
        self.org = org
        self.repos: list[Repo] = []
        self.hooks: list[Hook] = []
        self.listing_override: Any = None  # a body served instead of the repo listing
        self.requests: list[str] = []  # raw paths with query, in arrival order
        self.exchanges: list[Exchange] = []  # what was answered, in answer order
        self.headers: dict[str, str] = {}  # extra headers on every answer
        self._next_id = 1000

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def repo(
        self,
        name: str,
        *,
        pulls: int = 3,
        issues: int = 3,
        issue_comments: int = 2,
        review_comments: int = 2,
        commits: int = 2,
        releases: int = 2,
        owner: str | None = None,
    ) -> Repo:
        repo = Repo(f"{owner or self.org}/{name}", self.new_id())
        for _ in range(pulls):
            self.add_pull(repo)
        for _ in range(issues):
            self.add_issue(repo)
        for _ in range(issue_comments):
            self.add_issue_comment(repo)
        for _ in range(review_comments):
            self.add_review_comment(repo)
        for _ in range(commits):
            self.add_commit(repo)
        for _ in range(releases):
            self.add_release(repo)
        self.repos.append(repo)
        return repo

    def _item(self, repo: Repo, number: int, kind: str) -> dict[str, Any]:
        created = datetime(YEAR, 1, 2, tzinfo=UTC) + timedelta(hours=7 * number)
        item_id = self.new_id()
        page = "pull" if kind == "PR" else "issues"
        return {
            "id": item_id,
            "node_id": f"{kind}_{item_id}",
            "number": number,
            "title": f"{kind} {number} of {repo.name}",
            "state": "open",
            "user": USER,
            "author_association": "MEMBER",
            "labels": [],
            "locked": False,
            "created_at": iso(created),
            "updated_at": iso(created + timedelta(days=1)),
            "closed_at": None,
            "body": "text",
            "html_url": f"{WEB}/{repo.full_name}/{page}/{number}",
        }

    def add_pull(self, repo: Repo, **fields: Any) -> dict[str, Any]:
        number = len(repo.pulls) + len(repo.issues) + 1
        pull = {**self._item(repo, number, "PR"), "draft": False, "merged_at": None, **fields}
        repo.pulls.append(pull)
        return pull

    def add_issue(self, repo: Repo, **fields: Any) -> dict[str, Any]:
        number = len(repo.pulls) + len(repo.issues) + 1
        issue = {**self._item(repo, number, "I"), "comments": 0, **fields}
        repo.issues.append(issue)
        return issue

    def add_issue_comment(
        self, repo: Repo, *, on_pull: bool | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A conversation comment (GitHub's issue-comment), on a pull every other time."""
        seq = len(repo.issue_comments)
        if on_pull is None:
            on_pull = bool(repo.pulls) and (seq % 2 == 0 or not repo.issues)
        number = _nth_number(repo.pulls if on_pull else repo.issues, seq)
        comment_id, created = self.new_id(), _moment(2, 5 * seq)
        page = "pull" if on_pull else "issues"
        comment = {
            "id": comment_id,
            "node_id": f"IC_{comment_id}",
            "url": f"{repo.api}/issues/comments/{comment_id}",
            "html_url": f"{WEB}/{repo.full_name}/{page}/{number}#issuecomment-{comment_id}",
            "issue_url": f"{repo.api}/issues/{number}",
            "body": f"comment {seq} on {number}",
            "user": USER,
            "author_association": "MEMBER",
            "created_at": iso(created),
            "updated_at": iso(created + timedelta(hours=2)),
            "reactions": _reactions(f"{repo.api}/issues/comments/{comment_id}"),
            **fields,
        }
        repo.issue_comments.append(comment)
        return comment

    def add_review_comment(self, repo: Repo, **fields: Any) -> dict[str, Any]:
        """A review comment on a pull's diff (GitHub's pull-request-review-comment)."""
        seq = len(repo.review_comments)
        number = _nth_number(repo.pulls, seq)
        comment_id, created = self.new_id(), _moment(3, 5 * seq)
        url = f"{repo.api}/pulls/comments/{comment_id}"
        html_url = f"{WEB}/{repo.full_name}/pull/{number}#discussion_r{comment_id}"
        pull_url = f"{repo.api}/pulls/{number}"
        commit = _sha(f"{repo.full_name} reviewed {number}")
        comment = {
            "url": url,
            "pull_request_review_id": self.new_id(),
            "id": comment_id,
            "node_id": f"PRRC_{comment_id}",
            "diff_hunk": "@@ -1,3 +1,4 @@\n line\n+added",
            "path": "src/main.py",
            "position": 2,
            "original_position": 2,
            "commit_id": commit,
            "original_commit_id": commit,
            "user": USER,
            "body": f"review comment {seq} on {number}",
            "created_at": iso(created),
            "updated_at": iso(created + timedelta(hours=1)),
            "html_url": html_url,
            "pull_request_url": pull_url,
            "author_association": "MEMBER",
            "_links": {
                "self": {"href": url},
                "html": {"href": html_url},
                "pull_request": {"href": pull_url},
            },
            "line": 2,
            "original_line": 2,
            "side": "RIGHT",
            "subject_type": "line",
            "reactions": _reactions(url),
            **fields,
        }
        repo.review_comments.append(comment)
        return comment

    def add_commit(
        self, repo: Repo, *, at: datetime | str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A commit of the default branch, committed ``at`` (default: in the year)."""
        seq = len(repo.commits)
        when = at if at is not None else _moment(1, 3 * seq + 50)
        date = when if isinstance(when, str) else iso(when)
        sha = _sha(f"{repo.full_name} commit {seq} {self.new_id()}")
        web = f"{WEB}/{repo.full_name}"
        person = {"name": "Octo Cat", "email": "octocat@github.com", "date": date}
        previous = repo.commits[-1].get("sha") if repo.commits else None
        parents = [previous] if isinstance(previous, str) else []
        commit = {
            "url": f"{repo.api}/commits/{sha}",
            "sha": sha,
            "node_id": f"C_{sha[:24]}",
            "html_url": f"{WEB}/{repo.full_name}/commit/{sha}",
            "comments_url": f"{repo.api}/commits/{sha}/comments",
            "commit": {
                "url": f"{repo.api}/git/commits/{sha}",
                "author": person,
                "committer": dict(person),
                "message": f"change {seq} of {repo.name}",
                "tree": {"sha": _sha(sha), "url": f"{repo.api}/git/trees/{_sha(sha)}"},
                "comment_count": 0,
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "author": USER,
            "committer": USER,
            "parents": [
                {"sha": p, "url": f"{repo.api}/commits/{p}", "html_url": f"{web}/commit/{p}"}
                for p in parents
            ],
            **fields,
        }
        repo.commits.append(commit)
        return commit

    def add_release(self, repo: Repo, **fields: Any) -> dict[str, Any]:
        seq = len(repo.releases)
        release_id, created = self.new_id(), _moment(3, 13 * seq)
        tag = f"v1.{seq}.0"
        url = f"{repo.api}/releases/{release_id}"
        release = {
            "url": url,
            "html_url": f"{WEB}/{repo.full_name}/releases/tag/{tag}",
            "assets_url": f"{url}/assets",
            "upload_url": f"https://uploads.github.com/repos/{repo.full_name}/releases/"
            f"{release_id}/assets{{?name,label}}",
            "tarball_url": f"{repo.api}/tarball/{tag}",
            "zipball_url": f"{repo.api}/zipball/{tag}",
            "id": release_id,
            "node_id": f"RE_{release_id}",
            "tag_name": tag,
            "target_commitish": "main",
            "name": f"Release {tag}",
            "body": "notes",
            "draft": False,
            "prerelease": False,
            "created_at": iso(created),
            "published_at": iso(created + timedelta(minutes=5)),
            "updated_at": iso(created + timedelta(minutes=5)),
            "author": USER,
            "assets": [],
            **fields,
        }
        repo.releases.append(release)
        return release

    def hook(self, hook: Hook) -> Hook:
        self.hooks.append(hook)
        return hook

    def truth(self, endpoint: str) -> Counter[Any]:
        """What the year keeps of ``endpoint``, by its key (a commit's ``sha``), as served."""
        key = endpoints.get(endpoint).key
        return Counter(
            key_of(item, key)
            for repo in self.repos
            for item in repo.items(endpoint)
            if in_year(endpoint, item)
        )

    def answered(self, *routes: str) -> Counter[int]:
        """The statuses answered so far on ``routes`` (default: every endpoint's)."""
        wanted = routes or ENDPOINTS
        return Counter(e.status for e in self.exchanges if e.route in wanted)


def in_year(endpoint: str, item: dict[str, Any]) -> bool:
    """The year's rule for ``endpoint`` (README, "Endpoints"), written again here so the
    harness does not judge gh-collect by gh-collect's own code; a time that cannot be read
    is kept."""
    if endpoint in ("commits", "releases"):
        when = at(item, "commit.committer.date" if endpoint == "commits" else "created_at")
        return when is None or START <= when < END
    created, updated = at(item, "created_at"), at(item, "updated_at")
    if created is None or updated is None:
        return True
    return created < END and updated >= START


def key_of(item: dict[str, Any], key: str) -> Any:
    """An item's key as a Counter key: None when missing, JSON text when unhashable."""
    value = item.get(key)
    try:
        hash(value)
    except TypeError:
        return json.dumps(value, sort_keys=True)
    return value


def at(item: dict[str, Any], path: str) -> datetime | None:
    """The time at a dotted ``path``; None when absent or unreadable, UTC when naive."""
    value: Any = item
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(month: int, hours: int) -> datetime:
    """A time in the year: the 2nd of ``month`` plus ``hours``."""
    return datetime(YEAR, month, 2, tzinfo=UTC) + timedelta(hours=hours)


def _nth_number(items: list[dict[str, Any]], seq: int) -> int:
    """The number of the ``seq``-th item, cycling; 1 when there are none."""
    return int(items[seq % len(items)]["number"]) if items else 1


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _reactions(url: str) -> dict[str, Any]:
    counts = dict.fromkeys(("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket"), 0)
    return {"url": f"{url}/reactions", "total_count": 1, **counts, "eyes": 1}


# --------------------------------------------------------------------------- the server


class HostileServer:
    """aiohttp on 127.0.0.1 in a background thread, serving every registered World."""

    def __init__(self) -> None:
        self.worlds: dict[str, World] = {}
        self._owners: dict[str, World] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def world(self, org: str) -> World:
        world = World(org)
        self.worlds[org.lower()] = world
        return world

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.SockSite(self._runner, sock, shutdown_timeout=0.1)
            loop.run_until_complete(site.start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=serve, name="hostile-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        self._loop = loop
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self.url

    def stop(self) -> None:
        loop, runner = self._loop, self._runner
        if loop is None or runner is None:
            return
        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(_shutdown(runner), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._loop = None

    def __enter__(self) -> HostileServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- routing --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        call = self._call(request)
        if call is None:
            return error_response(404, "Not Found")
        call.world.requests.append(request.raw_path)
        answer = await self._answer(call)
        call.world.exchanges.append(Exchange(call.route, request.raw_path, answer.status))
        return answer

    async def _answer(self, call: Call) -> web.StreamResponse:
        for hook in call.world.hooks:
            answer = await hook(call)
            if answer is not None:
                return answer
        return self._default(call)

    def _call(self, request: web.Request) -> Call | None:
        # Segments decoded one by one from the raw path: no dot-segment normalisation here,
        # so a server-side view of ``/repos/o/%2E%2E/pulls`` stays what the client sent.
        raw = request.raw_path.split("?", 1)[0]
        parts = [unquote(part) for part in raw.split("/") if part]
        if parts[:1] == ["rate_limit"]:
            world = next(iter(self.worlds.values()), None)
            return Call(request, world, "rate_limit") if world else None
        if len(parts) == 3 and parts[0] in ("orgs", "users") and parts[2] == "repos":
            world = self.worlds.get(parts[1].lower())
            return Call(request, world, "repos") if world else None
        if len(parts) >= 4 and parts[0] == "repos":
            full_name = f"{parts[1]}/{parts[2]}"
            for world in self.worlds.values():
                for repo in world.repos:
                    if repo.full_name == full_name:
                        return Call(request, world, _route(parts[3:]), repo)
        return None

    def _default(self, call: Call) -> web.StreamResponse:
        world = call.world
        if call.route == "rate_limit":
            return _json(call, {"resources": {"core": _core()}})
        if call.route == "repos":
            if world.listing_override is not None:
                return _json(call, world.listing_override)
            items = sorted((repo.listing() for repo in world.repos), key=_full_name_key)
            return page(call, items)
        if call.repo is None or call.route not in ENDPOINTS:
            return error_response(404, "Not Found")
        if call.route == "commits" and call.repo.empty_git:
            return error_response(409, "Git Repository is empty.")
        return page(call, listed(call))


def _route(rest: list[str]) -> str:
    """The endpoint a repo path (after ``/repos/o/r/``) asks for, or "other"."""
    if len(rest) == 1 and rest[0] in ("pulls", "issues", "commits", "releases"):
        return rest[0]
    if len(rest) == 2 and rest[1] == "comments" and rest[0] in ("issues", "pulls"):
        return "issue_comments" if rest[0] == "issues" else "review_comments"
    return "other"


def listed(call: Call, *, ignore: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The items of ``call``'s endpoint as GitHub lists them: narrowed by ``since`` (and
    ``until`` for commits; both inclusive), in the order asked for (commits newest committed
    first, releases newest created first). ``ignore``: query parameters to act as if unsent
    (a server that disregards ``since``)."""
    assert call.repo is not None
    query = {k: v for k, v in call.request.query.items() if k not in ignore}
    items = list(call.repo.items(call.route))
    if call.route == "commits":
        since, until = _query_time(query, "since"), _query_time(query, "until")
        items = [i for i in items if _between(at(i, "commit.committer.date"), since, until)]
        order = {id(item): n for n, item in enumerate(items)}
        items.sort(key=lambda i: (_text(i, "commit.committer.date"), order[id(i)]), reverse=True)
        return items
    if call.route == "releases":
        items.sort(key=lambda i: (str(i.get("created_at", "")), _number(i.get("id"))), reverse=True)
        return items
    since = _query_time(query, "since")
    items = [i for i in items if _between(at(i, "updated_at"), since, None)]
    key = "updated_at" if query.get("sort") == "updated" else "created_at"
    items.sort(key=lambda i: (str(i.get(key, "")), _number(i.get("id"))))
    default = "asc" if call.route.endswith("comments") else "desc"
    if query.get("direction", default) == "desc":
        items.reverse()
    return items


def _query_time(query: Mapping[str, str], name: str) -> datetime | None:
    value = query.get(name)
    return None if value is None else at({name: value}, name)


def _between(when: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    """Whether ``when`` is in ``[since, until]``; a time that cannot be read is listed."""
    if when is None:
        return True
    return (since is None or when >= since) and (until is None or when <= until)


def _number(value: object) -> int:
    return value if isinstance(value, int) else -1


def _text(item: dict[str, Any], path: str) -> str:
    value: Any = item
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return str(value or "")


async def _shutdown(runner: web.AppRunner) -> None:
    """Stop serving, then end the handlers still streaming or stalling (hostile ones do)."""
    await runner.cleanup()
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def _full_name_key(repo: dict[str, Any]) -> str:
    return str(repo["full_name"]).lower()


def _core() -> dict[str, int]:
    return {"limit": 5000, "remaining": 4999, "used": 1, "reset": int(time.time()) + 3600}


def _rate_headers() -> dict[str, str]:
    core = _core()
    return {
        "x-ratelimit-limit": str(core["limit"]),
        "x-ratelimit-remaining": str(core["remaining"]),
        "x-ratelimit-used": str(core["used"]),
        "x-ratelimit-reset": str(core["reset"]),
        "x-ratelimit-resource": "core",
    }


def page(call: Call, items: list[Any]) -> web.StreamResponse:
    """Page ``items`` by ``page``/``per_page``, with a GitHub-shaped Link header."""
    number, per_page = _position(call)
    last = max(1, -(-len(items) // per_page))
    links = []
    if number < last:
        links.append(f'<{_page_url(call, number + 1)}>; rel="next"')
        links.append(f'<{_page_url(call, last)}>; rel="last"')
    return _json(call, page_items(call, items), link=", ".join(links))


def page_items(call: Call, items: list[Any]) -> list[Any]:
    """The slice of ``items`` that ``page`` serves for ``call``."""
    number, per_page = _position(call)
    return items[(number - 1) * per_page : number * per_page]


def _position(call: Call) -> tuple[int, int]:
    """The page number and size asked for (GitHub's defaults: 1 and 30; at most 100)."""
    query = call.request.query
    per_page = min(int(query.get("per_page", "30")), PER_PAGE_MAX)
    return max(1, int(query.get("page", "1"))), per_page


def _page_url(call: Call, page: int) -> str:
    url = call.request.url.update_query({"page": str(page)})
    return str(url)


def _json(call: Call, payload: Any, *, link: str = "", status: int = 200) -> web.Response:
    body = json.dumps(payload).encode()
    etag = 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {**_rate_headers(), "etag": etag, **call.world.headers}
    if link:
        headers["link"] = link
    if call.request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(status=status, body=body, headers=headers, content_type="application/json")


def error_response(status: int, message: str, **headers: str) -> web.Response:
    body = json.dumps({"message": message, "documentation_url": "https://docs.github.com"})
    return web.Response(status=status, text=body, headers=headers, content_type="application/json")


# --------------------------------------------------------------------------- running the CLI


@dataclass
class Outcome:
    args: tuple[str, ...]
    code: int | None  # None: killed at the time limit
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float


@dataclass
class Result:
    name: str
    item: str
    what: str
    problems: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def held(self) -> bool:
        return not self.problems


class Ctx:
    """What a scenario drives: its world, its folder, the CLI, and the checks."""

    def __init__(self, server: HostileServer, world: World, folder: Path, result: Result):
        self.server, self.world, self.folder, self.result = server, world, folder, result
        self.root = folder / "data"
        self.config_path = folder / "config.yaml"
        self.token = TOKEN
        self.token_env = TOKEN_ENV
        self.outcomes: list[Outcome] = []
        self.write_config()

    @property
    def paths(self) -> DatasetPaths:
        return DatasetPaths(self.root, YEAR, self.world.org)

    def write_config(self, **sections: Any) -> Path:
        config: dict[str, Any] = {
            "target": {"org": self.world.org},
            "year": YEAR,
            "github": {
                "api_url": self.server.url,
                "token_env": self.token_env,
                "timeout_s": 5,
                "retries": 2,
                "retry_initial_s": 0.05,
            },
            "output": {"root": str(self.root)},
            "endpoints": list(ENDPOINTS),
        }
        for key, value in sections.items():
            if isinstance(value, dict):
                config.setdefault(key, {}).update(value)
            else:
                config[key] = value
        self.config_path.write_text(yaml.safe_dump(config))
        return self.config_path

    def cli(
        self,
        *args: str,
        expect: int | None,
        token: str | None = None,
        timeout: float = 90,
        env: dict[str, str] | None = None,
    ) -> Outcome:
        """Run ``gh-collect ARGS -c config`` and check the universal rules on its output."""
        outcome = self.spawn(*args, token=token, env=env).wait(timeout)
        self.outcomes.append(outcome)
        self.result.steps.append(f"{' '.join(args)} -> {outcome.code} {_cost(outcome)}")
        self._check_output(outcome, expect)
        return outcome

    def spawn(
        self, *args: str, token: str | None = None, env: dict[str, str] | None = None
    ) -> Running:
        """Start the CLI in the background; ``reap`` it later."""
        secret = {self.token_env: self.token if token is None else token}
        return Running([*args, "-c", str(self.config_path)], {**secret, **(env or {})})

    def reap(self, running: Running, *, expect: int | None, timeout: float = 90) -> Outcome:
        outcome = running.wait(timeout)
        self.outcomes.append(outcome)
        step = f"{outcome.args[0]} (background) -> {outcome.code} {_cost(outcome)}"
        self.result.steps.append(step)
        self._check_output(outcome, expect)
        return outcome

    def _check_output(self, outcome: Outcome, expect: int | None) -> None:
        step = " ".join(outcome.args[:1])
        if outcome.code is None:
            self.fail(f"{step}: still running after {outcome.seconds:.0f} s (killed)")
        elif expect is not None and outcome.code != expect:
            self.fail(f"{step}: exit {outcome.code}, expected {expect}: {last_line(outcome)}")
        if "Traceback" in outcome.stderr or "Traceback" in outcome.stdout:
            self.fail(f"{step}: a traceback: {last_line(outcome)}")
        errors = [line for line in outcome.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
        if len(errors) > 1 or (outcome.code in (2, 3, 75) and len(errors) != 1):
            self.fail(f"{step}: exit {outcome.code} with {len(errors)} error lines, not one")
        for secret in _secret_parts(self.token):
            if secret in outcome.stdout or secret in outcome.stderr:
                self.fail(f"{step}: the token appears in the output")

    def fail(self, problem: str) -> None:
        self.result.problems.append(problem)

    def expect(self, condition: bool, problem: str) -> None:
        if not condition:
            self.fail(problem)

    def message_matches(self, outcome: Outcome, pattern: str) -> None:
        if not re.search(pattern, outcome.stderr + outcome.stdout, re.IGNORECASE):
            self.fail(f"message {last_line(outcome)!r} does not match /{pattern}/")

    # -- the data ---------------------------------------------------------------------------

    def raw_ids(self, endpoint: str) -> Counter[Any]:
        """The keys of ``endpoint``'s raw records (a commit's ``sha``), each as often as stored."""
        key = endpoints.get(endpoint).key
        folder = self.paths.endpoint_dir(endpoint)
        return Counter(
            key_of(line["data"], key)
            for path in sorted(folder.glob("*.jsonl"))
            for line in read_envelopes(path)
        )

    def expect_raw_exact(self, endpoint: str, truth: Counter[Any] | None = None) -> None:
        got = self.raw_ids(endpoint)
        want = self.world.truth(endpoint) if truth is None else truth
        missing, extra = want - got, got - want
        if missing or extra:
            self.fail(
                f"raw {endpoint}: {sum(missing.values())} missing, {sum(extra.values())} extra"
                f" ({_sample(missing + extra)})"
            )

    def curated_ids(self, endpoint: str) -> Counter[Any]:
        """The keys of ``endpoint``'s curated rows, each as often as it is a row."""
        import pyarrow.dataset as ds

        key = endpoints.get(endpoint).key
        folder = self.paths.curated_endpoint_dir(endpoint)
        if not folder.exists():
            return Counter()
        table = ds.dataset(folder, format="parquet").to_table(columns=[key])
        return Counter(table.column(key).to_pylist())

    def expect_curated_exact(self, endpoint: str, truth: Counter[Any] | None = None) -> None:
        """One curated row per key of ``truth`` (default: the world's), no other."""
        got = self.curated_ids(endpoint)
        want = Counter(set(self.world.truth(endpoint) if truth is None else truth))
        if got != want:
            self.fail(
                f"curated {endpoint}: {sum(got.values())} rows, expected {len(want)}"
                f" ({_sample((got - want) + (want - got))})"
            )

    def expect_exact(self, *names: str, but: tuple[str, ...] = ()) -> None:
        """Raw and curated exact for ``names`` (default: every endpoint), except ``but``."""
        for endpoint in names or ENDPOINTS:
            if endpoint not in but:
                self.expect_raw_exact(endpoint)
                self.expect_curated_exact(endpoint)

    def curated_column(self, endpoint: str, column: str) -> dict[Any, Any]:
        """``column`` of ``endpoint``'s curated rows, by the endpoint's key."""
        import pyarrow.dataset as ds

        key = endpoints.get(endpoint).key
        folder = self.paths.curated_endpoint_dir(endpoint)
        if not folder.exists():
            return {}
        table = ds.dataset(folder, format="parquet").to_table(columns=[key, column])
        keys, values = table.column(key).to_pylist(), table.column(column).to_pylist()
        return dict(zip(keys, values, strict=True))

    def manifest(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.paths.manifest.read_text()))
        except (OSError, ValueError):
            return {}

    def export_counts(self, kind: str) -> dict[str, Any]:
        """The manifest's ``export.<kind>`` (``untyped``, ``dropped``): per endpoint."""
        counts = self.manifest().get("export", {}).get(kind)
        return dict(counts) if isinstance(counts, dict) else {}

    def unit_statuses(self) -> dict[tuple[str, str], str]:
        """(repo full name, endpoint) -> the unit's status in the checkpoint."""
        state = read_checkpoint(self.paths.checkpoint)
        return {
            (name, unit): progress.status.value
            for name, repo in state.repos.items()
            for unit, progress in repo.units.items()
        }

    def unfinished_units(self) -> list[tuple[str, str]]:
        return sorted(key for key, status in self.unit_statuses().items() if status != "complete")

    def finish(self) -> None:
        """The rules every scenario ends with: checkpoint readable, token in no file."""
        if self.paths.checkpoint.is_file():
            try:
                read_checkpoint(self.paths.checkpoint)
            except GhCollectError as exc:
                self.fail(f"checkpoint unreadable afterwards: {exc}")
        for path in _files(self.folder):
            data = path.read_bytes()
            if any(secret.encode() in data for secret in _secret_parts(self.token)):
                self.fail(f"the token is written in {path.relative_to(self.folder)}")


def _sample(keys: Counter[Any]) -> str:
    shown = ", ".join(repr(key) for key in list(keys)[:3])
    return shown + (", ..." if len(keys) > 3 else "")


def _cost(outcome: Outcome) -> str:
    return f"({outcome.seconds:.1f} s, {outcome.max_rss_mb:.0f} MB)"


def _secret_parts(token: str) -> list[str]:
    return [part for part in token.split() if len(part) >= 8]


def _files(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


def last_line(outcome: Outcome) -> str:
    lines = (outcome.stderr or outcome.stdout).strip().splitlines()
    return lines[-1][:300] if lines else ""


class Running:
    """The real CLI in a subprocess (its own session, so a kill reaches all of it)."""

    def __init__(self, args: list[str], env_extra: dict[str, str]) -> None:
        import tempfile

        env = {k: v for k, v in os.environ.items() if not k.startswith(("GH_", "GITHUB_"))}
        env.update(env_extra)
        self.args = tuple(args)
        self.started = time.monotonic()
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in wait()
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gh_collect", *args],
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )

    def signal(self, signum: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)

    def wait(self, timeout: float) -> Outcome:
        """Reap it (its own peak RSS from wait4); killed when still running after ``timeout``."""
        code, rss_kb = _wait(self.proc, self.started + timeout)
        outputs = []
        for handle in (self._out, self._err):
            handle.seek(0)
            outputs.append(handle.read().decode(errors="replace"))
            handle.close()
        seconds = time.monotonic() - self.started
        return Outcome(self.args, code, outputs[0], outputs[1], seconds, rss_kb / 1024)


def run_cli(args: list[str], env_extra: dict[str, str], timeout: float) -> Outcome:
    return Running(args, env_extra).wait(timeout)


def _wait(proc: subprocess.Popen[bytes], deadline: float) -> tuple[int | None, int]:
    """Exit code (None: killed at ``deadline``) and peak RSS in kB.

    The peak is the process's own high-water mark (``VmHWM``, monotonic, fresh at exec),
    read while it runs: ``wait4``'s ``ru_maxrss`` would count the parent's memory at fork.
    """
    peak = 0
    while True:
        peak = max(peak, _high_water_kb(proc.pid))
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = code = os.waitstatus_to_exitcode(status)
            return (code if code >= 0 else 128 - code), peak
        if time.monotonic() > deadline:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            _, status, _ = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            return None, peak
        time.sleep(0.02)


def _high_water_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


# --------------------------------------------------------------------------- scenarios

Drive = Callable[[Ctx], None]
Build = Callable[[World], Drive]  # fills the world, returns the steps to drive


@dataclass(frozen=True)
class Scenario:
    name: str  # also the org name that selects it on the server
    item: str  # the issue's case number
    what: str
    build: Build


SCENARIOS: list[Scenario] = []


def scenario(item: str, what: str) -> Callable[[Build], Build]:
    """Register ``build(world) -> drive``; the function's name, dashed, is the org name."""

    def register(build: Build) -> Build:
        SCENARIOS.append(Scenario(build.__name__.replace("_", "-"), item, what, build))
        return build

    return register


def run_scenario(server: HostileServer, spec: Scenario, folder: Path) -> Result:
    """Build the scenario's world on ``server``, drive it in ``folder``, check the end state."""
    started = time.monotonic()
    result = Result(spec.name, spec.item, spec.what)
    world = server.world(spec.name)
    drive = spec.build(world)
    folder.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(server, world, folder, result)
    try:
        drive(ctx)
        ctx.finish()
    except Exception as exc:  # a broken scenario is a failed scenario, with its reason
        result.problems.append(f"scenario error: {type(exc).__name__}: {exc}")
    result.seconds = time.monotonic() - started
    return result


def render(results: list[Result]) -> str:
    rows = ["| scenario | case | what | steps (exit codes) | s | held | problems |"]
    rows.append("|---|---|---|---|---|---|---|")
    for r in results:
        held = "yes" if r.held else "NO"
        cells = [r.name, r.item, r.what, "; ".join(r.steps), f"{r.seconds:.1f}", held]
        rows.append("| " + " | ".join([*cells, "; ".join(r.problems)]) + " |")
    return "\n".join(rows)


# The scenarios live in tests/hostile_scenarios.py; importing it fills SCENARIOS.
