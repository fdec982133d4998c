"""GitHub App authentication: a JWT signed with the app's key, exchanged for installation tokens.

GitHub's rules (docs: generating-a-json-web-token-jwt-for-a-github-app; github-api.md):

- the JWT is RS256, ``iat`` 60 s in the past (clock drift), ``exp`` at most 10 minutes
  ahead, ``iss`` the client ID (or app ID); it is made fresh for each exchange (cheap) and
  never kept;
- ``GET /orgs/{org}/installation`` (JWT) finds the installation when none is configured;
- ``POST /app/installations/{id}/access_tokens`` (JWT) returns ``{token, expires_at}``,
  one hour today. Peers that assumed that hour failed mid-run (tap-github PR #201); so the
  lifetime is read from the answer, measured against the server's ``Date`` (the machine's
  clock may be off, the server's is the one that expires the token), and the token is kept
  until a margin before it ends (a quarter of its life, at most 5 minutes);
- one minting at a time per installation (an ``asyncio.Lock``): the task that finds the
  token due mints, the others wait for its result, so a burst of requests mints once;
- a 401 with the current token drops it and the next request mints again, once: a token
  minted after a refusal that is refused too, before any answer accepted it, stops the run
  (``refused``; a fresh token can answer 401 for a moment while it replicates, a second
  refusal is no moment). A 401 with an older token only means another task replaced it.

The key, the JWT and every token are ``Secret``s: no message, log line or file holds them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gh_collect.config import check_token
from gh_collect.errors import (
    BadCredentialsError,
    ConfigError,
    FatalApiError,
    GhCollectError,
    RateLimitError,
    RetriableApiError,
    SecondaryRateLimitError,
    SkippableApiError,
)
from gh_collect.github.credentials import AppSource, Secret
from gh_collect.github.pagination import PageRequest

__all__ = [
    "JWT_BACKDATE_S",
    "JWT_LIFETIME_S",
    "REFRESH_MARGIN_S",
    "InstallationToken",
    "InstallationTokens",
    "JwtSender",
    "app_jwt",
    "check_private_key",
]

JWT_BACKDATE_S = 60  # GitHub: iat 60 s in the past, against clock drift
JWT_LIFETIME_S = 540  # exp 9 minutes after now: under GitHub's 10-minute cap, even with drift
REFRESH_MARGIN_S = 300.0  # refresh at most this long before expiry (Airbyte: 120 s)
MIN_REUSE_S = 1.0  # a token is used for at least this long, whatever a server says
MAX_LIFETIME_S = 3600.0  # GitHub's tokens live an hour; a later expiry is not believed

# (request, JWT) -> the answer's body and the server's Date; given by the pool, which sends
# through the client's request loop with the JWT as the only credential.
JwtSender = Callable[[PageRequest, Secret], Awaitable[tuple[Any, datetime | None]]]


def check_private_key(pem: str, where: str) -> None:
    """ConfigError (naming ``where``, never the content) unless ``pem`` is an RSA private key."""
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii", "replace"), password=None)
    except Exception:  # ValueError, TypeError, backend errors: none may show the key
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(
            f"{where} is not a PEM RSA private key without a passphrase: use the .pem file "
            "GitHub generated in the app's settings ('Private keys')"
        )


def app_jwt(app: AppSource, now: float) -> Secret:
    """A JWT for ``app`` (RS256): ``iat`` 60 s back, ``exp`` 9 minutes ahead, ``iss``."""
    issued = int(now)
    claims = {"iat": issued - JWT_BACKDATE_S, "exp": issued + JWT_LIFETIME_S, "iss": app.issuer}
    return Secret(jwt.encode(claims, app.key.reveal(), algorithm="RS256"))


@dataclass(frozen=True)
class InstallationToken:
    """One installation token: its value, when to stop using it (``refresh_at``, on the
    pool's clock), and which minting made it (``generation``)."""

    secret: Secret
    refresh_at: float
    generation: int
    lifetime_s: float
    after_refusal: bool = False


class InstallationTokens:
    """The installation tokens of one GitHub App, per installation, minted on demand."""

    def __init__(
        self,
        app: AppSource,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self._clock, self._wall = clock, wall
        self._notify = notify or (lambda _message: None)
        self._ids: dict[str, int] = {}
        self._tokens: dict[int, InstallationToken] = {}
        self._refused: set[int] = set()
        self._locks: dict[int, asyncio.Lock] = {}
        self._id_lock = asyncio.Lock()
        self._generation = 0
        self.mints = 0

    async def installation(self, org: str, send: JwtSender) -> int:
        """The installation for ``org``: configured, or found once with the JWT."""
        if self.app.installation_id is not None:
            return self.app.installation_id
        key = org.lower()
        async with self._id_lock:
            if key not in self._ids:
                self._ids[key] = await self._find(org, send)
        return self._ids[key]

    async def token(self, installation: int, send: JwtSender) -> InstallationToken:
        """A token of ``installation`` that is not due: the cached one, or one minted now
        (by this task, while any other that needs one waits for it)."""
        cached = self._tokens.get(installation)
        if cached is not None and self._clock() < cached.refresh_at:
            return cached
        lock = self._locks.setdefault(installation, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(installation)
            if cached is None or self._clock() >= cached.refresh_at:
                cached = await self._mint(installation, send)
                self._tokens[installation] = cached
        return cached

    def refused(self, installation: int, generation: int) -> bool:
        """GitHub answered 401 to token ``generation``: True when a request may try again
        (the token is dropped, or was already replaced); False when even a token minted
        after a refusal was refused, and only a human can help."""
        current = self._tokens.get(installation)
        if current is None or current.generation != generation:
            return True
        if current.after_refusal:
            return False
        del self._tokens[installation]
        self._refused.add(installation)
        return True

    def accepted(self, installation: int, generation: int) -> None:
        """An answer accepted token ``generation``: a later 401 may mint again."""
        current = self._tokens.get(installation)
        if current is not None and current.generation == generation and current.after_refusal:
            self._tokens[installation] = replace(current, after_refusal=False)

    async def _find(self, org: str, send: JwtSender) -> int:
        where = f"GET /orgs/{org}/installation"
        data, _date = await self._send(PageRequest(f"/orgs/{org}/installation"), send, where)
        installation = data.get("id") if isinstance(data, dict) else None
        if not isinstance(installation, int) or isinstance(installation, bool) or installation < 1:
            raise FatalApiError(f"{where}: the answer names no installation id; run again later")
        self._notify(f"{self.app.label}: installation {installation} on {org}")
        return installation

    async def _mint(self, installation: int, send: JwtSender) -> InstallationToken:
        path = f"/app/installations/{installation}/access_tokens"
        where = f"POST {path}"
        data, served = await self._send(PageRequest(path, method="POST"), send, where)
        token = data.get("token") if isinstance(data, dict) else None
        expires = _timestamp(data.get("expires_at") if isinstance(data, dict) else None)
        if not isinstance(token, str) or not token or expires is None:
            raise FatalApiError(f"{where}: the answer holds no token and expiry; run again later")
        try:
            secret = Secret(check_token(token, "installation token"))
        except ConfigError:
            raise FatalApiError(f"{where}: the token GitHub sent cannot be sent back") from None
        lifetime = _lifetime(expires, served, self._wall())
        margin = min(REFRESH_MARGIN_S, lifetime / 4)
        self._generation += 1
        self.mints += 1
        after_refusal = installation in self._refused
        self._refused.discard(installation)
        self._notify(
            f"{self.app.label}: installation token minted (valid {lifetime:.0f} s, "
            f"refreshed {margin:.0f} s before it ends)"
        )
        return InstallationToken(
            secret=secret,
            refresh_at=self._clock() + max(lifetime - margin, MIN_REUSE_S),
            generation=self._generation,
            lifetime_s=lifetime,
            after_refusal=after_refusal,
        )

    async def _send(
        self, request: PageRequest, send: JwtSender, where: str
    ) -> tuple[Any, datetime | None]:
        """One JWT request; GitHub's refusals become messages about the app, not a token."""
        try:
            return await send(request, app_jwt(self.app, self._wall()))
        except BadCredentialsError:
            raise BadCredentialsError(
                f"{where}: GitHub refused the JWT of {self.app.label} (bad credentials): check "
                f"the app's client ID or app ID and that {self.app.key_from} is one of its "
                "current private keys, then run again",
                status=401,
            ) from None
        except SkippableApiError as exc:
            raise self._not_installed(where, exc) from None
        except (RateLimitError, SecondaryRateLimitError) as exc:
            # The app's own limit: the request that needed a token is retried with backoff
            # (a bounded number of times), never in a loop that mints again at once.
            raise RetriableApiError(
                f"{where}: {self.app.label} is rate limited ({exc.message}); trying again",
                status=exc.status,
            ) from None

    def _not_installed(self, where: str, exc: SkippableApiError) -> GhCollectError:
        if exc.status == 404:
            return ConfigError(
                f"{where}: 404: {self.app.label} is not installed there (or the installation "
                "id is wrong): install the app on the organization, or fix "
                "github.auth.app.installation_id"
            )
        return FatalApiError(
            f"{where}: {exc.status}: GitHub refused {self.app.label}'s request; check the "
            "app's settings, then run again",
            status=exc.status,
        )


def _timestamp(value: Any) -> datetime | None:
    """An ISO 8601 UTC timestamp (``2016-07-11T22:14:10Z``), or None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _lifetime(expires: datetime, served: datetime | None, wall_now: float) -> float:
    """Seconds the token lives, by the server's clock (``Date``, to the second: one second
    is taken off for that); the local clock only when the server sent no date."""
    start = served.timestamp() if served is not None else wall_now
    seconds = expires.timestamp() - start - (1.0 if served is not None else 0.0)
    return min(max(0.0, seconds), MAX_LIFETIME_S) if math.isfinite(seconds) else 0.0
