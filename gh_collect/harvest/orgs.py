"""Several organizations in one config (``target.orgs``): one run, one pool, a dataset each.

Each org is harvested as if the config named it alone (``Config.for_org``): its own dataset
folder (``target=<org>``), lock, checkpoint, digest and manifest, so an org can be added to
or dropped from the list without invalidating anyone's checkpoint. The orgs run one after
the other in the config's order, inside one event loop, sharing one credential pool (a
token's budget is the same whichever org it reads) and one request quota
(``--max-requests`` caps the run, not each org).

How each org ends is its own outcome: another run holding its lock (exit 3) or a
configuration problem of that org (exit 2: not found, SAML) does not stop the others. What
stops them all: a signal (130/143) and the rate limit with ``--on-rate-limit exit`` or the
run's quota (75), since every org draws on the same budget. The run's exit code is the
worst outcome (``worst_exit_code``), except that 3 counts only when every org was locked.
``orgs.json`` beside the datasets (``raw/year=Y/source=github/``) records every org's
outcome, for programs; each org's ``manifest.json`` is its own run's, as with one org.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from gh_collect.config import Config
from gh_collect.durable.paths import DatasetPaths
from gh_collect.durable.storage import write_atomic
from gh_collect.errors import GhCollectError, Interrupted, LockHeldError, RateLimitExit, UsageError
from gh_collect.github.credentials import Credentials
from gh_collect.github.pool import PoolView
from gh_collect.github.quota import Quota
from gh_collect.harvest.context import RunOptions
from gh_collect.harvest.run import RunResult, _fewer_gc_passes, _Run, as_credentials, make_pool
from gh_collect.report.progress import LogReporter, Reporter

__all__ = ["ORGS_FILE", "OrgOutcome", "OrgsResult", "collect_orgs", "worst_exit_code"]

ORGS_FILE = "orgs.json"
ORGS_FORMAT = 1
# How bad an outcome is, to pick the run's exit code: a locked org (3) means another run is
# working on it, so it counts only when every org was locked.
_SEVERITY = {0: 0, 3: 0, 75: 1, 1: 2, 2: 3}


@dataclass
class OrgOutcome:
    """How one org's harvest ended: its exit code, a word for it, and a one-line message."""

    org: str
    exit_code: int
    status: str  # complete, failed, partial, locked, rate_limited, interrupted, error, not_run
    message: str = ""
    result: RunResult | None = None

    def as_json(self, root: Path) -> dict[str, Any]:
        manifest = None
        if self.result is not None:
            manifest = str(self.result.paths.manifest.relative_to(root))
        return {
            "org": self.org,
            "exit_code": self.exit_code,
            "status": self.status,
            "message": self.message,
            "manifest": manifest,
        }


@dataclass
class OrgsResult:
    """Every org's outcome, in the config's order; ``exit_code`` is the run's."""

    outcomes: list[OrgOutcome] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def exit_code(self) -> int:
        return worst_exit_code(outcome.exit_code for outcome in self.outcomes)

    @property
    def requests(self) -> int:
        return sum(o.result.requests for o in self.outcomes if o.result is not None)


def worst_exit_code(codes: Iterable[int]) -> int:
    """The run's exit code from its orgs': a signal first, then 2, 1, 75, 0; 3 only when
    every org was locked (each other org went on, or was never blocked by it)."""
    listed = list(codes)
    if not listed:
        return 0
    if all(code == 3 for code in listed):
        return 3
    interrupted = [code for code in listed if code >= 128]
    if interrupted:
        return interrupted[0]
    return max(listed, key=lambda code: _SEVERITY.get(code, 2))


def collect_orgs(
    config: Config,
    token: str | Credentials,
    options: RunOptions | None = None,
    *,
    reporter: Reporter | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> OrgsResult:
    """Harvest every org of ``config`` (``target.orgs``, or the one ``target.org``) with one
    pool; never raises for one org's failure (see the module docstring): the outcome says."""
    options = options or RunOptions()
    reporter = reporter or LogReporter(quiet=True)
    credentials = as_credentials(token, config)
    per_org = _options_per_org(config.orgs, options)
    with _fewer_gc_passes():
        result = asyncio.run(_run_all(config, credentials, per_org, reporter, transport))
    if any(outcome.status != "locked" for outcome in result.outcomes):
        write_orgs_file(config, result, reporter)
    return result


async def _run_all(
    config: Config,
    credentials: Credentials,
    per_org: dict[str, RunOptions],
    reporter: Reporter,
    transport: httpx.AsyncBaseTransport | None,
) -> OrgsResult:
    pool = make_pool(config, credentials, reporter)
    first = next(iter(per_org.values()))
    quota = Quota(
        max_requests=first.max_requests, budget_fraction=config.rate_limit.budget_fraction
    )
    result = OrgsResult()
    stopped: OrgOutcome | None = None
    for org, options in per_org.items():
        if stopped is not None:
            message = f"not run: the run stopped at {stopped.org} ({stopped.status})"
            result.outcomes.append(OrgOutcome(org, stopped.exit_code, "not_run", message))
            continue
        reporter.info(f"organization {org}")
        run = _Run(config.for_org(org), options, reporter, quota=quota)
        outcome = await _one_org(run, org, pool.view(org), transport)
        result.outcomes.append(outcome)
        if outcome.status in ("interrupted", "rate_limited"):
            stopped = outcome
    return result


async def _one_org(
    run: _Run, org: str, view: PoolView, transport: httpx.AsyncBaseTransport | None
) -> OrgOutcome:
    """One org's harvest, its ending told as an outcome rather than raised."""
    try:
        result = await run.execute(view, transport)
    except LockHeldError as exc:
        return OrgOutcome(org, exc.exit_code, "locked", exc.message)
    except Interrupted as exc:
        return OrgOutcome(org, exc.exit_code, "interrupted", exc.message)
    except RateLimitExit as exc:
        return OrgOutcome(org, exc.exit_code, "rate_limited", exc.message)
    except GhCollectError as exc:
        return OrgOutcome(org, exc.exit_code, "error", exc.message)
    status = str(result.manifest.get("status", "complete"))
    return OrgOutcome(org, result.exit_code, status, result=result)


def _options_per_org(orgs: list[str], options: RunOptions) -> dict[str, RunOptions]:
    """Each org's options: ``--from-repo OWNER/NAME`` applies to OWNER's org only."""
    if options.from_repo is None:
        return dict.fromkeys(orgs, options)
    owner = options.from_repo.partition("/")[0].lower()
    if owner not in {org.lower() for org in orgs}:
        raise UsageError(
            f"--from-repo {options.from_repo}: {owner} is not among target.orgs "
            f"({', '.join(orgs)}); give OWNER/NAME of a repo of one of them"
        )
    others = replace(options, from_repo=None)
    return {org: options if org.lower() == owner else others for org in orgs}


def orgs_file(config: Config) -> Path:
    """``raw/year=Y/source=github/orgs.json``: beside the orgs' dataset folders."""
    return DatasetPaths(config.output.root, config.year, "-").raw_dir.parent / ORGS_FILE


def write_orgs_file(config: Config, result: OrgsResult, reporter: Reporter) -> None:
    """Every org's outcome of this run, atomically; best effort (the datasets are what
    matters, and each has its manifest): a failure is one warning, not the run's end."""
    path = orgs_file(config)
    root = path.parent
    body = {
        "format_version": ORGS_FORMAT,
        "year": config.year,
        "started_at": result.started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "exit_code": result.exit_code,
        "orgs": [outcome.as_json(root) for outcome in result.outcomes],
    }
    try:
        root.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode())
    except OSError as exc:
        reporter.warning(f"could not write {path} ({exc.strerror or exc}); manifests are kept")
