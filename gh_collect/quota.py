"""A run's own spending cap, so a nightly cron job leaves budget for everyone else.

``--max-requests N`` caps the requests of one run; ``rate_limit.budget_fraction`` caps the
share of the primary budget it may spend from what was left when it started. Reaching
either stops the run before the next request is sent: the checkpoint is saved and the run
exits 75, and the next run continues where this one stopped.
"""

from __future__ import annotations

from gh_collect.client import RateLimit
from gh_collect.errors import RateLimitExit


class QuotaReached(RateLimitExit):
    pass


class Quota:
    """Counts what a run spends; ``before_request`` refuses the request past the cap."""

    def __init__(self, *, max_requests: int | None, budget_fraction: float) -> None:
        self.max_requests = max_requests
        self.budget_fraction = budget_fraction
        self.requests = 0
        self.reached: QuotaReached | None = None
        self._in_flight = 0  # sent, answer not yet seen: may still be charged
        self._window: tuple[float, int] | None = None  # (reset, remaining at the start)
        self._spent = 0

    def before_request(self) -> None:
        if self.reached is None:
            self.reached = self._check()
        if self.reached is not None:
            raise self.reached
        self.requests += 1
        self._in_flight += 1

    def count_sent(self) -> None:
        """A request that went out without asking (a redirect hop): it still counts."""
        self.requests += 1

    def observe(self, rate: RateLimit) -> None:
        """Track spending within one reset window; a new window starts the count again."""
        self._in_flight = max(0, self._in_flight - 1)
        if self._window is None or rate.reset != self._window[0]:
            self._window = (rate.reset, rate.remaining + 1)  # this response spent one
            self._spent = 0
        self._spent = max(self._spent, self._window[1] - rate.remaining)

    def _check(self) -> QuotaReached | None:
        if self.max_requests is not None and self.requests >= self.max_requests:
            return QuotaReached(
                f"request quota reached (--max-requests {self.max_requests}): checkpoint saved; "
                "the next run continues from here"
            )
        allowed = self._allowed()
        if allowed is not None and self._spent + self._in_flight >= allowed:
            return QuotaReached(
                f"budget share reached (rate_limit.budget_fraction {self.budget_fraction}: "
                f"{self._spent} of {self._window and self._window[1]} spent): checkpoint saved; "
                "the next run continues from here"
            )
        return None

    def _allowed(self) -> int | None:
        if self.budget_fraction >= 1 or self._window is None:
            return None
        return int(self._window[1] * self.budget_fraction)
