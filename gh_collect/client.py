"""The async GitHub REST client: one place that talks HTTP to GitHub.

It owns everything about how a request is made and what an answer means, so the endpoint
code above it sees only pages of data or a domain error from ``gh_collect.errors``:

- the token goes only to the API host (a custom ``httpx.Auth``; cross-host Link URLs are
  refused), and a token no header can carry is refused before anything is sent; an httpx
  error about a header is reported without its value (h11 would quote ``Bearer <token>``);
- redirects are followed only within ``api_url``'s origin: another host's data is not the
  repo's, so a redirect elsewhere skips the unit and no request goes there;
- one function, ``error_for_response``, turns a status into an exception; tenacity retries
  exactly the retriable ones (5xx, timeouts, resets, malformed bodies);
- the primary budget is read from every response and never spent below ``pause_below``:
  the client waits for the reset (or exits with code 75, as the user chose);
- secondary limits are avoided by the ``Pacer`` and, when hit anyway, honoured;
- 301 (renamed repo) is followed and reported, 304 (ETag matched) is a cheap empty page.

Everything a server sends is untrusted, so every wait and buffer is bounded:

- rate-limit headers and ``retry-after`` are parsed at one boundary (``RateLimit.from_headers``,
  ``_retry_after_seconds``): non-finite, negative, mistyped or huge values (beyond 2^53, or a
  reset more than a day ahead) are treated as absent, so no such value reaches a wait, the
  quota or the checkpoint; only a ``retry-after`` of ``inf`` or a huge number is read as
  what it asks, the longest wait allowed;
- a server-asked wait (retry-after, reset) is capped at ``MAX_SERVER_WAIT`` (one primary
  window); with ``--on-rate-limit exit`` a wait longer than ``EXIT_MODE_MAX_WAIT`` exits 75
  instead, so a cron job never holds the dataset lock for long;
- each attempt has a total deadline (``github.request_deadline_s``, default 4 x ``timeout_s``)
  covering redirects and the whole body, since ``timeout_s`` bounds each read and a body
  dripping a byte at a time never trips it; running out is retried like a timeout;
- a body is read as it streams and refused once it exceeds ``MAX_BODY_BYTES`` (64 MiB; a page
  of 100 pulls is about 2 MB), so at most the cap is ever buffered; an oversized body is
  retried like a malformed one, then fails the unit with a one-line message.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from gh_collect import __version__, codec
from gh_collect.config import GitHubSettings, RateLimitSettings, check_token
from gh_collect.errors import (
    ApiError,
    BadCredentialsError,
    EmptyRepositoryError,
    FatalApiError,
    RateLimitError,
    RateLimitExit,
    RetriableApiError,
    SecondaryRateLimitError,
    SkippableApiError,
)
from gh_collect.pacing import Pacer, endpoint_key
from gh_collect.pagination import parse_link_header

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_SERVER_WAIT",
    "ClientStats",
    "GitHubClient",
    "Page",
    "RateLimit",
    "error_for_response",
]

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
SECONDARY_DEFAULT_WAIT = 60.0  # GitHub: "wait at least one minute" when retry-after is absent
SECONDARY_MAX_HITS = 8  # then give up: continuing while limited risks a ban
SECONDARY_MAX_WAIT = 900.0  # cap of the exponential secondary backoff (retry-after always wins)
MAX_SERVER_WAIT = 3660.0  # the primary window is one hour; any longer wait is a bad server
EXIT_MODE_MAX_WAIT = 300.0  # with --on-rate-limit exit, longer server-asked waits exit 75
MAX_BODY_BYTES = 64 * 1024 * 1024  # one answer's body, decoded; a 100-item page is a few MB
MAX_REDIRECTS = 10
MAX_HEADER_NUMBER = 2**53  # beyond it a float loses integers: no honest header goes there
MAX_RESET_AHEAD = 86400.0  # a reset further ahead than a day is bad data (windows are 1 h)
_NUMBER = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,16})?")  # "60", "1750000000", "1.5"
_INTEGER = re.compile(r"[0-9]{1,16}")
_RESOURCE = re.compile(r"[a-z0-9_]{1,64}")  # core, search, graphql, code_scanning_upload...
_SECONDARY_MESSAGE = re.compile(r"secondary rate|abuse detection", re.IGNORECASE)
_LOGIN_LOCKOUT = re.compile(r"maximum number of login attempts", re.IGNORECASE)
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
class RateLimit:
    """The primary budget as one response reported it (``reset`` in epoch seconds)."""

    limit: int
    remaining: int
    reset: float
    used: int | None = None
    resource: str | None = None

    @classmethod
    def from_headers(
        cls, headers: Mapping[str, str], *, now: float | None = None
    ) -> RateLimit | None:
        """Read ``x-ratelimit-*`` (any case); None when a required header is absent or bad.

        The one place these headers are parsed: what it returns is safe to wait on, count and
        save (``now``, epoch seconds, bounds the reset; a bad optional header becomes None).
        """
        lower = {key.lower(): value for key, value in headers.items()}
        limit = _header_int(lower.get("x-ratelimit-limit"))
        remaining = _header_int(lower.get("x-ratelimit-remaining"))
        reset = _header_seconds(lower.get("x-ratelimit-reset"))
        horizon = (time.time() if now is None else now) + MAX_RESET_AHEAD
        if not limit or remaining is None or reset is None or reset > horizon:
            return None
        resource = lower.get("x-ratelimit-resource", "")
        return cls(
            limit=limit,
            remaining=remaining,
            reset=reset,
            used=_header_int(lower.get("x-ratelimit-used")),
            resource=resource if _RESOURCE.fullmatch(resource) else None,
        )

    @property
    def fraction_left(self) -> float:
        """remaining/limit, what ``rate_limit.save_below`` is compared with."""
        return self.remaining / self.limit if self.limit > 0 else 0.0


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


def _header_int(value: str | None) -> int | None:
    """A non-negative integer header (ASCII digits, at most 2^53), or None."""
    if value is None or not _INTEGER.fullmatch(value.strip()):
        return None
    number = int(value)
    return number if number <= MAX_HEADER_NUMBER else None


def _header_seconds(value: str | None) -> float | None:
    """A finite, non-negative number such as ``60`` or ``1750000000.5`` (at most 2^53)."""
    if value is None or not _NUMBER.fullmatch(value.strip()):
        return None
    number = float(value)
    return number if number <= MAX_HEADER_NUMBER else None


@dataclass(frozen=True)
class _Answer:
    """An accepted response, its parsed body and the budget it reported."""

    response: httpx.Response
    data: Any
    rate: RateLimit | None


@dataclass
class ClientStats:
    """Counters for logs, ``status`` and the manifest. ``waited_seconds``: rate-limit waits."""

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    secondary_limited: int = 0
    primary_waits: int = 0
    waited_seconds: float = 0.0
    not_modified: int = 0


Origin = tuple[str, str, int | None]


def _origin(url: httpx.URL) -> Origin:
    """scheme, host, port as httpx normalises them (case, default port)."""
    return (url.scheme, url.host, url.port)


class _TokenAuth(httpx.Auth):
    """Adds the token only to requests for the API origin; never shows it in a repr."""

    def __init__(self, token: str, origin: Origin) -> None:
        self._header = f"Bearer {token}"
        self._origin = origin

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if _origin(request.url) == self._origin:
            request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return f"_TokenAuth(origin={self._origin})"


# -- status → exception: the one place that decides what an answer means -------------------


def error_for_response(
    response: httpx.Response,
    *,
    url: str,
    token_env: str = "GITHUB_TOKEN",
    now: float | None = None,
    body: bytes | None = None,
) -> ApiError | None:
    """The exception a response stands for, or None when it is usable (2xx, 304).

    ``url`` names the request in the message (it never carries the token); ``token_env``
    names the variable to check on a 401; ``now`` (epoch s) resolves HTTP-date retry-after;
    ``body`` is the body of a streamed response (default: ``response.content``).
    """
    status = response.status_code
    if status < 300 or status == 304:
        return None
    message = _body_message(response.content if body is None else body)
    where = f"{status} from GET {url}"
    if status == 401:
        return _bad_credentials(token_env, where, status, url)
    if status in (403, 429):
        limited = _rate_limit_error(response, status, message, url, now)
        if limited is not None:
            return limited
        if _LOGIN_LOCKOUT.search(message):
            return _bad_credentials(token_env, where, status, url)
    if status == 409:
        text = f"{where}: {message or 'conflict'} (an empty repository: zero records)"
        return EmptyRepositoryError(text, status=status, url=url)
    if status >= 500:
        return RetriableApiError(f"{where}: {message or 'server error'}", status=status, url=url)
    return SkippableApiError(_skippable_message(status, message, where), status=status, url=url)


def _bad_credentials(token_env: str, where: str, status: int, url: str) -> BadCredentialsError:
    message = (
        f"GitHub rejected the token in ${token_env} ({where}: bad credentials): check that "
        f"the token is valid, not expired and exported as {token_env}, then run again"
    )
    return BadCredentialsError(message, status=status, url=url)


def _rate_limit_error(
    response: httpx.Response, status: int, message: str, url: str, now: float | None
) -> ApiError | None:
    """GitHub's documented order: retry-after, then remaining=0 (wait for reset), then 60 s."""
    headers = response.headers
    retry_after = _retry_after_seconds(headers.get("retry-after"), now)
    where = f"{status} from GET {url}"
    if retry_after is None and _header_int(headers.get("x-ratelimit-remaining")) == 0:
        reset = RateLimit.from_headers(headers, now=now)
        fallback = (time.time() if now is None else now) + SECONDARY_DEFAULT_WAIT
        reset_at = reset.reset if reset else fallback
        text = f"{where}: primary rate limit spent ({message or 'rate limit exceeded'})"
        return RateLimitError(text, reset_at=reset_at, status=status, url=url)
    if retry_after is not None or status == 429 or _SECONDARY_MESSAGE.search(message):
        wait = SECONDARY_DEFAULT_WAIT if retry_after is None else retry_after
        text = f"{where}: secondary rate limit ({message or 'slow down'})"
        return SecondaryRateLimitError(text, retry_after=wait, status=status, url=url)
    return None


def _retry_after_seconds(value: str | None, now: float | None) -> float | None:
    """``retry-after`` as seconds: a number, or an HTTP date measured from ``now``.

    ``inf`` or a huge number asks for a very long wait: it becomes ``MAX_SERVER_WAIT``, the
    longest any wait may be (so exit mode exits). None (absent) for what is no wait at all:
    ``nan``, negative, mistyped.
    """
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return _retry_after_date(value, time.time() if now is None else now)
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_SERVER_WAIT)


def _retry_after_date(value: str, now: float) -> float | None:
    """An HTTP-date ``retry-after`` as seconds from ``now`` (0 if past, capped if far)."""
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    return min(max(0.0, when - now), MAX_SERVER_WAIT) if math.isfinite(when) else None


def _skippable_message(status: int, message: str, where: str) -> str:
    hint = {
        403: "forbidden: the token lacks access (permissions, SAML SSO or a locked repo)",
        404: "not found: gone, renamed away or private to this token",
        410: "gone",
        422: "unprocessable: the request was refused",
        451: "unavailable for legal reasons (blocked)",
    }.get(status, "refused")
    detail = f" ({message})" if message else ""
    return f"{where}: {hint}{detail}; skipped, the run goes on"


def _body_message(content: bytes) -> str:
    """The ``message`` of a GitHub error body (basic-error), or '' if there is none."""
    try:
        body = codec.loads(content)
    except (ValueError, UnicodeDecodeError):
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return " ".join(str(message).split())[:300] if message else ""


def decode_body(response: httpx.Response, *, url: str, body: bytes | None = None) -> Any:
    """Parse a 2xx JSON body; HTML, empty or truncated bodies are retriable, not data.

    ``body``: the body of a streamed response (default: ``response.content``).
    """
    if response.status_code == 204:
        return None
    content = response.content if body is None else body
    try:
        return codec.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        kind = " ".join(response.headers.get("content-type", "no content type").split())[:100]
        message = (
            f"malformed response from GET {url}: {response.status_code} with a body that is "
            f"not JSON ({kind}, {len(content)} bytes: {exc})"
        )
        raise RetriableApiError(message, status=response.status_code, url=url) from None


async def read_capped(response: httpx.Response, *, url: str, cap: int = MAX_BODY_BYTES) -> bytes:
    """The decoded body, read as it streams; more than ``cap`` bytes is refused at the cap."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            message = (
                f"GET {url}: {response.status_code} with a body of more than {_size(cap)}, "
                "the cap on one answer (a page of 100 items is a few MB); refused"
            )
            raise RetriableApiError(message, status=response.status_code, url=url)
        chunks.append(chunk)
    return b"".join(chunks)


def _size(count: int) -> str:
    """``67108864`` → ``64 MiB``: sizes in messages, in the unit they were chosen in."""
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale and count % scale == 0:
            return f"{count // scale} {unit}"
    return f"{count} bytes"


# -- the client ---------------------------------------------------------------------------


class GitHubClient:
    """GitHub over HTTP: ``async with GitHubClient(...) as gh: page = await gh.get_page(path)``.

    One pooled ``httpx.AsyncClient`` per ``async with``; safe to share between tasks, which
    the pacer admits. ``clock`` (epoch seconds) and ``sleep`` are injectable for tests, as is
    ``pacer`` (by default one built from ``settings`` on the monotonic clock).
    """

    def __init__(
        self,
        settings: GitHubSettings,
        token: str,
        *,
        rate_settings: RateLimitSettings,
        on_rate_limit: Literal["wait", "exit"] = "wait",
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        max_attempts: int | None = None,
        on_rate_seen: Callable[[RateLimit], None] | None = None,
        on_request: Callable[[], None] | None = None,
        on_redirect: Callable[[], None] | None = None,
        user_agent: str = f"gh-collect/{__version__}",
        pacer: Pacer | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._settings, self._rate_settings = settings, rate_settings
        self._api_origin = _origin(httpx.URL(settings.api_url))
        self._auth = _TokenAuth(check_token(token, settings.token_env), self._api_origin)
        self._max_body = max_body_bytes
        self._on_rate_limit = on_rate_limit
        self._transport = transport
        self._clock, self._sleep = clock, sleep
        self._max_attempts = max(1, max_attempts or settings.retries)
        self._on_rate_seen, self._on_request = on_rate_seen, on_request
        self._on_redirect = on_redirect
        self._user_agent = user_agent
        self._http: httpx.AsyncClient | None = None
        self.pacer = pacer or _default_pacer(settings, sleep)
        self.rate: RateLimit | None = None
        self.stats = ClientStats()

    async def __aenter__(self) -> GitHubClient:
        concurrency = self._settings.concurrency
        self._http = httpx.AsyncClient(
            auth=self._auth,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": self._user_agent,
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

    async def get_page(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Page:
        """GET one page. ``url``: a path under ``api_url`` or an absolute (Link) URL, verbatim."""
        target = self._resolve(url)
        headers = _conditional_headers(etag, last_modified)
        answer = await self._request(target, dict(params) if params else None, headers)
        return _page(answer)

    async def get_json(self, path: str) -> Any:
        """The parsed body of one GET (an object such as ``/repos/{owner}/{repo}``)."""
        return (await self.get_page(path)).data

    # -- building requests and pages ------------------------------------------------------

    def _resolve(self, url: str) -> str:
        """Absolute URL for ``url``; refuses other origins so the token never leaves."""
        try:  # a Link URL comes from the server: a malformed one fails the unit, not the run
            parts = urlsplit(url)
            if not parts.scheme and not parts.netloc:
                relative = f"{self._settings.api_url}/{url.lstrip('/')}"
                httpx.URL(relative)  # raises if the server sent something unusable
                return relative
            origin = _origin(httpx.URL(url))
        except (ValueError, httpx.InvalidURL):
            raise SkippableApiError(f"{url!r} is not a valid URL; not followed", url=url) from None
        if origin != self._api_origin:
            api = self._settings.api_host
            message = (
                f"next page link points to {parts.netloc} ({url}), not {api}; not followed: "
                f"the token is only sent to {self._settings.api_url}"
            )
            raise SkippableApiError(message, url=url)
        return url

    # -- the request loop: rate limits outside, retries inside -----------------------------

    async def _request(
        self, url: str, params: dict[str, str | int] | None, headers: dict[str, str]
    ) -> _Answer:
        """Send until usable: waits out primary resets and secondary hits around retries."""
        secondary_hits = primary_hits = 0
        while True:
            await self._respect_budget()
            try:
                return await self._with_retries(url, params, headers)
            except RateLimitError as exc:
                primary_hits += 1
                await self._wait_for_reset(exc.reset_at, primary_hits)
            except SecondaryRateLimitError as exc:
                secondary_hits += 1
                await self._wait_secondary(exc, secondary_hits)

    async def _with_retries(
        self, url: str, params: dict[str, str | int] | None, headers: dict[str, str]
    ) -> _Answer:
        backoff = self._settings.retry_initial_s
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=wait_exponential_jitter(multiplier=backoff, max=60, jitter=backoff),
            retry=retry_if_exception_type((RetriableApiError, *_TRANSIENT_HTTP_ERRORS)),
            sleep=self._sleep,
            before_sleep=self._count_retry,
        )
        try:
            return await retrying(self._send_once, url, params, headers)
        except RetryError as exc:
            raise _gave_up(exc, url) from exc.last_attempt.exception()

    async def _send_once(
        self, url: str, params: dict[str, str | int] | None, headers: dict[str, str]
    ) -> _Answer:
        """One HTTP exchange (plus its redirects) through the pacer; raises mapped errors."""
        response, body = await self._exchange(url, params, headers)
        now = self._clock()
        rate = self._observe(response, now)
        token_env = self._settings.token_env
        error = error_for_response(response, url=url, token_env=token_env, now=now, body=body)
        if error is not None:
            raise error
        if response.status_code == 304:
            return _Answer(response, None, rate)
        return _Answer(response, decode_body(response, url=url, body=body), rate)

    async def _exchange(
        self, url: str, params: dict[str, str | int] | None, headers: dict[str, str]
    ) -> tuple[httpx.Response, bytes]:
        """The HTTP call itself, within its deadline; httpx errors no retry can mend become
        ApiErrors, and the deadline running out is retried like a timeout.

        The pacer's slot closes when the response headers arrive: that is the server's share
        of the request (GitHub's "response time" estimate of its CPU time). Reading a large
        body, and waiting while other pages are decoded, happens on our side, outside it.
        The deadline starts once the pacer admits the request: waiting our turn is not slow.
        """
        client = self._client()
        request = client.build_request("GET", url, params=params, headers=headers)
        try:
            async with self.pacer.slot(endpoint_key("GET", url)):
                self._count_request()
                deadline = asyncio.get_running_loop().time() + self._settings.deadline_s
                async with asyncio.timeout_at(deadline):
                    response = await self._send_following(client, request, url)
            try:
                async with asyncio.timeout_at(deadline):
                    body = await read_capped(response, url=url, cap=self._max_body)
            finally:
                await response.aclose()
        except TimeoutError:
            raise RetriableApiError(self._deadline_message(url), url=url) from None
        except _TRANSIENT_HTTP_ERRORS:
            raise
        except httpx.HTTPError as exc:
            message = f"GET {url}: {_describe(exc)}; check github.api_url"
            raise FatalApiError(message, url=url) from _safe_cause(exc)
        return response, body

    async def _send_following(
        self, client: httpx.AsyncClient, request: httpx.Request, url: str
    ) -> httpx.Response:
        """Send, following redirects only within api_url's origin; the hops are its history.

        Another host's answer is not this repo's data (the token would be stripped, but the
        data would be stored as the repo's), so a redirect there is refused before any request.
        """
        hops: list[httpx.Response] = []
        while True:
            response = await client.send(request, stream=True, follow_redirects=False)
            following = response.next_request
            if following is None:
                response.history = hops
                return response
            await response.aclose()
            hops.append(response)
            self._check_redirect(following.url, url, len(hops))
            self._count_hop()
            request = following

    def _check_redirect(self, target: httpx.URL, url: str, hops: int) -> None:
        if _origin(target) != self._api_origin:
            where = target.netloc.decode("ascii", "replace")
            if target.scheme != self._api_origin[0]:
                where = f"{target.scheme}://{where}"
            message = (
                f"GET {url}: redirected to {where}, not followed: only {self._settings.api_url} "
                "is trusted to answer for a repo; skipped, the run goes on"
            )
            raise SkippableApiError(message, url=url)
        if hops > MAX_REDIRECTS:
            message = f"GET {url}: too many redirects ({hops}); skipped, the run goes on"
            raise SkippableApiError(message, url=url)

    def _deadline_message(self, url: str) -> str:
        return (
            f"GET {url}: no complete answer within {self._settings.deadline_s:g} s "
            "(github.request_deadline_s): the server is too slow or drips its answer"
        )

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("use GitHubClient in 'async with' before sending requests")
        return self._http

    def _count_request(self) -> None:
        self.stats.requests += 1
        if self._on_request is not None:
            self._on_request()

    def _count_hop(self) -> None:
        """A redirect about to be followed: it is sent whatever the quota says, and counted."""
        self.stats.requests += 1
        if self._on_redirect is not None:
            self._on_redirect()

    def _count_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        outcome = state.outcome.exception() if state.outcome else None
        log.info("retrying after attempt %d: %s", state.attempt_number, _describe(outcome))

    def _observe(self, response: httpx.Response, now: float) -> RateLimit | None:
        """Count statuses and keep the freshest view of the primary budget."""
        for hop in response.history:
            self.stats.by_status[hop.status_code] += 1
        self.stats.by_status[response.status_code] += 1
        if response.status_code == 304:
            self.stats.not_modified += 1
        rate = RateLimit.from_headers(response.headers, now=now)
        if rate is None:
            return None
        if self._on_rate_seen is not None:
            self._on_rate_seen(rate)
        self.rate = _fresher(self.rate, rate)
        return rate

    # -- waiting --------------------------------------------------------------------------

    async def _respect_budget(self) -> None:
        """Never spend the primary budget below ``pause_below`` (requests in flight count)."""
        rate = self.rate
        if rate is None or rate.reset <= self._clock():
            return
        if rate.remaining - self.pacer.in_flight <= self._rate_settings.pause_below:
            await self._wait_for_reset(rate.reset, 1)

    async def _wait_for_reset(self, reset_at: float, hits: int) -> None:
        now = self._clock()
        wait = min(max(reset_at + 1 - now, min(60.0, 2.0**hits)), MAX_SERVER_WAIT)
        until = _utc_time(now + wait)
        if self._on_rate_limit == "exit":
            raise RateLimitExit(f"rate limit spent until {until} UTC; run again after the reset")
        log.info("primary rate limit: waiting %.0f s until %s UTC", wait, until)
        self.stats.primary_waits += 1
        await self._pause(wait)

    async def _wait_secondary(self, exc: SecondaryRateLimitError, hits: int) -> None:
        """Honour retry-after, back off exponentially on repeats, give up after a few.

        GitHub: "if your request continues to fail due to a secondary rate limit, wait for an
        exponentially increasing amount of time". The base is what GitHub asked for on this
        hit (retry-after, or a minute without one), doubled for each repeat.
        """
        self.stats.secondary_limited += 1
        if hits >= SECONDARY_MAX_HITS:
            message = (
                f"{exc.message}; hit {hits} times in a row, giving up: lower "
                "github.concurrency or wait a while, then run again"
            )
            raise SecondaryRateLimitError(
                message, retry_after=exc.retry_after, status=exc.status, url=exc.url
            ) from exc
        backoff = min(exc.retry_after * 2.0 ** (hits - 1), SECONDARY_MAX_WAIT)
        asked = max(exc.retry_after, backoff)
        wait = min(asked, MAX_SERVER_WAIT)
        if self._on_rate_limit == "exit" and wait > EXIT_MODE_MAX_WAIT:
            raise RateLimitExit(
                f"{exc.message}: asked to wait {wait:.0f} s, more than --on-rate-limit exit "
                f"waits ({EXIT_MODE_MAX_WAIT:.0f} s); run again after "
                f"{_utc_time(self._clock() + wait)} UTC"
            )
        log.warning("%s: pausing %.0f s (hit %d)", exc.message, wait, hits)
        self.pacer.backoff(wait)
        await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        self.stats.waited_seconds += seconds
        await self._sleep(seconds)


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
    )


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


def _fresher(current: RateLimit | None, seen: RateLimit) -> RateLimit:
    """Responses arrive out of order: within one window the lowest remaining is the truth."""
    if current is None or seen.reset != current.reset or seen.remaining <= current.remaining:
        return seen
    return current


def _gave_up(exc: RetryError, url: str) -> RetriableApiError:
    last = exc.last_attempt.exception()
    attempts = exc.last_attempt.attempt_number
    status = last.status if isinstance(last, ApiError) else None
    message = (
        f"GET {url} failed after {attempts} attempts ({_describe(last)}); "
        "GitHub or the network is unwell: run again later to resume"
    )
    return RetriableApiError(message, status=status, url=url)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no error"
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, httpx.LocalProtocolError):  # h11 quotes the refused header value
        return f"{type(exc).__name__}: a request header was refused (its value is not shown)"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _safe_cause(exc: httpx.HTTPError) -> BaseException | None:
    """The cause to chain, unless printing it would print a header value (the token)."""
    return None if isinstance(exc, httpx.LocalProtocolError) else exc


def _utc_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")
