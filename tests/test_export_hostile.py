"""Export against damaged datasets and hostile data: refuse, or type what can be typed.

Issue "Nothing lost, whatever the server sends": an export never publishes less than the
checkpoint says was collected, never fails with a traceback, and one mistyped field never
blocks it (the value is kept in ``raw``, null in its typed column, and counted).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gh_collect.curated import publish
from gh_collect.curated.export import ExportLimits, export_dataset
from gh_collect.durable.checkpoint import (
    DISCOVERY_PHASE,
    CheckpointState,
    CheckpointStatus,
    PhaseProgress,
    RepoProgress,
    UnitProgress,
)
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import ExportRefused, StorageError
from gh_collect.harvest.run import collect
from gh_collect.report import manifest as manifest_module
from gh_collect.report.manifest import write_manifest

from .conftest import TOKEN, dataset, run_cli, write_config
from .test_export import (
    ORG,
    REPO,
    curated_rows,
    envelope,
    issue,
    pull,
    write_raw,
)
from .test_run import make_config

ENDPOINTS = ("pulls", "issues")


@pytest.fixture
def paths(tmp_path: Path) -> DatasetPaths:
    return DatasetPaths(tmp_path / "data", 2025, ORG)


# --- a small dataset with a checkpoint that matches its raw files --------------------------


def write_checkpoint(paths: DatasetPaths, repos: list[str]) -> CheckpointState:
    """The checkpoint a finished harvest of ``repos`` leaves: offsets = the file sizes now."""
    now = datetime.now(UTC)
    done = CheckpointStatus.COMPLETE

    def unit(endpoint: str, repo: str) -> UnitProgress:
        file = paths.endpoint_file(endpoint, repo)
        size = file.stat().st_size if file.exists() else 0
        return UnitProgress(status=done, pages_collected=1, byte_offset=size)

    state = CheckpointState(
        config_digest="0" * 64,
        config={},
        created_at=now,
        updated_at=now,
        phases={name: PhaseProgress(status=done) for name in (DISCOVERY_PHASE, *ENDPOINTS)},
        repos={
            f"{ORG}/{repo}": RepoProgress(
                full_name=f"{ORG}/{repo}",
                name=repo,
                status=done,
                units={e: unit(e, repo) for e in ENDPOINTS},
            )
            for repo in repos
        },
    )
    paths.checkpoint.write_text(state.model_dump_json(indent=2))
    return state


def small_dataset(paths: DatasetPaths) -> CheckpointState:
    write_raw(paths, "repos", "", [REPO, REPO | {"id": 1001, "name": "tools"}])
    write_raw(paths, "pulls", "hello-world", [pull(n) for n in range(1, 6)])
    write_raw(paths, "pulls", "tools", [pull(n, repo="tools") for n in range(10, 13)])
    write_raw(paths, "issues", "hello-world", [issue(n) for n in range(1, 4)])
    write_raw(paths, "issues", "tools", [issue(n) for n in range(20, 22)])
    return write_checkpoint(paths, ["hello-world", "tools"])


def curated_bytes(root: Path) -> dict[str, bytes]:
    curated = root / "curated"
    return {str(p.relative_to(curated)): p.read_bytes() for p in sorted(curated.rglob("*"))
            if p.is_file()}  # fmt: skip


# --- item 4: raw files missing or shorter than the checkpoint says ---------------------------


@pytest.mark.parametrize("damage", ["deleted", "shorter", "emptied", "repos-deleted"])
def test_raw_files_short_of_the_checkpoint_refuse_and_publish_nothing(
    paths: DatasetPaths, damage: str
) -> None:
    small_dataset(paths)
    export_dataset(paths, ["pulls", "issues"])
    before = curated_bytes(paths.root)
    victim = paths.endpoint_file("pulls", "tools")
    if damage == "deleted":
        victim.unlink()
    elif damage == "shorter":
        victim.write_bytes(victim.read_bytes()[:-10])
    elif damage == "emptied":
        victim.write_bytes(b"")
    else:
        victim = paths.repos_file
        victim.unlink()

    with pytest.raises(ExportRefused) as caught:
        export_dataset(paths, ["pulls", "issues"])  # reads the checkpoint itself

    message = str(caught.value)
    assert "\n" not in message and str(victim) in message
    assert "curated data is kept" in message and "--force" in message
    assert caught.value.exit_code == 2
    assert curated_bytes(paths.root) == before
    assert not (paths.root / ".curated-work").exists()


def test_refusal_counts_every_damaged_file(paths: DatasetPaths) -> None:
    state = small_dataset(paths)
    for repo in ("hello-world", "tools"):
        paths.endpoint_file("issues", repo).unlink()
    with pytest.raises(ExportRefused, match=r"2 raw files are missing or shorter"):
        export_dataset(paths, ["pulls", "issues"], state=state)
    assert not paths.curated_dir.exists()


def test_an_endpoint_not_exported_is_not_checked(paths: DatasetPaths) -> None:
    small_dataset(paths)
    paths.endpoint_file("issues", "tools").unlink()
    result = export_dataset(paths, ["pulls"])
    assert result.endpoints["pulls"].rows_written == 8


def test_only_the_bytes_up_to_the_checkpoint_offset_are_exported(paths: DatasetPaths) -> None:
    """Bytes after the last save are cut on resume: the export ignores them, torn or not."""
    small_dataset(paths)
    path = write_raw(paths, "pulls", "tools", [pull(99, repo="tools")])  # unsaved page
    with path.open("a") as handle:
        handle.write(json.dumps(envelope("pulls", "tools", pull(98)))[:-30])  # killed mid-write

    result = export_dataset(paths, ["pulls", "issues"])

    assert result.endpoints["pulls"].records_read == 8
    assert 500_099 not in {row["id"] for row in curated_rows(paths, "pulls")}


def test_without_a_checkpoint_every_raw_byte_is_exported(paths: DatasetPaths) -> None:
    write_raw(paths, "pulls", "tools", [pull(1), pull(2)])
    assert export_dataset(paths, ["pulls"]).endpoints["pulls"].rows_written == 2


# --- item 10: mistyped fields become nulls, counted; an unreadable key drops the record ------


@pytest.mark.parametrize(
    ("change", "columns"),
    [
        ({"number": "12"}, {"number": 1}),
        ({"title": 12345}, {"title": 1}),
        ({"created_at": "garbage"}, {"created_at": 1}),
        ({"merged_at": "2025-01-01T10:00:00"}, {"merged_at": 1}),  # no zone: ambiguous
        ({"user": "octocat"}, {"user_login": 1, "user_id": 1}),
        ({"user": {"login": 7, "id": 1}}, {"user_login": 1}),
        ({"labels": "bug"}, {"labels": 1}),
        ({"labels": [{"name": 3}]}, {"labels": 1}),
        ({"draft": "yes"}, {"draft": 1}),
        ({"number": 1.0}, {"number": 1}),
        ({"number": 2**64}, {"number": 1}),
        ({"head": [1], "title": None}, {"head_ref": 1, "head_sha": 1}),
    ],
)
def test_mistyped_field_is_null_in_its_column_kept_in_raw_and_counted(
    paths: DatasetPaths, change: dict[str, Any], columns: dict[str, int]
) -> None:
    good = [pull(n) for n in range(1, 6)]
    write_raw(paths, "pulls", "hello-world", [*good[:3], pull(9) | change, *good[3:]])

    result = export_dataset(paths, ["pulls"])

    rows = {row["number"]: row for row in curated_rows(paths, "pulls")}
    [bad] = [row for row in rows.values() if row["id"] == 500_009]
    assert json.loads(bad["raw"]) == pull(9) | change
    for column in columns:
        assert bad[column] is None
    assert bad["state"] == "open" and bad["repo"] == f"{ORG}/hello-world"
    assert len(rows) == 6
    pulls = result.endpoints["pulls"]
    assert dict(pulls.untyped) == columns
    assert pulls.unkeyed == 0 and pulls.rows_written == 6
    assert "untyped" in str(result) and next(iter(columns)) in str(result)


def test_each_bad_timestamp_of_a_batch_is_nulled_and_counted(paths: DatasetPaths) -> None:
    bad = ["2025-01-01T10:00:00", "garbage", "2025-13-01T00:00:00Z", "2025-02-30T00:00:00Z"]
    good = ["2025-01-01T10:00:00Z", "2025-01-01T12:00:00+02:00", None]
    records = [pull(n, created_at=value) for n, value in enumerate([*bad, *good], 1)]
    write_raw(paths, "pulls", "a", records)

    pulls = export_dataset(paths, ["pulls"]).endpoints["pulls"]

    assert dict(pulls.untyped) == {"created_at": 4}
    created = {row["number"]: row["created_at"] for row in curated_rows(paths, "pulls")}
    assert [created[n] is None for n in range(1, 8)] == [True] * 4 + [False, False, True]
    assert created[6].isoformat() == "2025-01-01T10:00:00+00:00"


def test_mistyped_envelope_field_is_counted_too(paths: DatasetPaths) -> None:
    path = write_raw(paths, "issues", "x", [issue(1)])
    with path.open("a") as handle:
        handle.write(json.dumps(envelope("issues", "x", issue(2)) | {"fetched_at": 5}) + "\n")
    result = export_dataset(paths, ["issues"])
    assert dict(result.endpoints["issues"].untyped) == {"fetched_at": 1}
    assert [row["fetched_at"] is None for row in curated_rows(paths, "issues")] == [False, True]


@pytest.mark.parametrize(
    "data",
    [
        pull(9) | {"id": None},
        pull(9) | {"id": "500009"},
        pull(9) | {"id": 2**64},
        pull(9) | {"id": True},
        pull(9) | {"id": 1.5},
        {k: v for k, v in pull(9).items() if k != "id"},
        [1, 2],
        "a string",
        None,
    ],
    ids=["null", "string", "huge", "bool", "float", "missing", "list", "str", "none"],
)
def test_record_without_a_readable_id_is_dropped_and_counted(
    paths: DatasetPaths, data: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_raw(paths, "pulls", "hello-world", [pull(1), pull(2)])
    with path.open("a") as handle:
        handle.write(json.dumps(envelope("pulls", "hello-world", data)) + "\n")
        handle.write(json.dumps(envelope("pulls", "hello-world", pull(3))) + "\n")

    result = export_dataset(paths, ["pulls"])

    pulls = result.endpoints["pulls"]
    assert (pulls.unkeyed, pulls.rows_written, pulls.records_read) == (1, 3, 4)
    assert pulls.duplicates_dropped == 0
    assert {row["number"] for row in curated_rows(paths, "pulls")} == {1, 2, 3}
    assert f"{path} line 3" in caplog.text  # where to look, on one line
    assert "dropped" in str(result)


def test_envelope_that_is_not_an_object_is_dropped_and_counted(paths: DatasetPaths) -> None:
    path = write_raw(paths, "issues", "x", [issue(1)])
    with path.open("a") as handle:
        handle.write("[1, 2]\n")
    result = export_dataset(paths, ["issues"])
    assert result.endpoints["issues"].unkeyed == 1
    assert result.endpoints["issues"].rows_written == 1


def test_counts_are_the_same_in_worker_processes(paths: DatasetPaths) -> None:
    for repo in ("a", "b", "c"):
        write_raw(paths, "issues", repo, [issue(n) for n in range(1, 30)])
    write_raw(paths, "issues", "d", [issue(1), issue(2, comments="many"), issue(3, id="x")])

    one = export_dataset(paths, ["issues"], limits=ExportLimits(workers=1))
    parallel = ExportLimits(workers=2, parallel_min_bytes=0)
    many = export_dataset(paths, ["issues"], limits=parallel)

    for result in (one, many):
        assert dict(result.endpoints["issues"].untyped) == {"comments": 1}
        assert result.endpoints["issues"].unkeyed == 1
    assert one.endpoints["issues"].rows_written == many.endpoints["issues"].rows_written == 29


def test_bad_values_do_not_change_the_bytes_of_good_rows(paths: DatasetPaths) -> None:
    """Deterministic: the same input gives the same files, bad values or not, any limits."""
    write_raw(paths, "pulls", "a", [pull(n, title=n if n % 7 == 0 else f"t{n}") for n in range(40)])
    export_dataset(paths, ["pulls"], limits=ExportLimits(workers=1))
    first = curated_bytes(paths.root)
    tiny = ExportLimits(flush_bytes=4_000, bucket_bytes=3_000, row_group_rows=3, workers=1)
    result = export_dataset(paths, ["pulls"], limits=tiny)
    assert dict(result.endpoints["pulls"].untyped) == {"title": 6}
    export_dataset(paths, ["pulls"], limits=ExportLimits(workers=1))
    assert curated_bytes(paths.root) == first


# --- item 9: storage that cannot be written --------------------------------------------------


def _read_only(*args: object) -> None:
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), "/data/curated")


def test_read_only_output_is_one_storage_error_and_keeps_the_previous_data(
    paths: DatasetPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root ignores permissions, so the read-only filesystem is simulated at one step."""
    small_dataset(paths)
    export_dataset(paths, ["pulls", "issues"])
    before = curated_bytes(paths.root)
    monkeypatch.setattr(publish, "_sync_tree", _read_only)

    with pytest.raises(StorageError) as caught:
        export_dataset(paths, ["pulls", "issues"])

    message = str(caught.value)
    assert "\n" not in message and "Read-only file system" in message and "run again" in message
    assert "previous curated data is kept" in message
    assert curated_bytes(paths.root) == before
    assert not (paths.root / ".curated-work").exists()


def test_read_only_root_on_a_first_export_creates_nothing(
    paths: DatasetPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_dataset(paths)
    monkeypatch.setattr(publish, "prepare", _read_only)
    with pytest.raises(StorageError, match="Read-only file system"):
        export_dataset(paths, ["pulls", "issues"])
    assert sorted(p.name for p in paths.root.iterdir()) == ["raw"]


# --- item 9: the manifest -------------------------------------------------------------------


def test_manifest_path_that_is_a_folder_is_a_one_line_storage_error(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    target.mkdir()
    with pytest.raises(StorageError) as caught:
        write_manifest(target, {"a": 1})
    message = str(caught.value)
    assert "\n" not in message and "cannot write manifest.json" in message
    assert "run again" in message and str(target) in message


def test_manifest_write_on_a_full_disk_is_a_one_line_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(manifest_module, "write_atomic", full)
    with pytest.raises(StorageError, match=r"cannot write manifest.json: .*No space left.*free"):
        write_manifest(tmp_path / "manifest.json", {"a": 1})


def test_manifest_export_section_counts_untyped_and_dropped(paths: DatasetPaths) -> None:
    write_raw(paths, "pulls", "a", [pull(1, title=5), pull(2, id="two"), pull(3)])
    result = export_dataset(paths, ["pulls"])
    section = manifest_module.export_section(result)
    assert section is not None and manifest_module.export_section(None) is None
    assert section["untyped"] == {"pulls": {"title": 1}}
    assert section["dropped"] == {"pulls": 1}
    assert section["endpoints"]["pulls"]["rows_written"] == 2
    json.dumps(section)  # JSON-ready


# --- the CLI, end to end ---------------------------------------------------------------------


def harvest(tmp_path: Path, sim: Any) -> tuple[Path, DatasetPaths]:
    """A finished small harvest (in process, for speed) and the CLI config that reads it."""
    result = collect(make_config(tmp_path, sim.url), TOKEN)
    assert result.exit_code == 0
    return write_config(tmp_path, sim.url), dataset(tmp_path)


def biggest_raw_file(paths: DatasetPaths) -> Path:
    """The pulls raw file holding the most records (with long histories a small repo may
    have none in the window: an empty file)."""
    victim = max(
        sorted(paths.endpoint_dir("pulls").glob("*.jsonl")), key=lambda p: p.stat().st_size
    )
    assert victim.stat().st_size > 0
    return victim


def assert_one_line(result: Any, code: int, *needles: str) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]
    assert TOKEN not in result.stderr + result.stdout
    return str(lines[0])


@pytest.mark.e2e
def test_cli_export_after_a_raw_file_was_deleted_refuses_exit_2(
    tmp_path: Path, start_simulator: Any
) -> None:
    config, paths = harvest(tmp_path, start_simulator(repos=3, scenarios=False))
    before = curated_bytes(paths.root)
    victim = biggest_raw_file(paths)
    victim.unlink()

    line = assert_one_line(run_cli("export", "-c", str(config)), 2, str(victim), "--force")

    assert "gh-collect collect" in line
    assert curated_bytes(paths.root) == before


@pytest.mark.e2e
def test_cli_export_without_a_dataset_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    line = assert_one_line(run_cli("export", "-c", str(config)), 2, "no dataset at")
    assert f"gh-collect collect -c {config}" in line
    assert not (tmp_path / "data").exists()
    (tmp_path / "data").mkdir()
    assert_one_line(run_cli("export", "-c", str(config)), 2, "no dataset at")
    assert list((tmp_path / "data").iterdir()) == []


@pytest.mark.e2e
def test_cli_export_with_a_root_that_is_a_file_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    (tmp_path / "data").write_text("not a folder")
    assert_one_line(run_cli("export", "-c", str(config)), 2, "output.root", "not a folder")
    assert (tmp_path / "data").read_text() == "not a folder"


@pytest.mark.e2e
def test_cli_export_where_curated_cannot_be_written_is_one_line(
    tmp_path: Path, start_simulator: Any
) -> None:
    """Root ignores chmod, so the unwritable place is a file where a folder must go."""
    config, paths = harvest(tmp_path, start_simulator(repos=3, scenarios=False))
    for folder in (paths.root / "curated", paths.root / ".curated-work"):
        if folder.exists():
            shutil.rmtree(folder)
    (paths.root / "curated").write_text("in the way")

    assert_one_line(run_cli("export", "-c", str(config)), 1, "failed at", "run again")
    assert (paths.root / "curated").read_text() == "in the way"
    assert not (paths.root / ".curated-work").exists()


@pytest.mark.e2e
def test_cli_manifest_that_is_a_folder_is_one_line(tmp_path: Path, start_simulator: Any) -> None:
    sim = start_simulator(repos=3, scenarios=False)
    config, paths = harvest(tmp_path, sim)
    paths.manifest.unlink()
    paths.manifest.mkdir()

    for command in ("export", "collect"):
        assert_one_line(
            run_cli(command, "-c", str(config)), 1, "cannot write manifest.json", "run again"
        )


def _same_length(old: bytes, new: bytes) -> bytes:
    assert len(new) <= len(old)
    return new + b" " * (len(old) - len(new))  # JSON allows the padding after a value


@pytest.mark.e2e
def test_cli_export_types_what_it_can_and_counts_the_rest_in_the_manifest(
    tmp_path: Path, start_simulator: Any
) -> None:
    config, paths = harvest(tmp_path, start_simulator(repos=3, scenarios=False))
    raw = biggest_raw_file(paths)
    lines = raw.read_bytes().splitlines(keepends=True)
    first = json.loads(lines[0])["data"]
    title = re.search(rb'"title":"(?:[^"\\]|\\.)*"', lines[0])
    created = json.dumps(first["created_at"]).encode()
    assert title and created in lines[0]
    for old, new in ((title.group(), b'"title":7'), (created, b'"garbage"')):
        lines[0] = lines[0].replace(old, _same_length(old, new), 1)
    raw.write_bytes(b"".join(lines))  # same size: the checkpoint's offset still matches

    result = run_cli("export", "-c", str(config))

    assert result.returncode == 0, result.stderr
    assert "untyped" in result.stdout + result.stderr
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["export"]["untyped"] == {"pulls": {"title": 1, "created_at": 1}}
    assert manifest["export"]["dropped"] == {}
    [row] = [r for r in curated_rows(paths, "pulls") if r["id"] == first["id"]]
    assert row["title"] is None and row["created_at"] is None
    assert json.loads(row["raw"])["title"] == 7
