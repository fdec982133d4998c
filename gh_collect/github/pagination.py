"""Link-header pagination: parse ``Link`` and walk it one page at a time.

GitHub pages lists with ``Link`` headers whose URLs must be followed verbatim: they switch
to ``/repositories/{id}/...`` paths and, on large repos, to opaque ``after=`` cursors, so a
page number can neither be computed nor trusted. The paginator is a small stateful object,
separate from the request loop (``while not paginator.finished``), that remembers where the
walk is (what a checkpoint stores to resume) and refuses to go round in circles.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from gh_collect.errors import PaginationLoop, RetriableApiError
from gh_collect.github.sizing import (
    PageSizer,
    Position,
    growth_limit,
    larger_size,
    position_of,
    resized,
    smaller_size,
)

__all__ = [
    "PER_PAGE",
    "LinkPaginator",
    "PageRequest",
    "json_type",
    "list_body",
    "object_items",
    "parse_link_header",
]

PER_PAGE = 100  # GitHub's maximum page size: the fewest requests for a list

# One link-value: ``<URL>`` followed by its parameters up to the next ``<`` (RFC 8288).
_LINK_VALUE = re.compile(r"<([^>]*)>([^<]*)")
_REL_PARAM = re.compile(r"""(?:^|;)\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)


@dataclass(frozen=True)
class PageRequest:
    """One request of a walk: a path under ``api_url`` or an absolute (Link) URL, the query
    to add to it, and for a POST (GraphQL) the JSON body. ``key`` names it among validators."""

    url: str
    params: Mapping[str, str | int] | None = None
    method: Literal["GET", "POST"] = "GET"
    body: Any = None

    @property
    def key(self) -> str:
        """The URL with the query it is sent with: how a page's validator is found again."""
        if not self.params:
            return self.url
        return f"{self.url}?{urlencode(sorted((k, str(v)) for k, v in self.params.items()))}"


def list_body(data: Any, url: str) -> list[Any]:
    """The items of a list page. Anything but a JSON list (a proxy's or an outage's object)
    is a malformed answer, retriable, never "no data": reading it as an empty page would
    complete the walk and silently lose every record after it. No body (204) is empty.
    """
    if data is None:
        return []
    if not isinstance(data, list):
        raise RetriableApiError(
            f"malformed response from GET {url}: a JSON {type(data).__name__} where a list "
            "was expected (not a list); retry later with --retry-failed",
            url=url,
        )
    return data


def object_items(data: Any, url: str) -> list[dict[str, Any]]:
    """``list_body`` of a page whose every item must be a JSON object (pulls, issues).

    An item that is not one makes the page malformed (retriable, the unit fails if it
    lasts): skipping it would lose a record silently, keeping it would break every reader.
    """
    items = list_body(data, url)
    for index, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise RetriableApiError(
                f"malformed response from GET {url}: item {index} is a JSON {json_type(item)}, "
                "not an object; retry later with --retry-failed",
                url=url,
            )
    return items


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    return names.get(type(value), "object" if isinstance(value, dict) else type(value).__name__)


def parse_link_header(value: str | None) -> dict[str, str]:
    """Map each ``rel`` of a ``Link`` header to its URL, exactly as the server wrote it.

    Tolerates missing or extra spaces, quoted or bare ``rel`` values, several space-separated
    rels on one link, and garbage between links. The first link for a rel wins.
    """
    links: dict[str, str] = {}
    if not value:
        return links
    for match in _LINK_VALUE.finditer(value):
        url, params = match.group(1).strip(), match.group(2)
        rel = _REL_PARAM.search(params)
        if not url or rel is None:
            continue
        for name in (rel.group(1) or rel.group(2) or "").lower().split():
            links.setdefault(name, url)
    return links


class LinkPaginator:
    """Where one walk over a paginated list stands: the URL to fetch next, or finished.

    ``params`` go with the first request only; every later URL comes from ``Link`` and
    already carries its query. ``resume_url`` (a saved next URL) restarts a walk in the
    middle; ``start_page`` is the 1-based number of the page the walk starts at, so
    ``page_number`` keeps counting across runs.

    A page GitHub cuts short (502/504, a timeout) is asked again with fewer items from the
    same item (``shrink``, see ``sizing``); after pages that pass, ``advance`` grows the
    next request back, up to ``PER_PAGE`` (a walk begun at another size keeps it). The
    request as rewritten is the one ``resume_token`` names, so a checkpoint resumes at the
    same item whatever the size.
    """

    def __init__(
        self,
        first_url: str,
        params: Mapping[str, str | int] | None = None,
        *,
        resume_url: str | None = None,
        start_page: int = 1,
    ) -> None:
        self._params = dict(params) if params and resume_url is None else None
        self._url = resume_url if resume_url is not None else first_url
        self._finished = False
        self._page_number = start_page
        self._seen = {_walk_key(self._url, self._params)}
        self._sizer = PageSizer()
        start = position_of(self._url, self._params)
        self._limit = growth_limit(start.size if start is not None else None, PER_PAGE)

    @property
    def current_url(self) -> str:
        """The URL of the page to fetch now (the last one fetched once finished)."""
        return self._url

    @property
    def request(self) -> PageRequest:
        """The request for the page to fetch now."""
        return PageRequest(self._url, self._params)

    @property
    def current_params(self) -> dict[str, str | int] | None:
        """Query parameters to add to ``current_url``: only for a fresh walk's first page."""
        return self._params

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def resume_token(self) -> str | None:
        """The request to send next, as one URL (None once finished): what a checkpoint
        stores to resume this walk at the same item."""
        return None if self._finished else _walk_key(self._url, self._params)

    @property
    def page_size(self) -> int | None:
        """Items the current request asks for (None if its query is not understood)."""
        position = position_of(self._url, self._params)
        return position.size if position is not None else None

    @property
    def shrinkable(self) -> bool:
        """Whether the current request can be asked again with fewer items per page."""
        position = position_of(self._url, self._params)
        return position is not None and smaller_size(position) is not None

    def shrink(self) -> int | None:
        """Ask the current page again with fewer items, from the same item; the new size,
        or None when it is already as small as a walk goes (the caller gives up)."""
        position = position_of(self._url, self._params)
        size = smaller_size(position) if position is not None else None
        if position is None or size is None:
            return None
        self._resize(position, size)
        self._sizer.shrunk()
        return size

    @property
    def page_number(self) -> int:
        """1-based number of the page at ``current_url`` (the last one, once finished)."""
        return self._page_number

    def next_token(self, page: Any) -> str | None:
        """What leads on from ``page`` (a ``client.Page``): its ``Link`` next URL."""
        next_url: str | None = page.next_url
        return next_url

    def advance(self, next_url: str | None) -> None:
        """Record that the current page was fetched; ``next_url`` is its ``rel="next"``.

        Raises SkippableApiError when the server links back to a page already fetched in
        this walk: following it would loop forever and write the same records again.
        """
        if self._finished:
            raise RuntimeError("advance() called on a finished pagination walk")
        if next_url is None:
            self._finished = True
            return
        key = _walk_key(next_url, None)
        if key in self._seen:
            message = (
                f"pagination loop at {next_url}: the server linked back to a page already "
                f"fetched in this walk (from page {self._page_number}); stopped following it"
            )
            raise PaginationLoop(message, url=next_url)
        self._seen.add(key)
        self._url, self._params = next_url, None
        self._page_number += 1
        self._maybe_grow()

    def _maybe_grow(self) -> None:
        """After enough pages passed (``PageSizer``), ask the next one at a larger size if
        it starts where that size's pages do."""
        if not self._sizer.passed():
            return
        position = position_of(self._url, self._params)
        size = larger_size(position, self._limit) if position is not None else None
        if position is not None and size is not None:
            self._resize(position, size)
            self._sizer.grew()

    def _resize(self, position: Position, size: int) -> None:
        """Rewrite the current request for ``size`` items per page; loop detection keeps
        the rewritten request too (a link back to it is a loop like any other)."""
        self._url, self._params = resized(self._url, self._params, position, size)
        self._seen.add(_walk_key(self._url, self._params))


def _walk_key(url: str, params: Mapping[str, str | int] | None) -> str:
    """The identity of a request in a walk: its URL plus the query added to it."""
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(sorted(params.items()))}"
