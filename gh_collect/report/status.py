"""``gh-collect status``: progress read from the checkpoint alone, never the network or the lock."""

from __future__ import annotations

from collections import Counter
from typing import Any

from gh_collect.durable.checkpoint import CheckpointManager, CheckpointState, CheckpointStatus
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
        "last_saved_at": state.last_saved_at,
        "rate_limit": state.rate_limit.model_dump(mode="json") if state.rate_limit else None,
        "failures": [
            {key: failure[key] for key in ("repo", "endpoint", "error")}
            for failure in state.failures()
        ],
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


def render_status(status: dict[str, Any]) -> str:
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
        f"last save   {status['last_saved_at']} ({status['last_save_reason']}), "
        f"{status['save_count']} saves, {status['requests_made']} requests"
    )
    rate = status["rate_limit"]
    if rate:
        lines.append(
            f"rate limit  {rate['remaining']}/{rate['limit']} left, resets {rate['reset']}"
        )
    lines += [f"failed      {f['repo']} {f['endpoint']}: {f['error']}" for f in status["failures"]]
    return "\n".join(lines)
