"""``status --queue``: the fleet as Redis sees it, without touching GitHub or the store.

Workers (their last heartbeat), leases (units active, their holder, fence and age), units
by state, throughput (pages and records committed since the plan began) and the budget
last seen per resource. Nothing secret is in Redis, so nothing secret can show here.
"""

from __future__ import annotations

import json
import time
from typing import Any

from gh_collect.config import Config
from gh_collect.fleet.queue import unit_key
from gh_collect.fleet.run import open_queue

__all__ = ["queue_status", "render_queue_status"]


def queue_status(config: Config, url: str) -> dict[str, Any]:
    """The fleet's state as plain JSON-able data."""
    queue = open_queue(config.for_org(config.orgs[0]), url)
    snap = queue.snapshot()
    now = time.time()
    units: dict[str, dict[str, str]] = snap["units"]
    states: dict[str, int] = {}
    for info in units.values():
        states[info.get("state", "pending")] = states.get(info.get("state", "pending"), 0) + 1
    started = float(snap["meta"].get("started", now) or now)
    elapsed = max(now - started, 1e-9)
    stats = {name: int(value) for name, value in snap["stats"].items()}
    return {
        "queue": queue.url,
        "planned": bool(snap["meta"]),
        "planning_done": snap["meta"].get("planned") == "1",
        "units": states,
        "leases": [
            _lease(unit, info, now) for unit, info in units.items() if info.get("state") == "active"
        ],
        "failed": [
            _failure(unit, info) for unit, info in units.items() if info.get("state") == "failed"
        ],
        "workers": {name: _worker(value, now) for name, value in snap["workers"].items()},
        "throughput": {
            "pages": stats.get("pages", 0),
            "records": stats.get("records", 0),
            "elapsed_s": round(elapsed, 1),
            "records_per_s": round(stats.get("records", 0) / elapsed, 1),
        },
        "budget": {name: json.loads(value) for name, value in snap["budget"].items()},
        "credentials": {
            name: _shared(value) for name, value in sorted(snap["shared_budgets"].items())
        },
    }


def _shared(value: str) -> dict[str, Any]:
    """One credential's budget for one resource as the fleet merged it."""
    info = json.loads(value)
    return {
        "remaining": int(info["remaining"]),
        "limit": int(info["limit"]),
        "reset": float(info["reset"]),
    }


def _describe(unit: str) -> str:
    endpoint, repo, parent = unit_key(unit)
    return f"{repo} {endpoint}" + (f"/{parent}" if parent else "")


def _lease(unit: str, info: dict[str, str], now: float) -> dict[str, Any]:
    since = float(info.get("since") or now)
    return {
        "unit": _describe(unit), "holder": info.get("holder", ""),
        "fence": int(info.get("fence") or 0), "held_s": round(now - since, 1),
        "pages": int(info.get("pages") or 0), "records": int(info.get("records") or 0),
    }  # fmt: skip


def _failure(unit: str, info: dict[str, str]) -> dict[str, Any]:
    return {
        "unit": _describe(unit),
        "error": info.get("error", ""),
        "retryable": info.get("retryable") == "1",
    }


def _worker(value: str, now: float) -> dict[str, Any]:
    info = json.loads(value)
    return {
        "units": info.get("units", 0),
        "seen_s_ago": round(now - float(info.get("seen", now)), 1),
    }


def render_queue_status(status: dict[str, Any]) -> str:
    if not status["planned"]:
        return f"queue {status['queue']}: no harvest planned (run `gh-collect collect --queue`)"
    units = ", ".join(f"{count} {state}" for state, count in sorted(status["units"].items()))
    lines = [f"queue {status['queue']}: units {units or 'none yet'}"]
    through = status["throughput"]
    lines.append(
        f"throughput: {through['records']} records, {through['pages']} pages in "
        f"{through['elapsed_s']} s ({through['records_per_s']} records/s)"
    )
    lines.append(f"workers: {len(status['workers'])}")
    lines += [
        f"  {name}: {w['units']} units, seen {w['seen_s_ago']} s ago"
        for name, w in sorted(status["workers"].items())
    ]
    lines.append(f"leases: {len(status['leases'])}")
    lines += [
        f"  {lease['unit']}: {lease['holder']} (fence {lease['fence']}, "
        f"{lease['held_s']} s, {lease['pages']} pages)"
        for lease in status["leases"]
    ]
    for name, budget in sorted(status["budget"].items()):
        lines.append(f"budget {name} (last seen): {budget['remaining']}/{budget['limit']}")
    for name, budget in status["credentials"].items():  # name: a salted hash, never a token
        lines.append(f"  credential {name}: {budget['remaining']}/{budget['limit']} left")
    lines += [f"failed: {f['unit']}: {f['error']}" for f in status["failed"]]
    return "\n".join(lines)
