"""Waiting out GitHub's rate limits, for no longer than a server can make us.

Three waits, each bounded whatever a server sends:

- before a request: a budget is never spent below ``pause_below`` (its requests in flight
  count); when every credential of the pool (``pool``) is down to it, the request waits for
  the earliest reset. Only the budget the request will spend is consulted, so a spent
  graphql budget never holds back a core request;
- after a primary hit (``RateLimitError``): when no other credential has budget left, until
  the earliest reset, at least a backoff of 2^hits s;
- after a secondary hit: retry-after (or a minute), doubled on each repeat up to
  ``SECONDARY_MAX_WAIT``, and the pacer halves concurrency; after ``SECONDARY_MAX_HITS`` in a
  row the request fails, since continuing while limited risks a ban.

Every wait is capped at ``MAX_SERVER_WAIT`` (one primary window). With ``--on-rate-limit
exit`` a primary wait, or a secondary one longer than ``EXIT_MODE_MAX_WAIT``, exits 75
instead, saying when to run again, so a cron job never holds the dataset lock for long.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

from gh_collect.errors import RateLimitExit, SecondaryRateLimitError
from gh_collect.github.pacing import Pacer
from gh_collect.github.ratelimit import CORE, MAX_SERVER_WAIT
from gh_collect.github.stats import ClientStats

__all__ = [
    "EXIT_MODE_MAX_WAIT",
    "SECONDARY_MAX_HITS",
    "SECONDARY_MAX_WAIT",
    "RateLimitWaits",
]

log = logging.getLogger(__name__)

SECONDARY_MAX_HITS = 8  # then give up: continuing while limited risks a ban
SECONDARY_MAX_WAIT = 900.0  # cap of the exponential secondary backoff (retry-after always wins)
EXIT_MODE_MAX_WAIT = 300.0  # with --on-rate-limit exit, longer server-asked waits exit 75

Sleep = Callable[[float], Awaitable[None]]


class RateLimitWaits:
    """The waits of one client (the pool says when a budget is spent: ``pool.PoolView``)."""

    def __init__(
        self,
        *,
        pacer: Pacer,
        stats: ClientStats,
        on_rate_limit: Literal["wait", "exit"],
        clock: Callable[[], float],
        sleep: Sleep,
    ) -> None:
        self._pacer, self._stats = pacer, stats
        self._on_rate_limit = on_rate_limit
        self._clock, self._sleep = clock, sleep

    async def primary(self, reset_at: float, hits: int, resource: str) -> None:
        """Wait for ``resource``'s budget to reset at ``reset_at`` (epoch s), or exit 75."""
        now = self._clock()
        wait = min(max(reset_at + 1 - now, min(60.0, 2.0**hits)), MAX_SERVER_WAIT)
        until = _utc_time(now + wait)
        which = "" if resource == CORE else f"{resource} "
        if self._on_rate_limit == "exit":
            raise RateLimitExit(
                f"{which}rate limit spent until {until} UTC; run again after the reset"
            )
        log.info("primary %srate limit: waiting %.0f s until %s UTC", which, wait, until)
        self._stats.primary_waits += 1
        await self._pause(wait)

    async def secondary(self, exc: SecondaryRateLimitError, hits: int) -> None:
        """Honour retry-after, back off exponentially on repeats, give up after a few.

        GitHub: "if your request continues to fail due to a secondary rate limit, wait for an
        exponentially increasing amount of time". The base is what GitHub asked for on this
        hit (retry-after, or a minute without one), doubled for each repeat.
        """
        self._stats.secondary_limited += 1
        if hits >= SECONDARY_MAX_HITS:
            message = (
                f"{exc.message}; hit {hits} times in a row, giving up: lower "
                "github.concurrency or wait a while, then run again"
            )
            raise SecondaryRateLimitError(
                message, retry_after=exc.retry_after, status=exc.status, url=exc.url
            ) from exc
        backoff = min(exc.retry_after * 2.0 ** (hits - 1), SECONDARY_MAX_WAIT)
        asked = max(exc.retry_after, backoff)
        wait = min(asked, MAX_SERVER_WAIT)
        if self._on_rate_limit == "exit" and wait > EXIT_MODE_MAX_WAIT:
            raise RateLimitExit(
                f"{exc.message}: asked to wait {wait:.0f} s, more than --on-rate-limit exit "
                f"waits ({EXIT_MODE_MAX_WAIT:.0f} s); run again after "
                f"{_utc_time(self._clock() + wait)} UTC"
            )
        log.warning("%s: pausing %.0f s (hit %d)", exc.message, wait, hits)
        self._pacer.backoff(wait)
        await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        self._stats.waited_seconds += seconds
        await self._sleep(seconds)


def _utc_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")
