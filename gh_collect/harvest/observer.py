"""The run's side of each request: its quota, its progress display and its checkpoint.

The client only knows that a request is due, went out, or reported a budget; what a run does
about it (refuse past ``--max-requests`` or the budget share, count it for ``status``, keep
the latest budget in the checkpoint so a resumed run knows where it stands) is kept here, out
of the client and out of the harvest loop.

What it needs of the reporter and the checkpoint is spelled out as two small protocols, so
this module depends on those two methods each, not on how either is built.
"""

from __future__ import annotations

from typing import Protocol

from gh_collect.github.quota import Quota
from gh_collect.github.ratelimit import RateLimit

__all__ = ["RunObserver"]


class _Progress(Protocol):
    def request(self) -> None: ...
    def rate(self, remaining: int, limit: int) -> None: ...


class _Ledger(Protocol):
    def count_request(self, n: int = 1) -> None: ...
    def record_rate_limit(
        self, limit: int, remaining: int, reset: float, resource: str | None
    ) -> None: ...


class RunObserver:
    """A ``ClientObserver`` for one collect run.

    Each hook only updates counters in memory: a budget reading is recorded in the
    checkpoint, and the run's one save point (``maybe_save_async``, after each page) saves
    if a strategy fires on it. Nothing here writes, so nothing here can block the loop.
    """

    def __init__(self, quota: Quota, reporter: _Progress, checkpoint: _Ledger) -> None:
        self._quota = quota
        self._reporter = reporter
        self._checkpoint = checkpoint

    def admit(self, resource: str) -> None:
        """Refuses (``QuotaReached``) once the run's request cap or budget share is spent."""
        self._quota.before_request(resource)

    def sent(self, resource: str, *, redirect: bool) -> None:
        if redirect:  # never admitted: already under way when the quota could have said no
            self._quota.count_sent(resource)
        self._reporter.request()
        self._checkpoint.count_request()

    def rate_seen(self, resource: str, rate: RateLimit) -> None:
        self._quota.observe(rate, resource)
        self._reporter.rate(rate.remaining, rate.limit)
        self._checkpoint.record_rate_limit(
            rate.limit, rate.remaining, rate.reset, rate.resource or resource
        )
