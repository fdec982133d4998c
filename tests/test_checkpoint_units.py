"""Format 2's units: fan-out units (a parent's share of an endpoint) and the state validator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gh_collect.durable.checkpoint import (
    CheckpointManager,
    CheckpointState,
    CheckpointStatus,
    UnitKey,
    UnitProgress,
    read_checkpoint,
)
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import CorruptCheckpointError
from gh_collect.report.status import summarize
from tests.test_checkpoint import ALPHA, MID, REPOS, ZETA, make_config, never, page, paths

FANOUT = UnitKey(ALPHA, "pulls", "123")


@pytest.fixture
def cp(tmp_path: Path) -> Iterator[CheckpointManager]:
    """A locked manager with a fresh checkpoint, three repos, and no automatic saves."""
    manager = CheckpointManager(*paths(tmp_path), strategy=never())
    with manager:
        manager.create_new(make_config())
        manager.update_repos(REPOS)
        yield manager


# --------------------------------------------------------------------- unit keys


def test_unit_key_names_and_parses() -> None:
    assert UnitKey(ALPHA, "pulls").name == "pulls"
    assert FANOUT.name == "pulls/123"
    assert str(FANOUT) == "sample-org/alpha pulls/123"
    assert UnitKey.parse(ALPHA, "pulls") == UnitKey(ALPHA, "pulls")
    assert UnitKey.parse(ALPHA, "pulls/123") == FANOUT
    assert UnitKey.parse(ALPHA, "reviews/a/b") == UnitKey(ALPHA, "reviews", "a/b")
    for key in (UnitKey(ALPHA, "pulls"), FANOUT, UnitKey(ALPHA, "reviews", "a/b")):
        assert UnitKey.parse(key.repo, key.name) == key  # the name round-trips


# --------------------------------------------------------------------- fan-out units


def test_an_added_fanout_unit_is_a_unit_of_its_endpoint(cp: CheckpointManager) -> None:
    cp.add_unit(FANOUT)
    assert list(cp.state.repos[ALPHA].units) == ["pulls", "issues", "pulls/123"]
    pulls = [key for key, _ in cp.state.units("pulls")]
    assert pulls == [UnitKey(ZETA, "pulls"), UnitKey(ALPHA, "pulls"), FANOUT, UnitKey(MID, "pulls")]
    assert FANOUT not in [key for key, _ in cp.state.units("issues")]
    assert cp.state.tally("pulls").count(CheckpointStatus.PENDING) == 4
    assert cp.unit(FANOUT) == UnitProgress()
    assert cp.units_to_process("pulls") == pulls
    assert cp.units_to_process("pulls", from_repo="mid-repo") == [UnitKey(MID, "pulls")]


def test_adding_a_tracked_fanout_unit_keeps_its_progress(cp: CheckpointManager) -> None:
    cp.add_unit(FANOUT)
    cp.record_page(FANOUT, page=1, records=4, resume_token="c2", byte_offset=40)
    cp.add_unit(FANOUT)
    assert (cp.unit(FANOUT).records_collected, cp.unit(FANOUT).resume_token) == (4, "c2")


def test_a_fanout_unit_is_counted_and_survives_save_and_load(cp: CheckpointManager) -> None:
    cp.add_unit(FANOUT)
    page(cp, ALPHA, "pulls", 1, 10, None, 100)
    cp.complete_unit(UnitKey(ALPHA, "pulls"), byte_offset=100)
    cp.record_page(FANOUT, page=1, records=3, resume_token="cursor-2", byte_offset=30)
    cp.save("fan-out")

    state = read_checkpoint(cp.checkpoint_path)
    assert state == cp.state
    saved = state.repos[ALPHA].units["pulls/123"]
    assert (saved.status, saved.resume_token, saved.byte_offset) == ("in_progress", "cursor-2", 30)
    tally = state.tally("pulls")
    assert (tally.pages, tally.records) == (2, 13)
    assert tally.count(CheckpointStatus.IN_PROGRESS) == 1
    assert tally.count(CheckpointStatus.COMPLETE) == 1
    assert state.records_per_repo("pulls") == {ZETA: 0, ALPHA: 13, MID: 0}
    status = summarize(state, DatasetPaths(cp.checkpoint_path.parent, 2025, "sample-org"))
    assert status["endpoints"]["pulls"]["pending"] == 3  # two repos' units and the fan-out
    assert state.repos[ALPHA].status == CheckpointStatus.IN_PROGRESS  # derived from all units

    reloaded = CheckpointManager(cp.checkpoint_path, cp.lock_path)
    reloaded.load()
    assert FANOUT in reloaded.units_to_process("pulls")
    assert reloaded.unit(FANOUT).last_page_written + 1 == 2


def test_a_failed_fanout_unit_is_reported_with_its_name(cp: CheckpointManager) -> None:
    cp.add_unit(FANOUT)
    cp.complete_unit(UnitKey(ALPHA, "pulls"), byte_offset=0)
    cp.complete_unit(UnitKey(ALPHA, "issues"), byte_offset=0)
    cp.fail_unit(FANOUT, "502 Bad Gateway", retryable=True)
    assert cp.state.failures() == [
        {"repo": ALPHA, "endpoint": "pulls/123", "error": "502 Bad Gateway", "retryable": True}
    ]
    assert cp.state.repos[ALPHA].status == CheckpointStatus.FAILED
    assert cp.state.repos[ALPHA].error == "pulls/123: 502 Bad Gateway"
    assert FANOUT not in cp.units_to_process("pulls")
    assert FANOUT in cp.units_to_process("pulls", retry_failed=True)
    cp.save("failed fan-out")
    status = summarize(
        read_checkpoint(cp.checkpoint_path), DatasetPaths(cp.checkpoint_path.parent, 2025, "o")
    )
    assert status["failures"] == [
        {"repo": ALPHA, "endpoint": "pulls/123", "error": "502 Bad Gateway"}
    ]
    assert status["repos"]["failed"] == 1
    cp.complete_unit(FANOUT, byte_offset=0)  # the retry completes the repo
    assert cp.state.repos[ALPHA].status == CheckpointStatus.COMPLETE


def test_fanout_units_go_through_the_same_lifecycle(cp: CheckpointManager) -> None:
    cp.add_unit(FANOUT)
    cp.start_unit(FANOUT)
    cp.record_page(FANOUT, page=1, records=2, resume_token="c2", byte_offset=20)
    with pytest.raises(ValueError, match="pulls/123: page 1 at offset 20 does not follow"):
        cp.record_page(FANOUT, page=1, records=2, resume_token="c2", byte_offset=20)
    cp.complete_unit(FANOUT, byte_offset=20)
    cp.begin_refresh(FANOUT)
    assert cp.unit(FANOUT).refreshing and cp.unit(FANOUT).holds_data
    cp.reset_unit(FANOUT)
    assert cp.unit(FANOUT) == UnitProgress()
    assert cp.unit(UnitKey(ALPHA, "pulls")) == UnitProgress()  # its repo's unit untouched


@pytest.mark.parametrize(
    ("key", "error"),
    [
        (UnitKey(ALPHA, "pulls"), ValueError),  # parent None: the repo's own unit
        (UnitKey(ALPHA, "commits", "1"), ValueError),  # not an endpoint of the config
        (UnitKey(ALPHA, "discovery", "1"), ValueError),  # a phase, but not an endpoint
        (UnitKey("sample-org/nowhere", "pulls", "1"), KeyError),
    ],
    ids=["no-parent", "unknown-endpoint", "discovery", "unknown-repo"],
)
def test_add_unit_refuses_what_is_not_a_fanout_of_a_phase(
    cp: CheckpointManager, key: UnitKey, error: type[Exception]
) -> None:
    before = cp.state.model_dump()
    with pytest.raises(error):
        cp.add_unit(key)
    assert cp.state.model_dump() == before


def test_unknown_fanout_unit_is_a_key_error(cp: CheckpointManager) -> None:
    with pytest.raises(KeyError, match="pulls/9"):
        cp.unit(UnitKey(ALPHA, "pulls", "9"))
    with pytest.raises(KeyError):
        cp.fail_unit(UnitKey(ALPHA, "pulls", "9"), "x", retryable=False)


def test_an_empty_parent_is_refused(cp: CheckpointManager) -> None:
    with pytest.raises(ValueError):
        cp.add_unit(UnitKey(ALPHA, "pulls", ""))
    keys = [key for key, _ in cp.state.units("pulls")]
    assert len(keys) == len(set(keys))


# --------------------------------------------------------------------- the validator


def _state_dict(tmp_path: Path) -> dict[str, Any]:
    with CheckpointManager(*paths(tmp_path / "source"), strategy=never()) as manager:
        manager.create_new(make_config())
        manager.update_repos(REPOS)
        manager.add_unit(FANOUT)
        manager.save("source")
    data: dict[str, Any] = json.loads(manager.checkpoint_path.read_bytes())
    CheckpointState.model_validate(data)  # the undamaged state is valid
    return data


def _rename_repo(data: dict[str, Any]) -> None:
    data["repos"][ALPHA]["full_name"] = "other/alpha"


def _drop_phase_unit(data: dict[str, Any]) -> None:
    del data["repos"][ALPHA]["units"]["issues"]


def _extra_endpoint_unit(data: dict[str, Any]) -> None:
    data["repos"][ALPHA]["units"]["commits"] = {}


def _stray_fanout(data: dict[str, Any]) -> None:
    data["repos"][ALPHA]["units"]["commits/7"] = {}


def _no_discovery_phase(data: dict[str, Any]) -> None:
    del data["phases"]["discovery"]


def _unknown_unit_field(data: dict[str, Any]) -> None:
    data["repos"][ALPHA]["units"]["pulls/123"]["next_url"] = "https://x/p2"


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_rename_repo, "repos key 'sample-org/alpha' differs from its full_name 'other/alpha'"),
        (_drop_phase_unit, "repo sample-org/alpha units ['pulls'] != phases"),
        (_extra_endpoint_unit, "units ['commits', 'issues', 'pulls'] != phases"),
        (_stray_fanout, "repo sample-org/alpha has units of unknown endpoints ['commits']"),
        (_no_discovery_phase, "phases lacks 'discovery'"),
        (_unknown_unit_field, "repos.sample-org/alpha.units.pulls/123.next_url"),
    ],
    ids=["key-not-full-name", "missing-phase-unit", "extra-unit", "stray-fanout",
         "no-discovery", "format1-field-in-format2"],
)  # fmt: skip
def test_the_validator_refuses_inconsistent_states(
    tmp_path: Path, damage: Any, expected: str
) -> None:
    data = _state_dict(tmp_path)
    damage(data)
    with pytest.raises(ValidationError):
        CheckpointState.model_validate(data)
    checkpoint_path = tmp_path / "checkpoint.json"
    raw = json.dumps(data).encode()
    checkpoint_path.write_bytes(raw)
    with pytest.raises(CorruptCheckpointError) as info:
        read_checkpoint(checkpoint_path)
    assert expected in str(info.value)
    assert checkpoint_path.read_bytes() == raw
