"""Crash-point sweep: fail at every step of the write path and of the Parquet publication.

Why: "a crash at any instant leaves the old or the new state" is a claim about every step,
so each step is named and failed on purpose, two ways: an exception in-process (the error
paths must leave a resumable dataset and release the lock) and ``os._exit`` in a subprocess
(a hard crash: no ``finally``, no cleanup, as with kill -9). Each crash point must actually be
reached (the test checks it fired), then a rerun must give exactly the ground truth.

Write path, in the order a page travels: append the page (cut short mid-line) -> update
the state -> fsync the data -> fsync a new file's folder -> write the temp checkpoint
(``checkpoint.SAVE_STEPS``: create, write, cut short, fsync, rename, fsync folder) -> saved.
Publication: every named step of ``publish.publish`` on the exchange path, on the fallback
path (no ``renameat2``) and for a first export.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import yaml

from gh_collect.config import Config
from gh_collect.curated.export import export_dataset
from gh_collect.curated.publish import WORK_DIR
from gh_collect.durable.checkpoint import CheckpointManager, read_checkpoint
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import GhCollectError, StorageError
from gh_collect.harvest.run import RunOptions, collect
from gh_collect.simulator import Simulator, SimulatorConfig

from .conftest import ORG, TOKEN, YEAR, assert_exactly_truth, truth_ids
from .crashpoint_kit import (
    CRASH_EXIT,
    EXPORT_POINTS,
    FIRST_EXPORT_POINTS,
    TOKEN_ENV,
    VARIANTS,
    WRITE_POINTS,
    InjectedCrash,
    Point,
    install,
)

ROOT = Path(__file__).resolve().parent.parent
KIT = Path(__file__).with_name("crashpoint_kit.py")


def run_child(point: Point, action: str, config: Path, endpoints: str = "") -> int:
    """Run the point's ``os._exit`` crash in a fresh process; returns its exit status."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GH_COLLECT_")}
    proc = subprocess.run(
        [sys.executable, str(KIT), point.id, action, str(config), endpoints],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), TOKEN_ENV: TOKEN},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode


# --- fixtures and checks -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(seed=7, repos=8, org=ORG)) as simulator:
        yield simulator


def make_config(tmp_path: Path, api_url: str) -> tuple[Config, Path]:
    data = {
        "target": {"org": ORG},
        "year": YEAR,
        "github": {"api_url": api_url, "timeout_s": 5, "retry_initial_s": 0.05},
        "checkpoint": {"every_pages": 2, "every_records": 10**9},
        "output": {"root": str(tmp_path / "data")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return Config.model_validate(data), path


def dataset_paths(tmp_path: Path) -> DatasetPaths:
    return DatasetPaths(tmp_path / "data", YEAR, ORG)


def assert_resumable(paths: DatasetPaths) -> None:
    """What a crash may leave: a loadable checkpoint (or none), a free lock, no lost bytes."""
    if paths.checkpoint.exists():
        state = read_checkpoint(paths.checkpoint)
        for repo in state.repos.values():
            for endpoint, progress in repo.units.items():
                file = paths.endpoint_file(endpoint, repo.name)
                size = file.stat().st_size if file.exists() else 0
                assert size >= progress.byte_offset, f"{file}: bytes the checkpoint counts are gone"
    with CheckpointManager(paths.checkpoint, paths.lock):
        pass  # raises LockHeldError if the crash left the lock held


def curated(paths: DatasetPaths) -> dict[str, Counter[int]] | None:
    """Ids per endpoint as pyarrow.dataset reads the curated tree; None when there is none."""
    return curated_at(paths.curated_dir)


def curated_at(folder: Path) -> dict[str, Counter[int]] | None:
    """Ids per endpoint of a curated tree (``endpoint=*`` folders); None when there is none."""
    if not folder.exists():
        return None
    table = pads.dataset(folder, format="parquet", partitioning="hive").to_table(
        columns=["id", "endpoint"]
    )
    ids: dict[str, Counter[int]] = {}
    for ident, endpoint in zip(
        table.column("id").to_pylist(), table.column("endpoint").to_pylist(), strict=True
    ):
        ids.setdefault(endpoint, Counter())[ident] += 1
    return ids


# --- the write path ----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("point", WRITE_POINTS, ids=[p.id for p in WRITE_POINTS])
def test_write_path_crash_resumes_to_the_exact_dataset(
    point: Point, variant: str, tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, config_path = make_config(tmp_path, sim.url)
    paths = dataset_paths(tmp_path)
    if variant == "exit":
        assert run_child(point, "collect", config_path) == CRASH_EXIT, "crash point not reached"
    else:
        fired = install(point, variant, monkeypatch.setattr)
        expected: type[BaseException] = StorageError if point.io else InjectedCrash
        with pytest.raises(expected) as raised:
            collect(config, TOKEN, RunOptions(export=False))
        monkeypatch.undo()
        assert fired == [1], "crash point not reached"
        if isinstance(raised.value, GhCollectError):
            assert "\n" not in str(raised.value)  # one line for the user
    assert_resumable(paths)
    result = collect(config, TOKEN, RunOptions(export=False))  # publication: tests below
    assert result.exit_code == 1  # only the vanished repo fails
    assert_exactly_truth(paths, sim)


# --- the Parquet publication -------------------------------------------------------------------


@pytest.fixture(scope="module")
def harvested(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One complete raw dataset, copied by each publication test."""
    folder = tmp_path_factory.mktemp("harvested")
    config, _ = make_config(folder, sim.url)
    collect(config, TOKEN, RunOptions(export=False))
    return folder


def prepare_export(tmp_path: Path, harvested: Path, sim: Simulator) -> tuple[Path, DatasetPaths]:
    shutil.copytree(harvested / "data", tmp_path / "data")
    _, config_path = make_config(tmp_path, sim.url)
    return config_path, dataset_paths(tmp_path)


def crash_export(
    point: Point, variant: str, config_path: Path, paths: DatasetPaths, mp: pytest.MonkeyPatch
) -> None:
    if variant == "exit":
        code = run_child(point, "export", config_path, "pulls,issues")
        assert code == CRASH_EXIT, "crash point not reached"
        return
    fired = install(point, variant, mp.setattr)
    with pytest.raises(StorageError) as raised:
        export_dataset(paths, ["pulls", "issues"])
    mp.undo()
    assert fired == [1], "crash point not reached"
    assert "\n" not in str(raised.value)


def expected_curated(sim: Simulator, endpoints: tuple[str, ...]) -> dict[str, Counter[int]]:
    truth = sim.ground_truth(year=YEAR, endpoints=("pulls", "issues"))
    return {endpoint: truth_ids(truth, endpoint) for endpoint in endpoints}


def without_repos(ids: dict[str, Counter[int]] | None) -> dict[str, Counter[int]] | None:
    return None if ids is None else {k: v for k, v in ids.items() if k != "repos"}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("point", EXPORT_POINTS, ids=[p.id for p in EXPORT_POINTS])
def test_publication_crash_keeps_the_old_or_the_new_dataset(
    point: Point,
    variant: str,
    tmp_path: Path,
    harvested: Path,
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config_path, paths = prepare_export(tmp_path, harvested, sim)
    export_dataset(paths, ["pulls"])  # the previous dataset: repos and pulls only
    old, new = expected_curated(sim, ("pulls",)), expected_curated(sim, ("pulls", "issues"))
    assert without_repos(curated(paths)) == old
    crash_export(point, variant, config_path, paths, monkeypatch)
    after = without_repos(curated(paths))  # readable, and wholly old or wholly new
    if after is None and point.fallback:
        # Without renameat2 there is an instant with no live tree (moved aside, new one not
        # yet in); the old tree must be whole where the next export's recovery looks for it.
        aside = paths.root / WORK_DIR / paths.curated_dir.relative_to(paths.root / "curated")
        after = without_repos(curated_at(aside / "previous"))
    assert after in (old, new), f"after a crash at {point.id} the dataset is a mix or missing"
    export_dataset(paths, ["pulls", "issues"])
    assert without_repos(curated(paths)) == new
    assert not (paths.root / ".curated-work").exists()  # recovery left nothing behind


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("point", FIRST_EXPORT_POINTS, ids=[p.id for p in FIRST_EXPORT_POINTS])
def test_first_publication_crash_leaves_nothing_or_everything(
    point: Point,
    variant: str,
    tmp_path: Path,
    harvested: Path,
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config_path, paths = prepare_export(tmp_path, harvested, sim)
    new = expected_curated(sim, ("pulls", "issues"))
    crash_export(point, variant, config_path, paths, monkeypatch)
    assert without_repos(curated(paths)) in (None, new)
    export_dataset(paths, ["pulls", "issues"])
    assert without_repos(curated(paths)) == new
