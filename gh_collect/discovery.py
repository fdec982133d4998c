"""Discovery: which repos the dataset covers, in a stable order (``--from-repo`` counts on it)."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from gh_collect.client import GitHubClient
from gh_collect.config import TargetSettings
from gh_collect.errors import ConfigError, SkippableApiError
from gh_collect.pagination import LinkPaginator

Repo = dict[str, Any]
_LIST_PARAMS: dict[str, str | int] = {"sort": "full_name", "direction": "asc", "per_page": 100}


async def discover_repos(client: GitHubClient, target: TargetSettings) -> list[Repo]:
    """The org's repos (or a user's, when ``target.org`` is a user), filtered as configured."""
    try:
        repos = await _list_all(client, f"/orgs/{target.org}/repos", {"type": "all"})
    except SkippableApiError as exc:
        if exc.status != 404:
            raise
        repos = await _list_user_repos(client, target.org)
    return select_repos(repos, target)


async def _list_user_repos(client: GitHubClient, name: str) -> list[Repo]:
    try:
        return await _list_all(client, f"/users/{name}/repos", {"type": "owner"})
    except SkippableApiError as exc:
        if exc.status != 404:
            raise
        raise ConfigError(
            f"no organization or user named '{name}' at {client.api_url}: check target.org"
        ) from None


async def _list_all(client: GitHubClient, path: str, params: dict[str, str | int]) -> list[Repo]:
    paginator = LinkPaginator(path, {**params, **_LIST_PARAMS})
    seen: dict[int, Repo] = {}
    while not paginator.finished:
        page = await client.get_page(paginator.current_url, params=paginator.current_params)
        for repo in page.items:
            seen.setdefault(repo["id"], repo)  # a repo created mid-listing may shift a page
        paginator.advance(page.next_url)
    return list(seen.values())


def select_repos(repos: Iterable[Repo], target: TargetSettings) -> list[Repo]:
    allow = {name.lower() for name in target.repos}
    return [repo for repo in repos if _wanted(repo, target, allow)]


def _wanted(repo: Repo, target: TargetSettings, allow: set[str]) -> bool:
    name = str(repo.get("name", ""))
    if allow and name.lower() not in allow and str(repo.get("full_name", "")).lower() not in allow:
        return False
    if any(fnmatchcase(name, pattern) for pattern in target.exclude):
        return False
    if repo.get("fork") and not target.include_forks:
        return False
    return not (repo.get("archived") and not target.include_archived)
