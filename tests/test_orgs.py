"""Several organizations in one config (``target.orgs``): a dataset each, one pool, one run.

Why: a fleet harvests many orgs with the same credentials; each org's dataset must be exactly
what a run of that org alone makes, one org's trouble (a lock held by another run, SAML, a
typo) must not cost the others, and the exit code and summary must say which org ended how.
End to end: the real CLI in a subprocess against one simulated GitHub serving two orgs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gh_collect.config import Config
from gh_collect.durable.lock import DatasetLock
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import UsageError
from gh_collect.harvest.orgs import ORGS_FILE, collect_orgs, worst_exit_code
from gh_collect.harvest.run import RunOptions
from gh_collect.simulator import Simulator, SimulatorConfig

from .conftest import TOKEN, YEAR, assert_exactly_truth, run_cli, write_config

ORGS = ["north-org", "south-org"]


@pytest.fixture(scope="module")
def two_orgs() -> Iterator[Simulator]:
    """One host, two orgs (their own data), one budget per token across both."""
    first = SimulatorConfig(seed=21, repos=6, org=ORGS[0], scenarios=False, history_years=1)
    second = SimulatorConfig(seed=22, repos=5, org=ORGS[1], scenarios=False, history_years=1)
    with Simulator(first, others=[second]) as sim:
        yield sim


def org_paths(tmp_path: Path, org: str) -> DatasetPaths:
    return DatasetPaths(tmp_path / "data", YEAR, org)


def config_for(tmp_path: Path, sim: Simulator, **sections: Any) -> Path:
    return write_config(tmp_path, sim.url, target={"org": None, "orgs": ORGS}, **sections)


def without_org(path: Path) -> Path:
    """write_config starts from ``target.org``: drop it for ``target.orgs``."""
    text = path.read_text().replace("  org: null\n", "")
    path.write_text(text)
    return path


def assert_org_exact(tmp_path: Path, sim: Simulator, org: str) -> None:
    paths = org_paths(tmp_path, org)

    class OneOrg:  # assert_exactly_truth asks ground_truth of the simulator
        def ground_truth(self, **kwargs: Any) -> Any:
            return sim.ground_truth(org=org, **kwargs)

    assert_exactly_truth(paths, OneOrg())  # type: ignore[arg-type]


def test_two_orgs_are_two_exact_datasets_from_one_run(tmp_path: Path, two_orgs: Simulator) -> None:
    config = without_org(config_for(tmp_path, two_orgs))
    result = run_cli("collect", "-c", str(config))
    assert result.returncode == 0, result.stderr
    for org in ORGS:
        assert_org_exact(tmp_path, two_orgs, org)
        manifest = json.loads(org_paths(tmp_path, org).manifest.read_text())
        assert manifest["target"] == org and manifest["status"] == "complete"
    ledger = json.loads((org_paths(tmp_path, ORGS[0]).raw_dir.parent / ORGS_FILE).read_text())
    assert ledger["exit_code"] == 0
    assert [(o["org"], o["exit_code"], o["status"]) for o in ledger["orgs"]] == [
        (ORGS[0], 0, "complete"),
        (ORGS[1], 0, "complete"),
    ]
    assert f"{ORGS[0]} complete (exit 0), {ORGS[1]} complete (exit 0)" in result.stdout
    status = run_cli("status", "-c", str(config), "--json")
    assert set(json.loads(status.stdout)["orgs"]) == set(ORGS)
    validate = run_cli("validate", "-c", str(config))
    assert validate.stdout.count("digest (") == 2


def test_an_org_locked_by_another_run_exits_3_for_that_org_only(
    tmp_path: Path, two_orgs: Simulator
) -> None:
    config = without_org(config_for(tmp_path, two_orgs))
    locked = org_paths(tmp_path, ORGS[1])
    locked.raw_dir.mkdir(parents=True)
    two_orgs.reset_stats()
    with DatasetLock(locked.raw_dir, locked.lock):
        result = run_cli("collect", "-c", str(config))
        assert sorted(p.name for p in locked.raw_dir.iterdir()) == ["checkpoint.json.lock"]
    assert result.returncode == 0, result.stderr  # 3 counts only when every org was locked
    assert two_orgs.stats(org=ORGS[1])["requests"] == 0
    assert_org_exact(tmp_path, two_orgs, ORGS[0])
    assert f"{ORGS[1]} locked (exit 3)" in result.stdout
    assert "another gh-collect run holds" in result.stderr and "Traceback" not in result.stderr
    ledger = json.loads((locked.raw_dir.parent / ORGS_FILE).read_text())
    assert {o["org"]: o["exit_code"] for o in ledger["orgs"]} == {ORGS[0]: 0, ORGS[1]: 3}


def test_every_org_locked_exits_3_and_touches_nothing(tmp_path: Path, two_orgs: Simulator) -> None:
    config = without_org(config_for(tmp_path, two_orgs))
    locks = []
    for org in ORGS:
        paths = org_paths(tmp_path, org)
        paths.raw_dir.mkdir(parents=True)
        locks.append(DatasetLock(paths.raw_dir, paths.lock))
    for lock in locks:
        lock.acquire()
    try:
        result = run_cli("collect", "-c", str(config))
    finally:
        for lock in locks:
            lock.release()
    assert result.returncode == 3
    assert not (org_paths(tmp_path, ORGS[0]).raw_dir.parent / ORGS_FILE).exists()


def test_one_quota_for_the_run_and_the_rest_not_run(tmp_path: Path, two_orgs: Simulator) -> None:
    """--max-requests caps the run: the first org stops at it (75), the second is not run."""
    config = without_org(config_for(tmp_path, two_orgs))
    result = run_cli("collect", "-c", str(config), "--max-requests", "3")
    assert result.returncode == 75, result.stderr
    ledger = json.loads((org_paths(tmp_path, ORGS[0]).raw_dir.parent / ORGS_FILE).read_text())
    assert [o["status"] for o in ledger["orgs"]] == ["rate_limited", "not_run"]
    assert not org_paths(tmp_path, ORGS[1]).raw_dir.exists()


def test_from_repo_names_an_org_of_the_config(tmp_path: Path, two_orgs: Simulator) -> None:
    config = Config.model_validate(
        {
            "target": {"orgs": ORGS},
            "year": YEAR,
            "github": {"api_url": two_orgs.url},
            "output": {"root": str(tmp_path / "data")},
        }
    )
    with pytest.raises(UsageError, match=r"not among target\.orgs") as info:
        collect_orgs(config, TOKEN, RunOptions(from_repo="elsewhere/x"))
    assert info.value.exit_code == 2


def test_the_worst_outcome_is_the_exit_code() -> None:
    assert worst_exit_code([0, 0]) == 0
    assert worst_exit_code([0, 3]) == 0
    assert worst_exit_code([3, 3]) == 3
    assert worst_exit_code([0, 75]) == 75
    assert worst_exit_code([75, 1]) == 1
    assert worst_exit_code([1, 2, 75]) == 2
    assert worst_exit_code([0, 130, 2]) == 130
