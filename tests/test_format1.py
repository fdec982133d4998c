"""Datasets written by gh-collect 0.1.0 (format-1 checkpoints) resume exactly once today.

The fixtures were made by the 0.1.0 release itself (scripts/make_format1_fixtures.py): a
finished harvest, and harvests killed with SIGKILL mid-pulls and mid-issues, torn tails and
all. Their config digest holds the api_url they were made against, so the simulator serves
the same org on the same port.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gh_collect.durable.checkpoint import FORMAT_VERSION, V1_BACKUP_NAME, read_checkpoint
from gh_collect.simulator import Simulator, SimulatorConfig
from tests.conftest import assert_exactly_truth, dataset, run_cli, write_config

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).parent / "fixtures" / "format1"
PORT = 47193  # scripts/make_format1_fixtures.py
SIMULATED = SimulatorConfig(
    seed=11, repos=3, sizes=(900, 30), scenarios=False, history_years=3.0, touched_share=0.1
)  # as scripts/make_format1_fixtures.py served it


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    sim = Simulator(SIMULATED)
    sim.start(port=PORT)
    yield sim
    sim.stop()


def unpack(name: str, tmp_path: Path) -> Path:
    with tarfile.open(FIXTURES / f"{name}.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    return write_config(tmp_path, f"http://127.0.0.1:{PORT}", github={"concurrency": 2})


@pytest.mark.parametrize("name", ["killed-mid-pulls", "killed-mid-issues", "complete"])
def test_a_format1_dataset_resumes_exactly_once(
    name: str, simulator: Simulator, tmp_path: Path
) -> None:
    config = unpack(name, tmp_path)
    paths = dataset(tmp_path)
    original = paths.checkpoint.read_bytes()
    assert json.loads(original)["format_version"] == 1
    before = read_checkpoint(paths.checkpoint)  # migrated in memory, nothing written
    assert paths.checkpoint.read_bytes() == original
    assert not paths.checkpoint.with_name(V1_BACKUP_NAME).exists()

    result = run_cli("collect", "-c", str(config), "--quiet")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert_exactly_truth(paths, simulator)
    after = read_checkpoint(paths.checkpoint)
    assert json.loads(paths.checkpoint.read_bytes())["format_version"] == FORMAT_VERSION == 2
    assert paths.checkpoint.with_name(V1_BACKUP_NAME).read_bytes() == original
    assert all(phase.status == "complete" for phase in after.phases.values())
    assert set(after.repos) == set(before.repos)
    # what 0.1.0 had saved carried over: no unit went backwards
    for name, repo in before.repos.items():
        for unit, progress in repo.units.items():
            assert after.repos[name].units[unit].byte_offset >= progress.byte_offset
    again = run_cli("collect", "-c", str(config), "--quiet")  # format 2 now: a plain refresh
    assert again.returncode == 0, again.stderr
    assert paths.checkpoint.with_name(V1_BACKUP_NAME).read_bytes() == original
    assert_exactly_truth(paths, simulator)
