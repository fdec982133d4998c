"""The page walk: the one conditional request loop every list reader shares.

Discovery, a phase's units, a refresh and a dry run all walk lists the same way, one page
per ``PageWalk.next()``:

1. the paginator says which request comes now (``Paginator.request``);
2. on a conditional walk (a refresh) the page's stored validator is looked up: its ETag
   asks "changed since?" (a 304 costs no budget), unless the page is a full last page, whose
   ETag covers its body but not its ``Link`` (``Validator.may_answer_304``); a page known
   to have moved (301) is asked for where it lives now;
3. a 304 means "as stored": no items, the stored next page; any other answer's body is
   checked (``items``: a list of objects, or a listing's repos) before anything is kept;
4. the walk stops early where the endpoint's order says nothing later can be in the year;
5. the paginator advances (refusing a link back to a page already read), then the page's
   validator is remembered, in the same synchronous step as the caller's append of the
   page's records: ``next()`` returns without yielding to the event loop in between, so
   no checkpoint can count the validator without the data it vouches for.

A page GitHub cuts short (502, 504, a read timeout: a heavy page) is asked again at once
with fewer items from the same item (``Paginator.shrink``: 100, 50, 25, 10), with no retry
storm at a size that will not pass; the paginator grows back after pages that pass. Only a
page cut short at the smallest size, after the client's ordinary retries, fails the walk.

A paginator's resume token is opaque and serialisable: a REST next URL as ``Link`` gave it
(or as the walk rewrote it for another page size) today, a GraphQL cursor later. The
caller stores it (``WalkPage.next_token``) with the page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gh_collect.durable.validators import Validator, ValidatorStore
from gh_collect.endpoints import Endpoint, Window
from gh_collect.errors import SlowPageError
from gh_collect.github.client import GitHubClient, Page
from gh_collect.github.graphql import GraphQLTransport
from gh_collect.github.graphql_cursor import PULLS_LIST, CursorToken
from gh_collect.github.graphql_pagination import CursorPaginator
from gh_collect.github.pagination import PER_PAGE, LinkPaginator, PageRequest, object_items

__all__ = ["PageWalk", "Paginator", "WalkPage", "paginator_for"]

log = logging.getLogger(__name__)


class Paginator(Protocol):
    """Where one walk over a paginated list stands (``LinkPaginator`` for REST)."""

    @property
    def finished(self) -> bool: ...

    @property
    def page_number(self) -> int: ...

    @property
    def request(self) -> PageRequest: ...

    @property
    def resume_token(self) -> str | None:
        """What resumes the walk at the request ``request`` names (None: finished)."""
        ...

    @property
    def page_size(self) -> int | None:
        """Items the current request asks for (None: unknown)."""
        ...

    @property
    def shrinkable(self) -> bool:
        """Whether the current request can ask for fewer items from the same item."""
        ...

    def shrink(self) -> int | None:
        """Ask the current request for fewer items; the new size, None if it cannot."""
        ...

    def next_token(self, page: Page) -> str | None:
        """What leads on from ``page``, just read (REST: its ``Link`` next URL; GraphQL:
        its ``pageInfo.endCursor``); None: it was the last."""
        ...

    def advance(self, next_token: str | None) -> None:
        """The current page was read; ``next_token`` leads on (None: the walk is done).
        Raises PaginationLoop for a token already walked."""
        ...


@dataclass(frozen=True)
class WalkPage:
    """One page walked: its number, its checked items (None: unchanged, a 304), the token
    that leads on (None: the walk is done), and whether it is as stored."""

    number: int
    items: list[Any] | None
    next_token: str | None
    unchanged: bool
    page: Page


def _never(_items: list[Any]) -> bool:
    return False


class PageWalk:
    """One walk over a list (see the module docstring)."""

    def __init__(
        self,
        client: GitHubClient,
        paginator: Paginator,
        *,
        validators: ValidatorStore | None = None,
        conditional: bool = False,
        first_page_only: bool = False,
        items: Callable[[Any, str], list[Any]] | None = None,
        stop: Callable[[list[Any]], bool] = _never,
        on_shrink: Callable[[str], None] = log.info,
        graphql: GraphQLTransport | None = None,
    ) -> None:
        self.client, self.paginator = client, paginator
        self._graphql = graphql  # sends the POSTs (queries) of a GraphQL walk, paced by points
        self._on_shrink = on_shrink  # one line per step down (a run's reporter shows it)
        self._validators = validators
        # ``first_page_only``: only the walk's first request asks "changed since?" (a
        # newest-first catch-up, whose later pages hold other items than last time).
        self.conditional, self._first_page_only = conditional, first_page_only
        # The items of an answer: the paginator's reader where it has one (a GraphQL
        # connection's nodes), else a REST list of objects.
        reader: Callable[[Any, str], list[Any]] = getattr(paginator, "items", object_items)
        self._items = items or reader
        self._stop = stop

    @property
    def finished(self) -> bool:
        return self.paginator.finished

    async def next(self) -> WalkPage | None:
        """Walk one page; None once the walk is finished."""
        paginator = self.paginator
        if paginator.finished:
            return None
        number = paginator.page_number
        key, size, stored, page = await self._fetch()
        if self._first_page_only:  # the first page asked (at whatever size it passed)
            self.conditional = False
        ask = stored if stored is not None and stored.may_answer_304 else None
        if page.status == 304 and ask is not None:
            paginator.advance(ask.next_url)
            return WalkPage(number, None, paginator.resume_token, True, page)
        items = self._items(page.data, page.url)
        stop = self._stop(items)
        paginator.advance(None if stop else paginator.next_token(page))
        next_token = paginator.resume_token
        unchanged = (
            stored is not None and page.etag is not None and page.etag == stored.etag
        ) and next_token == stored.next_url
        if self._validators is not None:
            moved = stored.location if stored is not None else None
            self._validators.remember(
                key, page.etag, page.last_modified, next_token, page.moved_to or moved,
                settled=stop or len(items) < (size or PER_PAGE),
            )  # fmt: skip
        return WalkPage(number, items, next_token, unchanged, page)

    async def _fetch(self) -> tuple[str, int | None, Validator | None, Page]:
        """The current page (its validator key, size and stored validator with it), asked
        again with fewer items from the same item each time GitHub cuts it short."""
        paginator = self.paginator
        while True:
            request, size = paginator.request, paginator.page_size
            stored = (
                self._validators.get(request.key) if self.conditional and self._validators else None
            )
            try:
                page = await self._get(request, stored, paginator.shrinkable)
            except SlowPageError as exc:
                if paginator.shrink() is None:
                    raise
                self._on_shrink(_shrink_message(exc, size, paginator.page_size))
                continue
            return request.key, size, stored, page

    async def _get(self, request: PageRequest, stored: Validator | None, shrinkable: bool) -> Page:
        """One request of the walk: "changed since?" where the stored validator may say so,
        where a 301 said the page lives now; cut short at once if a smaller page can follow."""
        if request.method == "POST":
            if self._graphql is None:
                raise ValueError("a GraphQL walk needs PageWalk(graphql=GraphQLTransport)")
            return await self._graphql.fetch(request, cut_short_fails=shrinkable)
        ask = stored if stored is not None and stored.may_answer_304 else None
        moved = stored.location if stored is not None else None
        return await self.client.fetch(
            PageRequest(moved or request.url, None if moved else request.params),
            etag=ask.etag if ask else None,
            last_modified=ask.last_modified if ask else None,
            cut_short_fails=shrinkable,
        )


def _shrink_message(exc: SlowPageError, old: int | None, new: int | None) -> str:
    """One line per step down (the client's retries log their own)."""
    return (
        f"{exc.url}: GitHub cut the page short at per_page={old}; asking again with "
        f"per_page={new} from the same item"
    )


def paginator_for(
    endpoint: Endpoint,
    repo: str,
    window: Window,
    *,
    resume_token: str | None = None,
    start_page: int = 1,
    parent: str | None = None,
    graphql_url: str = "",
) -> Paginator:
    """A walk over ``endpoint`` of ``repo`` from its first page, or from a saved token.
    ``graphql_url``: where a GraphQL endpoint's queries go (its walks page by cursor)."""
    if endpoint.transport == "graphql":
        if resume_token is not None:
            return CursorPaginator(graphql_url, CursorToken.loads(resume_token),
                                   start_page=start_page)  # fmt: skip
        owner, _, name = repo.partition("/")
        token = CursorToken(PULLS_LIST.name, {"owner": owner, "name": name}, None,
                            PULLS_LIST.largest)  # fmt: skip
        return CursorPaginator(graphql_url, token, start_page=start_page)
    if resume_token is not None:
        return LinkPaginator(resume_token, start_page=start_page)
    first = endpoint.first_request(repo, window, parent=parent)
    return LinkPaginator(first.url, first.params, start_page=start_page)
