"""Who a credential is, and which budget it spends: GitHub's identities, simulated.

GitHub keeps one primary budget per user, spent by all of that user's tokens, and one per
GitHub App installation, spent by all of its installation tokens (github-api.md, "Rate
limits"). Secondary limits are per user or app too. So the simulator keeps one ``_Client``
(budget and secondary windows) per *owner*:

- a token listed in ``SimulatorConfig.users`` belongs to that login: its tokens share one;
- any other token (any at all with ``token=None``, else only ``token``) has a budget of its
  own; ``GET /user`` names every such token ``owners.OTHER_USER`` (so a pool of plain tokens
  looks like one user's: name users to tell them apart);
- an installation token (minted by ``apps``) spends its installation's budget, until it
  expires by the simulated clock (then 401, as GitHub answers an expired token);
- a JWT is never a token for data routes (401): GitHub takes it on app routes only.

ETags: GitHub varies answers by ``Authorization`` and a 304 is free only to the same
authorization, so an owner other than a plain token (a named user, an installation) gets
ETags of its own (``etag_salt``). A plain token's ETags stay as they always were, so the
default org's answers are byte for byte those of earlier versions (and of datasets they made).
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass

from gh_collect.simulator.model.clock import SimClock
from gh_collect.simulator.server.config import SimulatorConfig
from gh_collect.simulator.server.limits import _Budget, _Client
from gh_collect.simulator.server.routes import bearer

__all__ = ["INSTALLATION_PREFIX", "Identities", "salted_etag"]

INSTALLATION_PREFIX = "ghs_"  # GitHub's prefix for installation tokens
_JWT = re.compile(r"^eyJ[\w-]*\.[\w-]+\.[\w-]+$")


@dataclass(frozen=True)
class _Installed:
    """An installation token: whose, and when it expires (simulated epoch seconds)."""

    installation: int
    expires: int


class Identities:
    """Tokens, users and installations of one simulated GitHub (shared by every org it serves)."""

    def __init__(self, cfg: SimulatorConfig, clock: SimClock) -> None:
        self.cfg = cfg
        self.clock = clock
        self._user_of = {token: login for login, tokens in cfg.users.items() for token in tokens}
        self._clients: dict[str, _Client] = {}
        self._installed: dict[str, _Installed] = {}

    def client_for(self, authorization: str) -> _Client | None:
        """The owner's state for this ``Authorization``; None for no, a wrong, a JWT or an
        expired token (GitHub's 401)."""
        token = bearer(authorization)
        if not token or _JWT.match(token):
            return None
        installed = self._installed.get(token)
        if installed is not None:
            if self.clock.now() >= installed.expires:
                return None
            return self._installation_client(installed.installation)
        login = self._user_of.get(token)
        if login is not None:
            return self._owner(f"user:{login}", self.cfg.rate_limit, login, salt=f"user:{login}")
        if self.cfg.token is not None and token != self.cfg.token:
            return None
        return self._owner(f"token:{_digest(token)}", self.cfg.rate_limit, "", salt="")

    def sso_authorized(self, authorization: str) -> bool:
        """Whether an org enforcing SAML SSO lets this credential in: tokens a member has
        authorised for it (``saml_authorized``) and installation tokens (an app installed
        on the org needs no SSO session)."""
        token = bearer(authorization)
        return token in self.cfg.saml_authorized or token in self._installed

    def mint(self, installation: int, ttl_s: float) -> tuple[str, int]:
        """A new installation token and its expiry (simulated epoch seconds, whole: GitHub's
        ``expires_at`` has no fraction)."""
        token = INSTALLATION_PREFIX + secrets.token_hex(18)
        expires = self.clock.now() + max(1, math.ceil(ttl_s))
        self._installed[token] = _Installed(installation, expires)
        return token, expires

    def _installation_client(self, installation: int) -> _Client:
        limit = self.cfg.app.rate_limit if self.cfg.app is not None else self.cfg.rate_limit
        key = f"installation:{installation}"
        return self._owner(key, limit, "", salt=key, integration=True)

    def _owner(
        self, key: str, limit: int, login: str, *, salt: str, integration: bool = False
    ) -> _Client:
        client = self._clients.get(key)
        if client is None:
            budget = _Budget(limit, self.cfg.reset_seconds)
            client = _Client(budget, key, login, integration, salt)
            self._clients[key] = client
        return client


def salted_etag(etag: str, salt: str) -> str:
    """The ETag ``salt``'s owner is given for a body whose plain ETag is ``etag``."""
    weak = etag.startswith("W/")
    digest = hashlib.sha1(f"{salt}\n{etag}".encode(), usedforsecurity=False).hexdigest()[:32]
    return f'{"W/" if weak else ""}"{digest}"'


def _digest(token: str) -> str:
    """What names a plain token's owner: a hash, so no key or stat ever holds the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]
