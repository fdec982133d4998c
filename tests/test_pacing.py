"""The pacer under a virtual clock: GitHub's secondary limits hold, concurrency adapts."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gh_collect.github.pacing import Pacer, endpoint_key


class VirtualTime:
    """An event-loop-driven fake clock: time jumps to the next timer when all tasks wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._seq), future))
        await future

    async def run(self, coros: list[Awaitable[Any]]) -> list[Any]:
        tasks = [asyncio.ensure_future(coro) for coro in coros]
        while True:
            for _ in range(30):
                await asyncio.sleep(0)
            if all(task.done() for task in tasks):
                return [task.result() for task in tasks]
            assert self._timers, "deadlock: every task waits and no timer is pending"
            self._fire_next()

    def _fire_next(self) -> None:
        when = self._timers[0][0]
        self.now = max(self.now, when)
        while self._timers and self._timers[0][0] <= when:
            _, _, future = heapq.heappop(self._timers)
            if not future.done():
                future.set_result(None)


def make_pacer(vt: VirtualTime, concurrency: int = 8, rpm: int = 900, busy: float = 90.0) -> Pacer:
    return Pacer(concurrency, rpm, busy, clock=vt.clock, sleep=vt.sleep)


def request(
    pacer: Pacer, vt: VirtualTime, key: str, duration: float, log: list[tuple[float, int]]
) -> Callable[[], Awaitable[float]]:
    async def go() -> float:
        async with pacer.slot(key):
            log.append((vt.now, pacer.in_flight))
            await vt.sleep(duration)
        return vt.now

    return go


def run(vt: VirtualTime, coros: list[Awaitable[Any]]) -> list[Any]:
    return asyncio.run(vt.run(coros))


def max_in_window(times: list[float], window: float = 60.0) -> int:
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def test_never_more_in_flight_than_configured() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, concurrency=4)
    log: list[tuple[float, int]] = []
    run(vt, [request(pacer, vt, "GET /a", 0.1, log)() for _ in range(30)])
    assert max(n for _, n in log) == 4
    assert len(log) == 30 and pacer.in_flight == 0
    assert vt.now == pytest.approx(0.8)  # 30 requests, 4 at a time, 0.1 s each


def test_never_more_than_github_s_100_in_flight() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, concurrency=500)
    log: list[tuple[float, int]] = []
    run(vt, [request(pacer, vt, f"GET /e{i % 3}", 0.05, log)() for i in range(250)])
    assert max(n for _, n in log) == 100


def test_per_endpoint_requests_per_minute_cap_holds() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, concurrency=8, rpm=20)  # 90% margin: 18 a minute
    log: list[tuple[float, int]] = []
    run(vt, [request(pacer, vt, "GET /repos/{owner}/{repo}/pulls", 0.01, log)() for _ in range(60)])
    starts = [t for t, _ in log]
    assert max_in_window(starts) == 18
    assert starts[-1] >= 180  # 60 requests at 18 a minute need three refills


def test_per_endpoint_cap_does_not_block_other_endpoints() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, concurrency=8, rpm=10)  # 9 a minute per endpoint
    capped: list[tuple[float, int]] = []
    other: list[tuple[float, int]] = []
    jobs = [request(pacer, vt, "GET /a", 0.01, capped)() for _ in range(12)]
    jobs += [request(pacer, vt, "GET /b", 0.01, other)() for _ in range(5)]
    run(vt, jobs)
    assert max(t for t, _ in other) < 1.0
    assert sorted(t for t, _ in capped)[9] >= 60.0


def test_busy_seconds_budget_reduces_concurrency_for_slow_responses() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, concurrency=8, busy=10.0)  # 9 s of response time a minute
    log: list[tuple[float, int]] = []
    run(vt, [request(pacer, vt, f"GET /e{i}", 3.0, log)() for i in range(20)])
    assert pacer.mean_duration == pytest.approx(3.0)
    assert pacer.effective_concurrency == 3  # 3 x 3 s fits in 9 s, 4 x 3 s does not
    later = [t for t, _ in log if t >= 60]
    assert later and max(n for t, n in log if t >= 60) <= 3
    assert max_in_window(later) * 3.0 <= 9.0  # busy seconds started per minute within budget


def test_fast_responses_keep_full_concurrency() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, concurrency=8)
    log: list[tuple[float, int]] = []
    run(vt, [request(pacer, vt, f"GET /e{i % 4}", 0.02, log)() for i in range(64)])
    assert pacer.effective_concurrency == 8
    assert max(n for _, n in log) == 8


def test_network_round_trip_is_not_charged_as_server_time() -> None:
    # 400 responses of 50 ms that are all network: charging them whole would spend 20 s of
    # a 0.9 s budget and stretch the run over 20 minutes; net of the floor they cost nothing.
    vt = VirtualTime()
    pacer = make_pacer(vt, concurrency=8, busy=1.0)
    log: list[tuple[float, int]] = []
    run(vt, [request(pacer, vt, f"GET /e{i % 4}", 0.05, log)() for i in range(400)])
    assert pacer.mean_duration == pytest.approx(0.05)
    assert pacer.mean_cost == pytest.approx(0.0)
    assert vt.now == pytest.approx(2.5)  # 400 requests, 8 at a time, 50 ms each
    assert max(n for _, n in log) == 8


def test_time_beyond_the_network_floor_is_charged() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, concurrency=4, busy=100.0)
    log: list[tuple[float, int]] = []
    durations = [0.05, 0.15] * 10  # floor 50 ms: every other response spent 100 ms serving
    run(vt, [request(pacer, vt, "GET /a", d, log)() for d in durations])
    assert pacer.busy_seconds == pytest.approx(10 * 0.1)


def test_round_trip_cap_keeps_uniformly_slow_responses_charged() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, concurrency=8, busy=10.0)
    log: list[tuple[float, int]] = []
    run(vt, [request(pacer, vt, f"GET /e{i}", 3.0, log)() for i in range(4)])
    assert pacer.mean_cost == pytest.approx(3.0 - 0.25)  # no network is 3 s away


def test_after_a_secondary_limit_hit_whole_durations_are_charged() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, concurrency=8)
    pacer.backoff(1)
    log: list[tuple[float, int]] = []
    run(vt, [request(pacer, vt, "GET /a", 0.05, log)() for _ in range(8)])
    assert pacer.mean_cost == pytest.approx(0.05)


def test_backoff_pauses_everyone_and_halves_concurrency() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, concurrency=8)
    pacer.backoff(60)
    pacer.backoff(60)  # same episode: halves once
    assert pacer.effective_concurrency == 4
    log: list[tuple[float, int]] = []
    run(vt, [request(pacer, vt, "GET /a", 1.0, log)() for _ in range(8)])
    assert min(t for t, _ in log) >= 60
    assert max(n for _, n in log) == 4


def test_concurrency_grows_back_after_backoff() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, concurrency=8)
    pacer.backoff(10)
    vt.now = 11
    pacer.backoff(1)  # a new episode: 4 -> 2
    assert pacer.effective_concurrency == 2
    grown: list[int] = []

    async def trickle() -> None:  # light traffic: one short request every 5 s
        for _ in range(40):
            async with pacer.slot("GET /a"):
                await vt.sleep(0.1)
            grown.append(pacer.effective_concurrency)
            await vt.sleep(5)

    run(vt, [trickle()])
    assert grown[0] == 2 and grown == sorted(grown)  # +1 per quiet 30 s, never jumps back
    assert pacer.effective_concurrency == 8
    log: list[tuple[float, int]] = []
    run(vt, [request(pacer, vt, "GET /a", 0.1, log)() for _ in range(16)])
    assert max(n for _, n in log) == 8


def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    async def scenario() -> int:
        pacer = Pacer(1, 900, 90.0)
        gate = asyncio.Event()

        async def hold() -> None:
            async with pacer.slot("GET /a"):
                await gate.wait()

        holder = asyncio.create_task(hold())
        await asyncio.sleep(0)
        waiter = asyncio.create_task(hold())
        await asyncio.sleep(0)
        waiter.cancel()
        gate.set()
        await holder
        await asyncio.gather(waiter, return_exceptions=True)
        async with pacer.slot("GET /a"):
            return pacer.in_flight

    assert asyncio.run(scenario()) == 1


def test_overhead_per_request_is_small() -> None:
    async def many(n: int) -> float:
        pacer = Pacer(8, 900, 90.0)
        start = time.perf_counter()
        for i in range(n):
            async with pacer.slot(f"GET /e{i % 50}"):
                pass
        return (time.perf_counter() - start) / n

    assert asyncio.run(many(20_000)) < 100e-6  # typically a few microseconds


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("/repos/octo/hello/pulls", "GET /repos/{owner}/{repo}/pulls"),
        (
            "https://api.github.com/repositories/1000/pulls?page=2",
            "GET /repos/{owner}/{repo}/pulls",
        ),
        ("https://ghe.example.com/api/v3/repos/o/r/issues?x=1", "GET /repos/{owner}/{repo}/issues"),
        ("/repositories/1000/issues", "GET /repos/{owner}/{repo}/issues"),
        ("/repos/o/r", "GET /repos/{owner}/{repo}"),
        ("https://api.github.com/repositories/1000", "GET /repos/{owner}/{repo}"),
        ("/orgs/sample-org/repos", "GET /orgs/{org}/repos"),
        ("/users/someone/repos", "GET /users/{username}/repos"),
        ("/repos/o/r/pulls/12/reviews", "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews"),
        ("/repos/o/r/issues/comments", "GET /repos/{owner}/{repo}/issues/comments"),
        (
            "/repos/o/r/issues/7/comments",
            "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
        ),
        ("/repos/o/r/commits/0a1b2c3", "GET /repos/{owner}/{repo}/commits/{ref}"),
        ("/rate_limit", "GET /rate_limit"),
        ("/repositories", "GET /repositories"),
    ],
)
def test_endpoint_key_maps_urls_to_route_templates(url: str, key: str) -> None:
    assert endpoint_key("get", url) == key
