"""Several organizations on one simulated GitHub, as the real one serves them all on one host.

Each org is its own ``SimulatorApp`` (its model, faults, SAML setting, stats, ground truth);
what GitHub keeps across orgs is shared: the identities (a token's budget is the same
whichever org it reads: ``identities``) and the GitHub App (one app, an installation per
org: ``apps``). A request goes to the org its path names (``/orgs/{org}``, ``/repos/{owner}``,
``/users/{user}``, or by id: ``/repositories/{id}``, ``/organizations/{id}``); anything
else (``/rate_limit``, ``/user``, the app routes) to the first org, which answers it for all.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote

from aiohttp import web

from gh_collect.simulator.server.app import SimulatorApp

__all__ = ["Fleet"]

_BY_NAME = frozenset({"orgs", "repos", "users"})
_BY_ID = frozenset({"repositories", "organizations", "user"})


class Fleet:
    """One host serving every org of ``apps`` (the first answers what no org owns)."""

    def __init__(self, apps: Sequence[SimulatorApp]) -> None:
        if not apps:
            raise ValueError("a fleet serves at least one org")
        self.apps = list(apps)
        self.main = self.apps[0]
        self._by_name = {app.model.org.lower(): app for app in self.apps}
        if len(self._by_name) != len(self.apps):
            raise ValueError("each org of a fleet needs its own name")

    def org(self, name: str) -> SimulatorApp:
        """The org named ``name`` (any case); KeyError if not served."""
        return self._by_name[name.lower()]

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        for org in self.apps:  # each org's clock starts, and churn stops, with the server
            app.on_startup.append(org._started)
            app.on_cleanup.append(org._stopping)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        return await self._owner(request.path).handle(request)

    def _owner(self, raw_path: str) -> SimulatorApp:
        parts = raw_path.removeprefix("/api/v3").split("/")
        if len(parts) < 3:
            return self.main
        kind, value = parts[1], unquote(parts[2])
        if kind in _BY_NAME:
            return self._by_name.get(value.lower(), self.main)
        if kind in _BY_ID and value.isdigit():
            return self._by_id(int(value))
        return self.main

    def _by_id(self, ident: int) -> SimulatorApp:
        for app in self.apps:
            if app.model.org_id == ident or app.model.repo_by_id(ident) is not None:
                return app
        return self.main
