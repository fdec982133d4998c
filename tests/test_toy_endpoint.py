"""A new endpoint is its declaration plus the server's route: nothing else changes.

The toy endpoint (``tests/toy_endpoint.py``) is harvested by the real CLI against the
simulator with a route added for it, killed with SIGKILL mid-walk and resumed, refreshed
after a change, and exported, each time checked against what the route served.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from gh_collect.durable.checkpoint import read_checkpoint
from gh_collect.endpoints import PLUGINS_ENV
from gh_collect.simulator import Simulator, SimulatorConfig
from tests.conftest import ORG, cli_env, dataset, gh_collect_cmd, harvested_ids, write_config

pytestmark = pytest.mark.e2e

TOYS_PER_REPO = 230  # three pages of 100


def toy(repo: str, index: int) -> dict[str, Any]:
    """Oldest created first; one in ten only touched before the year, the last ones after it."""
    ident = (abs(hash(repo)) % 10_000) * 1000 + index
    month = 1 + index % 12
    created = f"2025-{month:02d}-01T00:00:00Z" if index < 200 else "2026-02-01T00:00:00Z"
    if index % 10 == 0:
        created = updated = "2024-06-01T00:00:00Z"
    else:
        updated = created
    return {"id": ident, "title": f"toy {index}", "colour": "red", "created_at": created,
            "updated_at": updated}  # fmt: skip


class Toys:
    """What the route serves, per repo, oldest created first; a test may change it."""

    def __init__(self) -> None:
        self.by_repo: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, full_name: str) -> list[dict[str, Any]]:
        if full_name not in self.by_repo:
            items = [toy(full_name, i) for i in range(TOYS_PER_REPO)]
            self.by_repo[full_name] = sorted(items, key=lambda t: (t["created_at"], t["id"]))
        return self.by_repo[full_name]

    def truth(self) -> Counter[int]:
        """The ids the year keeps: created before 2026, updated in 2025 or later."""
        return Counter(
            t["id"]
            for items in self.by_repo.values()
            for t in items
            if t["created_at"] < "2026" and t["updated_at"] >= "2025"
        )


@pytest.fixture
def served() -> Any:
    toys = Toys()
    sim = Simulator(SimulatorConfig(seed=5, repos=3, org=ORG, scenarios=False, latency_ms=40))
    sim.add_list_route("/repos/{owner}/{repo}/toys", toys)
    sim.start()
    yield sim, toys
    sim.stop()


def env() -> dict[str, str]:
    return {**cli_env(), PLUGINS_ENV: "tests.toy_endpoint"}


def collect(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        gh_collect_cmd("collect", "-c", str(config), "--quiet"),
        env=env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def toy_pages_saved(checkpoint: Path) -> int:
    try:
        state = json.loads(checkpoint.read_text())
    except (OSError, ValueError):
        return 0
    return sum(repo["units"]["toys"]["pages_collected"] for repo in state["repos"].values())


def test_a_toy_endpoint_is_harvested_killed_resumed_refreshed_and_exported(
    served: Any, tmp_path: Path
) -> None:
    sim, toys = served
    config = write_config(
        tmp_path, sim.url, endpoints=["toys"], github={"concurrency": 1},
        checkpoint={"every_pages": 1},
    )  # fmt: skip
    paths = dataset(tmp_path)

    # killed with SIGKILL once some toy pages are saved, before the walk is done
    proc = subprocess.Popen(
        gh_collect_cmd("collect", "-c", str(config), "--quiet"), env=env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while toy_pages_saved(paths.checkpoint) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    state = read_checkpoint(paths.checkpoint)
    assert sum(r.units["toys"].pages_collected for r in state.repos.values()) >= 2
    assert not all(r.units["toys"].status == "complete" for r in state.repos.values())

    # resumed: every kept toy exactly once, in raw
    done = collect(config)
    assert done.returncode == 0, done.stderr
    assert harvested_ids(paths, "toys") == toys.truth()
    state = read_checkpoint(paths.checkpoint)
    assert {r.units["toys"].status for r in state.repos.values()} == {"complete"}
    assert sum(r.units["toys"].records_collected for r in state.repos.values()) == sum(
        toys.truth().values()
    )

    # refreshed: one toy changed; only it is appended again, the export shows the change
    repo = next(iter(toys.by_repo))
    changed = next(t for t in toys.by_repo[repo] if t["updated_at"] >= "2025")
    changed.update(colour="blue", updated_at="2025-12-30T00:00:00Z")
    before = sim.stats()["requests"]
    refreshed = collect(config)
    assert refreshed.returncode == 0, refreshed.stderr
    assert sim.stats()["requests"] > before
    raw = harvested_ids(paths, "toys")
    assert raw - toys.truth() == Counter({changed["id"]: 1})  # the new version, once
    assert set(raw) == set(toys.truth())

    # exported: one row per toy, the latest version
    table = pq.read_table(paths.curated_endpoint_dir("toys")).to_pylist()
    assert Counter(row["id"] for row in table) == toys.truth()
    colours = {row["id"]: row["colour"] for row in table}
    assert colours[changed["id"]] == "blue"
    assert set(colours.values()) == {"red", "blue"}
