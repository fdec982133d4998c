"""manifest.json: what a finished run holds, for people and for the next program in line."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gh_collect.checkpoint import CheckpointState
from gh_collect.config import Config
from gh_collect.paths import DatasetPaths
from gh_collect.storage import write_atomic

MANIFEST_VERSION = 1


def build_manifest(
    config: Config,
    paths: DatasetPaths,
    state: CheckpointState,
    started_at: datetime,
    requests: int,
    failures: list[dict[str, Any]],
    exported: Any,
) -> dict[str, Any]:
    finished_at = datetime.now(UTC)
    return {
        "format_version": MANIFEST_VERSION,
        "status": "failed" if failures else "complete",
        "target": config.target.org,
        "year": config.year,
        "config_digest": config.digest,
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": finished_at.isoformat(timespec="seconds"),
        "duration_s": round((finished_at - started_at).total_seconds(), 3),
        "requests_this_run": requests,
        "requests_total": state.requests_made,
        "repos": len(state.repos),
        "counts": _counts(state, config.endpoints),
        "files": _files(paths),
        "failures": failures,
        "export": _jsonable(exported),
    }


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())


def _counts(state: CheckpointState, endpoints: Sequence[str]) -> dict[str, dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        per_repo = {
            name: repo.endpoints[endpoint].records_collected
            for name, repo in state.repos.items()
            if endpoint in repo.endpoints
        }
        counts[endpoint] = {"records": sum(per_repo.values()), "per_repo": per_repo}
    return counts


def _files(paths: DatasetPaths) -> list[dict[str, Any]]:
    files = [paths.repos_file, *sorted(paths.raw_dir.glob("endpoint=*/*.jsonl"))]
    return [
        {"path": str(path.relative_to(paths.raw_dir)), "bytes": path.stat().st_size}
        for path in files
        if path.exists()
    ]


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json.loads(json.dumps(dataclasses.asdict(value), default=str))
    return json.loads(json.dumps(value, default=str))
