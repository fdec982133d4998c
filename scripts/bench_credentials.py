"""Benchmark: a harvest bound by the rate limit, with 1 credential, 3, and 3 of one user.

    .venv/bin/python scripts/bench_credentials.py                 # k = 3 and 9, ~2 minutes
    .venv/bin/python scripts/bench_credentials.py --needs 9 --reset 5 --json

Runs in-process against the simulator on 127.0.0.1 with a small budget and a short reset
(``--reset`` seconds instead of GitHub's hour), so the time a harvest takes is the time it
waits for resets. First a calibration run with an unlimited budget counts the budget a full
harvest of the org spends (S); then, for each ``--needs`` k, the budget of one credential is
set to S/k and the same harvest runs with:

- ``1 token``: waits k - 1 times (about);
- ``3 tokens``: three users, the pool spends all three before it waits: about k/3 - 1 waits,
  so about 3 times faster once k is large (the budget is the bound, not the requests);
- ``3 tokens, 1 user``: the pool sees (``GET /user``) that they share one budget, says so,
  and it is no faster than one token;
- ``1 token, exit 75``: ``--on-rate-limit exit`` and a rerun after each reset (a cron job's
  way), for the first ``--needs`` only: the reruns it takes, and the dataset it ends with.
  Each rerun first re-checks what earlier runs read (mostly free 304s, but a list's last
  page is re-read in full): on GitHub's 5,000 an hour that is noise, on a budget of ten it
  is most of a window, so the figure says "it finishes", not how fast.

Every run's dataset is checked against the simulator's ground truth (every record once).
Wall time includes the export (about a second); ``waits`` counts 403s the server answered
(``primary_limited``: budget the pool misjudged, ideally 0) separately.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gh_collect.config import Config  # noqa: E402
from gh_collect.demo import compare_with_truth  # noqa: E402
from gh_collect.errors import RateLimitExit  # noqa: E402
from gh_collect.github.credentials import resolve_credentials  # noqa: E402
from gh_collect.harvest.run import RunOptions, collect  # noqa: E402
from gh_collect.report.progress import LogReporter  # noqa: E402
from gh_collect.simulator import Simulator, SimulatorConfig  # noqa: E402

ORG, YEAR = "sample-org", 2025
TOKENS = ("bench-token-a", "bench-token-b", "bench-token-c")
SETUPS: dict[str, tuple[int, bool]] = {  # name -> (tokens, all of one user)
    "1 token": (1, False),
    "3 tokens": (3, False),
    "3 tokens, 1 user": (3, True),
}


def sim_config(
    args: argparse.Namespace, budget: int, tokens: int, one_user: bool
) -> SimulatorConfig:
    names = TOKENS[:tokens]
    users = {"one": names} if one_user else {f"user-{i}": (t,) for i, t in enumerate(names)}
    return SimulatorConfig(
        seed=args.seed,
        repos=args.repos,
        org=ORG,
        rate_limit=budget,
        reset_seconds=args.reset,
        users=users,
        scenarios=False,
        history_years=1,
        latency_ms=args.latency_ms,
    )


def harvest_config(sim: Simulator, root: Path, tokens: int) -> tuple[Config, dict[str, str]]:
    env = {f"BENCH_TOKEN_{i}": TOKENS[i] for i in range(tokens)}
    config = Config.model_validate(
        {
            "target": {"org": ORG},
            "year": YEAR,
            "github": {"api_url": sim.url, "auth": {"tokens_env": list(env)}},
            "rate_limit": {"pause_below": 0},
            "output": {"root": str(root)},
        }
    )
    return config, env


def one_run(args: argparse.Namespace, budget: int, tokens: int, one_user: bool) -> dict[str, Any]:
    with (
        Simulator(sim_config(args, budget, tokens, one_user)) as sim,
        tempfile.TemporaryDirectory() as d,
    ):
        config, env = harvest_config(sim, Path(d) / "data", tokens)
        started = time.perf_counter()
        result = collect(config, resolve_credentials(config, env), reporter=LogReporter(quiet=True))
        wall = time.perf_counter() - started
        stats = sim.stats()
        problems = compare_with_truth(result.paths, sim.ground_truth(year=YEAR))
    return {
        "wall_s": round(wall, 2),
        "budget_spent": stats["budget_spent"],
        "requests": stats["requests"],
        "refused_403": stats["primary_limited"],
        "exact": not problems and result.exit_code == 0,
    }


def exit_mode(args: argparse.Namespace, budget: int) -> dict[str, Any]:
    """One token, ``--on-rate-limit exit``, rerun after each reset until it finishes."""
    with Simulator(sim_config(args, budget, 1, False)) as sim, tempfile.TemporaryDirectory() as d:
        config, env = harvest_config(sim, Path(d) / "data", 1)
        credentials = resolve_credentials(config, env)
        started, runs = time.perf_counter(), 0
        while True:
            runs += 1
            try:
                result = collect(config, credentials, RunOptions(on_rate_limit="exit"))
                break
            except RateLimitExit:
                time.sleep(args.reset + 1)  # a cron job would run again after the reset
        wall = time.perf_counter() - started
        problems = compare_with_truth(result.paths, sim.ground_truth(year=YEAR))
        stats = sim.stats()
    return {
        "wall_s": round(wall, 2),
        "runs": runs,
        "budget_spent": stats["budget_spent"],
        "requests": stats["requests"],
        "refused_403": stats["primary_limited"],
        "exact": not problems and result.exit_code == 0,
    }


def calibrate(args: argparse.Namespace) -> int:
    """The budget one full harvest of the org spends."""
    return int(one_run(args, 1_000_000, 1, False)["budget_spent"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    spent = calibrate(args)
    figures: dict[str, Any] = {
        "org": {"repos": args.repos, "seed": args.seed, "budget_spent_by_a_harvest": spent},
        "reset_s": args.reset,
        "cases": [],
    }
    for needs in args.needs:
        budget = math.ceil(spent / needs)
        case: dict[str, Any] = {"needs": needs, "budget_per_credential": budget, "runs": {}}
        for name, (tokens, one_user) in SETUPS.items():
            case["runs"][name] = one_run(args, budget, tokens, one_user)
        if needs == args.needs[0]:  # reruns re-check what earlier runs read: slow on tiny budgets
            case["runs"]["1 token, exit 75 and rerun"] = exit_mode(args, budget)
        one, three = case["runs"]["1 token"]["wall_s"], case["runs"]["3 tokens"]["wall_s"]
        case["speedup_3_vs_1"] = round(one / three, 2)
        figures["cases"].append(case)
    return figures


def table(figures: dict[str, Any]) -> str:
    org = figures["org"]
    lines = [
        f"org: {org['repos']} repos, a harvest spends {org['budget_spent_by_a_harvest']} "
        f"budget; reset every {figures['reset_s']} s",
    ]
    for case in figures["cases"]:
        lines += [
            "",
            f"needs {case['needs']}x one credential's budget ({case['budget_per_credential']} "
            f"a window): 3 tokens are {case['speedup_3_vs_1']}x faster than 1",
            "",
            "| credentials | wall s | runs | budget spent | requests | 403s | exact |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for name, f in case["runs"].items():
            lines.append(
                f"| {name} | {f['wall_s']} | {f.get('runs', 1)} | {f['budget_spent']} | "
                f"{f['requests']} | {f['refused_403']} | {'yes' if f['exact'] else 'NO'} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=40)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--reset", type=float, default=3.0, help="seconds a budget window lasts")
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--needs", type=int, nargs="+", default=[3, 9])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args)
    print(json.dumps(figures, indent=2) if args.json else table(figures))
    if not all(r["exact"] for case in figures["cases"] for r in case["runs"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
