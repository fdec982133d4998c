"""A run's own spending cap, so a nightly cron job leaves budget for everyone else.

``--max-requests N`` caps the requests of one run; ``rate_limit.budget_fraction`` caps the
share of each primary budget (core, search, graphql: GitHub keeps them apart) it may spend
from what was left of it when the run first saw it. Reaching either stops the run before
the next request is sent: the checkpoint is saved and the run exits 75, and the next run
continues where this one stopped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from gh_collect.errors import RateLimitExit
from gh_collect.github.ratelimit import CORE, RateLimit

__all__ = ["Quota", "QuotaReached"]


class QuotaReached(RateLimitExit):
    pass


@dataclass
class _Window:
    """One resource's reset window: what was left at its start, and spent since."""

    reset: float
    start: int
    spent: int = 0


class Quota:
    """Counts what a run spends; ``before_request`` refuses the request past the cap.

    Once reached it stays reached, whatever the resource: the run is stopping.
    """

    def __init__(self, *, max_requests: int | None, budget_fraction: float) -> None:
        self.max_requests = max_requests
        self.budget_fraction = budget_fraction
        self.requests = 0
        self.reached: QuotaReached | None = None
        self._in_flight: Counter[str] = Counter()  # admitted, answer not yet seen: may cost
        self._windows: dict[str, _Window] = {}

    def before_request(self, resource: str = CORE) -> None:
        if self.reached is None:
            self.reached = self._check(resource)
        if self.reached is not None:
            raise self.reached
        self.requests += 1
        self._in_flight[resource] += 1

    def count_sent(self, resource: str = CORE) -> None:
        """A request that went out without asking (a redirect hop): it still counts."""
        self.requests += 1

    def observe(self, rate: RateLimit, resource: str | None = None) -> None:
        """Track spending within one reset window; a new window starts the count again.

        ``resource``: the budget the answer counted for (default: the one it names, or core).
        """
        resource = resource or rate.resource or CORE
        self._in_flight[resource] = max(0, self._in_flight[resource] - 1)
        window = self._windows.get(resource)
        if window is None or rate.reset != window.reset:
            window = self._windows[resource] = _Window(rate.reset, rate.remaining + 1)
        window.spent = max(window.spent, window.start - rate.remaining)  # this answer spent one

    def _check(self, resource: str) -> QuotaReached | None:
        if self.max_requests is not None and self.requests >= self.max_requests:
            return QuotaReached(
                f"request quota reached (--max-requests {self.max_requests}): checkpoint saved; "
                "the next run continues from here"
            )
        window = self._windows.get(resource)
        if window is None or self.budget_fraction >= 1:
            return None
        allowed = int(window.start * self.budget_fraction)
        if window.spent + self._in_flight[resource] >= allowed:
            which = "" if resource == CORE else f" of the {resource} budget"
            return QuotaReached(
                f"budget share reached (rate_limit.budget_fraction {self.budget_fraction}: "
                f"{window.spent} of {window.start}{which} spent): checkpoint saved; "
                "the next run continues from here"
            )
        return None
