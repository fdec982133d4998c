"""Pacing: stay under GitHub's secondary rate limits instead of tripping them.

GitHub documents three secondary limits for REST reads: at most 100 requests in flight, at
most 900 requests per minute to one endpoint, and at most 90 s of server time per 60 s of
real time, which GitHub says to estimate by the summed response time. Hitting them costs a
minute or more of enforced waiting (and repeated hits risk a ban), so the ``Pacer`` holds each
request back until starting it keeps all three, with a safety margin. Concurrency adapts: slow
responses shrink it, a secondary-limit hit halves it and pauses everyone, and it grows back
one step at a time (AIMD, as in TCP congestion control).

A response time we measure is network round trip plus server time, and only the server spends
CPU. Charging the round trip too would let a client 100 ms away from GitHub run at a fraction
of its allowance, so each request is charged its duration minus the network floor: the fastest
recent response, capped at a plausible round trip (``max_network_rtt_s``), since anything
slower than that is the server working. Should GitHub still report a secondary-limit hit, the
pacer stops subtracting and charges whole durations, GitHub's own conservative estimate.

The bookkeeping is O(1) amortised per request: deques of start times, a running sum, a
monotonic deque for the rolling minimum.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["GITHUB_MAX_IN_FLIGHT", "Pacer", "endpoint_key"]

GITHUB_MAX_IN_FLIGHT = 100
_MIN_SLEEP = 0.001  # guards against float rounding turning a wait into a busy loop
_EMA_WEIGHT = 0.2  # weight of the newest duration in the running mean
_FLOOR_WINDOW = 200  # responses the network floor is the minimum of
_API_PREFIX = "/api/v3"  # GitHub Enterprise Server serves the REST API under this path
_OWNER_SEGMENT = {"orgs": "{org}", "users": "{username}"}
_NUMBER_AFTER = {
    "pulls": "{pull_number}",
    "issues": "{issue_number}",
    "comments": "{comment_id}",
    "reviews": "{review_id}",
}


def endpoint_key(method: str, url: str) -> str:
    """The route template GitHub counts a request against, e.g. ``GET /repos/{owner}/{repo}/pulls``.

    The per-endpoint limit is per route, not per URL, so owner, repo and number segments are
    replaced by placeholders; ``/repositories/{id}/...`` (what Link headers use) is the same
    route as ``/repos/{owner}/{repo}/...``. Accepts a path or an absolute URL.
    """
    path = urlsplit(url).path
    if path.startswith(_API_PREFIX + "/"):
        path = path[len(_API_PREFIX) :]
    parts = [part for part in path.split("/") if part]
    return f"{method.upper()} /{'/'.join(_route_parts(parts))}"


def _route_parts(parts: list[str]) -> list[str]:
    if len(parts) >= 3 and parts[0] == "repos":
        head, rest = ["repos", "{owner}", "{repo}"], parts[3:]
    elif len(parts) >= 2 and parts[0] == "repositories" and parts[1].isdigit():
        head, rest = ["repos", "{owner}", "{repo}"], parts[2:]
    elif len(parts) >= 2 and parts[0] in _OWNER_SEGMENT:
        head, rest = [parts[0], _OWNER_SEGMENT[parts[0]]], parts[2:]
    else:
        head, rest = [], parts
    previous = [head[-1] if head else "", *rest]
    return head + [_placeholder(prev, part) for prev, part in zip(previous, rest, strict=False)]


def _placeholder(previous: str, part: str) -> str:
    if previous == "commits":
        return "{ref}"
    if part.isdigit():
        return _NUMBER_AFTER.get(previous, "{id}")
    return part


class _Started:
    """One request in the busy-seconds window: its start and its cost (estimated, then measured)."""

    __slots__ = ("cost", "expired", "time")

    def __init__(self, start: float, cost: float) -> None:
        self.time = start
        self.cost = cost
        self.expired = False


class _RollingMin:
    """Minimum of the last ``size`` values, O(1) amortised (a monotonic deque)."""

    __slots__ = ("_count", "_queue", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._count = 0
        self._queue: deque[tuple[int, float]] = deque()

    def add(self, value: float) -> float:
        """Record ``value``; return the minimum of the last ``size`` values, ``value`` included."""
        queue = self._queue
        while queue and queue[-1][1] >= value:
            queue.pop()
        queue.append((self._count, value))
        self._count += 1
        if queue[0][0] <= self._count - 1 - self._size:
            queue.popleft()
        return queue[0][1]


class _Slot:
    """``async with pacer.slot(key):`` — waits for a start, measures the request on exit."""

    __slots__ = ("_key", "_pacer", "_started")

    def __init__(self, pacer: Pacer, key: str) -> None:
        self._pacer = pacer
        self._key = key
        self._started: _Started | None = None

    async def __aenter__(self) -> None:
        self._started = await self._pacer._acquire(self._key)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._started is not None:
            self._pacer._release(self._started)
            self._started = None


class Pacer:
    """Admits requests so that GitHub's secondary limits hold, and adapts concurrency.

    ``clock`` and ``sleep`` must agree (real monotonic time with ``asyncio.sleep``, or a fake
    pair in tests): the pacer sleeps until its clock says a limit allows the next start.
    """

    def __init__(
        self,
        concurrency: int,
        max_requests_per_minute: int,
        max_busy_seconds_per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        safety: float = 0.9,
        window_s: float = 60.0,
        recover_after_s: float = 30.0,
        max_network_rtt_s: float = 0.25,
    ) -> None:
        self._ceiling = max(1, min(concurrency, GITHUB_MAX_IN_FLIGHT))
        self._per_endpoint_cap = max(1, int(max_requests_per_minute * safety))
        self._busy_budget = max_busy_seconds_per_minute * safety * window_s / 60.0
        self._clock, self._sleep = clock, sleep
        self._window, self._recover_after = window_s, recover_after_s
        self._aimd_cap = self._ceiling
        self._paused_until = self._last_change = float("-inf")
        self._in_flight = 0
        self._mean = 0.0
        self._mean_cost = 0.0
        self._max_rtt = max_network_rtt_s
        self._floor = _RollingMin(_FLOOR_WINDOW)
        self._starts: dict[str, deque[float]] = {}
        self._busy: deque[_Started] = deque()
        self._busy_sum = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()

    # -- what callers see ------------------------------------------------------------------

    def slot(self, endpoint_key: str) -> _Slot:
        """A context manager around one HTTP request to the route ``endpoint_key``."""
        return _Slot(self, endpoint_key)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def mean_duration(self) -> float:
        """Recent mean response time in seconds (0.0 before the first response)."""
        return self._mean

    @property
    def mean_cost(self) -> float:
        """Recent mean charge against the busy-seconds budget (server time, estimated)."""
        return self._mean_cost

    @property
    def busy_seconds(self) -> float:
        """Server time charged to the requests started in the current window."""
        self._expire_busy(self._clock())
        return max(0.0, self._busy_sum)

    @property
    def effective_concurrency(self) -> int:
        """min(configured, 100, the backoff cap, what the busy-seconds budget allows).

        With responses of mean charge d, a full round of c concurrent requests costs c*d
        server seconds; c is capped so that one round never exceeds the window's budget.
        """
        cap = self._aimd_cap
        if self._mean_cost > 0:
            cap = min(cap, int(self._busy_budget / self._mean_cost))
        return max(1, cap)

    def backoff(self, seconds: float) -> None:
        """GitHub reported a secondary-limit hit: pause new requests and halve concurrency.

        Requests already in flight when the pause began report the same episode; only the
        first hit of an episode halves, so a burst of 403s does not collapse concurrency to 1.
        """
        now = self._clock()
        self._max_rtt = 0.0  # our server-time estimate was too low: charge whole durations
        if now >= self._paused_until:
            self._aimd_cap = max(1, self._aimd_cap // 2)
        self._paused_until = max(self._paused_until, now + seconds)
        self._last_change = self._paused_until

    # -- admission -------------------------------------------------------------------------

    async def _acquire(self, key: str) -> _Started:
        while True:
            if self._in_flight >= self.effective_concurrency:
                await self._wait_for_release()
                continue
            now = self._clock()
            delay = self._delay(key, now)
            if delay <= 0:
                return self._start(key, now)
            self._wake_waiters()  # a free slot this task cannot use yet may suit another key
            await self._sleep(max(delay, _MIN_SLEEP))

    def _start(self, key: str, now: float) -> _Started:
        self._starts.setdefault(key, deque()).append(now)
        started = _Started(now, self._mean_cost)
        self._busy.append(started)
        self._busy_sum += started.cost
        self._in_flight += 1
        return started

    def _release(self, started: _Started) -> None:
        now = self._clock()
        duration = max(0.0, now - started.time)
        cost = duration - min(self._floor.add(duration), self._max_rtt)
        self._mean = _ema(self._mean, duration)
        self._mean_cost = _ema(self._mean_cost, cost)
        if not started.expired:
            self._busy_sum += cost - started.cost
        started.cost = cost
        self._in_flight -= 1
        self._maybe_grow(now)
        self._wake_waiters()

    def _maybe_grow(self, now: float) -> None:
        """Additive increase: one more slot per quiet ``recover_after_s`` since the last change."""
        if self._aimd_cap < self._ceiling and now - self._last_change >= self._recover_after:
            self._aimd_cap += 1
            self._last_change = now

    def _delay(self, key: str, now: float) -> float:
        """Seconds until starting a request to ``key`` keeps every limit (<= 0: now)."""
        return max(
            self._paused_until - now,
            self._endpoint_delay(key, now),
            self._busy_delay(now),
        )

    def _endpoint_delay(self, key: str, now: float) -> float:
        starts = self._starts.get(key)
        if not starts:
            return 0.0
        horizon = now - self._window
        while starts and starts[0] <= horizon:
            starts.popleft()
        if len(starts) < self._per_endpoint_cap:
            return 0.0
        return starts[len(starts) - self._per_endpoint_cap] + self._window - now

    def _busy_delay(self, now: float) -> float:
        """Wait until enough old requests leave the window for one more of mean cost."""
        self._expire_busy(now)
        excess = self._busy_sum + self._mean_cost - self._busy_budget
        if excess <= 0 or not self._busy:
            return 0.0
        freed = 0.0
        for started in self._busy:
            freed += started.cost
            if freed >= excess:
                break
        return started.time + self._window - now

    def _expire_busy(self, now: float) -> None:
        horizon = now - self._window
        busy = self._busy
        while busy and busy[0].time <= horizon:
            old = busy.popleft()
            old.expired = True
            self._busy_sum -= old.cost
        if not busy:
            self._busy_sum = 0.0  # drop accumulated float error

    # -- waiting for a free slot ------------------------------------------------------------

    async def _wait_for_release(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake_waiters()  # we were woken but will not use the slot: pass it on
            raise

    def _wake_waiters(self) -> None:
        free = self.effective_concurrency - self._in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1


def _ema(mean: float, value: float) -> float:
    """Exponential moving average; the first value seeds it."""
    return value if mean == 0 else mean + _EMA_WEIGHT * (value - mean)
