"""Format 1 (gh-collect 0.1.0) to format 2: the same progress, in units.

Format 1 tracked one hard-wired pair per repo, ``repos[r].endpoints[e]``, resumed from a
``next_url``, and kept one rate-limit reading. Format 2 tracks units (``repos[r].units``,
where fan-out units can join), resumes from an opaque ``resume_token`` and keeps a reading
per resource. Nothing else changes: offsets, counts, statuses and validators carry over
exactly, so a migrated dataset resumes where 0.1.0 stopped and collects nothing twice.

The function is pure (a dict in, a dict out); the manager writes the result atomically and
keeps the original bytes as ``checkpoint.v1.json``. Whatever it cannot map it passes on as
is, so format 2's validation names the defect rather than this code crashing on it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["V1_BACKUP_NAME", "migrate_v1"]

V1_BACKUP_NAME = "checkpoint.v1.json"


def migrate_v1(data: dict[str, Any]) -> dict[str, Any]:
    migrated = {key: value for key, value in data.items() if key not in ("rate_limit", "repos")}
    migrated["format_version"] = 2
    rate = data.get("rate_limit")
    if isinstance(rate, dict):
        migrated["rate_limits"] = {str(rate.get("resource") or "core"): rate}
    repos = data.get("repos", {})
    if isinstance(repos, dict):
        migrated["repos"] = {name: _repo(repo) for name, repo in repos.items()}
    else:
        migrated["repos"] = repos
    return migrated


def _repo(repo: Any) -> Any:
    if not isinstance(repo, dict):
        return repo
    units = repo.get("endpoints", {})
    moved = {key: value for key, value in repo.items() if key != "endpoints"}
    moved["units"] = (
        {name: _unit(unit) for name, unit in units.items()} if isinstance(units, dict) else units
    )
    return moved


def _unit(unit: Any) -> Any:
    if not isinstance(unit, dict):
        return unit
    moved = {key: value for key, value in unit.items() if key != "next_url"}
    moved["resume_token"] = unit.get("next_url")
    return moved
