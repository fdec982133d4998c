from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from gh_collect.durable.paths import MAX_PART_BYTES, DatasetPaths, safe_part, unique_part


def test_layout_matches_spec() -> None:
    paths = DatasetPaths(Path("data"), 2025, "sample-org")
    raw = Path("data/raw/year=2025/source=github/target=sample-org")
    assert paths.raw_dir == raw
    assert paths.checkpoint == raw / "checkpoint.json"
    assert paths.lock == raw / "checkpoint.json.lock"
    assert paths.manifest == raw / "manifest.json"
    assert paths.endpoint_file("pulls", "repo-a") == raw / "endpoint=pulls" / "repo=repo-a.jsonl"
    assert paths.curated_endpoint_dir("issues") == Path(
        "data/curated/year=2025/source=github/target=sample-org/endpoint=issues"
    )


@pytest.mark.parametrize(
    "name", ["..", ".", "../../etc/passwd", "a/b", "nul\x00byte", "/abs", "x" * 5000, "", "é🚀"]
)
def test_hostile_names_stay_inside_the_dataset(tmp_path: Path, name: str) -> None:
    paths = DatasetPaths(tmp_path, 2025, "org")
    target = paths.endpoint_file("pulls", name)
    part = safe_part(name)
    assert "/" not in part and "\x00" not in part and part not in ("", ".", "..")
    assert len(part.encode()) <= MAX_PART_BYTES
    assert target.resolve().is_relative_to(paths.raw_dir.resolve())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("ok")  # the OS accepts it as one file name
    assert target.read_text() == "ok"


def test_ordinary_names_round_trip_through_uri_decoding() -> None:
    for name in ["repo", "my.repo-1_x", "weird name%", "é"]:
        assert unquote(safe_part(name)) == name


def test_unique_part_keeps_a_free_name_readable_and_suffixes_a_taken_one() -> None:
    assert unique_part("repo", set(), 7, "o/repo") == "repo"
    assert unique_part("Repo", {"repo"}, 7, "o/Repo") == "Repo~7"
    taken = {"repo", "repo~7"}
    third = unique_part("REPO", taken, 7, "o/REPO")  # a second case-only rename, same id
    assert third.lower() not in taken and third.startswith("REPO~")


def test_unique_part_is_unique_whatever_is_taken() -> None:
    taken: set[str] = set()
    for _ in range(50):  # hostile: every candidate of the next repo already taken
        part = unique_part("x", taken, 1, "o/x")
        assert part.lower() not in taken
        taken.add(part.lower())


def test_unit_file_uses_the_stored_part(tmp_path: Path) -> None:
    from gh_collect.durable.checkpoint import RepoProgress

    paths = DatasetPaths(tmp_path, 2025, "org")
    repo = RepoProgress(full_name="other/x", name="x", file_part="x~5")
    assert paths.unit_file("pulls", repo) == paths.endpoint_dir("pulls") / "repo=x~5.jsonl"
    old = RepoProgress(full_name="org/..", name="..")
    assert paths.unit_file("pulls", old) == paths.endpoint_file("pulls", "..")
