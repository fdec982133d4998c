"""What an answer means: a usable body, or the one domain error it stands for.

The request loop retries, waits and gives up by the type of error alone (``gh_collect.errors``),
so deciding that type is kept apart from it, in a ``ResponseMapper`` chosen per request. REST
says everything with its status; GraphQL also fails inside a 200 (an ``errors`` list), so it
will be another mapper, and the loop stays as it is.

Bodies are untrusted like headers: one is read as it streams and refused once it exceeds
``MAX_BODY_BYTES`` (64 MiB; a page of 100 pulls is about 2 MB), so at most the cap is ever
buffered; an oversized, empty, HTML or truncated body is retriable, never data. A message
quotes at most 300 characters of the server's ``message`` on one line, and names the method
and URL of the request (which never carry the token).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import httpx

from gh_collect import codec
from gh_collect.errors import (
    ApiError,
    BadCredentialsError,
    RateLimitError,
    RetriableApiError,
    SecondaryRateLimitError,
    SkippableApiError,
    SlowPageError,
    SsoRequiredError,
)
from gh_collect.github.ratelimit import RateLimit, header_int, retry_after_seconds

__all__ = [
    "CUT_SHORT",
    "MAX_BODY_BYTES",
    "REST",
    "SECONDARY_DEFAULT_WAIT",
    "Exchange",
    "ResponseMapper",
    "RestMapper",
    "decode_body",
    "error_for_response",
    "read_capped",
]

SECONDARY_DEFAULT_WAIT = 60.0  # GitHub: "wait at least one minute" when retry-after is absent
MAX_BODY_BYTES = 64 * 1024 * 1024  # one answer's body, decoded; a 100-item page is a few MB
CUT_SHORT = frozenset({502, 504})  # how GitHub ends a request that ran past ~10 s
_SECONDARY_MESSAGE = re.compile(r"secondary rate|abuse detection", re.IGNORECASE)
_LOGIN_LOCKOUT = re.compile(r"maximum number of login attempts", re.IGNORECASE)
_SSO_URL = re.compile(r"\burl=(\S+)")
_SSO_ORG = re.compile(r"/orgs/([^/?#]+)/sso")
_OWNER = re.compile(r"^(?:/api/v3)?/(?:orgs|repos|users)/([^/]+)")


@dataclass(frozen=True)
class Exchange:
    """One finished HTTP exchange, as a mapper sees it: the request named, the body read."""

    method: str
    url: str
    response: httpx.Response
    body: bytes
    now: float  # epoch seconds when the answer arrived: resolves an HTTP-date retry-after
    token_env: str  # named on a 401, so the user knows which variable to fix

    def error(self) -> ApiError | None:
        """The error the answer's status stands for (None: a success)."""
        return error_for_response(
            self.response,
            url=self.url,
            method=self.method,
            token_env=self.token_env,
            now=self.now,
            body=self.body,
        )


class ResponseMapper(Protocol):
    """Turns an exchange into data, or raises the ``ApiError`` it stands for.

    The request loop retries ``RetriableApiError``, waits out ``RateLimitError`` and
    ``SecondaryRateLimitError``, and lets everything else through: a mapper decides which
    an answer is, and nothing more (no I/O, no waiting).
    """

    def read(self, exchange: Exchange) -> Any: ...


class RestMapper:
    """REST: the status says it all; 304 (ETag matched) and 204 carry no data."""

    def read(self, exchange: Exchange) -> Any:
        response = exchange.response
        error = exchange.error()
        if error is not None:
            raise error
        if response.status_code == 304:
            return None
        return decode_body(response, url=exchange.url, method=exchange.method, body=exchange.body)


REST = RestMapper()


# -- status → exception: the one place that decides what a REST answer means ----------------


def error_for_response(
    response: httpx.Response,
    *,
    url: str,
    method: str = "GET",
    token_env: str = "GITHUB_TOKEN",
    now: float | None = None,
    body: bytes | None = None,
) -> ApiError | None:
    """The exception a response stands for, or None when it is usable (2xx, 304).

    ``method`` and ``url`` name the request in the message (the URL never carries the
    token); ``token_env`` names the variable to check on a 401; ``now`` (epoch s) resolves
    HTTP-date retry-after; ``body`` is the body of a streamed response (default:
    ``response.content``).
    """
    status = response.status_code
    if status < 300 or status == 304:
        return None
    message = _body_message(response.content if body is None else body)
    where = f"{status} from {method} {url}"
    if status == 401:
        return _bad_credentials(token_env, where, status, url)
    if status in (403, 429):
        limited = _rate_limit_error(response, where, message, url, now)
        if limited is not None:
            return limited
        if _LOGIN_LOCKOUT.search(message):
            return _bad_credentials(token_env, where, status, url)
        sso = _sso_required(response, where, url, token_env)
        if sso is not None:
            return sso
    if status >= 500:
        kind = SlowPageError if status in CUT_SHORT else RetriableApiError
        return kind(f"{where}: {message or 'server error'}", status=status, url=url)
    return SkippableApiError(_skippable_message(status, message, where), status=status, url=url)


def _bad_credentials(token_env: str, where: str, status: int, url: str) -> BadCredentialsError:
    message = (
        f"GitHub rejected the token in ${token_env} ({where}: bad credentials): check that "
        f"the token is valid, not expired and exported as {token_env}, then run again"
    )
    return BadCredentialsError(message, status=status, url=url)


def _sso_required(
    response: httpx.Response, where: str, url: str, token_env: str
) -> SsoRequiredError | None:
    """``X-GitHub-SSO: required; url=...``: the org enforces SAML SSO and the token is not
    authorised for it. The message names the org and the URL where a human authorises the
    token (``partial-results`` is not a refusal: the answer is usable)."""
    header = response.headers.get("x-github-sso", "")
    if not header.strip().lower().startswith("required"):
        return None
    found = _SSO_URL.search(header)
    link = found.group(1).rstrip(";,")[:500] if found else None
    if link is not None and not (link.startswith("https://") and _printable(link)):
        link = None  # a server's odd value is not shown: one clean line, no escapes
    org = _sso_org(link, url)
    how = f"authorise it at {link}" if link else "authorise it for that organization on GitHub"
    message = (
        f"{where}: organization {org} enforces SAML single sign-on and the token in "
        f"${token_env} is not authorised for it: {how}, then run again"
    )
    return SsoRequiredError(
        message, org=org, authorize_url=link, status=response.status_code, url=url
    )


def _sso_org(link: str | None, url: str) -> str:
    """The org an SSO refusal is about: from its authorisation URL, else the request's path."""
    found = _SSO_ORG.search(urlsplit(link).path) if link else None
    found = found or _OWNER.match(urlsplit(url).path)
    name = unquote(found.group(1))[:100] if found else ""
    return name if name and _printable(name) else "(the target's organization)"


def _printable(text: str) -> bool:
    return text.isascii() and text.isprintable() and " " not in text


def _rate_limit_error(
    response: httpx.Response, where: str, message: str, url: str, now: float | None
) -> ApiError | None:
    """GitHub's documented order: retry-after, then remaining=0 (wait for reset), then 60 s."""
    headers, status = response.headers, response.status_code
    retry_after = retry_after_seconds(headers.get("retry-after"), now)
    if retry_after is None and header_int(headers.get("x-ratelimit-remaining")) == 0:
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


def _skippable_message(status: int, message: str, where: str) -> str:
    hint = {
        403: "forbidden: the token lacks access (permissions, SAML SSO or a locked repo)",
        404: "not found: gone, renamed away or private to this token",
        409: "conflict (GitHub documents 409 only where git data is read: this list has none)",
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


# -- bodies -------------------------------------------------------------------------------


def decode_body(
    response: httpx.Response, *, url: str, method: str = "GET", body: bytes | None = None
) -> Any:
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
            f"malformed response from {method} {url}: {response.status_code} with a body that "
            f"is not JSON ({kind}, {len(content)} bytes: {exc})"
        )
        raise RetriableApiError(message, status=response.status_code, url=url) from None


async def read_capped(
    response: httpx.Response, *, url: str, method: str = "GET", cap: int = MAX_BODY_BYTES
) -> bytes:
    """The decoded body, read as it streams; more than ``cap`` bytes is refused at the cap."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            message = (
                f"{method} {url}: {response.status_code} with a body of more than {_size(cap)}, "
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
