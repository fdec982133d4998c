"""When to save: small strategies a run combines (every N pages, N records, T seconds, and
once when the rate-limit budget falls below a line).

A strategy only answers "why save now?" from a ``SaveContext``; the manager asks at its one
async save point (``maybe_save_async``) and does the saving.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gh_collect.config import CheckpointSettings, RateLimitSettings

__all__ = [
    "AnyOf",
    "EveryPages",
    "EveryRecords",
    "EverySeconds",
    "RateLimitBelow",
    "SaveContext",
    "SaveStrategy",
    "strategy_from_settings",
]


@dataclass(frozen=True)
class SaveContext:
    """What a strategy sees: progress since the last save and the rate-limit budget."""

    pages_since_save: int = 0
    records_since_save: int = 0
    seconds_since_save: float = 0.0
    rate_remaining: int | None = None
    rate_limit: int | None = None


class SaveStrategy(Protocol):
    def reason(self, ctx: SaveContext) -> str | None:
        """Why to save now, or None to not save."""
        ...


def _plural(count: float, unit: str) -> str:
    return f"{count:g} {unit}" if count == 1 else f"{count:g} {unit}s"


class EveryPages:
    def __init__(self, pages: int) -> None:
        self.pages = pages

    def reason(self, ctx: SaveContext) -> str | None:
        return (
            f"every {_plural(self.pages, 'page')}" if ctx.pages_since_save >= self.pages else None
        )


class EveryRecords:
    def __init__(self, records: int) -> None:
        self.records = records

    def reason(self, ctx: SaveContext) -> str | None:
        if ctx.records_since_save >= self.records:
            return f"every {_plural(self.records, 'record')}"
        return None


class EverySeconds:
    """Time since the last save comes from the manager's clock, so any save restarts it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def reason(self, ctx: SaveContext) -> str | None:
        if ctx.seconds_since_save >= self.seconds:
            return f"every {_plural(self.seconds, 'second')}"
        return None


class RateLimitBelow:
    """Fires once when remaining/limit falls to ``fraction``; re-arms when the budget recovers.

    Saving on every response below the line would add a save per request exactly when the
    run can least afford slowness, so it fires once per crossing.
    """

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self._below = False

    def reason(self, ctx: SaveContext) -> str | None:
        if ctx.rate_remaining is None or not ctx.rate_limit:
            return None
        share = ctx.rate_remaining / ctx.rate_limit
        if share > self.fraction:
            self._below = False
            return None
        if self._below:
            return None
        self._below = True
        return f"rate limit {share:.0%} <= {self.fraction:.0%}"


class AnyOf:
    """Saves when any member fires; asks every member so stateful ones see each call."""

    def __init__(self, strategies: Sequence[SaveStrategy]) -> None:
        self.strategies = list(strategies)

    def reason(self, ctx: SaveContext) -> str | None:
        reasons = [r for r in (s.reason(ctx) for s in self.strategies) if r is not None]
        return "; ".join(reasons) or None


def strategy_from_settings(checkpoint: CheckpointSettings, rate_limit: RateLimitSettings) -> AnyOf:
    """The SPEC cadence: every N pages, N records, T seconds, and the rate-limit threshold."""
    return AnyOf(
        [
            EveryPages(checkpoint.every_pages),
            EveryRecords(checkpoint.every_records),
            EverySeconds(checkpoint.every_seconds),
            RateLimitBelow(rate_limit.save_below),
        ]
    )
