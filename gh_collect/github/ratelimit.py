"""GitHub's rate-limit headers, read once, and the budgets they describe, one per resource.

Everything a server sends is untrusted, so this is the one boundary where ``x-ratelimit-*``
and ``retry-after`` are parsed: non-finite, negative, mistyped or huge values (beyond 2^53,
or a reset more than a day ahead) are treated as absent, so no such value reaches a wait,
the quota or the checkpoint. Only a ``retry-after`` of ``inf`` or a huge number is read as
what it asks, the longest wait allowed (``MAX_SERVER_WAIT``).

GitHub keeps a separate primary budget per resource (``x-ratelimit-resource``: core, search,
graphql, ...): spending the search budget to zero leaves core untouched. ``RateBuckets``
keeps the freshest reading of each, so a request waits only on the budget it will spend;
``resource_for`` says which one that is before the request is sent.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

__all__ = [
    "CODE_SEARCH",
    "CORE",
    "GRAPHQL",
    "MAX_SERVER_WAIT",
    "SEARCH",
    "RateBuckets",
    "RateLimit",
    "header_int",
    "resource_for",
    "retry_after_seconds",
]

CORE, SEARCH, CODE_SEARCH, GRAPHQL = "core", "search", "code_search", "graphql"
MAX_SERVER_WAIT = 3660.0  # the primary window is one hour; any longer wait is a bad server
MAX_HEADER_NUMBER = 2**53  # beyond it a float loses integers: no honest header goes there
MAX_RESET_AHEAD = 86400.0  # a reset further ahead than a day is bad data (windows are 1 h)
_NUMBER = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,16})?")  # "60", "1750000000", "1.5"
_INTEGER = re.compile(r"[0-9]{1,16}")
_RESOURCE = re.compile(r"[a-z0-9_]{1,64}")  # core, search, graphql, code_scanning_upload...
_REST_PREFIX = "/api/v3"  # GitHub Enterprise Server serves REST under it, GraphQL at /api/graphql
_GRAPHQL_PATHS = frozenset({"/graphql", "/api/graphql"})


@dataclass(frozen=True)
class RateLimit:
    """The primary budget as one response reported it (``reset`` in epoch seconds)."""

    limit: int
    remaining: int
    reset: float
    used: int | None = None
    resource: str | None = None

    @classmethod
    def from_headers(
        cls, headers: Mapping[str, str], *, now: float | None = None
    ) -> RateLimit | None:
        """Read ``x-ratelimit-*`` (any case); None when a required header is absent or bad.

        The one place these headers are parsed: what it returns is safe to wait on, count and
        save (``now``, epoch seconds, bounds the reset; a bad optional header becomes None).
        """
        lower = {key.lower(): value for key, value in headers.items()}
        limit = header_int(lower.get("x-ratelimit-limit"))
        remaining = header_int(lower.get("x-ratelimit-remaining"))
        reset = _header_seconds(lower.get("x-ratelimit-reset"))
        horizon = (time.time() if now is None else now) + MAX_RESET_AHEAD
        if not limit or remaining is None or reset is None or reset > horizon:
            return None
        resource = lower.get("x-ratelimit-resource", "")
        return cls(
            limit=limit,
            remaining=remaining,
            reset=reset,
            used=header_int(lower.get("x-ratelimit-used")),
            resource=resource if _RESOURCE.fullmatch(resource) else None,
        )

    @property
    def fraction_left(self) -> float:
        """remaining/limit, what ``rate_limit.save_below`` is compared with."""
        return self.remaining / self.limit if self.limit > 0 else 0.0


def header_int(value: str | None) -> int | None:
    """A non-negative integer header (ASCII digits, at most 2^53), or None."""
    if value is None or not _INTEGER.fullmatch(value.strip()):
        return None
    number = int(value)
    return number if number <= MAX_HEADER_NUMBER else None


def _header_seconds(value: str | None) -> float | None:
    """A finite, non-negative number such as ``60`` or ``1750000000.5`` (at most 2^53)."""
    if value is None or not _NUMBER.fullmatch(value.strip()):
        return None
    number = float(value)
    return number if number <= MAX_HEADER_NUMBER else None


def retry_after_seconds(value: str | None, now: float | None) -> float | None:
    """``retry-after`` as seconds: a number, or an HTTP date measured from ``now``.

    ``inf`` or a huge number asks for a very long wait: it becomes ``MAX_SERVER_WAIT``, the
    longest any wait may be (so exit mode exits). None (absent) for what is no wait at all:
    ``nan``, negative, mistyped.
    """
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return _retry_after_date(value, time.time() if now is None else now)
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_SERVER_WAIT)


def _retry_after_date(value: str, now: float) -> float | None:
    """An HTTP-date ``retry-after`` as seconds from ``now`` (0 if past, capped if far)."""
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    return min(max(0.0, when - now), MAX_SERVER_WAIT) if math.isfinite(when) else None


def resource_for(method: str, url: str) -> str:
    """The budget a request will spend, known before it is sent (so it can wait on it).

    GitHub names it in the answer's ``x-ratelimit-resource``; this predicts that name from
    the route: ``POST /graphql`` spends graphql, ``/search/code`` code_search, any other
    ``/search/...`` search, everything else core.
    """
    path = urlsplit(url).path
    if method.upper() == "POST" and path.rstrip("/") in _GRAPHQL_PATHS:
        return GRAPHQL
    if path.startswith(_REST_PREFIX + "/"):
        path = path[len(_REST_PREFIX) :]
    if path.startswith("/search/"):
        return CODE_SEARCH if path.rstrip("/") == "/search/code" else SEARCH
    return CORE


class RateBuckets:
    """The freshest reading of each resource's budget, as responses report them.

    A response names its resource; one that does not counts for the bucket of its request,
    which is the best guess of what it spent.
    """

    def __init__(self) -> None:
        self._buckets: dict[str, RateLimit] = {}
        self._latest: str | None = None

    def seen(self, rate: RateLimit, request_resource: str) -> str:
        """Record ``rate``; returns the resource it was counted for."""
        resource = rate.resource or request_resource
        self._buckets[resource] = _fresher(self._buckets.get(resource), rate)
        self._latest = resource
        return resource

    def get(self, resource: str) -> RateLimit | None:
        return self._buckets.get(resource)

    @property
    def all(self) -> Mapping[str, RateLimit]:
        """A copy: callers read it while requests keep updating the buckets."""
        return dict(self._buckets)

    @property
    def headline(self) -> RateLimit | None:
        """The budget a run is judged by: core, or the most recent one if core never came."""
        if CORE in self._buckets:
            return self._buckets[CORE]
        return self._buckets[self._latest] if self._latest is not None else None


def _fresher(current: RateLimit | None, seen: RateLimit) -> RateLimit:
    """Responses arrive out of order: within one window the lowest remaining is the truth,
    and a later window's reading is truer than an earlier's (an answer of the old window
    arriving after the new one began must not make the budget look spent, or reset)."""
    if current is None or seen.reset > current.reset:
        return seen
    if seen.reset == current.reset and seen.remaining <= current.remaining:
        return seen
    return current
