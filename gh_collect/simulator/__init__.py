"""MUTATION API READY: Simulator.mutate(update=, repos=, seed=), add_repo(name, items=, seed=), now.
Hostile scenarios: add_pull(name, created_at=) (a new page behind a full last page),
add_alias(owner, name, of=) (same name under another owner, or a case-only twin),
fail(needle, status=, times=) / clear_failures() (a scripted outage of one list).
Toy endpoints: add_list_route(path, items) serves items(full_name) as one more repo list.

A simulated GitHub REST API on 127.0.0.1, for demos, end-to-end tests and benchmarks.

    with Simulator(SimulatorConfig(seed=0, repos=12)) as sim:
        harvest(sim.url)
        assert harvested == sim.ground_truth(year=2025)

The data is deterministic from the seed (``OrgModel``); the server behaves like GitHub as
documented in github-api.md (pagination, rate limits, conditional requests, redirects) and
injects seeded faults on demand (``parse_faults``).
"""

from __future__ import annotations

from gh_collect.simulator.faults import FAULT_NAMES, parse_faults
from gh_collect.simulator.model import RENAMED_TO, SCENARIO_REPOS, OrgModel
from gh_collect.simulator.server import Simulator, SimulatorConfig, run_forever, serve

__all__ = [
    "FAULT_NAMES",
    "RENAMED_TO",
    "SCENARIO_REPOS",
    "OrgModel",
    "Simulator",
    "SimulatorConfig",
    "parse_faults",
    "run_forever",
    "serve",
]
