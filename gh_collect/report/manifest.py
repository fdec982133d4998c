"""manifest.json: what a finished run holds, for people and for the next program in line.

Its ``export`` section is the last export's result (``export_section``): per endpoint what
was read and written, plus ``untyped`` (endpoint -> column -> values that could not be typed,
null in the curated column, kept in raw) and ``dropped`` (endpoint -> records without a
readable id, left out of the curated table, kept in raw). ``gh-collect export`` rewrites just
that section (``update_export``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gh_collect.config import Config
from gh_collect.durable.checkpoint import CheckpointState
from gh_collect.durable.paths import DatasetPaths
from gh_collect.durable.storage import write_atomic
from gh_collect.errors import StorageError

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
        # Endpoints the dataset holds that the config no longer lists: kept as last read.
        "not_refreshed": [name for name in state.endpoints if name not in config.endpoints],
        "files": _files(paths),
        "failures": failures,
        "export": export_section(exported),
    }


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Replace manifest.json atomically; any failure is one StorageError line, never half a file."""
    data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise StorageError(
            f"cannot write manifest.json: {exc.strerror or exc} ({path}); free space, or "
            "remove the folder or file in its place, then run again"
        ) from None


def update_export(path: Path, exported: Any) -> None:
    """After ``gh-collect export``: the manifest's ``export`` section describes the new data.

    No manifest yet (no run has ended): nothing to update, the run that ends writes one. One
    that is not a JSON object is replaced by its export section alone.
    """
    if not path.exists() and not path.is_symlink():
        return
    manifest = _read_object(path)
    manifest["export"] = export_section(exported)
    write_manifest(path, manifest)


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest as a JSON object; None when no run has ended (or it is not readable)."""
    if not path.is_file():
        return None
    manifest = _read_object(path)
    return manifest if len(manifest) > 1 else None


def _read_object(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError):  # a folder in its place fails again, clearly, on the write
        return {"format_version": MANIFEST_VERSION}
    return manifest if isinstance(manifest, dict) else {"format_version": MANIFEST_VERSION}


def export_section(exported: Any) -> dict[str, Any] | None:
    """An ExportResult as JSON, with the untyped and dropped counts summed up front."""
    section = _jsonable(exported)
    if not isinstance(section, dict):
        return section  # type: ignore[no-any-return]
    endpoints = section.get("endpoints") or {}
    section["untyped"] = {e: r["untyped"] for e, r in endpoints.items() if r.get("untyped")}
    section["dropped"] = {e: r["unkeyed"] for e, r in endpoints.items() if r.get("unkeyed")}
    return section


def _counts(state: CheckpointState, endpoints: Sequence[str]) -> dict[str, dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        per_repo = state.records_per_repo(endpoint)
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
