"""scripts/torture.py in CI: short storms of every mode, each proving nothing lost or doubled.

The full-size runs (``--kills 200``, ten fault harvests) are for people; these keep the
script working and catch a regression in minutes: 10 SIGKILLs, a few SIGINTs and SIGTERMs,
one harvest under a heavy fault mix and a primary budget that runs out, and one race of two
runs on one dataset.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "torture.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gh_collect_torture", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def run_torture(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = load_script().main([*args, "--json"])
    report = json.loads(capsys.readouterr().out)
    return code, report


def assert_nothing_lost(report: dict[str, Any]) -> dict[str, Any]:
    (mode,) = report["modes"]
    assert mode["problems"] == []
    assert mode["expected"] > 0 and mode["got"] == mode["expected"]
    for key in ("missing", "duplicated", "extra", "altered", "checkpoint_failures"):
        assert mode[key] == 0, key
    assert mode["curated_missing"] == 0 and mode["curated_duplicated"] == 0
    assert report["ok"] and mode["ok"]
    return dict(mode)


def test_ten_sigkills_lose_and_double_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_torture(capsys, "--mode", "kill", "--kills", "10", "--seed", "1")
    mode = assert_nothing_lost(report)
    assert code == 0
    assert mode["interruptions"] == 10
    assert mode["runs"] > 10 and mode["rounds"] >= 2  # the clean baseline and a finished harvest


@pytest.mark.parametrize("mode", ["sigint", "sigterm"])
def test_signal_storm_exits_128_plus_signal_and_resumes(
    mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_torture(capsys, "--mode", mode, "--kills", "2", "--seed", "2")
    result = assert_nothing_lost(report)
    assert code == 0
    assert result["interruptions"] == 2  # each exited 130/143 with the signal as save reason
    assert result["torn_tails"] == 0  # a graceful stop counts every byte it wrote


def test_fault_mix_finishes_exactly_and_reports_the_retry_overhead(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = run_torture(
        capsys, "--mode", "faults", "--harvests", "1", "--error-rate", "0.2", "--seed", "3"
    )
    result = assert_nothing_lost(report)
    assert code == 0
    assert result["requests"] > result["clean_requests"] > 0  # retries cost requests
    assert "request overhead" in " ".join(result["notes"])


def test_two_runs_at_once_one_proceeds_the_other_exits_3(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = run_torture(capsys, "--mode", "concurrent", "--trials", "1")
    result = assert_nothing_lost(report)
    assert code == 0
    assert result["interruptions"] == 2  # the race and the frozen holder


def test_the_table_and_the_exit_status_report_a_loss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The verdict is not a rubber stamp: a dataset missing a record fails the check."""
    torture = load_script()
    tally = torture.Tally("kill", expected=10, got=9, missing=1)
    assert not tally.ok
    table = torture.render([tally])
    assert "missing" in table.splitlines()[0] and "False" in table.splitlines()[1]


def test_hostile_mode_prints_a_row_per_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    code = load_script().main(["--mode", "hostile", "--scenario", "link-elsewhere"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = [line for line in out.splitlines() if line.startswith("| link-elsewhere |")]
    assert len(rows) == 1 and "| yes |" in rows[0], out
    assert "1 of 1 scenarios held" in out


def test_hostile_mode_fails_on_an_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_torture(capsys, "--mode", "hostile", "--scenario", "no-such-thing")
    assert code == 1 and not report["ok"]
    assert report["modes"][0]["problems"] == ["no scenario named 'no-such-thing'"]


def test_kills_while_the_org_changes_keep_every_item_of_the_year(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An edit every 5 ms (old items included: items enter the year while runs read and
    while killed runs are down): the finished dataset holds every item that was in the year
    when its final run started, in that version or newer, each id once curated, each
    version once raw."""
    code, report = run_torture(capsys, "--mode", "churn", "--kills", "4", "--seed", "2")
    result = assert_nothing_lost(report)
    assert code == 0
    assert result["interruptions"] == 4
    edits = int(" ".join(result["notes"]).split(" edits")[0].split()[-1])
    assert edits > 100  # the org really moved while it was harvested


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_fleet_storm_of_kill_9_loses_and_doubles_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = run_torture(
        capsys, "--mode", "fleet", "--kills", "5", "--seed", "4", "--latency-ms", "100"
    )
    mode = assert_nothing_lost(report)
    assert code == 0
    assert mode["interruptions"] == 5 and mode["rounds"] >= 2  # the clean one and the storm
    assert any("requests repeated per kill" in note for note in mode["notes"])
