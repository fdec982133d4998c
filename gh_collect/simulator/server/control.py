"""The control API under ``/__simulator/``: how tests and tortures drive a running simulator.

Free, unauthenticated (the server binds to loopback only), never faulty, never counted, so
a harvest's request figures are untouched by whoever watches it. It works the same for the
threaded ``Simulator`` and for ``gh-collect simulate`` in another process:

* ``GET /__simulator/stats``: the request counters.
* ``GET /__simulator/truth?year=2025&endpoints=pulls,issues``: the ground truth as of now
  (``OrgModel.ground_truth``, objects as served at the requesting base URL) and ``now``;
  ``endpoints`` may name any of ``ENDPOINTS`` (default: pulls, issues).
* ``GET /__simulator/churn``: ``{"ms": ..., "edits": ..., "now": ...}``;
  ``POST /__simulator/churn?ms=N``: edit one random item (and its repo's activity, see
  ``OrgModel.churn``) every N ms (0: stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gh_collect.simulator.model import DEFAULT_ENDPOINTS, OrgModel
from gh_collect.simulator.server.limits import _Stats


class Churn:
    """While ``ms`` > 0, ``edit`` runs every ``ms`` milliseconds on the server's event loop
    (between requests, like every change). ``set`` must run on that loop once it serves."""

    def __init__(self, edit: Callable[[random.Random], object], seed: int, ms: float) -> None:
        self._edit = edit
        self._rng = random.Random(f"gh-simulator:churn:{seed}")
        self._task: asyncio.Task[None] | None = None
        self.ms = _checked(ms)
        self.edits = 0

    def set(self, ms: float) -> None:
        """Churn every ``ms`` ms from now on (0: off). Before the server runs, only noted."""
        self.ms = _checked(ms)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self.ms > 0 and self._task is None:
            self._task = loop.create_task(self._run())
        elif self.ms == 0 and self._task is not None:
            self._task.cancel()
            self._task = None

    async def stop(self) -> None:
        """End the churn task (server shutdown); ``ms`` stays, for a restart."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while self.ms > 0:
            await asyncio.sleep(self.ms / 1000.0)
            if self.ms > 0:
                self._edit(self._rng)
                self.edits += 1


def _checked(ms: float) -> float:
    if not math.isfinite(ms) or ms < 0:
        raise ValueError(f"churn ms must be a finite number >= 0, got {ms}")
    return float(ms)


class Control:
    """The answers of ``/__simulator/...`` for one app."""

    def __init__(self, model: OrgModel, stats: _Stats, churn: Churn) -> None:
        self.model, self.stats, self.churn = model, stats, churn

    def answer(self, request: web.Request, path: str, base: str) -> web.Response:
        try:
            if path == "/__simulator/stats":
                return web.json_response(self.stats.snapshot())
            if path == "/__simulator/truth" and request.method == "GET":
                return web.json_response(self._truth(request, base))
            if path == "/__simulator/churn":
                if request.method == "POST":
                    self.churn.set(float(request.query.get("ms", "")))
                return web.json_response(self._churn_state())
        except ValueError as exc:
            return web.json_response({"message": str(exc)}, status=422)
        return web.json_response({"message": "Not Found"}, status=404)

    def _truth(self, request: web.Request, base: str) -> dict[str, Any]:
        year = int(request.query.get("year", str(int(self.model.now[:4]) - 1)))
        wanted = request.query.get("endpoints", ",".join(DEFAULT_ENDPOINTS))
        endpoints = [name for name in wanted.split(",") if name]
        truth = self.model.ground_truth(base, year, endpoints)
        return {"now": self.model.now, "year": year, "truth": truth}

    def _churn_state(self) -> dict[str, Any]:
        return {"ms": self.churn.ms, "edits": self.churn.edits, "now": self.model.now}
