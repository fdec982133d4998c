"""The command line: a thin layer over the library.

Every command turns a GhCollectError into its one-line message on stderr and its SPEC exit
code; only a bug shows a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from gh_collect import __version__
from gh_collect.config import Config, load_config
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import ConfigError, GhCollectError
from gh_collect.github.credentials import resolve_credentials
from gh_collect.harvest.orgs import OrgsResult, collect_orgs
from gh_collect.harvest.run import RunOptions, RunResult, collect
from gh_collect.report.progress import LiveReporter, LogReporter, Reporter
from gh_collect.report.status import read_status, render_status

F = TypeVar("F", bound=Callable[..., Any])

QUEUE_OPTION = click.option(
    "--queue",
    metavar="redis://HOST:PORT/DB",
    help="Many workers: the Redis work queue (see README, 'Many workers').",
)

CONFIG_OPTION = click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML config file (see config/example.yaml).",
)


def handles_errors(func: F) -> F:
    """Show a GhCollectError as one line and exit with its code; never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except GhCollectError as exc:
            click.echo(f"gh-collect: error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gh-collect")
def cli() -> None:
    """Harvest a GitHub organization's repos, pull requests and issues into a
    checkpointed, exactly-once JSONL + Parquet dataset.

    New here? Run `gh-collect demo`: it harvests a simulated org, no token needed.
    """


@cli.command("collect")
@CONFIG_OPTION
@click.option("--from-repo", metavar="OWNER/NAME", help="Start at this repo (discovery order).")
@click.option("--force", is_flag=True, help="Delete the checkpoint and raw data; start fresh.")
@click.option(
    "--retry-failed", is_flag=True, help="Retry repos that failed with a retryable error."
)
@click.option("--only", metavar="ENDPOINTS", help="Comma-separated endpoints to run, e.g. pulls.")
@click.option(
    "--on-rate-limit",
    type=click.Choice(["wait", "exit"]),
    default="wait",
    show_default=True,
    help="When the budget is spent: wait for the reset, or save and exit 75.",
)
@click.option("--quiet", is_flag=True, help="Only warnings and the final summary (for cron).")
@click.option("--silent", is_flag=True, help="Like --quiet, and no summary when all went well.")
@click.option("--max-requests", type=click.IntRange(min=1), help="Stop (exit 75) after N requests.")
@click.option("--dry-run", is_flag=True, help="Estimate the requests and time; collect nothing.")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@QUEUE_OPTION
@handles_errors
def collect_command(
    config_path: Path,
    from_repo: str | None,
    force: bool,
    retry_failed: bool,
    only: str | None,
    on_rate_limit: str,
    quiet: bool,
    silent: bool,
    max_requests: int | None,
    dry_run: bool,
    log_format: str,
    queue: str | None,
) -> None:
    """Run the harvest, resuming from the checkpoint.

    Credentials: github.auth in the config (tokens, a GitHub App); without it GITHUB_TOKEN,
    then GH_TOKEN, then `gh auth token`.

    With --queue: plan every unit into Redis, work on them with the workers that join
    (`gh-collect worker`), then export; output.root may be s3://BUCKET/PREFIX.

    Example: GITHUB_TOKEN=... gh-collect collect -c config/example.yaml --quiet
    """
    config = load_config(config_path)
    credentials = resolve_credentials(config)
    if dry_run:
        from gh_collect.harvest.plan import estimate_sync, requests_per_second

        for org in config.orgs:
            plan = estimate_sync(config.for_org(org), credentials)
            heading = f"{org}:\n" if len(config.orgs) > 1 else ""
            click.echo(heading + plan.describe(requests_per_second(config)))
        return
    options = RunOptions(
        from_repo=from_repo,
        force=force,
        retry_failed=retry_failed,
        only=tuple(part.strip() for part in only.split(",") if part.strip()) if only else None,
        on_rate_limit="exit" if on_rate_limit == "exit" else "wait",
        max_requests=max_requests,
    )
    reporter = make_reporter(quiet=quiet or silent, log_format=log_format)
    if queue is not None:
        fleet_run(config, credentials, options, queue, reporter, planner=True, silent=silent)
    refuse_object_store(config)
    if len(config.orgs) > 1:
        try:
            several = collect_orgs(config, credentials, options, reporter=reporter)
        finally:
            reporter.close()
        if not (silent and several.exit_code == 0):
            report_orgs(reporter, several)
        sys.exit(several.exit_code)
    try:
        result = collect(config, credentials, options, reporter=reporter)
    finally:
        reporter.close()
    if not (silent and result.exit_code == 0):
        report_result(reporter, result)
    sys.exit(result.exit_code)


@cli.command("worker")
@CONFIG_OPTION
@QUEUE_OPTION
@click.option(
    "--on-rate-limit",
    type=click.Choice(["wait", "exit"]),
    default="wait",
    show_default=True,
    help="When the budget is spent: wait for the reset, or give the units back and exit 75.",
)
@click.option("--quiet", is_flag=True, help="Only warnings and the final summary.")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@handles_errors
def worker_command(
    config_path: Path, queue: str | None, on_rate_limit: str, quiet: bool, log_format: str
) -> None:
    """Join a harvest planned by `collect --queue`: take units until all have ended.

    Run it on as many machines as you like, with the same config and queue; a killed
    worker's units are taken over after its lease (fleet.lease_s).

    Example: gh-collect worker -c org.yaml --queue redis://10.0.0.5:6379/0
    """
    if queue is None:
        raise click.UsageError("--queue redis://HOST:PORT/DB is required")
    config = load_config(config_path)
    credentials = resolve_credentials(config)
    options = RunOptions(on_rate_limit="exit" if on_rate_limit == "exit" else "wait")
    reporter = make_reporter(quiet=quiet, log_format=log_format)
    fleet_run(config, credentials, options, queue, reporter, planner=False, silent=False)


@cli.command("status")
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@QUEUE_OPTION
@handles_errors
def status_command(config_path: Path, as_json: bool, queue: str | None) -> None:
    """Show progress from the checkpoint, without touching the network.

    With --queue: workers, leases, units by state, throughput and budget, from Redis.

    Example: gh-collect status -c config/example.yaml --json
    """
    config = load_config(config_path)
    if queue is not None:
        from gh_collect.fleet.status import queue_status, render_queue_status

        fleet = queue_status(config, queue)
        click.echo(json.dumps(fleet, indent=2) if as_json else render_queue_status(fleet))
        return
    refuse_object_store(config)
    if len(config.orgs) == 1:
        status = read_status(dataset_paths(config))
        text = render_status(status)
    else:  # one status per org, keyed by org
        status = {"orgs": {org: read_status(dataset_paths(config, org)) for org in config.orgs}}
        text = "\n\n".join(
            f"== {org} ==\n{render_status(org_status)}"
            for org, org_status in status["orgs"].items()
        )
    click.echo(json.dumps(status, indent=2, default=str) if as_json else text)


@cli.command("export")
@CONFIG_OPTION
@handles_errors
def export_command(config_path: Path) -> None:
    """Build the curated Parquet dataset from the raw JSONL.

    Example: gh-collect export -c config/example.yaml
    """
    from gh_collect.curated.export import export_dataset, require_dataset
    from gh_collect.durable.lock import DatasetLock
    from gh_collect.report.manifest import update_export

    config = load_config(config_path)
    refuse_object_store(config)
    for org in config.orgs:
        paths = dataset_paths(config, org)
        require_dataset(paths, f"gh-collect collect -c {config_path}")  # before the lock
        with DatasetLock(paths.raw_dir, paths.lock, action="export after it finishes"):
            result = export_dataset(paths, ["repos", *config.endpoints])
            update_export(paths.manifest, result)
        click.echo(f"exported to {paths.curated_dir}: {result}")


@cli.command("report")
@CONFIG_OPTION
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="HTML file to write [default: <output.root>/report-<year>.html].",
)
@handles_errors
def report_command(config_path: Path, out: Path | None) -> None:
    """Render the year at a glance: one self-contained HTML page from the curated dataset.

    Example: gh-collect report -c config/example.yaml --out report.html
    """
    from gh_collect.report.yearly import write_report

    config = load_config(config_path)
    refuse_object_store(config)
    click.echo(f"report written to {write_report(config, out)}")


@cli.command("validate")
@CONFIG_OPTION
@handles_errors
def validate_command(config_path: Path) -> None:
    """Check the config and print its digest.

    Example: gh-collect validate -c config/example.yaml
    """
    config = load_config(config_path)
    click.echo(f"config OK: {config_path}")
    for org in config.orgs:
        one = config.for_org(org)
        suffix = f" ({org})" if len(config.orgs) > 1 else ""
        click.echo(f"digest{suffix}: {one.digest}")
        click.echo(f"dataset{suffix}: {dataset_paths(config, org).raw_dir}")


@cli.command("demo")
@click.option("--repos", default=12, show_default=True, help="Repos in the simulated org.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("gh-collect-demo"),
    show_default=True,
    help="Folder for the demo config and dataset.",
)
@handles_errors
def demo_command(repos: int, out: Path) -> None:
    """Harvest a simulated org on 127.0.0.1 end to end: no token, no network.

    Example: gh-collect demo --repos 20 --out /tmp/demo
    """
    from gh_collect.demo import run_demo

    sys.exit(run_demo(repos=repos, out=out, reporter=make_reporter(quiet=False)))


@cli.command("simulate")
@click.option("--port", default=8000, show_default=True, help="Port on 127.0.0.1 (0: any free).")
@click.option("--seed", default=0, show_default=True)
@click.option("--repos", default=12, show_default=True)
@click.option("--org", default="sample-org", show_default=True)
@click.option("--faults", default="", help="e.g. 502:0.03,reset:0.01,secondary:0.01")
@click.option("--latency-ms", default=0.0, show_default=True)
@click.option("--server-time-ms", default=0.0, show_default=True)
@click.option("--rate-limit", default=5000, show_default=True, help="Primary budget per hour.")
@click.option(
    "--history-years",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Years of history before the report year.",
)
@click.option(
    "--touched-share",
    default=0.03,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of older items updated in the report year.",
)
@click.option(
    "--churn-ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Edit a random pull or issue every N ms while serving (0: never).",
)
@click.option(
    "--slow-pages",
    default="",
    help="e.g. big-repo:40: that repo's list pages of more than 40 items answer 502/504",
)
@handles_errors
def simulate_command(
    port: int,
    seed: int,
    repos: int,
    org: str,
    faults: str,
    latency_ms: float,
    server_time_ms: float,
    rate_limit: int,
    history_years: float,
    touched_share: float,
    churn_ms: float,
    slow_pages: str,
) -> None:
    """Serve the GitHub API simulator on 127.0.0.1 until Ctrl+C.

    Example: gh-collect simulate --port 8000 --repos 50 --faults 502:0.02 --churn-ms 20

    Control API (unauthenticated, loopback): GET /__simulator/stats, GET
    /__simulator/truth?year=Y, GET or POST /__simulator/churn?ms=N.
    """
    from gh_collect.simulator import SimulatorConfig, parse_faults, run_forever
    from gh_collect.simulator.faults import parse_slow_pages

    try:
        fault_rates = parse_faults(faults) if faults else {}
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    try:
        slow_bounds = parse_slow_pages(slow_pages)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--slow-pages") from None
    config = SimulatorConfig(
        seed=seed,
        repos=repos,
        org=org,
        faults=fault_rates,
        latency_ms=latency_ms,
        server_time_ms=server_time_ms,
        rate_limit=rate_limit,
        history_years=history_years,
        touched_share=touched_share,
        churn_ms=churn_ms,
        slow_pages=slow_bounds,
    )
    run_forever(config, "127.0.0.1", port, announce=lambda url: click.echo(f"serving {url}"))


def fleet_run(
    config: Config,
    credentials: Any,
    options: RunOptions,
    queue: str,
    reporter: Reporter,
    *,
    planner: bool,
    silent: bool,
) -> None:
    """``collect --queue`` or ``worker``: run, summarise, exit with the fleet's code."""
    from gh_collect.fleet.run import run_fleet

    try:
        result = run_fleet(
            config, credentials, options, queue_url=queue, reporter=reporter, planner=planner
        )
    finally:
        reporter.close()
    states = ", ".join(f"{count} {state}" for state, count in sorted(result.states.items()))
    stats = result.stats
    if not (silent and result.exit_code == 0):
        reporter.summary(
            f"queue finished: units {states}; this worker walked {stats.units} units "
            f"({stats.taken_over} taken over, {stats.lost} handed over, {stats.commits} "
            f"commits); dataset in {result.store}",
            exit_code=result.exit_code,
        )
    sys.exit(result.exit_code)


def refuse_object_store(config: Config) -> None:
    """An object-store root is written only by ``--queue`` runs in this release."""
    from gh_collect.fleet.store import is_object_store_uri, store_uri

    if is_object_store_uri(config.output.root):
        raise ConfigError(
            f"output.root {store_uri(config.output.root)} is an object store: only "
            "`collect --queue` and `worker` write there in this release; set output.root "
            "to a local folder or add --queue redis://HOST:PORT/DB"
        )


def make_reporter(*, quiet: bool, log_format: str = "text") -> Reporter:
    if not quiet and log_format == "text" and sys.stdout.isatty():
        return LiveReporter()
    return LogReporter(fmt="json" if log_format == "json" else "text", quiet=quiet)


def dataset_paths(config: Config, org: str | None = None) -> DatasetPaths:
    """The dataset of ``org`` (default: the config's first, or only, org)."""
    return DatasetPaths(config.output.root, config.year, org or config.orgs[0])


def report_result(reporter: Reporter, result: RunResult, *, org: str | None = None) -> None:
    records = ", ".join(f"{count} {name}" for name, count in result.records.items())
    failed = f", {len(result.failures)} failed" if result.failures else ""
    whose = f"{org}: " if org else ""
    reporter.summary(
        f"{whose}collected {records} from {result.manifest.get('repos', 0)} repos in "
        f"{result.requests} requests{failed}; dataset in {result.paths.root}",
        records=result.records,
        failures=len(result.failures),
        requests=result.requests,
        exit_code=result.exit_code,
    )
    for failure in result.failures:
        reporter.warning(
            f"failed: {failure['repo']} {failure['endpoint']}: {failure['error']}", **failure
        )


def report_orgs(reporter: Reporter, several: OrgsResult) -> None:
    """One summary line for the run, then one line per org with its outcome."""
    outcomes = several.outcomes
    reporter.summary(
        f"{len(outcomes)} organizations: "
        + ", ".join(f"{o.org} {o.status} (exit {o.exit_code})" for o in outcomes)
        + f"; {several.requests} requests",
        orgs=[{"org": o.org, "status": o.status, "exit_code": o.exit_code} for o in outcomes],
        requests=several.requests,
        exit_code=several.exit_code,
    )
    for outcome in outcomes:
        if outcome.result is not None:
            report_result(reporter, outcome.result, org=outcome.org)
        else:
            reporter.warning(f"{outcome.org}: {outcome.message}", org=outcome.org)


def main() -> None:
    cli(prog_name="gh-collect")
