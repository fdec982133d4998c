"""The checkpoint's repo list: adopting discovery's order, naming raw files, ``--from-repo``.

Discovery order is the dataset's order (``--from-repo`` counts on it). Repos known before
but no longer listed stay after the listed ones: their data is on disk, and dropping them
would hide it. Each repo's raw file part is decided once, when it enters (``paths.unique_part``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gh_collect.durable.checkpoint.state import RepoProgress, UnitProgress
from gh_collect.durable.paths import unique_part
from gh_collect.errors import UsageError

__all__ = ["adopt_listing", "repo_index"]


def adopt_listing(
    known: Mapping[str, RepoProgress], listed: Iterable[Mapping[str, Any]], endpoints: list[str]
) -> dict[str, RepoProgress]:
    """The new repo order: ``listed`` first (known repos keep their progress), then the
    known repos no longer listed; every repo gets a unit for each endpoint it lacks."""
    taken = _claim_parts(known.values())
    ordered: dict[str, RepoProgress] = {}
    for item in listed:
        full_name = str(item["full_name"])
        if full_name not in ordered:
            repo = known.get(full_name) or _new_repo(item, taken)
            taken.add(repo.raw_part.lower())
            ordered[full_name] = repo
    for full_name, repo in known.items():
        ordered.setdefault(full_name, repo)
    for repo in ordered.values():
        for endpoint in endpoints:
            repo.units.setdefault(endpoint, UnitProgress())
    return ordered


def repo_index(repos: Sequence[RepoProgress], wanted: str) -> int:
    """Position of ``owner/name`` or bare ``name`` (any case) in discovery order."""
    key = wanted.strip().lower()
    for index, repo in enumerate(repos):
        if key in (repo.full_name.lower(), repo.name.lower()):
            return index
    raise UsageError(_unknown_repo_message(wanted, repos))


def _new_repo(item: Mapping[str, Any], taken: set[str]) -> RepoProgress:
    """A repo entering the checkpoint; its file part is decided here, once."""
    full_name = str(item["full_name"])
    name = str(item.get("name") or full_name.rsplit("/", 1)[-1])
    part = unique_part(name, taken, item.get("id"), full_name)
    return RepoProgress(full_name=full_name, name=name, file_part=part)


def _claim_parts(repos: Iterable[RepoProgress]) -> set[str]:
    """The (lower-cased) file parts of ``repos``, in order. A repo from a checkpoint older
    than ``file_part`` whose derived part an earlier repo already has, and that holds no
    data yet, gets a part of its own now; one holding data keeps it (its bytes are there)."""
    taken: set[str] = set()
    for repo in repos:
        holds = any(unit.holds_data for unit in repo.units.values())
        if repo.file_part is None and repo.raw_part.lower() in taken and not holds:
            repo.file_part = unique_part(repo.name, taken, None, repo.full_name)
        taken.add(repo.raw_part.lower())
    return taken


def _unknown_repo_message(wanted: str, repos: Sequence[RepoProgress]) -> str:
    names = {repo.full_name.lower(): repo.full_name for repo in repos}
    names.update({repo.name.lower(): repo.full_name for repo in repos})
    close = difflib.get_close_matches(wanted.strip().lower(), list(names), n=3, cutoff=0.6)
    suggestions = list(dict.fromkeys(names[match] for match in close))
    hint = f"did you mean {', '.join(suggestions)}?" if suggestions else "pass owner/name"
    return (
        f"--from-repo {wanted!r} is not among the {len(repos)} discovered repos: {hint} "
        "(see `gh-collect status`)"
    )
