"""The async GitHub client: the one request loop every endpoint's HTTP goes through.

Endpoint code above it sees only pages of data or a domain error from ``gh_collect.errors``;
how a request is sent, retried, paced and waited for is decided here, once, for REST and
(later) GraphQL alike. What the loop leans on lives beside it:

- ``auth``: the token goes only to ``api_url``'s origin; Link URLs and redirects elsewhere
  are refused before any request; no message shows a header's value;
- ``pool``: each request asks the credential pool for its ``Authorization`` (a ``Lease``)
  and reports the budget its answer shows back to it; a refused credential (SAML, an
  expired installation token) is swapped for another and the request tried again;
- ``responses``: a ``ResponseMapper`` (chosen per request, REST by default) turns an answer
  into data or an error; tenacity retries exactly the retriable ones (5xx, timeouts,
  resets, malformed or oversized bodies);
- ``ratelimit``: headers parsed at one boundary, one budget per resource (core, search,
  graphql) and credential; ``waiting``: a request waits only when every credential's budget
  of what it will spend is down to ``pause_below``, for the earliest reset (or exits 75, as
  the user chose), and honours secondary limits, which the ``Pacer`` (``pacing``) avoids;
- ``observer``: the run is told about each request, and may refuse one before it is paced.

301 (renamed repo) is followed and reported, 304 (ETag matched) is a cheap empty page.
Everything a server sends is untrusted, so every wait and buffer is bounded: server-asked
waits by ``MAX_SERVER_WAIT`` (``waiting``), bodies by ``MAX_BODY_BYTES`` (``responses``),
and each attempt by a total deadline (``github.request_deadline_s``, default 4 x
``timeout_s``) covering redirects and the whole body, since ``timeout_s`` bounds each read
and a body dripping a byte at a time never trips it; running out is retried like a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_base,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from gh_collect import __version__, codec
from gh_collect.config import GitHubSettings, RateLimitSettings
from gh_collect.errors import (
    ApiError,
    BadCredentialsError,
    FatalApiError,
    RateLimitError,
    RetriableApiError,
    SecondaryRateLimitError,
    SlowPageError,
    SsoRequiredError,
)
from gh_collect.github.auth import (
    LeaseAuth,
    api_origin,
    check_redirect,
    describe,
    resolve_url,
    safe_cause,
)
from gh_collect.github.observer import ClientObserver
from gh_collect.github.pacing import Pacer, endpoint_key
from gh_collect.github.pagination import PageRequest, parse_link_header
from gh_collect.github.pool import CredentialPool, Lease, PoolView
from gh_collect.github.ratelimit import MAX_SERVER_WAIT, RateLimit, resource_for
from gh_collect.github.responses import (
    MAX_BODY_BYTES,
    REST,
    Exchange,
    ResponseMapper,
    decode_body,
    error_for_response,
    read_capped,
)
from gh_collect.github.stats import ClientStats
from gh_collect.github.waiting import RateLimitWaits

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_SERVER_WAIT",
    "ClientOptions",
    "ClientStats",
    "GitHubClient",
    "Page",
    "RateLimit",
    "ResponseMapper",
    "decode_body",
    "error_for_response",
    "read_capped",
]

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
_PERMANENT_REDIRECTS = frozenset({301, 308})
# Transport failures worth another try; UnsupportedProtocol & co. are our bugs, not weather.
_TRANSIENT_HTTP_ERRORS: tuple[type[httpx.HTTPError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
    httpx.DecodingError,
)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class ClientOptions:
    """Knobs a run leaves alone and tests turn: time, attempts, pacing, caps, identity.

    ``clock`` (epoch seconds) and ``sleep`` must agree; ``pacer`` defaults to one built from
    the settings on the monotonic clock; ``max_attempts`` to ``github.retries``.
    """

    clock: Callable[[], float] = time.time
    sleep: Sleep = asyncio.sleep
    max_attempts: int | None = None
    pacer: Pacer | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    user_agent: str = f"gh-collect/{__version__}"


@dataclass(frozen=True)
class Page:
    """One answer: the parsed body plus what pagination, caching and checkpoints need."""

    url: str
    status: int
    items: list[Any]
    data: Any
    next_url: str | None = None
    last_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    rate: RateLimit | None = None
    moved_to: str | None = None
    # The server's clock when it answered (``Date``; None if absent or unreadable): what a
    # newest-first walk takes as its start, in the same clock as the ``updated_at`` it reads.
    date: datetime | None = None


@dataclass(frozen=True)
class _Outgoing:
    """A request as the loop resends it: resolved, encoded, its budget and mapper chosen."""

    method: str
    url: str
    params: dict[str, str | int] | None
    headers: dict[str, str]
    content: bytes | None
    resource: str
    mapper: ResponseMapper
    cut_short_fails: bool = False  # a SlowPageError is raised at once, not retried
    lease: Lease | None = None  # pinned (a /user check, a JWT): no other credential may go

    @property
    def key(self) -> str:
        """The URL with its query: what picks the request's credential (its "home")."""
        if not self.params:
            return self.url
        query = "&".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.url}?{query}"

    @property
    def name(self) -> str:
        """``GET https://...``: how messages name it (URLs never carry the token)."""
        return f"{self.method} {self.url}"


@dataclass(frozen=True)
class _Answer:
    """An accepted response, its parsed body and the budget it reported."""

    response: httpx.Response
    data: Any
    rate: RateLimit | None


CredentialProvider = PoolView


class GitHubClient:
    """GitHub over HTTP: ``async with GitHubClient(...) as gh: page = await gh.get_page(path)``.

    One pooled ``httpx.AsyncClient`` per ``async with``; safe to share between tasks, which
    the pacer admits. ``credentials``: a token (held by ``github.token_env``), or a view of
    a ``CredentialPool`` (``pool``); ``observer`` hears of every request (and may refuse
    one); ``transport`` replaces the network (the simulator, a mock).
    """

    def __init__(
        self,
        settings: GitHubSettings,
        credentials: str | CredentialProvider,
        *,
        rate_settings: RateLimitSettings,
        on_rate_limit: Literal["wait", "exit"] = "wait",
        observer: ClientObserver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        options: ClientOptions | None = None,
    ) -> None:
        options = options or ClientOptions()
        self._settings = settings
        if isinstance(credentials, str):
            pool = CredentialPool.single(
                credentials,
                settings.token_env,
                pause_below=rate_settings.pause_below,
                clock=options.clock,
            )
            credentials = pool.view("")
        self._credentials = credentials
        self._last_lease: dict[str, Lease] = {}  # per resource: ``observe_rate``'s credential
        self._observer = observer
        self._transport = transport
        self._options = options
        self._clock, self._sleep = options.clock, options.sleep
        self._max_attempts = max(1, options.max_attempts or settings.retries)
        self._http: httpx.AsyncClient | None = None
        self.pacer = options.pacer or _default_pacer(settings, options.sleep)
        self.stats = ClientStats()
        self._waits = RateLimitWaits(
            pacer=self.pacer,
            stats=self.stats,
            on_rate_limit=on_rate_limit,
            clock=self._clock,
            sleep=self._sleep,
        )

    async def __aenter__(self) -> GitHubClient:
        concurrency = self._settings.concurrency
        self._http = httpx.AsyncClient(
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": self._options.user_agent,
            },
            timeout=httpx.Timeout(self._settings.timeout_s),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            follow_redirects=False,  # followed by _send_following, within api_url's origin only
            transport=self._transport,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- public API -----------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The API root requests go to (``github.api_url``); the token goes nowhere else."""
        return self._settings.api_url

    @property
    def rate(self) -> RateLimit | None:
        """The budget a run reports and plans by: core, or the latest seen if core never was
        (summed over the pool's budgets)."""
        return self._credentials.headline

    @property
    def rates(self) -> Mapping[str, RateLimit]:
        """The freshest budget of every resource seen so far (core, search, graphql...)."""
        return self._credentials.rates

    def observe_rate(self, rate: RateLimit, resource: str) -> None:
        """A budget reading from elsewhere than headers (GraphQL's ``rateLimit`` object, as
        safe as ``RateLimit.from_headers`` makes one): waits and the run see it too. It is
        counted for the credential that last answered a request of ``resource`` (exact with
        one credential; GitHub sends the headers anyway, this is the fallback)."""
        lease = self._last_lease.get(resource)
        if lease is not None and lease.member is not None:
            self._record_rate(lease, rate, resource)

    async def fetch(
        self,
        request: PageRequest,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        mapper: ResponseMapper = REST,
        cut_short_fails: bool = False,
    ) -> Page:
        """Send ``request`` until it has a usable answer; the one way anything is sent.

        ``request.url``: a path under ``api_url`` or an absolute (Link) URL, verbatim. A POST
        (a GraphQL query: a read, so retried like a GET) sends ``request.body`` as JSON and
        never the validators, which only a GET can be answered 304 for. ``mapper`` decides
        what the answer means (REST statuses by default). ``cut_short_fails``: a 502, 504 or
        timeout raises ``SlowPageError`` at once (a walk that can ask for a smaller page).
        """
        url = resolve_url(request.url, self._settings)
        headers: dict[str, str] = {}
        content: bytes | None = None
        if request.method == "POST":
            if request.body is not None:
                headers["Content-Type"] = "application/json"
                content = codec.dumps_line(request.body).removesuffix(b"\n")
        else:
            headers = _conditional_headers(etag, last_modified)
        outgoing = _Outgoing(
            method=request.method,
            url=url,
            params=dict(request.params) if request.params else None,
            headers=headers,
            content=content,
            resource=resource_for(request.method, url),
            mapper=mapper,
            cut_short_fails=cut_short_fails,
        )
        return _page(await self._request(outgoing))

    async def get_page(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Page:
        """GET one page (``fetch`` of a GET ``PageRequest``)."""
        request = PageRequest(url, params)
        return await self.fetch(request, etag=etag, last_modified=last_modified)

    async def get_json(self, path: str) -> Any:
        """The parsed body of one GET (an object such as ``/repos/{owner}/{repo}``)."""
        return (await self.get_page(path)).data

    async def _send_pinned(self, request: PageRequest, lease: Lease) -> tuple[Any, datetime | None]:
        """One request with this lease and no other (the pool's ``/user`` checks, an app's
        JWT exchanges); a spent budget is not waited for: the pool decides."""
        url = resolve_url(request.url, self._settings)
        outgoing = _Outgoing(
            method=request.method,
            url=url,
            params=dict(request.params) if request.params else None,
            headers={},
            content=None,
            resource=resource_for(request.method, url),
            mapper=REST,
            lease=lease,
        )
        page = _page(await self._request(outgoing))
        return page.data, page.date

    # -- the request loop: rate limits outside, retries inside -----------------------------

    async def _request(self, out: _Outgoing) -> _Answer:
        """Send until usable: waits out primary resets and secondary hits around retries
        (each attempt first waits, if it must, for its budget to be above ``pause_below``)."""
        secondary_hits = primary_hits = 0
        while True:
            try:
                return await self._with_retries(out)
            except RateLimitError:
                if out.lease is not None:
                    raise
                primary_hits += 1
                until = self._spent_until(out.resource)
                if until is not None:  # else another credential has budget: again at once
                    await self._waits.primary(until, primary_hits, out.resource)
            except SecondaryRateLimitError as exc:
                secondary_hits += 1
                await self._waits.secondary(exc, secondary_hits)

    async def _with_retries(self, out: _Outgoing) -> _Answer:
        backoff = self._settings.retry_initial_s
        retry: retry_base = retry_if_exception_type((RetriableApiError, *_TRANSIENT_HTTP_ERRORS))
        if out.cut_short_fails:  # the caller asks for a smaller page instead
            retry &= retry_if_not_exception_type(SlowPageError)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=wait_exponential_jitter(multiplier=backoff, max=60, jitter=backoff),
            retry=retry,
            sleep=self._sleep,
            before_sleep=self._count_retry,
        )
        try:
            return await retrying(self._send_once, out)
        except RetryError as exc:
            raise _gave_up(exc, out) from exc.last_attempt.exception()

    def _spent_until(self, resource: str) -> float | None:
        """When a request of ``resource`` may go: None at once (a credential has budget
        left), else the earliest reset of them all."""
        if self._credentials.can_spend(resource):
            return None
        return self._credentials.blocked_until(resource)

    async def _send_once(self, out: _Outgoing) -> _Answer:
        """One HTTP exchange (plus its redirects) through the pacer; raises mapped errors.

        What the answer says of its credential goes back to the pool: its budget, a spent
        budget, a refusal (which the pool may turn into another try, elsewhere)."""
        response, body, lease = await self._exchange(out)
        self._last_lease[out.resource] = lease
        now = self._clock()
        try:
            rate = self._observe(response, now, out.resource, lease)
        finally:  # its budget reading in: it no longer counts in flight
            self._credentials.release(lease)
        exchange = Exchange(
            method=out.method,
            url=out.url,
            response=response,
            body=body,
            now=now,
            token_env=lease.variable or lease.label,
        )
        try:
            data = out.mapper.read(exchange)
        except RateLimitError as exc:
            self._credentials.spent(lease, out.resource, exc.reset_at)
            raise
        except (BadCredentialsError, SsoRequiredError) as exc:
            raise self._credentials.rejected(lease, exc, out.name) from None
        self._credentials.accepted(lease)
        return _Answer(response, data, rate)

    async def _exchange(self, out: _Outgoing) -> tuple[httpx.Response, bytes, Lease]:
        """The HTTP call itself, within its deadline; httpx errors no retry can mend become
        ApiErrors, and the deadline running out is retried like a timeout.

        The observer admits the request before anything waits for it: a refused request
        never sleeps for a reset, takes no slot and is never counted. The pacer's slot
        closes when the response headers arrive: that is the server's share of the request
        (GitHub's "response time" estimate of its CPU time). Reading a large body, and
        waiting while other pages are decoded, happens on our side, outside it. The deadline
        starts once the pacer admits the request: waiting our turn is not slow.

        The lease (the credential) counts in flight until ``_send_once`` has read the budget
        the answer reports: released earlier, a charged request would be in neither the
        count in flight nor the budget left, and the pool would overspend by it.
        """
        client = self._client()
        if self._observer is not None:
            self._observer.admit(out.resource)
        lease = out.lease or await self._acquire(out)
        try:
            response, body = await self._exchange_with(client, out, lease)
        except BaseException:
            self._credentials.release(lease)
            raise
        return response, body, lease

    async def _exchange_with(
        self, client: httpx.AsyncClient, out: _Outgoing, lease: Lease
    ) -> tuple[httpx.Response, bytes]:
        """The exchange of ``_exchange`` once its credential is chosen."""
        request = client.build_request(
            out.method, out.url, params=out.params, headers=out.headers, content=out.content
        )
        try:
            async with self.pacer.slot(endpoint_key(out.method, out.url)):
                self._count_sent(out.resource, redirect=False)
                deadline = asyncio.get_running_loop().time() + self._settings.deadline_s
                async with asyncio.timeout_at(deadline):
                    response = await self._send_following(client, request, out, lease)
            try:
                async with asyncio.timeout_at(deadline):
                    cap = self._options.max_body_bytes
                    body = await read_capped(response, url=out.url, method=out.method, cap=cap)
            finally:
                await response.aclose()
        except TimeoutError:
            raise RetriableApiError(self._deadline_message(out), url=out.url) from None
        except httpx.ReadTimeout as exc:
            raise SlowPageError(f"{out.name}: {describe(exc)}", url=out.url) from safe_cause(exc)
        except _TRANSIENT_HTTP_ERRORS:
            raise
        except httpx.HTTPError as exc:
            message = f"{out.name}: {describe(exc)}; check github.api_url"
            raise FatalApiError(message, url=out.url) from safe_cause(exc)
        return response, body

    async def _acquire(self, out: _Outgoing) -> Lease:
        """A credential for ``out``: the pool's choice, once one has budget left; until
        then the wait for the earliest reset (or exit 75, as the user chose)."""
        while True:
            lease = await self._credentials.acquire(
                out.resource, out.method, out.key, self._send_pinned
            )
            if lease is not None:
                return lease
            until = self._credentials.blocked_until(out.resource)
            await self._waits.primary(until, 1, out.resource)

    async def _send_following(
        self, client: httpx.AsyncClient, request: httpx.Request, out: _Outgoing, lease: Lease
    ) -> httpx.Response:
        """Send, following redirects only within api_url's origin; the hops are its history.

        The lease's Authorization goes with each hop (``LeaseAuth``: only to that origin)."""
        auth = LeaseAuth(lease.header, api_origin(self._settings.api_url))
        hops: list[httpx.Response] = []
        while True:
            response = await client.send(request, stream=True, follow_redirects=False, auth=auth)
            following = response.next_request
            if following is None:
                response.history = hops
                return response
            await response.aclose()
            hops.append(response)
            check_redirect(
                following.url,
                method=out.method,
                url=out.url,
                hops=len(hops),
                settings=self._settings,
            )
            self._count_sent(out.resource, redirect=True)
            request = following

    def _deadline_message(self, out: _Outgoing) -> str:
        return (
            f"{out.name}: no complete answer within {self._settings.deadline_s:g} s "
            "(github.request_deadline_s): the server is too slow or drips its answer"
        )

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("use GitHubClient in 'async with' before sending requests")
        return self._http

    def _count_sent(self, resource: str, *, redirect: bool) -> None:
        """A request, or a redirect hop (sent whatever the quota says), is going out."""
        self.stats.requests += 1
        if self._observer is not None:
            self._observer.sent(resource, redirect=redirect)

    def _count_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        outcome = state.outcome.exception() if state.outcome else None
        log.info("retrying after attempt %d: %s", state.attempt_number, describe(outcome))

    def _observe(
        self, response: httpx.Response, now: float, resource: str, lease: Lease
    ) -> RateLimit | None:
        """Count statuses; the budget this answer reports goes to its credential's pool, and
        the run hears of the pool's total (a JWT's answer reports the app's own budget, which
        no installation spends: not recorded)."""
        for hop in response.history:
            self.stats.by_status[hop.status_code] += 1
        self.stats.by_status[response.status_code] += 1
        if response.status_code == 304:
            self.stats.not_modified += 1
        rate = RateLimit.from_headers(response.headers, now=now)
        if rate is not None and lease.member is not None:
            self._record_rate(lease, rate, resource)
        return rate

    def _record_rate(self, lease: Lease, rate: RateLimit, resource: str) -> None:
        """The reading goes to the lease's credential in the pool; the run hears of the
        pool's total for that resource."""
        bucket = self._credentials.observe(lease, rate, resource)
        total = self._credentials.rate(bucket)
        if self._observer is not None and total is not None:
            self._observer.rate_seen(bucket, total)


def _page(answer: _Answer) -> Page:
    """Package an accepted answer; ``moved_to`` only for permanent redirects (301/308)."""
    response, data = answer.response, answer.data
    first = response.history[0] if response.history else response
    moved = any(hop.status_code in _PERMANENT_REDIRECTS for hop in response.history)
    links = parse_link_header(response.headers.get("link"))
    return Page(
        url=str(first.request.url),
        status=response.status_code,
        items=data if isinstance(data, list) else [],
        data=data,
        next_url=links.get("next"),
        last_url=links.get("last"),
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
        rate=answer.rate,
        moved_to=str(response.url) if moved else None,
        date=http_date(response.headers.get("date")),
    )


def http_date(value: str | None) -> datetime | None:
    """An HTTP ``Date`` header as an aware UTC datetime; None for anything unreadable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _default_pacer(settings: GitHubSettings, sleep: Sleep) -> Pacer:
    return Pacer(
        settings.concurrency,
        settings.max_requests_per_minute,
        settings.max_busy_seconds_per_minute,
        sleep=sleep,
    )


def _conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _gave_up(exc: RetryError, out: _Outgoing) -> RetriableApiError:
    last = exc.last_attempt.exception()
    attempts = exc.last_attempt.attempt_number
    status = last.status if isinstance(last, ApiError) else None
    message = (
        f"{out.name} failed after {attempts} attempts ({describe(last)}); "
        "GitHub or the network is unwell: run again later to resume"
    )
    return RetriableApiError(message, status=status, url=out.url)
