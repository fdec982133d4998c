"""Slow pages shrink: the size steps, the URL rewriting, and the page walk against respx.

The fake list below pages like GitHub (page numbers, or ``after`` cursors; Link URLs keep
the request's own query) and cuts every request asking for more than ``bound`` items short,
as GitHub cuts heavy pages: the walk must read every item once, in order, whatever it does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import httpx
import pytest
import respx

from gh_collect.durable.storage import RawStore
from gh_collect.durable.validators import ValidatorStore
from gh_collect.errors import PaginationLoop, RetriableApiError, SlowPageError
from gh_collect.github.client import GitHubClient
from gh_collect.github.pagination import LinkPaginator
from gh_collect.github.sizing import (
    MAX_GROW_AFTER,
    PageSizer,
    Position,
    growth_limit,
    larger_size,
    position_of,
    resized,
    smaller_size,
)
from gh_collect.harvest.walk import PageWalk, WalkPage

from .test_client import API, FakeTime, make_client, run_with

LIST = f"{API}/repositories/7/issues"

# -- where a request reads from, and the size steps ----------------------------------------


def test_position_of_page_number_cursor_and_first_requests() -> None:
    assert position_of(f"{LIST}?state=all&per_page=100&page=3") == Position(100, 200)
    assert position_of(f"{LIST}?per_page=25&after=Y3Vyc29y") == Position(25, None)
    assert position_of("/repos/o/r/issues", {"state": "all", "per_page": 100}) == Position(100, 0)
    assert position_of(f"{LIST}?page=2") == Position(30, 30)  # GitHub's default per_page
    assert position_of(f"{LIST}?per_page=abc") is None
    assert position_of(f"{LIST}?per_page=50&page=0") is None
    assert position_of("http://[::1/broken?page=2") is None  # a hostile link: never resized


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        (Position(100, 300), 50),
        (Position(50, 350), 25),
        (Position(25, 50), 10),  # an even multiple of 25: 10 divides it
        (Position(25, 75), 5),  # an odd one: 10 would not start at item 75, 5 does
        (Position(25, None), 10),  # a cursor names its item: any size will do
        (Position(10, 30), None),  # the smallest: the walk gives up here
        (Position(5, 75), None),
        (Position(30, 30), 10),  # a link without per_page (GitHub's 30): 25 would skip
    ],
)
def test_smaller_size_keeps_the_first_item(position: Position, expected: int | None) -> None:
    size = smaller_size(position)
    assert size == expected
    if size is not None and position.offset is not None:
        assert position.offset % size == 0


def test_larger_size_only_where_its_pages_start_and_never_past_the_limit() -> None:
    assert larger_size(Position(50, 300), 100) == 100
    assert larger_size(Position(50, 350), 100) is None  # 350 is no page start at 100
    assert larger_size(Position(10, 50), 100) == 25
    assert larger_size(Position(5, 80), 100) == 10
    assert larger_size(Position(25, None), 100) == 50
    assert larger_size(Position(100, 0), 100) is None
    assert larger_size(Position(25, 100), 25) is None


def test_growth_limit_is_per_page_on_the_ladder_else_the_starting_size() -> None:
    assert growth_limit(25, 100) == 100  # a walk resumed from a shrunk token grows back
    assert growth_limit(5, 100) == 100
    assert growth_limit(3, 100) == 3  # a walk begun at 3 a page stays at 3
    assert growth_limit(None, 100) == 0


# -- rewriting requests --------------------------------------------------------------------


def test_resized_link_keeps_every_other_parameter_verbatim() -> None:
    url = f"{LIST}?state=all&since=2025-01-01T00:00:00Z&per_page=100&page=4"
    new_url, params = resized(url, None, Position(100, 300), 50)
    assert new_url == f"{LIST}?state=all&since=2025-01-01T00:00:00Z&per_page=50&page=7"
    assert params is None
    assert position_of(new_url) == Position(50, 300)


def test_resized_cursor_link_changes_per_page_only() -> None:
    url = f"{LIST}?per_page=100&state=all&after=Y3Vyc29yOjE%3D"
    new_url, _ = resized(url, None, Position(100, None), 25)
    assert new_url == f"{LIST}?per_page=25&state=all&after=Y3Vyc29yOjE%3D"


def test_resized_first_request_changes_its_params() -> None:
    params = {"state": "all", "per_page": 100}
    url, new = resized("/repos/o/r/issues", params, Position(100, 0), 50)
    assert (url, new) == ("/repos/o/r/issues", {"state": "all", "per_page": 50})
    assert params["per_page"] == 100  # the caller's dict is left alone


def test_resized_adds_page_only_past_the_first_page() -> None:
    assert resized(f"{LIST}?per_page=50", None, Position(50, 0), 25)[0] == f"{LIST}?per_page=25"
    grown, _ = resized(f"{LIST}?per_page=10&page=6", None, Position(10, 50), 25)
    assert grown == f"{LIST}?per_page=25&page=3"
    first, _ = resized(f"{LIST}?per_page=50&page=1", None, Position(50, 0), 25)
    assert first == f"{LIST}?per_page=25&page=1"


# -- the paginator: shrink, grow back, loops -----------------------------------------------


def test_page_sizer_waits_longer_after_each_failed_grow() -> None:
    sizer = PageSizer()
    assert [sizer.passed(), sizer.passed()] == [False, True]
    sizer.grew()
    sizer.shrunk()  # the larger size was cut again
    assert [sizer.passed() for _ in range(4)] == [False, False, False, True]
    for _ in range(10):
        sizer.grew()
        sizer.shrunk()
    assert sizer.needed == MAX_GROW_AFTER


def test_paginator_shrinks_and_grows_back_at_an_aligned_page() -> None:
    pages = LinkPaginator(f"{LIST}?per_page=100&page=3")
    assert pages.shrinkable and pages.page_size == 100
    assert pages.shrink() == 50
    assert pages.resume_token == f"{LIST}?per_page=50&page=5"
    pages.advance(f"{LIST}?per_page=50&page=6")  # one page passed: not yet
    assert pages.resume_token == f"{LIST}?per_page=50&page=6"
    pages.advance(f"{LIST}?per_page=50&page=7")  # two passed, item 300 starts a page of 100
    assert pages.resume_token == f"{LIST}?per_page=100&page=4"
    assert pages.page_number == 3


def test_paginator_gives_up_shrinking_at_ten() -> None:
    pages = LinkPaginator("/repos/o/r/pulls", {"per_page": 100})
    assert [pages.shrink(), pages.shrink(), pages.shrink(), pages.shrink()] == [50, 25, 10, None]
    assert not pages.shrinkable
    assert pages.request.params == {"per_page": 10}


def test_a_link_back_to_a_rewritten_page_is_still_a_loop() -> None:
    pages = LinkPaginator(f"{LIST}?per_page=100&page=2")
    pages.shrink()
    pages.advance(f"{LIST}?per_page=50&page=4")
    with pytest.raises(PaginationLoop):
        pages.advance(f"{LIST}?per_page=50&page=3")  # the shrunk page the walk read


# -- the walk against a list that cuts heavy pages ------------------------------------------


class HeavyList:
    """``total`` items ``{"id": n}``, paged by number or by ``after`` cursor, cutting every
    request for more than ``bound`` items short with ``cut`` (a status or an exception)."""

    def __init__(self, total: int, bound: int, *, cursors: bool = False, cut: Any = 502) -> None:
        self.total, self.bound, self.cursors, self.cut = total, bound, cursors, cut
        self.sizes: list[int] = []  # per_page of every request, in order
        self.failures = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        query = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        size = int(query.get("per_page", "30"))
        self.sizes.append(size)
        if size > self.bound:
            self.failures += 1
            if isinstance(self.cut, int):
                return httpx.Response(self.cut, json={"message": "Server Error"})
            raise self.cut
        if "after" in query:
            start = int(query["after"]) + 1
        else:
            start = (int(query.get("page", "1")) - 1) * size
        items = [{"id": n} for n in range(start, min(start + size, self.total))]
        headers = {"etag": f'W/"{start}-{size}"'}
        if start + size < self.total:
            headers["link"] = f'<{self._next(query, start, size)}>; rel="next"'
        return httpx.Response(200, json=items, headers=headers)

    def _next(self, query: dict[str, str], start: int, size: int) -> str:
        kept = [(k, v) for k, v in query.items() if k not in ("page", "after")]
        if self.cursors:
            position = ("after", str(start + size - 1))
        else:
            position = ("page", str(start // size + 2))
        return f"{LIST}?{urlencode([*kept, position], quote_via=quote)}"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


def walk_all(client: GitHubClient, walk: PageWalk) -> list[WalkPage]:
    async def pages(_gh: GitHubClient) -> list[WalkPage]:
        steps = []
        while (step := await walk.next()) is not None:
            steps.append(step)
        return steps

    return run_with(client, pages)


def ids(steps: list[WalkPage]) -> list[int]:
    return [item["id"] for step in steps for item in step.items or []]


def new_walk(client: GitHubClient, **kwargs: Any) -> PageWalk:
    first = LinkPaginator("/repositories/7/issues", {"state": "all", "per_page": 100})
    return PageWalk(client, first, **kwargs)


@pytest.mark.parametrize("cursors", [False, True])
def test_a_list_cut_above_40_is_read_whole_at_25(
    router: respx.MockRouter, cursors: bool, caplog: pytest.LogCaptureFixture
) -> None:
    heavy = HeavyList(530, 40, cursors=cursors)
    router.get(url__startswith=LIST).mock(side_effect=heavy)
    client = make_client(FakeTime())
    with caplog.at_level(logging.INFO, logger="gh_collect.harvest.walk"):
        steps = walk_all(client, new_walk(client))
    assert ids(steps) == list(range(530))  # every item once, in order
    assert heavy.sizes[:3] == [100, 50, 25]  # stepped down at once, no retry at 100 or 50
    assert client.stats.retries == 0
    assert max(heavy.sizes[3:]) == 50  # it tried to grow back, and only ever one step
    assert heavy.failures <= 2 + 5  # the first two cuts, then a few ever rarer grow tries
    shrinks = [r.message for r in caplog.records if "cut the page short" in r.message]
    assert len(shrinks) == heavy.failures
    assert "per_page=100" in shrinks[0] and "per_page=50 from the same item" in shrinks[0]


def test_resume_token_names_the_shrunk_request_and_resumes_at_the_same_item(
    router: respx.MockRouter,
) -> None:
    heavy = HeavyList(300, 40)
    router.get(url__startswith=LIST).mock(side_effect=heavy)
    client = make_client(FakeTime())

    async def first_two(_gh: GitHubClient) -> list[WalkPage]:
        walk = new_walk(client)
        return [step for _ in range(2) if (step := await walk.next()) is not None]

    steps = run_with(client, first_two)
    assert steps[0].next_token == f"{LIST}?state=all&per_page=25&page=2"  # item 25, shrunk
    token = steps[-1].next_token
    assert token == f"{LIST}?state=all&per_page=50&page=2"  # item 50, growing back
    resumed = make_client(FakeTime())
    rest = walk_all(resumed, PageWalk(resumed, LinkPaginator(token, start_page=3)))
    assert ids(steps) + ids(rest) == list(range(300))


def test_a_transient_502_costs_one_request_and_the_walk_grows_back(
    router: respx.MockRouter,
) -> None:
    heavy = HeavyList(1000, 100)
    cut: list[str] = []

    def once_then_heavy(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if not cut and "page=3" in url and "per_page=100" in url:
            cut.append(url)
            return httpx.Response(502, json={"message": "Server Error"})
        return heavy(request)

    router.get(url__startswith=LIST).mock(side_effect=once_then_heavy)
    client = make_client(FakeTime())
    steps = walk_all(client, new_walk(client))
    assert ids(steps) == list(range(1000))
    assert len(cut) == 1
    assert len(heavy.sizes) == 10 + 1  # the cut request, and one page read as two of 50
    assert heavy.sizes[-1] == 100


def test_a_read_timeout_shrinks_like_a_504(router: respx.MockRouter) -> None:
    heavy = HeavyList(120, 60, cut=httpx.ReadTimeout("timed out"))
    router.get(url__startswith=LIST).mock(side_effect=heavy)
    client = make_client(FakeTime())
    steps = walk_all(client, new_walk(client))
    assert ids(steps) == list(range(120))
    assert heavy.sizes[:2] == [100, 50] and client.stats.retries == 0


def test_a_page_cut_even_at_ten_fails_after_the_ordinary_retries(
    router: respx.MockRouter,
) -> None:
    heavy = HeavyList(500, 5, cut=504)
    router.get(url__startswith=LIST).mock(side_effect=heavy)
    client = make_client(FakeTime(), max_attempts=3)
    with pytest.raises(RetriableApiError, match="failed after 3 attempts") as raised:
        walk_all(client, new_walk(client))
    assert not isinstance(raised.value, SlowPageError)
    assert heavy.sizes == [100, 50, 25, 10, 10, 10]
    assert client.stats.retries == 2


def test_other_errors_keep_their_ordinary_retries(router: respx.MockRouter) -> None:
    heavy = HeavyList(50, 100)
    answers = [httpx.Response(500, json={"message": "oops"})]
    router.get(url__startswith=LIST).mock(
        side_effect=lambda request: answers.pop() if answers else heavy(request)
    )
    client = make_client(FakeTime())
    steps = walk_all(client, new_walk(client))
    assert ids(steps) == list(range(50))
    assert heavy.sizes == [100] and client.stats.retries == 1  # retried at the same size


def test_validators_are_kept_under_the_url_actually_asked(
    router: respx.MockRouter, tmp_path: Path
) -> None:
    heavy = HeavyList(150, 50)
    router.get(url__startswith=LIST).mock(side_effect=heavy)
    store = RawStore()
    validators = ValidatorStore(tmp_path / "validators.jsonl", 0, store)
    client = make_client(FakeTime())
    steps = walk_all(client, new_walk(client, validators=validators))
    assert ids(steps) == list(range(150))
    shrunk = validators.get("/repositories/7/issues?per_page=50&state=all")
    assert shrunk is not None and shrunk.next_url == steps[0].next_token
    assert not shrunk.settled  # a full page of 50 is not known to be the last
    assert validators.get("/repositories/7/issues?per_page=100&state=all") is None
    last = validators.get(f"{LIST}?state=all&per_page=50&page=3")
    assert last is not None and last.next_url is None and last.settled is False
    store.release(tmp_path / "validators.jsonl")
