"""``gh-collect report``: the year at a glance, one self-contained HTML page from the dataset.

``build_report`` takes a LIST of datasets (one per organization: SPEC "Several
organizations" gives each org its own dataset folder) and makes one page with a section per
org, so a config with several orgs needs no other code here; ``write_report`` is what the CLI
and the demo call with a config. Figures come from the curated Parquet (``figures``), what
the page says about the data's completeness from ``manifest.json`` (or, before any run has
ended, the checkpoint), so a reader sees how far to trust the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gh_collect import __version__
from gh_collect.config import Config
from gh_collect.durable.paths import DatasetPaths, safe_part
from gh_collect.durable.storage import write_atomic
from gh_collect.errors import CheckpointError, ReportRefused, StorageError
from gh_collect.report.figures import org_figures
from gh_collect.report.manifest import read_manifest
from gh_collect.report.page import render_page
from gh_collect.report.status import read_status
from gh_collect.report.tables import NEEDED, Tables, YearWindow

REPORT_FORMAT = 1


@dataclass(frozen=True)
class YearReport:
    """The figures of every org (``figures``, the JSON the page embeds) and the page."""

    figures: dict[str, Any]
    html: str


def datasets_of(config: Config) -> list[DatasetPaths]:
    """The datasets a config names: one per org (``target.org``, or each of ``target.orgs``)."""
    return [DatasetPaths(config.output.root, config.year, org) for org in config.orgs]


def default_out(config: Config) -> Path:
    return config.output.root / f"report-{config.year}.html"


def write_report(config: Config, out: Path | None = None) -> Path:
    """Render the report of ``config``'s datasets to ``out`` (default ``default_out``)."""
    path = out or default_out(config)
    report = build_report(datasets_of(config), year=config.year, harvested=config.endpoints)
    try:
        write_atomic(path, report.html.encode())
    except OSError as exc:
        raise StorageError(
            f"cannot write the report to {path}: {exc.strerror or exc}; choose another --out"
        ) from None
    return path


def build_report(
    datasets: Sequence[DatasetPaths], *, year: int, harvested: Sequence[str] = ()
) -> YearReport:
    """The page for ``datasets`` (one section each) over ``year``.

    ``harvested``: the endpoints the config collects; one of them without a curated table
    had no rows in the year (zeros on the page), any other is missing (the page says so).
    Raises ReportRefused when no dataset has a curated folder yet.
    """
    if not any(paths.curated_dir.is_dir() for paths in datasets):
        raise ReportRefused(_nothing_to_report(datasets))
    figures = {
        "format_version": REPORT_FORMAT,
        "version": __version__,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "year": year,
        "orgs": [_org(paths, YearWindow(year), harvested) for paths in datasets],
    }
    return YearReport(figures, render_page(figures))


def _nothing_to_report(datasets: Sequence[DatasetPaths]) -> str:
    first = datasets[0]
    if first.raw_dir.is_dir():
        return f"no curated dataset at {first.curated_dir}: run `gh-collect export -c CONFIG`"
    return f"no dataset at {first.raw_dir}: run `gh-collect collect -c CONFIG` first"


def _org(paths: DatasetPaths, window: YearWindow, harvested: Sequence[str]) -> dict[str, Any]:
    tables = Tables(paths)
    manifest = read_manifest(paths.manifest)
    counted = list((manifest or {}).get("counts") or {})
    endpoints = list(dict.fromkeys([*harvested, *counted]))
    head = {"org": paths.target, "slug": safe_part(paths.target)}
    if not paths.curated_dir.is_dir():
        facts = _completeness(paths, tables, manifest, endpoints)
        return {**head, "unavailable": _nothing_to_report([paths]), "completeness": facts}
    sections = org_figures(tables, window, endpoints)
    return {**head, **sections, "completeness": _completeness(paths, tables, manifest, endpoints)}


def _completeness(
    paths: DatasetPaths,
    tables: Tables,
    manifest: dict[str, Any] | None,
    harvested: Sequence[str],
) -> dict[str, Any]:
    """What the page says about how far to trust the figures."""
    present = tables.present()
    export = (manifest or {}).get("export") or {}
    harvest, failed = _harvest(paths, manifest)
    return {
        "tables": {endpoint: tables.rows(endpoint) for endpoint in present},
        "missing_endpoints": [
            e for e in NEEDED if e != "repos" and e not in present and e not in harvested
        ],
        "harvest": harvest,
        "failed": failed,
        "notes": _export_notes(export),
    }


def _harvest(
    paths: DatasetPaths, manifest: dict[str, Any] | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """When the harvest ran and what failed: from the manifest, else the checkpoint."""
    if manifest is not None and "finished_at" in manifest:
        summary = (
            f"last run {manifest.get('started_at')} to {manifest.get('finished_at')}, "
            f"status {manifest.get('status')}, {manifest.get('requests_total', 0):,} API "
            f"requests in all, {manifest.get('repos', 0):,} repos."
        )
        facts = {key: manifest.get(key) for key in ("status", "started_at", "finished_at")}
        return {"summary": summary, **facts}, _failures(manifest.get("failures"))
    try:
        status = read_status(paths)
    except CheckpointError as exc:
        return {"summary": f"no manifest.json, and the checkpoint cannot be read: {exc}"}, []
    if not status["exists"]:
        return {
            "summary": "no manifest.json and no checkpoint: how it was harvested is unknown."
        }, []
    summary = (
        f"no run has finished (no manifest.json); checkpoint last saved "
        f"{status['last_saved_at']}: the figures may be partial."
    )
    return {"summary": summary, "status": "unfinished"}, _failures(status["failures"])


def _failures(listed: Any) -> list[dict[str, Any]]:
    if not isinstance(listed, list):
        return []
    keys = ("repo", "endpoint", "error")
    return [{k: str(f.get(k, "")) for k in keys} for f in listed if isinstance(f, dict)]


def _export_notes(export: dict[str, Any]) -> list[str]:
    notes = []
    for endpoint, columns in (export.get("untyped") or {}).items():
        listed = ", ".join(f"{name} {count:,}" for name, count in columns.items())
        notes.append(f"`{endpoint}`: values of the wrong type, null in the figures ({listed}).")
    for endpoint, dropped in (export.get("dropped") or {}).items():
        notes.append(f"`{endpoint}`: {dropped:,} records without a readable id left out.")
    return notes
