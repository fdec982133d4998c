"""The simulator's HTTP server: GitHub's REST API for the endpoints gh_collect harvests.

It behaves like the service as github-api.md documents it, not like our client expects:
Link headers in the ``/repositories/{id}`` form, cursor pagination on big issue lists, a
primary budget per token that counts down and resets, secondary limits that are ENFORCED
(concurrency, requests per minute per endpoint, server time per minute), weak ETags with free
304s, renamed and vanished repos, and seeded faults. Everything binds to 127.0.0.1 only.

Where things live: ``config`` (SimulatorConfig), ``app`` (the per-request pipeline),
``handlers`` (what each route answers; ``activity``: the repo-wide comments, commits and
releases lists), ``routes`` (the route table and ``_Call``),
``paging`` (pages and Link headers), ``limits`` (primary budget, secondary limits, stats),
``rendering`` (replies, errors, ETags, bytes), ``serving`` (the threaded ``Simulator``,
``serve``, ``run_forever``). Faults are in ``gh_collect.simulator.faults``.
"""

from __future__ import annotations

from gh_collect.simulator.server.app import SimulatorApp
from gh_collect.simulator.server.config import SimulatorConfig
from gh_collect.simulator.server.serving import Simulator, run_forever, serve

__all__ = ["Simulator", "SimulatorApp", "SimulatorConfig", "run_forever", "serve"]
