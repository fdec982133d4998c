"""Hand-made curated tables for report tests: reviews, comments and releases with known rows.

``reviews`` is not harvested by the demo's REST endpoints; ``issue_comments`` and
``releases`` are, and are replaced here by tables whose rows a test chooses. Each has the
columns the report reads, in the curated layout (``endpoint=<name>/part-00000.parquet``, a
``raw`` column), so a test can show the report's sections light up when the tables appear.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from gh_collect.durable.paths import DatasetPaths
from gh_collect.report.page import FIGURES_ID

TS = pa.timestamp("us", tz="UTC")
TYPES: Mapping[str, pa.DataType] = {
    "id": pa.int64(),
    "number": pa.int64(),
    "pull_number": pa.int64(),
    "prerelease": pa.bool_(),
    **{name: TS for name in ("created_at", "updated_at", "closed_at", "merged_at", "submitted_at")},
    "published_at": TS,
}


def write_table(paths: DatasetPaths, endpoint: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """``rows`` as the endpoint's curated table, with ``id`` and ``raw`` added when absent."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns = {
        name: pa.array([row.get(name) for row in rows], type=TYPES.get(name, pa.string()))
        for name in names
    }
    if "id" not in columns:
        columns["id"] = pa.array(range(1, len(rows) + 1), type=pa.int64())
    columns["raw"] = pa.array([json.dumps(row, default=str) for row in rows], type=pa.string())
    folder = paths.curated_endpoint_dir(endpoint)
    shutil.rmtree(folder, ignore_errors=True)  # replaces a harvested table
    folder.mkdir(parents=True)
    pq.write_table(pa.table(columns), folder / "part-00000.parquet")


def add_later_endpoints(paths: DatasetPaths, seed: int = 1) -> None:
    """Reviews, comments and releases made up from a dataset's own pulls, deterministically."""
    rng = random.Random(seed)
    pulls = ds.dataset(paths.curated_endpoint_dir("pulls")).to_table(
        columns=["repo", "number", "user_login", "created_at"]
    )
    people = ["ana", "bo", "chen", "dependabot[bot]", None]
    reviews, comments, releases = [], [], []
    for pull in sorted(pulls.to_pylist(), key=lambda p: (p["repo"], p["number"])):
        for k in range(rng.randrange(3)):
            when = pull["created_at"] + timedelta(hours=rng.uniform(0.5, 400))
            reviewer = pull["user_login"] if k == 0 and rng.random() < 0.2 else rng.choice(people)
            state = "PENDING" if rng.random() < 0.05 else rng.choice(("APPROVED", "COMMENTED"))
            reviews.append(_review(pull, reviewer, state, when))
        if rng.random() < 0.5:
            when = pull["created_at"] + timedelta(hours=rng.uniform(0.1, 100))
            comments.append(
                {"repo": pull["repo"], "user_login": rng.choice(people), "created_at": when}
            )
    for repo in sorted(set(pulls["repo"].to_pylist()))[:5]:
        for month in range(1, 13, 3):
            published = datetime(2025, month, 3 + len(releases) % 20, 12, tzinfo=UTC)
            releases.append(_release(repo, f"v1.{month}.0", published, month == 10))
    write_table(paths, "reviews", reviews)
    write_table(paths, "issue_comments", comments)
    write_table(paths, "releases", releases)


def _review(pull: Mapping[str, Any], reviewer: str | None, state: str, when: datetime) -> Any:
    return {
        "repo": pull["repo"],
        "pull_number": pull["number"],
        "user_login": reviewer,
        "state": state,
        "submitted_at": None if state == "PENDING" else when,
    }


def _release(repo: str, tag: str, published: datetime, prerelease: bool) -> dict[str, Any]:
    return {
        "repo": repo,
        "tag_name": tag,
        "name": f"Release {tag}",
        "author_login": "github-actions[bot]",
        "created_at": published - timedelta(hours=2),
        "published_at": published,
        "prerelease": prerelease,
    }


def figures_of(html: str) -> Any:
    """The figures a report page embeds (its JSON block)."""
    pattern = rf'<script type="application/json" id="{FIGURES_ID}">(.*?)</script>'
    block = re.search(pattern, html, flags=re.S)
    assert block is not None, "the page embeds no figures"
    return json.loads(block.group(1))
