"""Injected faults: what goes wrong on the real service, on demand and reproducibly.

A fault spec such as ``"502:0.03,reset:0.01"`` gives each fault a per-request probability.
One seeded draw per eligible request picks at most one fault, so a given seed and request
order always produce the same failures, which is what makes a flaky-network test repeatable.

Heavy pages (``SlowPages``) are not drawn: a repo named in ``slow_pages`` has every list
request asking for more than its bound per page cut short, as GitHub cuts a request that
runs past ~10 s: a 502 or a 504 (in turn) after a hold.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping

from aiohttp import web

ERROR_FAULTS = ("500", "502", "503", "504", "html")
"""Answered instead of the data: the harvester must retry them."""
BODY_FAULTS = ("malformed", "empty")
"""A 200 whose body is not the JSON it claims to be."""
FAULT_NAMES: tuple[str, ...] = (*ERROR_FAULTS, *BODY_FAULTS, "reset", "timeout", "secondary")

_ERROR_BODIES: dict[str, tuple[int, str]] = {
    "500": (500, '{"message":"Server Error"}'),
    "502": (502, '{"error":"Server Error"}'),
    "503": (
        503,
        json.dumps(
            {
                "message": "Service Unavailable",
                "documentation_url": "https://docs.github.com/rest",
                "status": "503",
            }
        ),
    ),
    "504": (
        504,
        '{"message":"We couldn\'t respond to your request in time. Sorry about that. '
        'Please try resubmitting your request and contact us if the problem persists."}',
    ),
}
_HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Unicorn! · GitHub</title></head>"
    "<body><h1>This page is taking too long to load.</h1>"
    "<p>Sorry about that. Please try refreshing and contact us if the problem persists.</p>"
    "</body></html>\n"
)


def parse_faults(spec: str) -> dict[str, float]:
    """``"502:0.03,reset:0.01"`` → ``{"502": 0.03, "reset": 0.01}``; ValueError if bad."""
    rates: dict[str, float] = {}
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, rate_text = entry.partition(":")
        if not sep:
            raise ValueError(f"fault {entry!r} has no rate: write NAME:RATE, e.g. 502:0.03")
        try:
            rate = float(rate_text)
        except ValueError:
            raise ValueError(f"fault {name!r}: rate {rate_text!r} is not a number") from None
        rates[name.strip()] = rate
    return validate_faults(rates)


def validate_faults(rates: Mapping[str, float]) -> dict[str, float]:
    """Known names, rates in [0, 1], summing to at most 1 (one fault per request)."""
    for name, rate in rates.items():
        if name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {name!r}: choose from {', '.join(FAULT_NAMES)}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault {name!r}: rate {rate} is outside [0, 1]")
    if sum(rates.values()) > 1.0 + 1e-9:
        raise ValueError(f"fault rates sum to {sum(rates.values()):g}: they must not exceed 1")
    return dict(rates)


class FaultInjector:
    """One seeded draw per eligible request; at most one fault per request."""

    def __init__(self, rates: Mapping[str, float], seed: int | str) -> None:
        self._rates = [(name, rate) for name, rate in validate_faults(rates).items() if rate]
        self._rng = random.Random(f"gh-simulator-faults:{seed}")

    def draw(self) -> str | None:
        """The fault for this request, or None; no draw at all when no fault is enabled, so
        a fault-free simulator stays free of RNG cost."""
        if not self._rates:
            return None
        roll = self._rng.random()
        for name, rate in self._rates:
            if roll < rate:
                return name
            roll -= rate
        return None


def validate_slow_pages(bounds: Mapping[str, int]) -> dict[str, int]:
    """Repo name -> the largest ``per_page`` its lists answer; at least 1."""
    for name, bound in bounds.items():
        if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
            raise ValueError(f"slow page bound of {name!r} must be a whole number >= 1")
    return dict(bounds)


def parse_slow_pages(spec: str) -> dict[str, int]:
    """``"big-repo:40,other:10"`` -> ``{"big-repo": 40, "other": 10}``; ValueError if bad."""
    bounds: dict[str, int] = {}
    for raw in filter(None, (entry.strip() for entry in spec.split(","))):
        name, sep, bound = raw.rpartition(":")
        if not sep or not name or not bound.isdigit():
            raise ValueError(f"slow pages {raw!r}: write REPO:PER_PAGE, e.g. big-repo:40")
        bounds[name] = int(bound)
    return validate_slow_pages(bounds)


class SlowPages:
    """Which list requests are too heavy to answer: those of a named repo asking for more
    than its bound per page. The cut alternates between 502 and 504, GitHub's two."""

    def __init__(self, bounds: Mapping[str, int]) -> None:
        self._bounds = validate_slow_pages(bounds)
        self._cuts = 0

    def __bool__(self) -> bool:
        return bool(self._bounds)

    def cut(self, repo: str, per_page: int) -> str | None:
        """The ERROR_FAULTS name to answer with, or None when the page is light enough."""
        bound = self._bounds.get(repo)
        if bound is None or per_page <= bound:
            return None
        self._cuts += 1
        return "502" if self._cuts % 2 else "504"


def error_response(name: str) -> web.Response:
    """A 5xx (JSON, as GitHub sends it) or a 200 HTML error page, for an ERROR_FAULTS name."""
    if name == "html":
        return web.Response(status=200, text=_HTML_PAGE, content_type="text/html")
    status, body = _ERROR_BODIES[name]
    return web.Response(status=status, text=body, content_type="application/json")


def corrupt(name: str, body: bytes) -> bytes:
    """The body a BODY_FAULTS fault sends in place of ``body``."""
    if name == "empty":
        return b""
    return body[: max(1, len(body) // 2)]


def reset_connection(request: web.Request) -> None:
    """Drop the TCP connection without an answer: the client sees a protocol/connection
    error, as when a proxy on the way resets it."""
    if request.transport is not None:
        request.transport.abort()
