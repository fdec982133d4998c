"""The shared budget: every worker's readings of each credential's primary budget, merged in
Redis, so N workers on N machines spend one budget as one run would.

Each worker's pool keeps the freshest reading of each budget from its own answers' headers
(``github.pool``). Every ``every_s`` it sends them to Redis, which keeps per credential and
resource the reading GitHub's own rule makes freshest (a later window wins; within one
window the lowest ``remaining``: ``RateBuckets``' rule, in Lua), and takes back the merged
one: a worker then counts what the others spent, and stops at ``pause_below`` with them.
Between two syncs each worker may spend what it has in flight, which ``pause_below`` (and the
secondary-limit pacing, split by ``split_secondary_limits``) leaves room for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable

from gh_collect.config import Config, GitHubSettings
from gh_collect.errors import GhCollectError
from gh_collect.fleet.queue import RedisQueue
from gh_collect.github.pool import PoolView
from gh_collect.github.ratelimit import RateLimit

__all__ = ["BudgetSync", "sharing_workers", "split_secondary_limits"]

# KEYS: budget hash; ARGV: field, limit, remaining, reset -> the merged reading
_MERGE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
local remaining, reset = tonumber(ARGV[3]), tonumber(ARGV[4])
if old then
  local o = cjson.decode(old)
  local o_reset = tonumber(o.reset)
  if o_reset > reset or (o_reset == reset and tonumber(o.remaining) <= remaining) then
    return old
  end
end
-- strings: cjson would round an epoch with a fraction to 14 digits
local new = cjson.encode({limit=ARGV[2], remaining=ARGV[3], reset=ARGV[4]})
redis.call('HSET', KEYS[1], ARGV[1], new)
return new
"""


class BudgetSync:
    """Shares one worker's budget readings with the fleet's, both ways."""

    def __init__(
        self,
        queue: RedisQueue,
        view: PoolView,
        *,
        every_s: float = 0.5,
        recount: Callable[[], int] | None = None,
    ) -> None:
        self._queue, self._view, self._every = queue, view, every_s
        self._merge = queue.script(_MERGE)
        self._recount = recount

    async def run(self) -> None:
        """Sync until cancelled; a Redis hiccup skips a round (the queue's own calls will
        report a Redis that is gone). Every few rounds, ``recount`` (a heartbeat and the
        workers sharing this one's credentials) resets each budget's share: workers come
        and go."""
        rounds = 0
        while True:
            with contextlib.suppress(GhCollectError):
                await self.sync()
                if self._recount is not None and rounds % 4 == 0:
                    share = await asyncio.to_thread(self._recount)
                    self._view.pool.share_budgets(share)
            rounds += 1
            await asyncio.sleep(self._every)

    async def sync(self) -> int:
        """One round: returns how many readings came back changed by other workers."""
        readings = [
            (name, resource, rate)
            for name, buckets in self._view.shared_budgets()
            for resource, rate in buckets.all.items()
        ]
        merged = await asyncio.to_thread(self._send, readings)
        changed = 0
        for (name, resource, rate), fleet_rate in zip(readings, merged, strict=True):
            if fleet_rate != (rate.limit, rate.remaining, rate.reset):
                buckets = dict(self._view.shared_budgets())[name]
                buckets.seen(RateLimit(*fleet_rate, resource=resource), resource)
                changed += 1
        return changed

    def _send(self, readings: list[tuple[str, str, RateLimit]]) -> list[tuple[int, int, float]]:
        key = self._queue.k("budgets")
        out = []
        for name, resource, rate in readings:
            args = [f"{name}/{resource}", str(rate.limit), str(rate.remaining), repr(rate.reset)]
            answer = json.loads(self._queue.call(lambda a=args: self._merge(keys=[key], args=a)))  # type: ignore[misc]
            out.append((int(answer["limit"]), int(answer["remaining"]), float(answer["reset"])))
        return out


def split_secondary_limits(config: Config, workers: int) -> Config:
    """Each of ``workers`` workers sharing credentials takes its share of GitHub's secondary
    limits (requests in flight, per minute, server time per minute), so together they stay
    within what one client may do."""
    share = max(1, workers)
    github: GitHubSettings = config.github
    split = github.model_copy(
        update={
            "concurrency": max(1, github.concurrency // share),
            "max_requests_per_minute": max(1, github.max_requests_per_minute // share),
            "max_busy_seconds_per_minute": github.max_busy_seconds_per_minute / share,
        }
    )
    return config.model_copy(update={"github": split})


def sharing_workers(queue: RedisQueue, budgets: list[str], *, within_s: float) -> int:
    """Live workers (a heartbeat younger than ``within_s``) spending one of ``budgets``,
    this one included: they split the secondary limits, which GitHub counts per user."""
    now, mine = time.time(), set(budgets)
    return max(
        1,
        sum(
            1
            for seen, theirs in queue.worker_budgets().values()
            if now - seen < within_s and mine & set(theirs)
        ),
    )
