"""Rate limits and bookkeeping: the primary budget, the secondary limits, the stats.

GitHub's secondary limits are ENFORCED here (concurrency, requests per minute per endpoint,
server time per minute) because a harvester that only works against a lenient server breaks
on the real one. ``_Stats`` is what tests and benchmarks read to see what a client really did.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from gh_collect.simulator.server.config import WINDOW_S, SimulatorConfig

_GRAPHQL_COUNTERS = ("graphql_queries", "graphql_points", "graphql_limited")


class _Stats:
    """Counters a test or benchmark reads to see what the client really did; thread-safe
    because ``Simulator.stats()`` is called from outside the server's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._by_route: dict[str, int] = {}
            self._by_status: dict[str, int] = {}
            self._counters = dict.fromkeys(
                ("not_modified", "budget_spent", "secondary_limited", "primary_limited"), 0
            )
            # GraphQL: queries charged, points charged, queries refused on the spent budget
            self._counters.update(dict.fromkeys(_GRAPHQL_COUNTERS, 0))
            self._faults: dict[str, int] = {}
            self._max_in_flight = self._in_flight

    def enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def record(self, route: str, status: str) -> None:
        with self._lock:
            self._requests += 1
            self._by_route[route] = self._by_route.get(route, 0) + 1
            self._by_status[status] = self._by_status.get(status, 0) + 1

    def count(self, name: str) -> None:
        self.add(name, 1)

    def add(self, name: str, amount: int) -> None:
        with self._lock:
            self._counters[name] += amount

    def fault(self, name: str) -> None:
        with self._lock:
            self._faults[name] = self._faults.get(name, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "by_route": dict(self._by_route),
                "by_status": dict(self._by_status),
                **self._counters,
                "max_in_flight": self._max_in_flight,
                "in_flight": self._in_flight,
                "faults": dict(self._faults),
            }


@dataclass
class _Budget:
    """The primary limit of one token: the window opens at the first charged request."""

    limit: int
    window_s: float
    used: int = 0
    reset_at: float | None = None

    def refresh(self, now: float) -> None:
        if self.reset_at is not None and now >= self.reset_at:
            self.used, self.reset_at = 0, None

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def charge(self, now: float) -> None:
        if self.reset_at is None:
            self.reset_at = now + self.window_s
        self.used += 1

    def reset_epoch(self, now: float) -> int:
        """Rounded UP: a client that sleeps until this second finds the budget refilled."""
        return math.ceil(self.reset_at if self.reset_at is not None else now + self.window_s)

    def core(self, now: float) -> dict[str, int]:
        return {
            "limit": self.limit,
            "used": min(self.used, self.limit),
            "remaining": self.remaining,
            "reset": self.reset_epoch(now),
        }

    def headers(self, now: float) -> dict[str, str]:
        core = self.core(now)
        return {
            "X-RateLimit-Limit": str(core["limit"]),
            "X-RateLimit-Remaining": str(core["remaining"]),
            "X-RateLimit-Reset": str(core["reset"]),
            "X-RateLimit-Used": str(core["used"]),
            "X-RateLimit-Resource": "core",
        }


@dataclass
class _Client:
    """Per-owner state (a user, all their tokens; an app installation: ``identities``): the
    primary budget and the secondary-limit windows. ``owner`` names it (not a secret);
    ``login``: a named user's (``users``), "" for a plain token; ``integration``: an app
    installation, which has no user; ``etag_salt`` makes its ETags its own."""

    budget: _Budget
    owner: str = ""
    login: str = ""
    integration: bool = False
    etag_salt: str = ""
    in_flight: int = 0
    hits: dict[str, deque[float]] = field(default_factory=dict)
    work: deque[tuple[float, float]] = field(default_factory=deque)
    work_sum: float = 0.0

    def admit(self, cfg: SimulatorConfig, endpoint: str, now: float) -> bool:
        """Whether GitHub's secondary limits let this request through; admitted requests
        are recorded in the rolling windows, refused ones are not."""
        if self.in_flight > cfg.max_in_flight:
            return False
        hits = self.hits.setdefault(endpoint, deque())
        while hits and hits[0] <= now - WINDOW_S:
            hits.popleft()
        while self.work and self.work[0][0] <= now - WINDOW_S:
            self.work_sum -= self.work.popleft()[1]
        cost = cfg.server_time_ms / 1000.0
        if len(hits) >= cfg.max_per_minute:
            return False
        if cost and self.work_sum + cost > cfg.max_server_seconds_per_minute + 1e-9:
            return False
        hits.append(now)
        if cost:
            self.work.append((now, cost))
            self.work_sum += cost
        return True
