"""Discovery: which repos the dataset covers, in a stable order (``--from-repo`` counts on it)."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from gh_collect import codec
from gh_collect.client import GitHubClient
from gh_collect.conditional import ValidatorStore, request_key
from gh_collect.config import TargetSettings
from gh_collect.errors import ConfigError, SkippableApiError
from gh_collect.pagination import LinkPaginator, list_body

Repo = dict[str, Any]
_LIST_PARAMS: dict[str, str | int] = {"sort": "full_name", "direction": "asc", "per_page": 100}


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
        return cls({key: repo.get(key) for key in _KEPT_FIELDS}, codec.dumps_line(repo)[:-1])


async def discover_repos(
    client: GitHubClient,
    target: TargetSettings,
    validators: ValidatorStore | None = None,
    conditional: bool = False,
) -> list[Listed] | None:
    """The org's repos (or a user's, when ``target.org`` is a user), filtered as configured.

    With ``conditional``, pages are asked "changed since?" with their stored ETags; None
    means the listing did not change at all (and cost no budget).
    """
    lister = _Lister(client, validators)
    try:
        repos = await lister.list_all(f"/orgs/{target.org}/repos", {"type": "all"}, conditional)
    except SkippableApiError as exc:
        if exc.status != 404:
            raise
        repos = await _list_user_repos(lister, target.org, conditional)
    if repos is None:
        return None
    allow = {name.lower() for name in target.repos}
    return [repo for repo in repos if _wanted(repo.fields, target, allow)]


async def _list_user_repos(lister: _Lister, name: str, conditional: bool) -> list[Listed] | None:
    try:
        return await lister.list_all(f"/users/{name}/repos", {"type": "owner"}, conditional)
    except SkippableApiError as exc:
        if exc.status != 404:
            raise
        raise ConfigError(
            f"no organization or user named '{name}' at {lister.client.api_url}: check target.org"
        ) from None


class _Lister:
    def __init__(self, client: GitHubClient, validators: ValidatorStore | None) -> None:
        self.client, self.validators = client, validators

    async def list_all(
        self, path: str, params: dict[str, str | int], conditional: bool
    ) -> list[Listed] | None:
        repos, unchanged = await self._walk(path, {**params, **_LIST_PARAMS}, conditional)
        if conditional and not repos:
            return None if unchanged else []
        if unchanged:  # some pages changed, some did not: the full list needs every page
            repos, _ = await self._walk(path, {**params, **_LIST_PARAMS}, conditional=False)
        return repos

    async def _walk(
        self, path: str, params: dict[str, str | int], conditional: bool
    ) -> tuple[list[Listed], int]:
        paginator = LinkPaginator(path, params)
        seen: dict[int, Listed] = {}
        unchanged = 0
        while not paginator.finished:
            key = request_key(paginator.current_url, paginator.current_params)
            stored = self.validators.get(key) if self.validators and conditional else None
            page = await self.client.get_page(
                paginator.current_url,
                params=paginator.current_params,
                etag=stored.etag if stored else None,
            )
            if page.status == 304 and stored is not None:
                unchanged += 1
                paginator.advance(stored.next_url)
                continue
            for repo in list_body(page.data, page.url):
                if repo["id"] not in seen:  # a repo created mid-listing may shift a page
                    seen[repo["id"]] = Listed.of(repo)
            if self.validators is not None:
                self.validators.remember(key, page.etag, page.last_modified, page.next_url)
            paginator.advance(page.next_url)
        return list(seen.values()), unchanged


def _wanted(repo: Repo, target: TargetSettings, allow: set[str]) -> bool:
    name = str(repo.get("name", ""))
    if allow and name.lower() not in allow and str(repo.get("full_name", "")).lower() not in allow:
        return False
    if any(fnmatchcase(name, pattern) for pattern in target.exclude):
        return False
    if repo.get("fork") and not target.include_forks:
        return False
    return not (repo.get("archived") and not target.include_archived)
