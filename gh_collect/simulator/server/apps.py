"""GitHub App endpoints, simulated: a JWT in, an installation token out.

What GitHub does (github-api.md, "GitHub Apps"), and so what this does:

- the JWT must be RS256, signed by the app's private key (checked with its public key),
  with ``iat``, ``exp`` and ``iss`` (the app ID or client ID); ``exp`` at most 10 minutes
  ahead and not past, ``iat`` not ahead. Both against the real clock: a client makes its JWT
  with its own clock, and the simulated clock (which stamps ``Date``) is years away.
  Otherwise 401 with GitHub's message;
- ``GET /orgs/{org}/installation``: the installation on that org, or 404;
- ``POST /app/installations/{id}/access_tokens``: 201 ``{token, expires_at, permissions,
  repository_selection}``; ``expires_at`` by the simulated clock (the one ``Date`` says),
  ``SimulatedApp.token_ttl_s`` ahead. Each minting takes a moment (``MINT_S``), and the
  counters say how many there were and how many ran at once (``max_concurrent_mints``).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gh_collect.simulator.model import iso
from gh_collect.simulator.server.config import DOCS, SimulatedApp
from gh_collect.simulator.server.identities import Identities
from gh_collect.simulator.server.rendering import _error, _json, _Reply
from gh_collect.simulator.server.routes import bearer

__all__ = ["MAX_JWT_AHEAD_S", "MINT_S", "AppEndpoints", "installation_id"]

MAX_JWT_AHEAD_S = 600  # GitHub: exp "no more than 10 minutes into the future"
MINT_S = 0.02  # a minting takes a moment: two at once overlap, and a test can see it
PERMISSIONS = {"metadata": "read", "contents": "read", "issues": "read", "pull_requests": "read"}
_INSTALLATION = re.compile(r"^/orgs/(?P<org>[^/]+)/installation$")
_ACCESS_TOKENS = re.compile(r"^/app/installations/(?P<id>[0-9]{1,12})/access_tokens$")
_APP_DOCS = f"{DOCS}/apps/apps"
EXPIRED_MESSAGE = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at "
    "which the assertion expires"
)
ISSUED_MESSAGE = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion "
    "was issued"
)


@dataclass
class MintStats:
    mints: int = 0
    in_flight: int = 0
    max_concurrent_mints: int = 0
    jwt_refused: int = 0


def installation_id(app: SimulatedApp, org: str) -> int | None:
    """The installation of ``app`` on ``org``: as configured, else one per org (from 1001)."""
    if app.installations is not None:
        return app.installations.get(org) or app.installations.get(org.lower())
    return (
        1001
        + int(hashlib.sha1(org.lower().encode(), usedforsecurity=False).hexdigest(), 16) % 900_000
    )


class AppEndpoints:
    """The app routes of one simulated GitHub (shared by every org it serves)."""

    def __init__(self, app: SimulatedApp, identities: Identities) -> None:
        self.app = app
        self.identities = identities
        self.stats = MintStats()
        self._key = load_pem_public_key(app.public_key.encode())
        self._orgs: dict[int, str] = {}

    @staticmethod
    def handles(path: str) -> bool:
        return path == "/app" or path.startswith("/app/") or bool(_INSTALLATION.match(path))

    def serve_org(self, org: str) -> None:
        """``org`` is served here: the app is installed on it if ``installation_id`` says."""
        found = installation_id(self.app, org)
        if found is not None:
            self._orgs[found] = org

    async def answer(self, method: str, path: str, authorization: str, base: str) -> _Reply:
        refused = self._verify(authorization)
        if refused is not None:
            self.stats.jwt_refused += 1
            return _error(401, refused, _APP_DOCS)
        found = _INSTALLATION.match(path)
        if found and method == "GET":
            return self._installation(found.group("org"), base)
        found = _ACCESS_TOKENS.match(path)
        if found and method == "POST":
            return await self._mint(int(found.group("id")))
        if path == "/app" and method == "GET":
            return _json(200, self._app_object())
        return _error(404, "Not Found")

    def _verify(self, authorization: str) -> str | None:
        """GitHub's message for a JWT it refuses, or None."""
        token = bearer(authorization)
        try:
            claims = jwt.decode(
                token,
                self._key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"], "verify_iss": False},
            )
        except jwt.ExpiredSignatureError:
            return EXPIRED_MESSAGE
        except jwt.ImmatureSignatureError:
            return ISSUED_MESSAGE
        except jwt.InvalidTokenError:
            return "A JSON web token could not be decoded"
        if str(claims["iss"]) not in (str(self.app.app_id), self.app.client_id):
            return "Integration not found"
        if float(claims["exp"]) - time.time() > MAX_JWT_AHEAD_S + 1:
            return "'Expiration time' claim ('exp') is too far in the future"
        return None

    def _installation(self, org: str, base: str) -> _Reply:
        found = next((i for i, name in self._orgs.items() if name.lower() == org.lower()), None)
        if found is None:
            return _error(
                404,
                "Not Found",
                f"{_APP_DOCS}#get-an-organization-installation-for-the-authenticated-app",
            )
        return _json(200, self._installation_object(found, self._orgs[found], base))

    async def _mint(self, installation: int) -> _Reply:
        if installation not in self._orgs:
            return _error(404, "Not Found")
        stats = self.stats
        stats.in_flight += 1
        stats.max_concurrent_mints = max(stats.max_concurrent_mints, stats.in_flight)
        try:
            await asyncio.sleep(MINT_S)
            token, expires = self.identities.mint(installation, self.app.token_ttl_s)
            stats.mints += 1
        finally:
            stats.in_flight -= 1
        body = {
            "token": token,
            "expires_at": iso(expires),
            "permissions": PERMISSIONS,
            "repository_selection": "all",
        }
        return _json(201, body)

    def _app_object(self) -> dict[str, Any]:
        return {
            "id": self.app.app_id,
            "client_id": self.app.client_id,
            "slug": "gh-collect-simulated",
            "name": "gh-collect (simulated)",
            "permissions": PERMISSIONS,
            "events": [],
            "installations_count": len(self._orgs),
        }

    def _installation_object(self, installation: int, org: str, base: str) -> dict[str, Any]:
        return {
            "id": installation,
            "app_id": self.app.app_id,
            "client_id": self.app.client_id,
            "account": {"login": org, "type": "Organization"},
            "target_type": "Organization",
            "repository_selection": "all",
            "permissions": PERMISSIONS,
            "access_tokens_url": f"{base}/app/installations/{installation}/access_tokens",
        }
