"""The repo listing: which repos the dataset covers, in a stable order (``--from-repo``).

The listing is walked one page per call (``RepoListing.next_page``) from a ``ListingPosition``
the run checkpoints after every page, so a run stopped mid-discovery (``--max-requests``, a
signal, a crash) continues from the next page: every run makes progress.

A refresh asks each page "changed since?" with its stored ETag, except a full last page: its
ETag covers its body, not its Link header, so a 304 would hide a page added behind it
(exactly 100 repos, then a 101st). That page is read in full; if its body and its ``next``
are as stored, the listing did not change. A last page that is not full cannot hide one: a
new repo would land on it and change its body (``Validator.settled``). Once a page changed
after unchanged ones, the walk starts over in full: the unchanged pages' repos were never
read.

Every repo object is checked before it is used: a listing we cannot read whole stops
discovery with one line, since dropping one silently would drop that repo's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from gh_collect import codec, endpoints
from gh_collect.config import TargetSettings
from gh_collect.durable.envelope import read_envelopes, read_lines
from gh_collect.durable.validators import ValidatorStore
from gh_collect.endpoints import path_segment
from gh_collect.errors import (
    ApiError,
    BadCredentialsError,
    ConfigError,
    PaginationLoop,
    RetriableApiError,
    SkippableApiError,
)
from gh_collect.github.client import GitHubClient
from gh_collect.github.pagination import PER_PAGE, LinkPaginator, json_type, list_body
from gh_collect.harvest.walk import PageWalk, WalkPage

Repo = dict[str, Any]
OWN_REPOS = "/user/repos"  # a user target listed with that user's token: private repos too
_LIST_PARAMS: dict[str, str | int] = {"sort": "full_name", "direction": "asc", "per_page": PER_PAGE}


_KEPT_FIELDS = ("id", "name", "full_name", "fork", "archived")


@dataclass(frozen=True)
class Listed:
    """One discovered repo: the fields selection and the checkpoint use, and the object as
    GitHub served it, as JSON text, for repos.jsonl.

    A listed repo object is ~5 kB of JSON but ~10 kB as a dict; keeping text halves what a
    5,000-repo org holds in memory until repos.jsonl is written.
    """

    fields: Repo
    text: bytes

    @classmethod
    def of(cls, repo: Repo) -> Listed:
        switches = (spec.enabled_by for spec in endpoints.declared() if spec.enabled_by)
        kept = {key: repo.get(key) for key in (*_KEPT_FIELDS, *switches)}
        return cls(kept, codec.dumps_line(repo)[:-1])


@dataclass
class ListingPosition:
    """Where a walk over the listing stands; the checkpoint keeps it between runs."""

    path: str | None = None  # the first page's path that answered (org or user listing)
    next_url: str | None = None  # the next page as Link gave it; None: the first page
    pages: int = 0  # pages walked (read or unchanged)
    conditional: bool = False  # asking "changed since?": a refresh, nothing changed so far
    unchanged: int = 0  # pages found unchanged in a conditional walk

    @property
    def finished(self) -> bool:
        return self.pages > 0 and self.next_url is None


@dataclass(frozen=True)
class ListingPage:
    """One step of the walk: the wanted repos read on page ``number`` (none if unchanged)."""

    number: int
    repos: list[Listed]


class RepoListing:
    """A resumable walk over the org's (or, failing that, the user's) repos."""

    def __init__(
        self,
        client: GitHubClient,
        target: TargetSettings,
        validators: ValidatorStore | None = None,
        position: ListingPosition | None = None,
    ) -> None:
        self.client, self.target, self.validators = client, target, validators
        self.position = position or ListingPosition()
        self._walk: PageWalk | None = None
        self._allow = {name.lower() for name in target.repos}

    @property
    def unchanged(self) -> bool:
        """The walk ended and no page had changed: the stored listing is still current."""
        return self.position.finished and self.position.conditional

    async def next_page(self) -> ListingPage | None:
        """Walk one page and update ``position``; None once the walk is finished."""
        position = self.position
        if position.finished:
            return None
        try:
            step = await self._step()
        except PaginationLoop as exc:
            raise ApiError(
                f"pagination loop in the repo listing at {exc.url}: the server linked "
                "back to a page already read; retry later",
                url=exc.url,
            ) from None
        if step.unchanged:
            return self._advance(step.next_token, [])
        if position.conditional and position.unchanged:
            self.position = ListingPosition(path=position.path)
            self._walk = None
            return ListingPage(0, [])  # unread pages before this one: read it all again
        position.conditional = False
        if self._walk is not None:
            self._walk.conditional = False
        repos = [r for r in step.items or [] if self._wanted(r.fields)]
        return self._advance(step.next_token, repos)

    async def _step(self) -> WalkPage:
        """One page of the walk; the first page falls back from the org to the user."""
        if self._walk is not None or self.position.path is not None:
            step = await self._listing_walk().next()
            assert step is not None  # position.finished was checked
            return step
        self.position.path = f"/orgs/{path_segment(self.target.org)}/repos"
        try:
            return await self._step()
        except SkippableApiError as exc:
            if exc.status != 404:
                raise
        self.position.path, self._walk = await self._user_listing(), None
        try:
            return await self._step()
        except SkippableApiError as exc:
            if exc.status != 404:
                raise
            self.position.path, self._walk = None, None
            raise ConfigError(
                f"no organization or user named '{self.target.org}' at "
                f"{self.client.api_url}: check target.org"
            ) from None

    async def _user_listing(self) -> str:
        """A user's repos: all they own (private too) with their own token, else the public
        ones. One ``GET /user``, only once the org listing said 404, tells the two apart
        (logins compared ignoring case, as GitHub does); a token that cannot say who it is
        (none, an app's) gets the public listing."""
        try:
            me = await self.client.get_json("/user")
        except (SkippableApiError, BadCredentialsError):
            me = None
        login = me.get("login") if isinstance(me, dict) else None
        if isinstance(login, str) and login.lower() == self.target.org.lower():
            return OWN_REPOS
        return f"/users/{path_segment(self.target.org)}/repos"

    def _listing_walk(self) -> PageWalk:
        if self._walk is None:
            position = self.position
            assert position.path is not None
            if position.next_url is not None:
                pages = LinkPaginator(position.next_url, start_page=position.pages + 1)
            else:
                pages = LinkPaginator(position.path, _listing_params(position.path))
            self._walk = PageWalk(
                self.client,
                pages,
                validators=self.validators,
                conditional=position.conditional,
                items=repo_objects,
            )
        return self._walk

    def _advance(self, next_url: str | None, repos: list[Listed]) -> ListingPage:
        position = self.position
        if position.conditional:  # a changed page ended the conditional walk before this
            position.unchanged += 1
        position.pages += 1
        position.next_url = next_url
        return ListingPage(position.pages, repos)

    def _wanted(self, repo: Repo) -> bool:
        return _wanted(repo, self.target, self._allow)


def _listing_params(path: str) -> dict[str, str | int]:
    if path == OWN_REPOS:  # ``type`` with ``affiliation`` is a 422 on GitHub
        return {"affiliation": "owner", **_LIST_PARAMS}
    kind = "owner" if path.startswith("/users/") else "all"
    return {"type": kind, **_LIST_PARAMS}


@dataclass(frozen=True)
class ListingHints:
    """What repos.jsonl says before a phase sends anything: each repo's size
    (``open_issues_count``, for big repos first) and the (repo, endpoint) pairs its listing
    turns off (``Endpoint.enabled_by``: the issues of a repo with ``has_issues: false``)."""

    sizes: dict[str, int] = field(default_factory=dict)
    turned_off: frozenset[tuple[str, str]] = frozenset()


def listing_hints(repos_file: Path, phases: Sequence[str]) -> ListingHints:
    """The hints of ``repos_file`` for ``phases``; none if it cannot be read (then every
    unit is walked, and a 410 still means zero issues)."""
    declared = [endpoints.get(name) for name in phases]
    sizes: dict[str, int] = {}
    off: set[tuple[str, str]] = set()
    try:
        for line in read_envelopes(repos_file):
            full_name, repo = str(line["repo"]), line["data"]
            sizes[full_name] = int(repo.get("open_issues_count") or 0)
            off.update((full_name, spec.name) for spec in declared if spec.turned_off(repo))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return ListingHints()
    return ListingHints(sizes, frozenset(off))


def repo_objects(data: Any, url: str) -> list[Listed]:
    """The repos of one listing page, each checked; a malformed one is a one-line error."""
    repos = []
    for index, item in enumerate(list_body(data, url), 1):
        problem = _repo_problem(item)
        if problem is not None:
            raise RetriableApiError(
                f"malformed repo listing from GET {url}: item {index} {problem}; discovery "
                "stopped (a listing must be read whole): retry later",
                url=url,
            )
        repos.append(Listed.of(item))
    return repos


def _repo_problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return f"is a JSON {json_type(item)}, not a repo object"
    ident = item.get("id")
    if not isinstance(ident, int) or isinstance(ident, bool):
        return "has no integer 'id'"
    full_name = item.get("full_name")
    if not isinstance(full_name, str) or not all(full_name.partition("/")[::2]):
        return "has no 'full_name' of the form owner/name"
    name = item.get("name")
    if not isinstance(name, str) or not name:
        return "has no 'name'"
    return None


async def discover_repos(
    client: GitHubClient,
    target: TargetSettings,
    validators: ValidatorStore | None = None,
    conditional: bool = False,
) -> list[Listed] | None:
    """The whole listing in one go (dry runs): the wanted repos, each once, in order.

    With ``conditional``, None means the listing did not change at all.
    """
    listing = RepoListing(client, target, validators, ListingPosition(conditional=conditional))
    seen: dict[int, Listed] = {}
    while (page := await listing.next_page()) is not None:
        if page.number == 0:
            seen.clear()
        for repo in page.repos:  # a repo created mid-listing may shift a page
            seen.setdefault(repo.fields["id"], repo)
    return None if listing.unchanged else list(seen.values())


def read_listing(path: Path, offset: int) -> tuple[list[bytes], list[Repo]]:
    """The envelope lines and kept fields of the repos a walk saved, each repo once."""
    lines: list[bytes] = []
    repos: list[Repo] = []
    seen: set[Any] = set()
    if offset == 0:
        return lines, repos
    for line, fields in read_lines(path, offset):
        repo = fields["data"]
        if repo["id"] not in seen:
            seen.add(repo["id"])
            lines.append(line)
            repos.append({key: repo.get(key) for key in _KEPT_FIELDS})
    return lines, repos


def _wanted(repo: Repo, target: TargetSettings, allow: set[str]) -> bool:
    name = str(repo.get("name", ""))
    if allow and name.lower() not in allow and str(repo.get("full_name", "")).lower() not in allow:
        return False
    if any(fnmatchcase(name, pattern) for pattern in target.exclude):
        return False
    if repo.get("fork") and not target.include_forks:
        return False
    return not (repo.get("archived") and not target.include_archived)
