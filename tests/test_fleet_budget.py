"""The shared budget against a real redis-server: what one worker's answers said about a
credential's budget reaches the other workers that spend it; other credentials stay apart;
secondary limits are split only among workers sharing a credential."""

from __future__ import annotations

import asyncio
import time

from gh_collect.config import Config
from gh_collect.fleet.budget import BudgetSync, sharing_workers, split_secondary_limits
from gh_collect.fleet.queue import RedisQueue
from gh_collect.github.credentials import Credentials
from gh_collect.github.pool import CredentialPool, PoolView
from gh_collect.github.ratelimit import RateLimit
from tests.fleet_kit import RedisServer

TOKEN_A = "ghp_fleetBudgetTokenA0123456789"
TOKEN_B = "ghp_fleetBudgetTokenB0123456789"


def view_of(token: str) -> PoolView:
    return CredentialPool(Credentials.token(token, "GH_TOKEN")).view("sample-org")


def seen(view: PoolView, remaining: int, reset: float) -> None:
    (_name, buckets) = view.shared_budgets()[0]
    buckets.seen(RateLimit(5000, remaining, reset, resource="core"), "core")


def remaining(view: PoolView) -> int:
    rate = view.shared_budgets()[0][1].get("core")
    assert rate is not None
    return rate.remaining


def test_workers_of_one_credential_see_each_others_spending(redis_server: RedisServer) -> None:
    queue = RedisQueue(redis_server.url, "test:b")
    first, second, other = view_of(TOKEN_A), view_of(TOKEN_A), view_of(TOKEN_B)
    reset = time.time() + 600
    seen(first, 4000, reset)  # this worker spent 1,000
    seen(second, 4900, reset)  # that one saw only its own 100
    seen(other, 4950, reset)  # another user's token: its own budget

    async def sync_all() -> None:
        for view in (first, second, other):
            await BudgetSync(queue, view).sync()

    asyncio.run(sync_all())
    assert remaining(second) == 4000  # the lowest remaining of the window wins
    assert remaining(first) == 4000
    assert remaining(other) == 4950
    seen(second, 4999, reset + 3600)  # a later window is fresher, whatever it says
    asyncio.run(sync_all())  # first syncs before second tells: it learns at the next round
    asyncio.run(sync_all())
    assert remaining(first) == 4999


def test_no_secret_reaches_redis(redis_server: RedisServer) -> None:
    queue = RedisQueue(redis_server.url, "test:b")
    view = view_of(TOKEN_A)
    seen(view, 10, time.time() + 60)
    asyncio.run(BudgetSync(queue, view).sync())
    dump = repr(queue.snapshot()) + repr(queue.call(lambda: queue._redis.hgetall("test:b:budgets")))
    assert "budgets" not in dump or TOKEN_A not in dump
    assert TOKEN_A not in dump and "fleetBudget" not in dump


def test_secondary_limits_are_split_among_workers_sharing_a_credential(
    redis_server: RedisServer,
) -> None:
    queue = RedisQueue(redis_server.url, "test:b")
    now = time.time()
    for name, budgets in (("w1", ["token:a"]), ("w2", ["token:a"]), ("w3", ["token:b"])):
        queue.heartbeat(name, {"seen": now, "budgets": budgets})
    queue.heartbeat("gone", {"seen": now - 3600, "budgets": ["token:a"]})
    assert sharing_workers(queue, ["token:a"], within_s=30) == 2
    assert sharing_workers(queue, ["token:c"], within_s=30) == 1
    config = Config.model_validate({"target": {"org": "o"}, "year": 2025})
    split = split_secondary_limits(config, 2).github
    assert split.concurrency == config.github.concurrency // 2
    assert split.max_requests_per_minute == config.github.max_requests_per_minute // 2
    assert split.max_busy_seconds_per_minute == config.github.max_busy_seconds_per_minute / 2
