"""Every hostile scenario (tests/hostile_scenarios.py) against the real CLI, one test each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import hostile_scenarios  # noqa: F401 - registers the scenarios
from tests.hostile import SCENARIOS, HostileServer, Scenario, run_scenario

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as running:
        yield running


@pytest.mark.parametrize("spec", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_holds(server: HostileServer, spec: Scenario, tmp_path: Path) -> None:
    result = run_scenario(server, spec, tmp_path)
    assert result.held, f"case {spec.item} ({spec.what}): {result.problems}; steps {result.steps}"


def test_scenarios_cover_every_case_of_the_issue() -> None:
    cases = {spec.item for spec in SCENARIOS}
    assert cases == {str(n) for n in range(1, 15)}
    assert len({spec.name for spec in SCENARIOS}) == len(SCENARIOS), "org names must be unique"
