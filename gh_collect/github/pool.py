"""The credential pool: every request gets an ``Authorization`` where budget is left.

A run may hold several credentials (``github.auth``: tokens, a GitHub App installation, or
both). The pool spends all of them before anyone waits:

- **budgets**: GitHub keeps one primary budget per user (all of a user's tokens share it) and
  one per app installation, per resource (core, search, graphql). The pool keeps each
  budget's freshest reading from response headers (``x-ratelimit-*``, ``RateBuckets``) and
  the requests it has in flight. A credential can take a request while its budget,
  less those in flight, is above ``pause_below`` (or is unknown, or past its reset).
- **same user**: with two tokens or more, one ``GET /user`` per token (charged once each, and
  their answers are the first budget readings) tells whose they are; tokens of one user
  share one budget and the run says so: they add no budget.
- **choice**: a GET goes to its URL's *home*, the credential that rendezvous hashing of the
  URL ranks first among those with budget left (weighted by one over the tokens sharing
  its budget). GitHub varies ETags by ``Authorization`` and answers a free 304 only to the
  same authorization, so a page must be re-read, run after run, with the credential that
  first read it: hashing gives every URL the same home in every run without storing who
  read what, and moves only the URLs of a spent credential. A POST (GraphQL, no ETag) goes
  where most budget is left. ``/user`` paths go to the first token: they ask who it is.
- **waiting**: only when no credential has budget left for the resource (``acquire``
  returns None); the client then waits for the earliest reset (``blocked_until``), or
  exits 75 with ``--on-rate-limit exit``. While a budget is unknown (a run's start, a reset
  just past), one request learns it and the others wait for that answer, so a run never
  bursts its concurrency into a budget that turns out to be spent.
- **refusals**: a SAML refusal takes that credential out for that org and the request is
  retried with another (the run stops, exit 2, only when none is left); a 401 to an
  installation token mints a new one, once (``app_auth``).

One pool serves every org of a run; each org's client holds a ``PoolView`` (the org matters
for SAML and for which app installation applies). Nothing here holds a token outside a
``Secret``; labels (``$GH_TOKEN_A``, ``GitHub App Iv23li...``) are what logs show.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from gh_collect.errors import (
    ApiError,
    BadCredentialsError,
    CredentialRefused,
    RateLimitError,
    SkippableApiError,
    SsoRequiredError,
)
from gh_collect.github.app_auth import InstallationTokens, JwtSender
from gh_collect.github.credentials import AppSource, Credentials, Secret, Source, TokenSource
from gh_collect.github.pagination import PageRequest
from gh_collect.github.ratelimit import CORE, RateBuckets, RateLimit

__all__ = ["CredentialPool", "Lease", "PinnedSender", "PoolView"]


@dataclass(eq=False)
class _Budget:
    """One primary budget: a user's (every token of theirs spends it) or an installation's."""

    buckets: RateBuckets = field(default_factory=RateBuckets)
    in_flight: Counter[str] = field(default_factory=Counter)
    members: int = 1
    answered: dict[str, asyncio.Event] = field(default_factory=dict)  # see ``probing``
    # Processes spending this budget at once (a fleet's workers sharing a credential): each
    # keeps at most its share of what is left in flight, so together they never overspend.
    share: int = 1

    def probing(self, resource: str, now: float) -> bool:
        """A request is out to learn this budget (none known, or its reset is past): the
        next ones wait for its answer rather than burst into a budget that may be spent."""
        rate = self.buckets.get(resource)
        unknown = rate is None or rate.reset <= now
        return unknown and self.in_flight[resource] > 0

    def release(self, resource: str) -> None:
        self.in_flight[resource] = max(0, self.in_flight[resource] - 1)
        event = self.answered.pop(resource, None)
        if event is not None:
            event.set()

    def left(self, resource: str, now: float) -> float:
        """What may still be spent of ``resource``, less the requests in flight; infinite
        while unknown or past its reset."""
        rate = self.buckets.get(resource)
        if rate is None or rate.reset <= now:
            return math.inf
        return rate.remaining // self.share - self.in_flight[resource]


@dataclass(eq=False)
class _Member:
    """One credential in the pool: a token, or one app installation (per org)."""

    key: str  # stable and not secret: what URLs are hashed with (its label)
    source: Source
    budget: _Budget
    header: Secret | None = None  # "Bearer ..." of a token; an installation's comes per lease
    installation: int | None = None  # an app member's, once known
    refused: set[str] = field(default_factory=set)  # orgs whose SAML SSO refused it

    @property
    def label(self) -> str:
        return self.source.label

    @property
    def is_app(self) -> bool:
        return isinstance(self.source, AppSource)


@dataclass(frozen=True, eq=False)
class Lease:
    """The right to send one request with one credential; ``header`` is the Authorization
    value (a Secret: its repr shows nothing). ``member`` None: a JWT, outside every budget."""

    member: _Member | None
    header: Secret = field(repr=False)
    resource: str = CORE
    generation: int = 0  # an installation token's minting, for a 401

    @property
    def label(self) -> str:
        return self.member.label if self.member is not None else "GitHub App JWT"

    @property
    def variable(self) -> str | None:
        """The environment variable the credential came from, if it did."""
        source = self.member.source if self.member is not None else None
        return source.variable if isinstance(source, TokenSource) else None


# Sends one request with a given lease through the client's request loop: (request, lease)
# -> the answer's body and its Date.
PinnedSender = Callable[[PageRequest, Lease], Awaitable[tuple[Any, datetime | None]]]


class CredentialPool:
    """Every credential of a run, their budgets, and the app's installation tokens."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        pause_below: int = 0,
        clock: Callable[[], float] = time.time,
        notify: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        if not credentials.sources:
            raise ValueError("a credential pool needs at least one credential")
        self.credentials = credentials
        self.pause_below = pause_below
        self.clock = clock
        self.notify = notify or (lambda _message: None)
        self.warn = warn or self.notify
        tokens = [source for source in credentials.sources if isinstance(source, TokenSource)]
        self._tokens = [_token_member(source) for source in tokens]
        self._apps = {
            id(source): InstallationTokens(source, notify=self.notify)
            for source in credentials.sources
            if isinstance(source, AppSource)
        }
        self._installation_budgets: dict[int, _Budget] = {}
        self.share = 1  # see ``share_budgets``
        self._views: dict[str, PoolView] = {}
        self._identified = False
        self._identify_lock = asyncio.Lock()

    @classmethod
    def single(cls, token: str, variable: str, **options: Any) -> CredentialPool:
        """A pool of one token held by ``variable`` (0.1.0's one ``token_env``)."""
        return cls(Credentials.token(token, variable), **options)

    def view(self, org: str) -> PoolView:
        """What one org's client uses: the tokens, and the app's installation for ``org``."""
        key = org.lower()
        if key not in self._views:
            apps = [
                _Member(key=f"{tokens.app.label} on {key}", source=tokens.app, budget=_Budget())
                for tokens in self._apps.values()
            ]
            self._views[key] = PoolView(self, org, [*self._tokens, *apps])
        return self._views[key]

    @property
    def size(self) -> int:
        return len(self.credentials.sources)

    def mints(self) -> int:
        """Installation tokens minted so far (all apps)."""
        return sum(tokens.mints for tokens in self._apps.values())

    def share_budgets(self, processes: int) -> None:
        """``processes`` (a fleet's workers) spend these credentials at once: each takes its
        share of what every budget has left (GitHub's headers count everyone's requests)."""
        self.share = max(1, processes)
        for view in self._views.values():
            for member in view.members:
                member.budget.share = self.share
        for member in self._tokens:
            member.budget.share = self.share
        for budget in self._installation_budgets.values():
            budget.share = self.share

    def tokens_of(self, member: _Member) -> InstallationTokens:
        return self._apps[id(member.source)]

    def installation_budget(self, installation: int) -> _Budget:
        """One budget per installation, whichever orgs it serves."""
        return self._installation_budgets.setdefault(installation, _Budget(share=self.share))

    async def identify(self, send: PinnedSender) -> None:
        """Once per pool, with two tokens or more: ``GET /user`` per token; tokens of one
        user are given one budget, and the run is told (they add no budget)."""
        async with self._identify_lock:
            if self._identified:
                return
            self._identified = True
            if len(self._tokens) < 2:
                return
            users = await asyncio.gather(*(self._whoami(member, send) for member in self._tokens))
            self._share_budgets(users)

    async def _whoami(self, member: _Member, send: PinnedSender) -> tuple[int, str] | None:
        """The user id and login behind a token; None when it cannot say (an app's token:
        403, or its budget is spent: then it keeps a budget of its own)."""
        lease = self.lease(member, CORE)
        try:
            data, _date = await send(PageRequest("/user"), lease)
        except (SkippableApiError, RateLimitError):
            return None
        user_id = data.get("id") if isinstance(data, dict) else None
        login = data.get("login") if isinstance(data, dict) else None
        if not isinstance(user_id, int) or not isinstance(login, str):
            return None
        return user_id, login[:100]

    def _share_budgets(self, users: list[tuple[int, str] | None]) -> None:
        groups: dict[int, list[_Member]] = {}
        logins: dict[int, str] = {}
        for member, user in zip(self._tokens, users, strict=True):
            if user is not None:
                groups.setdefault(user[0], []).append(member)
                logins[user[0]] = user[1]
        for user_id, members in groups.items():
            if len(members) < 2:
                continue
            shared = members[0].budget
            for member in members[1:]:
                for resource, rate in member.budget.buckets.all.items():
                    shared.buckets.seen(rate, resource)
                member.budget = shared
            shared.members = len(members)
            names = ", ".join(member.label for member in members)
            self.warn(
                f"{names} are tokens of the same GitHub user ({logins[user_id]}): they share "
                "one budget, so together they add none; use tokens of different users or a "
                "GitHub App installation for more"
            )

    def lease(self, member: _Member, resource: str, header: Secret | None = None) -> Lease:
        """A lease on ``member`` for one request of ``resource``: counted in flight."""
        member.budget.in_flight[resource] += 1
        value = header if header is not None else member.header
        assert value is not None
        return Lease(member, value, resource)


class PoolView:
    """The pool as one org's client sees it (``CredentialProvider`` of the client)."""

    def __init__(self, pool: CredentialPool, org: str, members: list[_Member]) -> None:
        self.pool = pool
        self.org = org
        self._org = org.lower()
        self.members = members
        self._prepared = False
        self._prepare_lock = asyncio.Lock()
        self._latest: str | None = None

    # -- what the client asks ---------------------------------------------------------------

    async def acquire(
        self, resource: str, method: str, key: str, send: PinnedSender
    ) -> Lease | None:
        """A lease for a request (``key``: its URL with query), or None when no credential
        has budget left for ``resource`` (then ``blocked_until`` says until when)."""
        if not self._prepared:
            await self._prepare(send)
        while True:
            member = self._choose(resource, method, key, self.pool.clock())
            if member is None:
                return None
            budget = member.budget
            if not budget.probing(resource, self.pool.clock()):
                break
            await budget.answered.setdefault(resource, asyncio.Event()).wait()
        if not member.is_app:
            return self.pool.lease(member, resource)
        assert member.installation is not None
        placeholder = self.pool.lease(member, resource, Secret(""))  # in flight from now
        try:
            tokens = self.pool.tokens_of(member)
            token = await tokens.token(member.installation, _jwt_sender(send))
        except BaseException:
            self.release(placeholder)
            raise
        header = Secret(f"Bearer {token.secret.reveal()}")
        return Lease(member, header, resource, token.generation)

    def release(self, lease: Lease) -> None:
        """The request's answer (or failure) is in: it no longer counts in flight."""
        if lease.member is not None:
            lease.member.budget.release(lease.resource)

    def accepted(self, lease: Lease) -> None:
        """GitHub took the lease's credential (any answer but a refusal of it)."""
        member = lease.member
        if member is not None and member.is_app and member.installation is not None:
            self.pool.tokens_of(member).accepted(member.installation, lease.generation)

    def observe(self, lease: Lease, rate: RateLimit, request_resource: str) -> str:
        """Record the budget an answer reported; returns the resource it counted for."""
        if lease.member is None:  # a JWT request: the app's own budget, not an installation's
            return rate.resource or request_resource
        resource = lease.member.budget.buckets.seen(rate, request_resource)
        self._latest = resource
        return resource

    def spent(self, lease: Lease, resource: str, reset_at: float) -> None:
        """GitHub said this credential's ``resource`` is spent until ``reset_at`` (at least
        a second from now, whatever it said)."""
        if lease.member is None:
            return
        buckets = lease.member.budget.buckets
        known = buckets.get(resource)
        until = max(reset_at, self.pool.clock() + 1.0)
        spent = RateLimit(known.limit if known else 1, 0, until, resource=resource)
        buckets.seen(spent, resource)

    def can_spend(self, resource: str) -> bool:
        """Whether some credential has budget left for ``resource`` now."""
        now, floor = self.pool.clock(), self.pool.pause_below
        return any(member.budget.left(resource, now) > floor for member in self._serving())

    def blocked_until(self, resource: str) -> float:
        """When the first budget of ``resource`` resets (every one is spent now)."""
        now = self.pool.clock()
        resets = [
            rate.reset
            for member in self._serving()
            if (rate := member.budget.buckets.get(resource)) is not None and rate.reset > now
        ]
        return min(resets) if resets else now + 1.0

    def rejected(self, lease: Lease, exc: ApiError, where: str) -> ApiError:
        """What a refused credential means: another try (``CredentialRefused``: another
        credential, or a fresh installation token) or the error to stop with."""
        member = lease.member
        if member is None:
            return exc
        if isinstance(exc, SsoRequiredError):
            return self._sso_refused(member, exc)
        if isinstance(exc, BadCredentialsError):
            return self._bad_credentials(lease, member, exc, where)
        return exc

    @property
    def headline(self) -> RateLimit | None:
        """The budget a run reports: core summed over the budgets, or the latest seen."""
        core = self.rate(CORE)
        if core is not None or self._latest is None:
            return core
        return self.rate(self._latest)

    @property
    def rates(self) -> Mapping[str, RateLimit]:
        """Every resource seen, each summed over the budgets."""
        names = {name for budget in self._budgets() for name in budget.buckets.all}
        summed = {name: self.rate(name) for name in sorted(names)}
        return {name: rate for name, rate in summed.items() if rate is not None}

    def rate(self, resource: str) -> RateLimit | None:
        """``resource`` over every budget: limits and remainings summed (one past its reset
        counts as full), the earliest reset still ahead. One budget: its reading as is."""
        budgets = self._budgets()
        readings = [rate for b in budgets if (rate := b.buckets.get(resource)) is not None]
        if not readings:
            return None
        if len(budgets) == 1:
            return readings[0]
        now = self.pool.clock()
        ahead = [rate.reset for rate in readings if rate.reset > now]
        used = [rate.used for rate in readings]
        return RateLimit(
            limit=sum(rate.limit for rate in readings),
            remaining=sum(rate.limit if rate.reset <= now else rate.remaining for rate in readings),
            reset=min(ahead) if ahead else max(rate.reset for rate in readings),
            used=None if None in used else sum(u for u in used if u is not None),
            resource=resource,
        )

    def describe(self) -> str:
        """Labels of the credentials serving this org, for messages."""
        return ", ".join(member.label for member in self._serving())

    # -- inside -----------------------------------------------------------------------------

    async def _prepare(self, send: PinnedSender) -> None:
        """Before the first request: who the tokens are, and the app's installation."""
        async with self._prepare_lock:
            if self._prepared:
                return
            await self.pool.identify(send)
            for member in self.members:
                if member.is_app and member.installation is None:
                    tokens = self.pool.tokens_of(member)
                    member.installation = await tokens.installation(self.org, _jwt_sender(send))
                    member.budget = self.pool.installation_budget(member.installation)
            self._prepared = True

    def shared_budgets(self) -> list[tuple[str, RateBuckets]]:
        """Each budget under a name that is the same on every machine and is not a secret
        (a fleet's workers share their readings under it, ``fleet.budget``): a token's is a
        salted SHA-256 prefix of the token, never the token; an installation's its id."""
        named: dict[str, RateBuckets] = {}
        for member in self._serving():
            if member.header is not None:
                digest = hashlib.sha256(b"gh-collect budget\0" + member.header.reveal().encode())
                named.setdefault(f"token:{digest.hexdigest()[:16]}", member.budget.buckets)
            elif member.installation is not None:
                named.setdefault(f"installation:{member.installation}", member.budget.buckets)
        return list(named.items())

    def _serving(self) -> list[_Member]:
        return [member for member in self.members if self._org not in member.refused]

    def _budgets(self) -> list[_Budget]:
        unique: dict[int, _Budget] = {}
        for member in self._serving():
            unique.setdefault(id(member.budget), member.budget)
        return list(unique.values())

    def _choose(self, resource: str, method: str, key: str, now: float) -> _Member | None:
        """The credential for this request among those with budget left (module docstring)."""
        floor = self.pool.pause_below
        usable = [m for m in self._serving() if m.budget.left(resource, now) > floor]
        if len(usable) <= 1:
            return usable[0] if usable else None
        if _asks_who(key):
            tokens = [member for member in usable if not member.is_app]
            if tokens:
                return tokens[0]
        if method.upper() != "GET":
            return max(usable, key=lambda member: member.budget.left(resource, now))
        return max(usable, key=lambda member: _rendezvous(member, key))

    def _sso_refused(self, member: _Member, exc: SsoRequiredError) -> ApiError:
        member.refused.add(self._org)
        left = self._serving()
        if not left:
            return exc
        where = f" (authorise it at {exc.authorize_url})" if exc.authorize_url else ""
        self.pool.warn(
            f"{member.label} is not authorised for {self.org}'s SAML single sign-on{where}; "
            f"{self.org} is read with {', '.join(m.label for m in left)}"
        )
        return CredentialRefused(
            f"{member.label} refused by {self.org}'s SAML SSO: trying another credential",
            status=exc.status,
            url=exc.url,
        )

    def _bad_credentials(
        self, lease: Lease, member: _Member, exc: BadCredentialsError, where: str
    ) -> ApiError:
        if member.is_app and member.installation is not None:
            tokens = self.pool.tokens_of(member)
            if tokens.refused(member.installation, lease.generation):
                return CredentialRefused(
                    f"{where}: the installation token of {member.label} was refused (401): "
                    "using a new one",
                    status=exc.status,
                    url=exc.url,
                )
            return BadCredentialsError(
                f"{where}: GitHub refused two installation tokens of {member.label} in a row "
                f"(bad credentials): check that the app is still installed on {self.org} and "
                "has read access (Metadata, Contents, Issues, Pull requests), then run again",
                status=exc.status,
                url=exc.url,
            )
        if lease.variable is None:  # from `gh auth token`
            host = member.label.rsplit(" ", 1)[-1]
            return BadCredentialsError(
                f"{where}: GitHub rejected the token of `{member.label}` (bad credentials): "
                f"run `gh auth login --hostname {host}` again, or export GITHUB_TOKEN",
                status=exc.status,
                url=exc.url,
            )
        return exc


def _asks_who(key: str) -> bool:
    """``/user`` and ``/user/...``: answers that depend on whose token asks."""
    path = urlsplit(key).path.removeprefix("/api/v3")
    return path.rstrip("/") == "/user" or path.startswith("/user/")


def _token_member(source: TokenSource) -> _Member:
    header = Secret(f"Bearer {source.secret.reveal()}")
    return _Member(key=source.label, source=source, budget=_Budget(), header=header)


def _rendezvous(member: _Member, key: str) -> float:
    """Weighted rendezvous (highest random weight) score of ``member`` for ``key``: the same
    key ranks the same credentials first in every run, whatever else the pool holds."""
    digest = hashlib.sha256(f"{member.key}\n{key}".encode()).digest()
    unit = (int.from_bytes(digest[:8], "big") + 0.5) / 2.0**64  # in (0, 1)
    return (1.0 / member.budget.members) / -math.log(unit)


def _jwt_sender(send: PinnedSender) -> JwtSender:
    """Sends a request with a JWT: a lease outside every budget."""

    async def with_jwt(request: PageRequest, token: Secret) -> tuple[Any, datetime | None]:
        return await send(request, Lease(None, Secret(f"Bearer {token.reveal()}")))

    return with_jwt
