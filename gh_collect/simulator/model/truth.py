"""Ground truth: what a correct harvest of one year must hold, computed from the model.

Tests and benchmarks compare a harvest with this. It filters repos the way gh_collect's
target settings do (``select_repos``) and picks objects by the report window ``[start,
end)`` as SPEC's endpoint table keeps them: pulls, issues and both kinds of comments when
created before the end and updated at or after the start; commits by committer date in the
window; releases by ``created_at`` in the window.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from gh_collect.simulator.model.entries import Entry
from gh_collect.simulator.model.records import (
    DEFAULT_ENDPOINTS,
    ENDPOINTS,
    Item,
    RepoData,
    iso,
    year_start,
)


def ground_truth(
    repos: Iterable[RepoData],
    base_url: str,
    year: int,
    endpoints: Iterable[str] = DEFAULT_ENDPOINTS,
    names: Iterable[str] = (),
    exclude: Iterable[str] = (),
    include_forks: bool = False,
    include_archived: bool = True,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """What a correct harvest of ``year`` must hold, per endpoint and discovered name
    (``OrgModel.ground_truth`` documents the rules)."""
    selected = select_repos(repos, names, exclude, include_forks, include_archived)
    low, high = iso(year_start(year)), iso(year_start(year + 1))
    truth: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for endpoint in endpoints:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}: use one of {ENDPOINTS}")
        truth[endpoint] = {
            repo.name: [obj.to_json(base_url) for obj in _window(repo, endpoint, low, high)]
            for repo in selected
            if not repo.vanished
        }
    return truth


def select_repos(
    repos: Iterable[RepoData],
    names: Iterable[str],
    exclude: Iterable[str],
    include_forks: bool,
    include_archived: bool,
) -> list[RepoData]:
    """The target filter, as gh_collect applies it: allowlist by name or owner/name
    (case-insensitive, as GitHub names are), exclude globs on the name, forks, archived."""
    allow, globs = {name.lower() for name in names}, list(exclude)
    return [
        repo
        for repo in repos
        if (not allow or repo.name.lower() in allow or repo.full_name.lower() in allow)
        and not any(fnmatchcase(repo.name, pattern) for pattern in globs)
        and (include_forks or not repo.fork)
        and (include_archived or not repo.archived)
    ]


def _window(repo: RepoData, endpoint: str, low: str, high: str) -> list[Item] | list[Entry]:
    if endpoint in ("pulls", "issues"):
        return _window_items(repo, endpoint, low, high)
    return _window_entries(repo, endpoint, low, high)


def _window_items(repo: RepoData, endpoint: str, low: str, high: str) -> list[Item]:
    source = repo.pulls if endpoint == "pulls" else [i for i in repo.issues if not i.is_pull]
    chosen = [item for item in source if item.created_at < high and item.updated_at >= low]
    return sorted(chosen, key=lambda item: (item.created_at, item.id), reverse=True)


def _window_entries(repo: RepoData, endpoint: str, low: str, high: str) -> list[Entry]:
    """Comments by the items' rule; commits by committer date and releases by creation in
    ``[low, high)``; newest first, as their lists serve them (comments: created desc)."""
    if repo.activity is None:
        return []
    entries = repo.activity.entries(endpoint)
    if endpoint in ("issue_comments", "review_comments"):
        chosen = [e for e in entries if e.created_at < high and e.updated_at >= low]
    else:
        chosen = [e for e in entries if low <= e.created_at < high]
    return chosen[::-1]
