"""Export: raw JSONL to deduplicated Hive-partitioned Parquet, read back by three engines."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from gh_collect import endpoints
from gh_collect.curated import export, parts, publish
from gh_collect.curated.columns import FETCHED_AT, ID, TIMES, col
from gh_collect.curated.columns import REPO as REPO_COLUMN
from gh_collect.curated.export import ExportLimits, export_dataset
from gh_collect.curated.schemas import curated_schema
from gh_collect.durable.envelope import parse_envelope
from gh_collect.durable.paths import DatasetPaths
from gh_collect.endpoints import Endpoint
from gh_collect.errors import DataError, ExportRefused

ORG = "octokit-fixture-org"
FIXTURE = Path(__file__).parent / "fixtures" / "octokit" / "paginate-issues"
UTC_US = pa.timestamp("us", tz="UTC")
# Tiny limits: many buckets, spill chunks and id ranges, small row groups and files.
TINY = ExportLimits(
    flush_bytes=4_000,
    bucket_bytes=3_000,
    row_group_rows=3,
    row_group_bytes=20_000,
    rows_per_file=5,
    workers=1,
)


# --- realistic raw objects ---------------------------------------------------------------


def _fixture_issue() -> dict[str, Any]:
    pages = json.loads((FIXTURE / "normalized-fixture.json").read_text())
    issue: dict[str, Any] = pages[0]["response"][0]
    return issue


ISSUE = _fixture_issue()
REPO = {  # get-repository fixture, trimmed of its URL templates
    "id": 1000,
    "node_id": "MDA6RW50aXR5MQ==",
    "name": "hello-world",
    "full_name": f"{ORG}/hello-world",
    "private": False,
    "owner": copy.deepcopy(ISSUE["user"]) | {"login": ORG, "type": "Organization"},
    "html_url": f"https://github.com/{ORG}/hello-world",
    "description": None,
    "fork": False,
    "created_at": "2017-10-10T16:00:00Z",
    "updated_at": "2017-10-10T16:00:00Z",
    "pushed_at": "2017-10-10T16:00:00Z",
    "stargazers_count": 42,
    "language": None,
    "archived": False,
    "disabled": False,
    "topics": ["fixtures", "hello", "hello-world"],
    "visibility": "public",
    "default_branch": "master",
}


def issue(number: int, updated: str = "2025-03-01T10:00:00Z", **fields: Any) -> dict[str, Any]:
    data = copy.deepcopy(ISSUE)
    data.update(id=900_000 + number, number=number, title=f"Issue {number}", updated_at=updated)
    data["created_at"] = "2025-01-15T09:30:00Z"
    return data | fields


def pull(
    number: int,
    repo: str = "hello-world",
    updated: str | None = "2025-03-01T10:00:00Z",
    merged: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A pull-request-simple object: head/base with ref, sha, label, repo."""
    repo_obj = REPO | {"name": repo, "full_name": f"{ORG}/{repo}"}
    base = f"https://api.github.com/repos/{ORG}/{repo}/pulls/{number}"
    data = {
        "url": base,
        "id": 500_000 + number,
        "node_id": f"PR_{number}",
        "html_url": f"https://github.com/{ORG}/{repo}/pull/{number}",
        "number": number,
        "state": "closed" if merged else "open",
        "locked": False,
        "title": f"Pull {number}",
        "user": copy.deepcopy(ISSUE["user"]),
        "body": "Fixes the thing",
        "labels": [{"id": 1, "name": "bug", "color": "f00", "default": True}],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": "2025-01-02T08:00:00Z",
        "updated_at": updated,
        "closed_at": merged,
        "merged_at": merged,
        "merge_commit_sha": "e5bd3914e2e596debea16f433f57875b5b90bcd6" if merged else None,
        "assignee": None,
        "draft": False,
        "head": {"label": "octocat:feature", "ref": f"feature-{number}", "sha": "a" * 40},
        "base": {"label": "octocat:master", "ref": "master", "sha": "b" * 40},
        "author_association": "MEMBER",
        "auto_merge": None,
    }
    data["head"]["repo"] = repo_obj
    data["base"]["repo"] = repo_obj
    return data | fields


# --- raw files ---------------------------------------------------------------------------


@pytest.fixture
def paths(tmp_path: Path) -> DatasetPaths:
    return DatasetPaths(tmp_path / "data", 2025, ORG)


def envelope(
    endpoint: str, repo: str, data: Any, fetched: str = "2025-12-01T00:00:00+00:00"
) -> dict[str, Any]:
    fields = {"source": "github_rest", "endpoint": endpoint, "repo": f"{ORG}/{repo}"}
    return fields | {"page": 1, "fetched_at": fetched, "data": data}


def write_raw(
    paths: DatasetPaths, endpoint: str, repo: str, records: Iterable[dict[str, Any]]
) -> Path:
    """Append records as the collector does: compact JSON, UTF-8, one envelope a line."""
    target = paths.repos_file if endpoint == "repos" else paths.endpoint_file(endpoint, repo)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as handle:
        for data in records:
            line = json.dumps(envelope(endpoint, repo, data), ensure_ascii=False)
            handle.write(line + "\n")
    return target


def write_dataset(paths: DatasetPaths) -> None:
    """Two repos of pulls and issues, with the awkward values the tests look for."""
    write_raw(paths, "repos", "", [REPO, REPO | {"id": 1001, "name": "tools"}])
    write_raw(
        paths,
        "pulls",
        "hello-world",
        [
            pull(1, merged="2025-01-20T12:00:00Z"),
            pull(2, merged="2025-01-31T23:59:59Z"),
            pull(3, merged="2025-02-01T00:00:00Z"),
            pull(4, user=None, body=None, labels=[]),  # ghost author, no body, unmerged
        ],
    )
    write_raw(
        paths,
        "pulls",
        "tools",
        [
            pull(10, repo="tools", merged="2025-02-14T10:00:00+02:00", title="Émoji 🚀 ünïcode"),
            pull(11, repo="tools", draft=True),
        ],
    )
    write_raw(
        paths,
        "issues",
        "hello-world",
        [
            issue(1, body="Crash on 日本語 input 😱", labels=[{"name": "bug"}, {"name": "p1"}]),
            issue(2, state="closed", state_reason="completed", closed_at="2025-02-02T02:02:02Z"),
            issue(3) | {"pull_request": {"url": "https://api.github.com/pulls/3"}},  # a PR
        ],
    )
    write_raw(paths, "issues", "tools", [issue(20, user=None)])


def read_back(paths: DatasetPaths) -> pa.Table:
    dataset = ds.dataset(paths.root / "curated", partitioning="hive")
    return dataset.to_table()


def curated_rows(paths: DatasetPaths, endpoint: str) -> list[dict[str, Any]]:
    return curated_rows_in(paths.curated_endpoint_dir(endpoint))


def curated_rows_in(folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ds.dataset(folder, format="parquet").to_table().to_pylist()
    return rows


def snapshot(paths: DatasetPaths) -> dict[str, list[dict[str, Any]]]:
    """The curated dataset as rows per endpoint (what a reader would get)."""
    return {
        e: curated_rows(paths, e)
        for e in ("repos", "pulls", "issues")
        if paths.curated_endpoint_dir(e).is_dir()
    }


# --- round trip --------------------------------------------------------------------------


def test_pyarrow_dataset_reads_typed_partitioned_rows(paths: DatasetPaths) -> None:
    write_dataset(paths)
    result = export_dataset(paths, ["pulls", "issues"])

    table = read_back(paths)
    assert {"year", "source", "target", "endpoint"} <= set(table.column_names)
    pulls = table.filter(pc.equal(table["endpoint"], "pulls"))
    assert sorted(pulls["id"].to_pylist()) == [500_001, 500_002, 500_003, 500_004, 500_010, 500_011]
    for name in ("created_at", "updated_at", "closed_at", "merged_at", "fetched_at"):
        assert pulls.schema.field(name).type == UTC_US
    assert set(table["year"].to_pylist()) == {2025}
    assert set(table["source"].to_pylist()) == {"github"}
    assert set(table["target"].to_pylist()) == {ORG}
    assert result.endpoints["issues"].skipped == 1
    assert result.endpoints["pulls"].rows_written == 6
    assert result.endpoints["repos"].rows_written == 2
    assert str(result).startswith("repos 2 rows (0 duplicates dropped), pulls 6 rows")


def test_nulls_unicode_and_raw_survive(paths: DatasetPaths) -> None:
    write_dataset(paths)
    export_dataset(paths, ["pulls", "issues"])

    pulls = {row["number"]: row for row in curated_rows(paths, "pulls")}
    ghost = pulls[4]
    assert ghost["user_login"] is None and ghost["user_id"] is None
    assert ghost["body"] is None and ghost["merged_at"] is None and ghost["labels"] == []
    assert pulls[10]["title"] == "Émoji 🚀 ünïcode"
    assert pulls[10]["merged_at"].isoformat() == "2025-02-14T08:00:00+00:00"  # +02:00 normalised
    assert pulls[1]["labels"] == ["bug"] and pulls[1]["base_ref"] == "master"
    assert pulls[1]["head_ref"] == "feature-1" and pulls[11]["draft"] is True
    assert json.loads(pulls[10]["raw"]) == pull(
        10, repo="tools", merged="2025-02-14T10:00:00+02:00", title="Émoji 🚀 ünïcode"
    )

    issues = {row["number"]: row for row in curated_rows(paths, "issues")}
    assert set(issues) == {1, 2, 20}  # the PR listed by the issues endpoint is dropped
    assert issues[1]["body"] == "Crash on 日本語 input 😱"
    assert issues[1]["labels"] == ["bug", "p1"]
    assert issues[2]["state_reason"] == "completed" and issues[20]["user_login"] is None
    assert issues[1]["comments"] == 42 and issues[1]["author_association"] == "MEMBER"


def test_duckdb_reads_the_whole_tree_with_hive_partitions(paths: DatasetPaths) -> None:
    write_dataset(paths)
    export_dataset(paths, ["pulls", "issues"])
    glob = f"{paths.root}/curated/**/*.parquet"

    con = duckdb.connect()
    rows = con.execute(
        f"""
        SELECT endpoint, count(*), count(DISTINCT id), any_value(typeof(updated_at)),
               any_value(year), any_value(source), any_value(target)
        FROM read_parquet('{glob}', hive_partitioning = true)
        GROUP BY endpoint ORDER BY endpoint
        """
    ).fetchall()
    assert rows == [
        ("issues", 3, 3, "TIMESTAMP WITH TIME ZONE", 2025, "github", ORG),
        ("pulls", 6, 6, "TIMESTAMP WITH TIME ZONE", 2025, "github", ORG),
        ("repos", 2, 2, "TIMESTAMP WITH TIME ZONE", 2025, "github", ORG),
    ]
    body, login = con.execute(
        f"SELECT body, user_login FROM read_parquet('{glob}', hive_partitioning = true) "
        "WHERE endpoint = 'issues' AND number = 1"
    ).fetchone() or (None, None)
    assert body == "Crash on 日本語 input 😱" and login == "octokit-fixture-user-a"


def test_polars_scans_with_hive_partitions(paths: DatasetPaths) -> None:
    write_dataset(paths)
    export_dataset(paths, ["pulls", "issues"])

    tree = pl.scan_parquet(f"{paths.root}/curated/**/*.parquet", hive_partitioning=True)
    pulls = tree.filter(pl.col("endpoint") == "pulls").collect()
    assert {"year", "source", "target", "endpoint"} <= set(pulls.columns)
    assert pulls.schema["year"].is_integer() and pulls["target"].unique().to_list() == [ORG]
    assert pulls["id"].n_unique() == pulls.height == 6
    assert pulls.schema["merged_at"] == pl.Datetime("us", "UTC")
    assert pulls.filter(pl.col("number") == 4)["body"].to_list() == [None]
    assert set(pulls["endpoint"].to_list()) == {"pulls"}
    counts = dict(tree.group_by("endpoint").len().collect().iter_rows())
    assert counts == {"pulls": 6, "issues": 3, "repos": 2}


def test_every_file_has_the_shared_schema(paths: DatasetPaths) -> None:
    """Whole-tree readers need one file schema; other endpoints' columns are null."""
    write_dataset(paths)
    export_dataset(paths, ["pulls", "issues"])
    for part in (paths.root / "curated").rglob("*.parquet"):
        assert pq.read_schema(part).remove_metadata() == curated_schema()
    repos = curated_rows(paths, "repos")
    assert {r["merged_at"] for r in repos} == {None} and {r["comments"] for r in repos} == {None}
    assert [r["full_name"] for r in repos] == [f"{ORG}/hello-world", f"{ORG}/hello-world"]
    assert [r["stargazers_count"] for r in repos] == [42, 42]


def toy(number: int, updated: str | None, title: str) -> dict[str, Any]:
    return {
        "id": number,
        "title": title,
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": updated,
    }


def register_toys(*extra: Any) -> Endpoint:
    toys = Endpoint(
        name="toys",
        path="/repos/{full_name}/toys",
        columns=(ID, REPO_COLUMN, col("title", "str"), *TIMES, *extra, FETCHED_AT),
    )
    endpoints.register(toys)
    return toys


def test_a_registered_endpoint_is_exported_by_its_declaration(paths: DatasetPaths) -> None:
    """A plugin endpoint needs only its declaration: one row per id, latest updated_at wins."""
    register_toys()
    try:
        write_raw(
            paths,
            "toys",
            "hello-world",
            [
                toy(1, "2025-05-01T00:00:00Z", "newest"),
                toy(2, "2025-02-01T00:00:00Z", "only"),
                toy(1, "2025-03-01T00:00:00Z", "older, read later"),
                toy(3, None, "no version"),
            ],
        )
        write_raw(paths, "toys", "tools", [toy(3, "2025-01-01T00:00:00Z", "versioned")])
        result = export_dataset(paths, ["toys"], limits=TINY)

        folder = paths.curated_endpoint_dir("toys")
        assert folder.name == "endpoint=toys" and folder.is_dir()
        rows = curated_rows(paths, "toys")
        assert [(r["id"], r["title"]) for r in rows] == [
            (1, "newest"),
            (2, "only"),
            (3, "versioned"),
        ]
        assert rows[0]["repo"] == f"{ORG}/hello-world" and rows[2]["repo"] == f"{ORG}/tools"
        toys = result.endpoints["toys"]
        assert (toys.records_read, toys.duplicates_dropped, toys.rows_written) == (5, 2, 3)
        for part in folder.glob("*.parquet"):
            assert pq.read_schema(part).remove_metadata() == curated_schema()
    finally:
        endpoints.unregister("toys")


def test_a_registered_endpoints_columns_join_every_files_schema(paths: DatasetPaths) -> None:
    """The file schema is read when the export runs, not at import: a plugin's new column is
    in every part, null in the other endpoints'."""
    write_dataset(paths)
    register_toys(col("colour", "str"))
    try:
        write_raw(paths, "toys", "hello-world", [toy(1, None, "red one") | {"colour": "red"}])
        export_dataset(paths, ["pulls", "toys"], limits=TINY)
        schema = curated_schema()
        assert schema.field("colour").type == pa.string() and schema.names[-2:] == [
            "fetched_at",
            "raw",
        ]
        parts_written = list((paths.root / "curated").rglob("*.parquet"))
        assert len({p.parent.name for p in parts_written}) == 3  # repos, pulls, toys
        for part in parts_written:
            assert pq.read_schema(part).remove_metadata() == schema
        assert [r["colour"] for r in curated_rows(paths, "toys")] == ["red"]
        assert {r["colour"] for r in curated_rows(paths, "pulls")} == {None}
    finally:
        endpoints.unregister("toys")
    assert "colour" not in curated_schema().names


def test_readme_query_merged_pulls_per_repo_per_month(paths: DatasetPaths) -> None:
    """The worked example of the README, verbatim apart from the root."""
    write_dataset(paths)
    export_dataset(paths, ["pulls", "issues"])

    query = f"""
        SELECT repo,
               strftime(merged_at AT TIME ZONE 'UTC', '%Y-%m') AS month,
               count(*) AS merged
        FROM read_parquet('{paths.root}/curated/**/*.parquet',
                          hive_partitioning = true)
        WHERE endpoint = 'pulls' AND merged_at IS NOT NULL
        GROUP BY ALL
        ORDER BY repo, month
    """
    assert duckdb.connect().execute(query).fetchall() == [
        (f"{ORG}/hello-world", "2025-01", 2),
        (f"{ORG}/hello-world", "2025-02", 1),
        (f"{ORG}/tools", "2025-02", 1),
    ]


# --- deduplication -----------------------------------------------------------------------


@pytest.mark.parametrize("limits", [None, TINY], ids=["default", "tiny-limits"])
def test_latest_updated_at_wins_once(paths: DatasetPaths, limits: ExportLimits | None) -> None:
    old, mid, new = "2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z", "2025-05-01T00:00:00Z"
    filler = [pull(n, updated=old) for n in range(100, 130)]
    write_raw(paths, "pulls", "hello-world", [pull(1, updated=old, title="v1"), *filler])
    write_raw(paths, "pulls", "hello-world", [pull(1, updated=new, title="v3")])  # appended
    write_raw(paths, "pulls", "hello-world", [pull(2, updated=new, title="newest first")])
    write_raw(paths, "pulls", "hello-world", [pull(2, updated=mid, title="older, later line")])
    write_raw(paths, "pulls", "hello-world", [pull(3, updated=mid, title="tie, first line")])
    write_raw(paths, "pulls", "hello-world", [pull(3, updated=mid, title="tie, later line")])
    # the same id in another repo's file (a renamed repo), newer there; and older there
    write_raw(paths, "pulls", "renamed", [pull(1, updated=mid, title="v2 in other file")])
    write_raw(paths, "pulls", "renamed", [pull(4, updated=mid, title="v2 of 4")])
    write_raw(paths, "pulls", "zzz-moved", [pull(4, updated=new, title="v3 of 4")])
    write_raw(paths, "pulls", "hello-world", [pull(5, updated=None, title="no date")])
    write_raw(paths, "pulls", "zzz-moved", [pull(5, updated=old, title="dated")])

    result = export_dataset(paths, ["pulls"], limits=limits)

    rows = curated_rows(paths, "pulls")
    titles = {row["number"]: row["title"] for row in rows}
    assert titles[1] == "v3"
    assert titles[2] == "newest first"
    assert titles[3] == "tie, later line"
    assert titles[4] == "v3 of 4"
    assert titles[5] == "dated"
    ids = [row["id"] for row in rows]
    assert ids == sorted(set(ids)) and len(ids) == 35
    assert result.endpoints["pulls"].duplicates_dropped == 6
    assert result.endpoints["pulls"].records_read == 41


def test_output_is_identical_whatever_the_limits_and_reruns(
    paths: DatasetPaths, tmp_path: Path
) -> None:
    for repo in ("a", "b", "c"):
        write_raw(paths, "pulls", repo, [pull(n, repo=repo) for n in range(60)])
        write_raw(paths, "issues", repo, [issue(n, body="é" * n) for n in range(60, 0, -1)])

    def files() -> dict[str, bytes]:
        curated = paths.root / "curated"
        return {str(p.relative_to(curated)): p.read_bytes() for p in curated.rglob("*.parquet")}

    limits = ExportLimits(rows_per_file=25, row_group_rows=7, workers=1)
    export_dataset(paths, ["pulls", "issues"], limits=limits)
    first = files()
    export_dataset(paths, ["pulls", "issues"], limits=limits)
    assert files() == first
    tiny = ExportLimits(
        flush_bytes=5_000, bucket_bytes=2_000, row_group_rows=7,
        rows_per_file=25, workers=1,
    )  # fmt: skip
    export_dataset(paths, ["pulls", "issues"], limits=tiny)
    assert files() == first
    assert sorted(first) == [
        f"year=2025/source=github/target={ORG}/endpoint={e}/part-0000{n}.parquet"
        for e in ("issues", "pulls")
        for n in range(3)
    ]
    for name in first:
        ids = pq.read_table(paths.root / "curated" / name)["id"].to_pylist()
        assert ids == sorted(ids)


def test_parallel_scan_gives_the_same_bytes(paths: DatasetPaths) -> None:
    for repo in ("a", "b", "c", "d"):
        write_raw(paths, "issues", repo, [issue(n) for n in range(40)])
    export_dataset(paths, ["issues"], limits=ExportLimits(workers=1))
    single = paths.curated_endpoint_dir("issues").joinpath("part-00000.parquet").read_bytes()

    parallel = ExportLimits(workers=2, parallel_min_bytes=0, bucket_bytes=50_000)
    result = export_dataset(paths, ["issues"], limits=parallel)

    assert result.endpoints["issues"].rows_written == 40
    assert result.endpoints["issues"].duplicates_dropped == 120
    assert (
        paths.curated_endpoint_dir("issues").joinpath("part-00000.parquet").read_bytes() == single
    )


# --- bad input ---------------------------------------------------------------------------


# A value that cannot be typed is null in its column and counted there (the record and its
# raw text are kept); only a record whose id cannot be read is dropped, counted and logged
# with its file and line. Neither blocks the export (issue "Nothing lost").
@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"number": "12"}, "number"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"merged_at": "2025-01-01T10:00:00"}, "merged_at"),  # no zone: ambiguous
        ({"user": "octocat"}, "user_login"),
        ({"user": {"login": 7, "id": 1}}, "user_login"),
        ({"labels": "bug"}, "labels"),
        ({"draft": "yes"}, "draft"),
        ({"number": 1.0}, "number"),
        ({"id": None}, None),  # no key: dropped
        ({"number": 2**64}, "number"),
    ],
)
def test_bad_type_is_null_in_its_column_and_counted(
    paths: DatasetPaths,
    change: dict[str, Any],
    column: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = [pull(n) for n in range(1, 6)]
    path = write_raw(paths, "pulls", "hello-world", [*good[:3], pull(9) | change, *good[3:]])

    pulls = export_dataset(paths, ["pulls"]).endpoints["pulls"]

    rows = {row["number"]: row for row in curated_rows(paths, "pulls")}
    if column is None:
        assert (pulls.unkeyed, pulls.rows_written, dict(pulls.untyped)) == (1, 5, {})
        assert f"{path} line 4: field 'id'" in caplog.text
        return
    assert pulls.untyped[column] == 1 and pulls.unkeyed == 0 and pulls.rows_written == 6
    [bad] = [row for row in rows.values() if row["id"] == 500_009]
    assert bad[column] is None and json.loads(bad["raw"]) == pull(9) | change
    assert column in caplog.text


def test_bad_record_found_by_a_worker_process_names_file_and_line(
    paths: DatasetPaths, caplog: pytest.LogCaptureFixture
) -> None:
    for repo in ("a", "b", "c"):
        write_raw(paths, "issues", repo, [issue(n) for n in range(1, 30)])
    path = write_raw(paths, "issues", "d", [issue(1), issue(2, comments="many"), issue(3, id="x")])

    parallel = ExportLimits(workers=2, parallel_min_bytes=0)
    issues = export_dataset(paths, ["issues"], limits=parallel).endpoints["issues"]

    assert dict(issues.untyped) == {"comments": 1} and issues.unkeyed == 1
    assert f"{path} line 3: field 'id' is a string" in caplog.text


def test_bad_envelope_fields_are_counted(paths: DatasetPaths) -> None:
    path = write_raw(paths, "issues", "x", [issue(1)])
    with path.open("a") as handle:
        handle.write(json.dumps(envelope("issues", "x", issue(2)) | {"fetched_at": 5}) + "\n")
    issues = export_dataset(paths, ["issues"]).endpoints["issues"]
    assert dict(issues.untyped) == {"fetched_at": 1} and issues.rows_written == 2
    path.write_text(json.dumps(envelope("issues", "x", [1, 2])) + "\n")
    issues = export_dataset(paths, ["issues"]).endpoints["issues"]
    assert issues.unkeyed == 1 and issues.rows_written == 0


def test_truncated_last_line_names_file_and_line(paths: DatasetPaths) -> None:
    path = write_raw(paths, "issues", "hello-world", [issue(1), issue(2)])
    with path.open("a") as handle:
        handle.write(json.dumps(envelope("issues", "hello-world", issue(3)))[:-40])

    with pytest.raises(DataError, match=rf"{path} line 3: not valid JSON \(last line, no newline"):
        export_dataset(paths, ["issues"])


def test_complete_last_line_without_newline_is_fine(paths: DatasetPaths) -> None:
    path = write_raw(paths, "issues", "hello-world", [issue(1)])
    with path.open("a") as handle:
        handle.write("\n" + json.dumps(envelope("issues", "hello-world", issue(2))))
    assert export_dataset(paths, ["issues"]).endpoints["issues"].rows_written == 2


def test_invalid_utf8_names_file_and_line(paths: DatasetPaths) -> None:
    path = write_raw(paths, "issues", "hello-world", [issue(1)])
    with path.open("ab") as handle:
        handle.write(b'{"data": "\xff"}\n')
    with pytest.raises(DataError, match=rf"{path} line 2: not UTF-8"):
        export_dataset(paths, ["issues"])


# --- layout ------------------------------------------------------------------------------


def test_endpoint_without_raw_files_gets_no_folder(paths: DatasetPaths) -> None:
    write_raw(paths, "issues", "hello-world", [issue(1)])
    result = export_dataset(paths, ["pulls", "issues"])
    assert result.endpoints["pulls"].rows_written == 0
    assert result.endpoints["pulls"].output_files == ()
    assert not paths.curated_endpoint_dir("pulls").exists()
    assert not paths.curated_endpoint_dir("repos").exists()
    assert [p.name for p in result.endpoints["issues"].output_files] == ["part-00000.parquet"]
    assert all(p.is_file() for p in result.endpoints["issues"].output_files)
    assert not (paths.root / ".curated-work").exists()  # nothing left behind


def test_missing_raw_folder_is_a_clear_error(paths: DatasetPaths) -> None:
    with pytest.raises(ExportRefused, match=r"no dataset at .*run `gh-collect collect` first"):
        export_dataset(paths, ["pulls"])


def test_raw_column_is_the_data_text_verbatim() -> None:
    data = '{"id": 1, "s": "\\ud83d\\ude80 \\u00e9 ü", "n": 1.50, "data": {"x": []}}'
    layouts = [
        f'{{"repo":"o/r","data":{data}}}\n',  # the collector's
        f'{{ "repo" : "o/r", "data" :\t{data} }}\n',  # spaced
        f'{{"data":{data},"repo":"o/r"}}',  # data first, no newline
        f'{{"meta":{{"data":1}},"data":{data},"repo":"o/r"}}',  # a nested "data" before
    ]
    for text in layouts:
        fields, raw = parse_envelope(text.encode())
        assert raw == data.encode(), text
        assert fields["data"] == json.loads(raw) and fields["repo"] == "o/r"
    assert parse_envelope(b'{"data":{},"data":{"id":2}}')[1] == b'{"id":2}'  # last one wins


def test_lone_surrogate_in_text_is_replaced_in_the_column_only(paths: DatasetPaths) -> None:
    path = paths.endpoint_file("issues", "x")
    path.parent.mkdir(parents=True)
    line = json.dumps(envelope("issues", "x", issue(1, title="bad \ud800 half")))
    path.write_text(line + "\n", encoding="utf-8")
    export_dataset(paths, ["issues"])
    [row] = curated_rows(paths, "issues")
    assert row["title"] == "bad \ufffd half"
    assert "\\ud800" in row["raw"]


# --- atomic publication and recovery -------------------------------------------------------


class Crash(Exception):
    """What a test injects at one publication step."""


def crash(*args: object) -> None:
    raise Crash


def crash_after(real: Callable[..., Any]) -> Callable[..., Any]:
    def step(*args: Any) -> Any:
        real(*args)
        raise Crash

    return step


def crash_on_second_call(real: Callable[..., Any]) -> Callable[..., Any]:
    calls: list[int] = []

    def step(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise Crash  # the first endpoint is written, the second is half-way
        return real(*args)

    return step


BEFORE_SWAP = "old"
AFTER_SWAP = "new"
CRASH_POINTS = [
    # (step, how it fails, use renameat2 exchange, what a reader sees at the live path)
    ("_build_staging", crash_after, True, BEFORE_SWAP),
    ("write_ranges", crash_on_second_call, True, BEFORE_SWAP),
    ("_sync_tree", lambda real: crash, True, BEFORE_SWAP),
    ("_exchange", lambda real: crash, True, BEFORE_SWAP),
    ("_exchange", crash_after, True, AFTER_SWAP),
    ("_move_aside", lambda real: crash, False, BEFORE_SWAP),
    ("_move_aside", crash_after, False, BEFORE_SWAP),  # aside, not yet replaced
    ("_move_in", lambda real: crash, False, BEFORE_SWAP),
    ("_move_in", crash_after, False, AFTER_SWAP),
    ("_sync_parents", lambda real: crash, True, AFTER_SWAP),
    ("_sync_parents", lambda real: crash, False, AFTER_SWAP),
    ("_discard_previous", lambda real: crash, True, AFTER_SWAP),
    ("_discard_previous", lambda real: crash, False, AFTER_SWAP),
]


@pytest.mark.parametrize("hard", [False, True], ids=["rolled-back", "killed"])
@pytest.mark.parametrize(("step", "failure", "exchange", "visible"), CRASH_POINTS)
def test_crash_at_any_publication_step_keeps_a_whole_dataset(
    paths: DatasetPaths,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    failure: Callable[[Callable[..., Any]], Callable[..., Any]],
    exchange: bool,
    visible: str,
    hard: bool,
) -> None:
    if exchange and publish._renameat2() is None:
        pytest.skip("renameat2 exchange is not available here")
    write_dataset(paths)
    export_dataset(paths, ["pulls", "issues"], limits=TINY)
    old = snapshot(paths)
    write_raw(
        paths, "pulls", "tools", [pull(12, repo="tools"), pull(1, updated="2026-01-01T00:00:00Z")]
    )
    write_raw(paths, "issues", "new-repo", [issue(77)])

    with monkeypatch.context() as patch:
        if not exchange:
            patch.setattr(publish, "_exchange", lambda staging, current: False)
        if hard:  # kill -9: no handler runs, the next export must sort it out
            patch.setattr(publish, "rollback", lambda layout: None)
        home = next(module for module in (export, parts, publish) if hasattr(module, step))
        patch.setattr(home, step, failure(getattr(home, step)))
        with pytest.raises(Crash):
            export_dataset(paths, ["pulls", "issues"], limits=TINY)

        seen = _visible_dataset(paths, hard)

    if visible == BEFORE_SWAP:
        assert seen == old
    else:
        assert seen != old and len(seen["pulls"]) == len(old["pulls"]) + 1

    export_dataset(paths, ["pulls", "issues"], limits=TINY)  # recovers, then rebuilds
    new = snapshot(paths)
    assert len(new["pulls"]) == len(old["pulls"]) + 1 and len(new["issues"]) == 4
    assert seen in (old, new)  # whole datasets only, never a mix
    assert not (paths.root / ".curated-work").exists()


def _visible_dataset(paths: DatasetPaths, hard: bool) -> dict[str, list[dict[str, Any]]]:
    """What a reader finds now; after a kill between the two renames, the aside copy."""
    if paths.curated_dir.exists():
        return snapshot(paths)
    assert hard, "a handled failure must never leave the live path empty"
    partition = paths.curated_dir.relative_to(paths.root / "curated")
    moved = paths.root / ".curated-work" / partition / "previous"
    return {
        folder.name.removeprefix("endpoint="): curated_rows_in(folder)
        for folder in sorted(moved.iterdir())
    }


def test_failed_export_keeps_previous_dataset_and_leaves_no_temp(
    paths: DatasetPaths,
) -> None:
    write_dataset(paths)
    export_dataset(paths, ["pulls", "issues"])
    old = snapshot(paths)
    with paths.endpoint_file("issues", "hello-world").open("ab") as handle:
        handle.write(b'{"data": "\xff"}\n')  # damaged on disk: not UTF-8

    with pytest.raises(DataError):
        export_dataset(paths, ["pulls", "issues"])

    assert snapshot(paths) == old
    assert not any((paths.root / ".curated-work").rglob("*.parquet"))
