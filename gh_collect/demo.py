"""``gh-collect demo``: the one-command first run, against the simulator on 127.0.0.1.

It harvests a simulated org exactly as ``collect`` would a real one, then checks the result
against the simulator's ground truth, so a new user sees both what the tool makes and that
it is right.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from gh_collect import endpoints
from gh_collect.config import Config, GitHubSettings, OutputSettings, TargetSettings
from gh_collect.durable.envelope import read_envelopes
from gh_collect.durable.paths import DatasetPaths
from gh_collect.harvest.run import RunOptions, RunResult, collect
from gh_collect.report.progress import Reporter
from gh_collect.report.yearly import write_report
from gh_collect.simulator import SCENARIO_REPOS, Simulator, SimulatorConfig

DEMO_ORG = "sample-org"
DEMO_YEAR = 2025
DEMO_TOKEN = "demo-token-not-a-secret"
# Not GH_COLLECT_*: that prefix is the config-override namespace, and the printed commands
# for the demo dataset must run with this variable set.
DEMO_TOKEN_ENV = "GH_DEMO_TOKEN"


def run_demo(*, repos: int, out: Path, reporter: Reporter) -> int:
    with Simulator(SimulatorConfig(seed=0, repos=repos, org=DEMO_ORG)) as sim:
        config = demo_config(sim.url, out)
        _write_config(config, out / "demo.yaml")
        result = collect(config, DEMO_TOKEN, RunOptions(force=True), reporter=reporter)
        truth = sim.ground_truth(year=DEMO_YEAR, endpoints=tuple(config.endpoints))
    reporter.close()
    problems = compare_with_truth(result.paths, truth)
    report = write_report(config, out / "report.html")
    print(_summary(result, out, problems, report))
    return 1 if problems else 0


def demo_config(api_url: str, out: Path) -> Config:
    return Config(
        target=TargetSettings(org=DEMO_ORG),
        year=DEMO_YEAR,
        endpoints=endpoints.names(),  # the demo shows everything gh-collect can collect
        github=GitHubSettings(api_url=api_url, token_env=DEMO_TOKEN_ENV),
        output=OutputSettings(root=out / "data"),
    )


def compare_with_truth(paths: DatasetPaths, truth: dict[str, dict[str, list[Any]]]) -> list[str]:
    """Differences between the raw dataset and what a correct harvest holds (keys per
    endpoint: ids, a commit's sha)."""
    problems = []
    for endpoint, per_repo in truth.items():
        key = endpoints.get(endpoint).record_key
        expected = Counter(obj[key] for objs in per_repo.values() for obj in objs)
        got = Counter(
            line["data"][key]
            for path in paths.endpoint_dir(endpoint).rglob("*.jsonl")
            for line in read_envelopes(path)
        )
        missing, extra = expected - got, got - expected
        if missing or extra:
            problems.append(
                f"{endpoint}: {sum(missing.values())} missing, {sum(extra.values())} extra"
            )
    return problems


def _write_config(config: Config, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = config.model_dump(
        mode="json", include={"target", "year", "endpoints", "github", "output"}
    )
    header = "# Written by `gh-collect demo`; api_url points at the demo's simulator, gone now.\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _python() -> str:
    """The interpreter running the demo: the one that has gh_collect and pyarrow."""
    return shlex.quote(os.path.relpath(sys.executable))


def _summary(result: RunResult, out: Path, problems: list[str], report: Path) -> str:
    expected_failures = {SCENARIO_REPOS["vanished"]}
    unexpected = [f for f in result.failures if f["repo"].split("/")[-1] not in expected_failures]
    lines = [
        "",
        f"Demo harvest of the simulated org '{DEMO_ORG}', year {DEMO_YEAR}:",
        *(f"  {name:<15} {count:>6} records" for name, count in result.records.items()),
        f"  {result.requests} API requests; raw JSONL in {result.paths.raw_dir}",
        f"  curated Parquet in {result.paths.curated_dir}",
        f"  {len(result.failures)} repo x endpoint failed as scripted (a repo that vanishes"
        " after discovery answers 404)"
        if result.failures and not unexpected
        else "",
        "  verified: the dataset equals the simulator's ground truth, every record once"
        if not problems
        else "  MISMATCH with the ground truth: " + "; ".join(problems),
        "",
        "Query it, e.g. merged pull requests per repo:",
        f'  {_python()} -c "import pyarrow.dataset as ds;'
        f" t = ds.dataset('{out / 'data' / 'curated'}',"
        " partitioning='hive').to_table(filter=ds.field('endpoint') == 'pulls');"
        " merged = t.filter(t['merged_at'].is_valid());"
        " print(merged.group_by('repo').aggregate([('id', 'count')]))\"",
        "The year at a glance (open it in a browser; it needs no network):",
        f"  {report}",
        "Status of the checkpoint:",
        f"  {_python()} -m gh_collect status -c {out / 'demo.yaml'}",
    ]
    return "\n".join(lines)
