"""Where requests may go, and keeping the token to that place and out of every message.

One origin is trusted: ``github.api_url``'s scheme, host and port, as httpx normalises them.

- a credential is added only to requests for that origin (``LeaseAuth``: each request's
  Authorization, chosen by the credential pool; ``TokenAuth`` for one token), and a token no
  header can carry is refused before anything is sent (``check_token``, in config);
- a Link URL elsewhere is refused before any request (``resolve_url``): the token would be
  stripped, but nothing another host says is this repo's data;
- a redirect is followed only within the origin (``check_redirect``), at most
  ``MAX_REDIRECTS`` hops, for the same reason;
- an httpx error about a header is described without its value (``describe``,
  ``safe_cause``): h11 quotes ``Bearer <token>`` in its message.
"""

from __future__ import annotations

from collections.abc import Generator
from functools import lru_cache
from urllib.parse import urlsplit

import httpx

from gh_collect.config import GitHubSettings
from gh_collect.errors import ApiError, SkippableApiError
from gh_collect.github.credentials import Secret

__all__ = [
    "MAX_REDIRECTS",
    "LeaseAuth",
    "Origin",
    "TokenAuth",
    "check_redirect",
    "describe",
    "origin",
    "resolve_url",
    "safe_cause",
]

MAX_REDIRECTS = 10

Origin = tuple[str, str, int | None]


def origin(url: httpx.URL) -> Origin:
    """scheme, host, port as httpx normalises them (case, default port)."""
    return (url.scheme, url.host, url.port)


@lru_cache(maxsize=8)
def api_origin(api_url: str) -> Origin:
    """``origin`` of the configured api_url, parsed once (httpx.URL costs ~0.1 ms a call)."""
    return origin(httpx.URL(api_url))


class TokenAuth(httpx.Auth):
    """Adds the token only to requests for the API origin; never shows it in a repr."""

    def __init__(self, token: str, api_origin: Origin) -> None:
        self._header = f"Bearer {token}"
        self._origin = api_origin

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if origin(request.url) == self._origin:
            request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return f"TokenAuth(origin={self._origin})"


class LeaseAuth(httpx.Auth):
    """One request's Authorization (``header``: the whole value, e.g. ``Bearer ...``), added
    only when the request goes to the API origin; never shown in a repr."""

    def __init__(self, header: Secret, api_origin: Origin) -> None:
        self._header = header
        self._origin = api_origin

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if origin(request.url) == self._origin and self._header.reveal():
            request.headers["Authorization"] = self._header.reveal()
        yield request

    def __repr__(self) -> str:
        return f"LeaseAuth(origin={self._origin})"


def resolve_url(url: str, settings: GitHubSettings) -> str:
    """Absolute URL for ``url`` (a path under api_url, or a Link URL kept verbatim).

    A URL of another origin is refused (SkippableApiError) so the token never leaves; so is
    a malformed one, which comes from the server and fails the unit, not the run.
    """
    try:
        parts = urlsplit(url)
        if not parts.scheme and not parts.netloc:
            relative = f"{settings.api_url}/{url.lstrip('/')}"
            httpx.URL(relative)  # raises if the server sent something unusable
            return relative
        target = origin(httpx.URL(url))
    except (ValueError, httpx.InvalidURL):
        raise SkippableApiError(f"{url!r} is not a valid URL; not followed", url=url) from None
    if target != api_origin(settings.api_url):
        message = (
            f"next page link points to {parts.netloc} ({url}), not {settings.api_host}; not "
            f"followed: the token is only sent to {settings.api_url}"
        )
        raise SkippableApiError(message, url=url)
    return url


def check_redirect(
    target: httpx.URL, *, method: str, url: str, hops: int, settings: GitHubSettings
) -> None:
    """Refuse (SkippableApiError) a redirect off api_url's origin, or one hop too many.

    Another host's answer is not this repo's data (the token would be stripped, but the
    data would be stored as the repo's), so no request goes there.
    """
    expected = api_origin(settings.api_url)
    if origin(target) != expected:
        where = target.netloc.decode("ascii", "replace")
        if target.scheme != expected[0]:
            where = f"{target.scheme}://{where}"
        message = (
            f"{method} {url}: redirected to {where}, not followed: only {settings.api_url} "
            "is trusted to answer for a repo; skipped, the run goes on"
        )
        raise SkippableApiError(message, url=url)
    if hops > MAX_REDIRECTS:
        message = f"{method} {url}: too many redirects ({hops}); skipped, the run goes on"
        raise SkippableApiError(message, url=url)


def describe(exc: BaseException | None) -> str:
    """One line about an error for messages and logs, never a request header's value."""
    if exc is None:
        return "no error"
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, httpx.LocalProtocolError):  # h11 quotes the refused header value
        return f"{type(exc).__name__}: a request header was refused (its value is not shown)"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def safe_cause(exc: httpx.HTTPError) -> BaseException | None:
    """The cause to chain, unless printing it would print a header value (the token)."""
    return None if isinstance(exc, httpx.LocalProtocolError) else exc
