"""``gh-collect status``: progress read from the checkpoint alone, never the network or the lock."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from gh_collect.durable.checkpoint import (
    CheckpointManager,
    CheckpointState,
    CheckpointStatus,
    RateLimitSnapshot,
)
from gh_collect.durable.paths import DatasetPaths


def read_status(paths: DatasetPaths) -> dict[str, Any]:
    manager = CheckpointManager(paths.checkpoint, paths.lock)
    if not manager.exists():
        return {"checkpoint": str(paths.checkpoint), "exists": False}
    return summarize(manager.load(), paths)


def summarize(state: CheckpointState, paths: DatasetPaths) -> dict[str, Any]:
    repo_states = Counter(str(repo.status) for repo in state.repos.values())
    return {
        "checkpoint": str(paths.checkpoint),
        "exists": True,
        "config_digest": state.config_digest,
        "current_phase": state.current_phase,
        "phases": {name: str(phase.status) for name, phase in state.phases.items()},
        "repos": {
            "total": len(state.repos),
            **{key: repo_states.get(key, 0) for key in ("complete", "in_progress", "pending")},
            "failed": repo_states.get("failed", 0),
        },
        "discovery_pages": state.discovery.pages if state.discovery else None,
        "endpoints": _endpoints(state),
        "requests_made": state.requests_made,
        "save_count": state.save_count,
        "last_save_reason": state.last_save_reason,
        "last_saved_at": _moment(state.last_saved_at),
        "rate_limit": _rate(state.rate_limit),
        "failures": [
            {key: failure[key] for key in ("repo", "endpoint", "error")}
            for failure in state.failures()
        ],
    }


def _moment(value: datetime | None) -> str | None:
    """UTC, to the second: what a person or a log shipper needs (no microseconds)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _rate(snapshot: RateLimitSnapshot | None) -> dict[str, Any] | None:
    """The budget seen last; ``reset`` stays epoch seconds for programs, ``reset_at`` is
    the same moment for people."""
    if snapshot is None:
        return None
    reset = datetime.fromtimestamp(snapshot.reset, UTC)
    return {
        "limit": snapshot.limit,
        "remaining": snapshot.remaining,
        "resource": snapshot.resource,
        "reset": int(snapshot.reset),
        "reset_at": _moment(reset),
        "seen_at": _moment(snapshot.seen_at),
    }


def _endpoints(state: CheckpointState) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for endpoint in state.endpoints:
        tally = state.tally(endpoint)
        complete, failed = (
            tally.count(CheckpointStatus.COMPLETE),
            tally.count(CheckpointStatus.FAILED),
        )
        units = sum((tally.statuses or {}).values())
        totals[endpoint] = {
            "pages": tally.pages,
            "records": tally.records,
            "complete": complete,
            "failed": failed,
            "pending": units - complete - failed,
        }
    return totals


def render_status(status: dict[str, Any], now: datetime | None = None) -> str:
    """The status for a person; ``now`` (default: the clock) says how far off the reset is."""
    if not status["exists"]:
        return f"no checkpoint at {status['checkpoint']}: nothing collected yet (run collect)"
    repos = status["repos"]
    lines = [
        f"checkpoint  {status['checkpoint']}",
        "phases      " + ", ".join(f"{k} {v}" for k, v in status["phases"].items()),
        f"repos       {repos['total']} total: {repos['complete']} complete, "
        f"{repos['in_progress']} in progress, {repos['pending']} pending, {repos['failed']} failed",
    ]
    if status.get("discovery_pages") is not None:
        lines.append(f"discovery   under way: {status['discovery_pages']} pages of repos read")
    for name, entry in status["endpoints"].items():
        lines.append(
            f"{name:<11} {entry['pages']} pages, {entry['records']} records; "
            f"{entry['complete']} complete, {entry['failed']} failed, {entry['pending']} to do"
        )
    lines.append(
        f"last save   {_readable(status['last_saved_at'])} ({status['last_save_reason']}), "
        f"{status['save_count']} saves, {status['requests_made']} requests"
    )
    rate = status["rate_limit"]
    if rate:
        lines.append(_rate_line(rate, now or datetime.now(UTC)))
    lines += [f"failed      {f['repo']} {f['endpoint']}: {f['error']}" for f in status["failures"]]
    return "\n".join(lines)


def _rate_line(rate: dict[str, Any], now: datetime) -> str:
    """``4990/5000 left (core), resets 14:05 UTC (in 23 min), seen 13:42:10 UTC``."""
    reset = datetime.fromtimestamp(rate["reset"], UTC)
    left = (reset - now).total_seconds()
    when = f"in {max(1, math.ceil(left / 60))} min" if left > 0 else "passed: the budget is full"
    resource = f" ({rate['resource']})" if rate.get("resource") else ""
    return (
        f"rate limit  {rate['remaining']}/{rate['limit']} left{resource}, resets "
        f"{reset:%H:%M} UTC ({when}), seen {_readable(rate['seen_at'])}"
    )


def _readable(moment: str | None) -> str:
    """``2026-12-03T13:41:04Z`` as ``2026-12-03 13:41:04 UTC``; never saved: ``never``."""
    return "never" if moment is None else moment.replace("T", " ").replace("Z", " UTC")
