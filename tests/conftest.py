"""Shared fixtures: a simulator on 127.0.0.1 and the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from gh_collect import endpoints as declared
from gh_collect.durable.envelope import read_envelopes
from gh_collect.durable.paths import DatasetPaths
from gh_collect.simulator import Simulator, SimulatorConfig

# The fleet's real parts (redis-server, S3 on moto) as fixtures: tests/fleet_kit.py.
pytest_plugins = ["tests.fleet_kit"]

TOKEN = "ghp_e2eSECRETtoken0123456789"
ORG = "sample-org"
YEAR = 2025


@pytest.fixture
def start_simulator() -> Iterator[Any]:
    started: list[Simulator] = []

    def start(**overrides: Any) -> Simulator:
        sim = Simulator(SimulatorConfig(**{"seed": 7, "repos": 10, "org": ORG, **overrides}))
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def write_config(tmp_path: Path, api_url: str, **sections: Any) -> Path:
    config: dict[str, Any] = {
        "target": {"org": ORG},
        "year": YEAR,
        "github": {
            "api_url": api_url,
            "token_env": "GH_E2E_TOKEN",
            "timeout_s": 5,
            "retry_initial_s": 0.05,
        },
        "output": {"root": str(tmp_path / "data")},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli_env(token: str | None = TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GH_COLLECT_")}
    env.pop("GH_E2E_TOKEN", None)
    if token is not None:
        env["GH_E2E_TOKEN"] = token
    return env


def gh_collect_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gh_collect", *args]


def run_cli(
    *args: str, token: str | None = TOKEN, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        gh_collect_cmd(*args), env=cli_env(token), capture_output=True, text=True, timeout=timeout
    )


def dataset(tmp_path: Path) -> DatasetPaths:
    return DatasetPaths(tmp_path / "data", YEAR, ORG)


def key_of(endpoint: str) -> str:
    """The field identifying a raw record of ``endpoint`` (``id``; a commit's ``sha``; a
    GraphQL node's ``fullDatabaseId``); an endpoint declared only in the CLI's process (a
    plugin) is keyed by ``id``."""
    try:
        return declared.get(endpoint).record_key
    except KeyError:
        return "id"


def harvested_ids(paths: DatasetPaths, endpoint: str) -> Counter[Any]:
    """The keys of the raw records (``id``; a commit's ``sha``; a GraphQL node's
    ``fullDatabaseId``), each as often as written, fan-out units' files included."""
    key = key_of(endpoint)
    return Counter(
        line["data"][key]
        for path in sorted(paths.endpoint_dir(endpoint).rglob("*.jsonl"))
        for line in read_envelopes(path)
    )


def truth_ids(truth: dict[str, dict[str, list[dict[str, Any]]]], endpoint: str) -> Counter[Any]:
    key = key_of(endpoint)
    return Counter(obj[key] for objs in truth[endpoint].values() for obj in objs)


def assert_exactly_truth(
    paths: DatasetPaths,
    sim: Simulator,
    endpoints: Sequence[str] = ("pulls", "issues"),
    **filters: Any,
) -> None:
    truth = sim.ground_truth(year=YEAR, endpoints=tuple(endpoints), **filters)
    for endpoint in endpoints:
        got, expected = harvested_ids(paths, endpoint), truth_ids(truth, endpoint)
        missing, extra = expected - got, got - expected
        assert not missing and not extra, (
            f"{endpoint}: {sum(missing.values())} missing, {sum(extra.values())} duplicated/extra"
        )
        assert expected, f"ground truth for {endpoint} is empty: the test proves nothing"


@pytest.fixture(scope="module")
def shared() -> Iterator[Simulator]:
    """One read-only simulator (seed 0, 12 repos) for simulator tests that only look at
    data and headers."""
    with Simulator(SimulatorConfig(seed=0, repos=12, org=ORG)) as sim:
        yield sim


@pytest.fixture
def make() -> Iterator[Callable[..., Simulator]]:
    """Fresh simulators (seed 1, 8 repos, overridable) for tests that count, limit, churn
    or inject faults."""
    started: list[Simulator] = []

    def start(**overrides: Any) -> Simulator:
        sim = Simulator(SimulatorConfig(**{"seed": 1, "repos": 8, "org": ORG, **overrides}))
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()
