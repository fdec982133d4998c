"""What readers see of a fleet's dataset: committed parts only, and the curated export.

``committed_units`` finds each unit's newest commit record; ``read_committed`` yields the
raw lines of an endpoint from the parts those records list (a part no record lists, from an
attempt killed before its commit or one that lost its race, is never read). ``export`` lays
the committed raw data out in a scratch folder in the SPEC's local layout, runs the usual
export (``curated.export``) on it and uploads the curated Parquet next to the raw data.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gh_collect.curated.export import ExportResult, export_dataset
from gh_collect.durable.paths import DatasetPaths
from gh_collect.fleet.commits import CommitRecord, FleetLayout, _parse, read_parts, sweep_orphans
from gh_collect.fleet.plan import load_plan
from gh_collect.fleet.store import ObjectStore

__all__ = ["committed_units", "export_fleet", "read_committed"]


def committed_units(store: ObjectStore, layout: FleetLayout) -> dict[str, CommitRecord]:
    """Unit folder (``endpoint=E/repo=R[/parent=P]``) -> its newest commit record."""
    newest: dict[str, str] = {}
    prefix = f"{layout.raw}/_commits/"
    for key in store.list(prefix):
        if key.endswith(".json"):
            folder = key[len(prefix) :].rpartition("/")[0]
            newest[folder] = max(newest.get(folder, ""), key)
    return {folder: _parse(key, store.get(key)) for folder, key in sorted(newest.items())}


def read_committed(
    store: ObjectStore, layout: FleetLayout, endpoint: str
) -> Iterator[dict[str, Any]]:
    """The committed raw records (envelopes) of ``endpoint``, unit by unit."""
    for folder, record in committed_units(store, layout).items():
        if folder.startswith(f"endpoint={endpoint}/"):
            for data in read_parts(store, record):
                for line in data.splitlines():
                    if line.strip():
                        yield json.loads(line)


def export_fleet(store: ObjectStore, layout: FleetLayout, endpoints: list[str]) -> ExportResult:
    """The curated dataset from the committed parts, uploaded to ``curated/`` in the store;
    curated files of an earlier export that this one did not write are deleted after."""
    sweep_orphans(store, layout)
    with tempfile.TemporaryDirectory(prefix="gh-collect-export-") as folder:
        paths = DatasetPaths(Path(folder), layout.year, layout.target)
        _lay_out(store, layout, paths)
        result = export_dataset(paths, ["repos", *endpoints])
        _upload(store, layout, paths.curated_dir)
    return result


def _lay_out(store: ObjectStore, layout: FleetLayout, paths: DatasetPaths) -> None:
    """Committed parts as the SPEC's raw files (``endpoint=E/repo=R.jsonl``), and repos.jsonl."""
    plan = load_plan(store, layout)
    paths.raw_dir.mkdir(parents=True, exist_ok=True)
    if plan is not None:
        paths.repos_file.write_bytes(store.get(plan.repos_part) or b"")
    for folder, record in committed_units(store, layout).items():
        target = paths.raw_dir.joinpath(*folder.split("/"))
        target = target.with_name(target.name + ".jsonl")
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            for data in read_parts(store, record):
                out.write(data)


def _upload(store: ObjectStore, layout: FleetLayout, curated: Path) -> None:
    written = set()
    for path in sorted(p for p in curated.rglob("*") if p.is_file()):
        key = f"{layout.curated}/{path.relative_to(curated).as_posix()}"
        store.put(key, path.read_bytes())
        written.add(key)
    for key in store.list(f"{layout.curated}/"):
        if key not in written:
            store.delete(key)
