from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from gh_collect.paths import MAX_PART_BYTES, DatasetPaths, safe_part


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
