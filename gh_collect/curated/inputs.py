"""Which raw files an export reads, and how much of each: checked against the checkpoint.

With a checkpoint (read from ``raw_dir`` unless given), the dataset is what it says was
collected: each repo x endpoint file is read up to the checkpoint's ``byte_offset`` (bytes
after the last save are cut and fetched again on resume, so they are never exported, a
half-written last line included); a raw file missing or shorter than that offset, or a missing
``repos.jsonl`` after discovery, refuses the export (``ExportRefused``) before anything is
touched, since publishing would replace good curated data with less. Without a checkpoint (a
raw tree built by hand) every byte of every file is read.

Kept apart from the passes that read the files: this is the one place that decides what the
dataset is, and it needs neither pyarrow nor the output folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gh_collect.durable.checkpoint import DISCOVERY_PHASE, CheckpointState, CheckpointStatus
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import ExportRefused

REPOS_ENDPOINT = "repos"


@dataclass(frozen=True)
class Input:
    """One raw file and how many of its bytes are the dataset (None: all of them)."""

    path: Path
    limit: int | None = None

    @property
    def size(self) -> int:
        size = self.path.stat().st_size
        return size if self.limit is None else min(size, self.limit)


def inputs_of(paths: DatasetPaths, state: CheckpointState | None, endpoint: str) -> list[Input]:
    """The endpoint's raw files in name order (that order breaks version ties).

    Each file the checkpoint knows is read up to its saved offset; others are read whole.
    """
    if endpoint == REPOS_ENDPOINT:
        return [Input(paths.repos_file)] if paths.repos_file.is_file() else []
    expected = expected_files(paths, state, endpoint) if state is not None else []
    offsets: dict[Path, int] = {}
    for path, offset in expected:
        offsets[path] = max(offset, offsets.get(path, 0))  # two units, one file: the larger
    folder = paths.endpoint_dir(endpoint)
    found = set(folder.glob("repo=*.jsonl")) if folder.is_dir() else set()
    found |= {path for path in offsets if path.is_file()}
    return [Input(path, offsets.get(path)) for path in sorted(found)]


def expected_files(
    paths: DatasetPaths, state: CheckpointState, endpoint: str
) -> list[tuple[Path, int]]:
    """(raw file, bytes the checkpoint says it holds) of each unit of ``endpoint``
    (fan-out units included); ``paths.unit_file`` is the one place that names the file."""
    return [
        (paths.unit_file(endpoint, state.repos[key.repo], key.parent), unit.byte_offset)
        for key, unit in state.units(endpoint)
    ]


def expected_everywhere(
    paths: DatasetPaths, state: CheckpointState, endpoints: Sequence[str]
) -> list[tuple[Path, int]]:
    """Every file the export will read that the checkpoint vouches for, with its size.

    ``repos.jsonl`` has no offset: once discovery finished with repos, it must not be empty.
    """
    discovery = state.phases.get(DISCOVERY_PHASE)
    discovered = discovery is not None and discovery.status == CheckpointStatus.COMPLETE
    expected = [(paths.repos_file, 1)] if discovered and state.repos else []
    for endpoint in endpoints:
        if endpoint != REPOS_ENDPOINT:
            expected += expected_files(paths, state, endpoint)
    return expected


def refuse_if_short(expected: Sequence[tuple[Path, int]]) -> None:
    """ExportRefused naming the damaged files, when any holds less than the checkpoint says."""
    problems = [p for p in (_shortfall(path, offset) for path, offset in expected) if p]
    if not problems:
        return
    if len(problems) == 1:
        what = f"raw file {problems[0]}"
    else:
        what = (
            f"{len(problems)} raw files are missing or shorter than the checkpoint says "
            f"(first: {problems[0]})"
        )
    raise ExportRefused(
        f"{what}: exporting would publish less than was collected, so the curated data is "
        "kept as it is; restore the raw files, or run `gh-collect collect --force` to "
        "harvest again"
    )


def _shortfall(path: Path, offset: int) -> str | None:
    """What is wrong with ``path`` if it holds fewer than ``offset`` bytes, else None."""
    if offset <= 0:
        return None
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"{path} is missing (the checkpoint counts {offset:,} bytes)"
    if size < offset:
        return f"{path} has {size:,} of the {offset:,} bytes the checkpoint counts"
    return None
