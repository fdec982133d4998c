"""The repo-wide activity lists (issue 14): a repo's ``/issues/comments``,
``/pulls/comments``, ``/commits`` and ``/releases``, answered as GitHub does.

Query parameters are the operations' in GitHub's REST description. Comments: ``sort``
(issue comments ``created``/``updated``; review comments also ``created_at``), ``direction``
(``asc``/``desc``), ``since`` (updated at or after), ``per_page``, ``page``. Without ``sort``
both lists are in ascending id order (the description's default) and ``direction`` is
ignored (but validated); with ``sort`` and no ``direction`` they are descending (GitHub's
usual default; the description gives none). Commits: ``sha`` (the default branch, or a
commit's sha or a prefix of 7 or more: that commit and what precedes it; else 404),
``path``, ``author``, ``committer`` (a login or an email), ``since`` and ``until`` on the
committer date, both inclusive, newest first; 409 "Git Repository is empty." for a repo
without git data. Releases: ``per_page``, ``page``, newest
created first, drafts never listed. An enum value outside its list is 422 Validation
Failed, as for pulls and issues; a ``since``/``until`` that is not ISO 8601 is 422 for
comments (as for issues) and 400 for commits (the description's only client error there).

Everything else comes from the shared machinery, as for pulls and issues: repo resolution
(404, 301, private), page numbers and Link headers in the ``/repositories/{id}`` form, weak
ETags and free 304s, faults, limits and slow pages (``routes``: faultable routes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from multidict import MultiDictProxy

from gh_collect.simulator.model import (
    API_PLACEHOLDER,
    Entry,
    RepoActivity,
    RepoData,
    iso,
    parse_time,
)
from gh_collect.simulator.server import owners
from gh_collect.simulator.server.config import DOCS, SimulatorConfig
from gh_collect.simulator.server.paging import _add_link, _Page
from gh_collect.simulator.server.rendering import _Answer, _error, _invalid, _Reply
from gh_collect.simulator.server.routes import _Call

EMPTY_REPOSITORY = "Git Repository is empty."
PATHS = {
    "issue_comments": "issues/comments",
    "review_comments": "pulls/comments",
    "commits": "commits",
    "releases": "releases",
}
"""Each list's path under a repo, in both its ``/repos/{owner}/{repo}`` and
``/repositories/{id}`` forms."""
_RESOURCES = {"issue_comments": "IssueComment", "review_comments": "PullRequestReviewComment"}
_SORTS = {
    "issue_comments": ("created", "updated"),
    "review_comments": ("created", "updated", "created_at"),
}
_COMMITS_DOCS = f"{DOCS}/commits/commits#list-commits"

Resolve = Callable[[_Call], RepoData]
ListReply = Callable[[_Call, Sequence[tuple[bytes, ...]]], _Reply]


class ActivityAnswers:
    """The answers of the four lists (``handlers``), with their filtered lists cached until
    the model changes (``forget``)."""

    def __init__(self, cfg: SimulatorConfig, resolve: Resolve, reply: ListReply) -> None:
        self._cfg, self._resolve, self._reply = cfg, resolve, reply
        self._selections: dict[tuple[object, ...], tuple[Entry, ...]] = {}

    def handlers(self) -> dict[str, Callable[[_Call], _Reply]]:
        return {
            "list_issue_comments": self._issue_comments,
            "list_review_comments": self._review_comments,
            "list_commits": self._commits,
            "list_releases": self._releases,
        }

    def forget(self) -> None:
        self._selections.clear()

    def _issue_comments(self, call: _Call) -> _Reply:
        repo = self._resolve(call)
        owners.check_issues(self._cfg, repo)
        return self._comments(call, repo, "issue_comments")

    def _review_comments(self, call: _Call) -> _Reply:
        return self._comments(call, self._resolve(call), "review_comments")

    def _comments(self, call: _Call, repo: RepoData, kind: str) -> _Reply:
        query, resource = call.query, _RESOURCES[kind]
        sort = query.get("sort")
        if sort is not None and sort not in _SORTS[kind]:
            raise _invalid(resource, "sort")
        direction = query.get("direction", "desc")
        if direction not in ("asc", "desc"):
            raise _invalid(resource, "direction")
        since = _time(query, "since", lambda: _invalid(resource, "since"))
        by = "updated" if sort == "updated" else "created"
        entries = self._select(repo, kind, by, since, None)
        return self._page(call, repo, kind, entries, sort is not None and direction == "desc")

    def _commits(self, call: _Call) -> _Reply:
        repo = self._resolve(call)
        activity = repo.activity
        if activity is not None and activity.empty_repository:
            raise _Answer(_error(409, EMPTY_REPOSITORY, _COMMITS_DOCS))
        query = call.query
        since = _time(query, "since", _bad_request)
        until = _time(query, "until", _bad_request)
        entries = self._select(repo, "commits", "created", since, until)
        entries = _up_to(entries, query.get("sha"), repo)
        path = query.get("path")
        if path is not None:
            entries = tuple(e for e in entries if _touches(e, path))
        for role in ("author", "committer"):
            if query.get(role):
                entries = tuple(e for e in entries if _made_by(e, role, query[role]))
        return self._page(call, repo, "commits", entries, descending=True)

    def _releases(self, call: _Call) -> _Reply:
        repo = self._resolve(call)
        entries = self._select(repo, "releases", "created", None, None)
        return self._page(call, repo, "releases", entries, descending=True)

    def _select(
        self, repo: RepoData, kind: str, sort: str, since: str | None, until: str | None
    ) -> tuple[Entry, ...]:
        """Filtered lists are cached: a client walking pages asks the same query each time."""
        if repo.activity is None:
            return ()
        key = (repo.id, kind, sort, since, until)
        selection = self._selections.get(key)
        if selection is None:
            if len(self._selections) > 1024:
                self._selections.clear()
            selection = repo.activity.select(kind, sort, since, until)
            self._selections[key] = selection
        return selection

    def _page(
        self, call: _Call, repo: RepoData, kind: str, entries: Sequence[Entry], descending: bool
    ) -> _Reply:
        """One page by number, and Link headers in the ``/repositories/{id}`` form."""
        page = _Page.by_number(call, len(entries), descending)
        reply = self._reply(call, [entry.fragments for entry in page.take(entries)])
        _add_link(reply, page.links(call, f"/repositories/{repo.id}/{PATHS[kind]}", _no_cursor))
        return reply


def _no_cursor(_rel: str) -> str:
    return ""


def _time(query: MultiDictProxy[str], name: str, refuse: Callable[[], _Answer]) -> str | None:
    """A timestamp parameter as a comparable timestamp string; ``refuse`` when not ISO 8601."""
    text = query.get(name)
    if text is None:
        return None
    try:
        return iso(parse_time(text))
    except ValueError:
        raise refuse() from None


def _bad_request() -> _Answer:
    return _Answer(_error(400, "Bad Request", _COMMITS_DOCS))


def _up_to(entries: tuple[Entry, ...], sha: str | None, repo: RepoData) -> tuple[Entry, ...]:
    """``sha``: the default branch (everything), or a commit (it and what came before it:
    every earlier commit of the simulated branch is its ancestor); 404 for anything else."""
    if sha is None or sha == repo.default_branch or repo.activity is None:
        return entries
    wanted = sha.lower()
    found = None
    if len(wanted) >= 7:
        found = next(
            (c for c in repo.activity.entries("commits") if c.key.startswith(wanted)), None
        )
    if found is None:
        raise _Answer(_error(404, f"No commit found for SHA: {sha}", _COMMITS_DOCS))
    return tuple(entry for entry in entries if entry.id <= found.id)


def _touches(commit: Entry, path: str) -> bool:
    """Whether the commit changed ``path``, a file or a folder holding one."""
    folder = path.strip("/")
    return any(
        name == folder or name.startswith(f"{folder}/")
        for name in RepoActivity.changed_files(commit)
    )


def _made_by(commit: Entry, role: str, who: str) -> bool:
    """Whether ``who`` (a login or an email, case-insensitively) authored or committed it."""
    obj = commit.to_json(API_PLACEHOLDER)
    user = obj[role] or {}
    wanted = who.lower()
    return wanted in (str(user.get("login", "")).lower(), obj["commit"][role]["email"].lower())
