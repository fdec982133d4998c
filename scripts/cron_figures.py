"""What a nightly cron run costs: full harvest vs no-change refresh vs 1%-changed refresh.

    .venv/bin/python scripts/cron_figures.py [--repos 12] [--seed 0] [--changed 0.01] [--json]

Runs in-process against the simulator on 127.0.0.1 and reads its counters: requests sent,
primary budget spent (304s are free), 304 answers, wall time; then the dry-run estimate's
error against the full run's real request count.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from gh_collect.config import Config
from gh_collect.harvest.plan import estimate_sync
from gh_collect.harvest.run import collect
from gh_collect.simulator import Simulator, SimulatorConfig

TOKEN = "cron-figures-token"


def measure(sim: Simulator, config: Config) -> dict[str, Any]:
    sim.reset_stats()
    started = time.perf_counter()
    result = collect(config, TOKEN)
    stats = sim.stats()
    return {
        "requests": stats["requests"],
        "budget_spent": stats["budget_spent"],
        "not_modified": stats["not_modified"],
        "records_appended": sum(result.records.values()),
        "wall_s": round(time.perf_counter() - started, 2),
    }


def run(repos: int, seed: int, changed: float) -> dict[str, Any]:
    with (
        Simulator(SimulatorConfig(seed=seed, repos=repos)) as sim,
        tempfile.TemporaryDirectory() as d,
    ):
        config = Config.model_validate(
            {
                "target": {"org": "sample-org"},
                "year": 2025,
                "github": {"api_url": sim.url},
                "output": {"root": str(Path(d) / "data")},
            }
        )
        sim.reset_stats()
        plan = estimate_sync(config, TOKEN)
        dry_spent = sim.stats()["budget_spent"]
        full = measure(sim, config)
        same = measure(sim, config)
        objects = sum(len(v) for e in sim.ground_truth(year=2025).values() for v in e.values())
        touched = max(1, round(objects * changed))
        sim.mutate(update=touched, seed=seed + 1)
        some = measure(sim, config)
    return {
        "org": {"repos": repos, "seed": seed, "objects_in_window": objects},
        "full": full,
        "no_change_refresh": same,
        "changed_refresh": {**some, "objects_changed": touched},
        "dry_run": {
            "estimate": plan.requests,
            "real": full["requests"],
            "error": round((plan.requests - full["requests"]) / full["requests"], 4),
            "budget_spent": dry_spent,
        },
    }


def table(figures: dict[str, Any]) -> str:
    rows = [
        "| run | requests | budget spent | 304s | wall s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("full", "no_change_refresh", "changed_refresh"):
        f = figures[name]
        rows.append(
            f"| {name} | {f['requests']} | {f['budget_spent']} | {f['not_modified']} | "
            f"{f['wall_s']} |"
        )
    dry = figures["dry_run"]
    rows.append(
        f"\ndry run: estimated {dry['estimate']} requests, real {dry['real']} "
        f"(error {dry['error']:+.1%}), the estimate spent {dry['budget_spent']} budget"
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.repos, args.seed, args.changed)
    print(json.dumps(figures, indent=2) if args.json else table(figures))


if __name__ == "__main__":
    main()
