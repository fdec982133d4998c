"""The GitHub client against respx mocks: retries, rate limits, redirects, token hygiene.

Nothing leaves the process: respx intercepts every request (unmatched ones fail), and a fake
clock/sleep pair stands in for time, so waits of minutes are asserted, not slept.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import respx

from gh_collect.config import GitHubSettings, RateLimitSettings
from gh_collect.errors import (
    BadCredentialsError,
    ConfigError,
    GhCollectError,
    RateLimitError,
    RateLimitExit,
    RetriableApiError,
    SecondaryRateLimitError,
    SkippableApiError,
    SsoRequiredError,
)
from gh_collect.github.client import (
    MAX_SERVER_WAIT,
    ClientOptions,
    GitHubClient,
    Page,
    RateLimit,
    error_for_response,
)
from gh_collect.github.observer import ClientObserver
from gh_collect.github.pacing import Pacer
from gh_collect.github.pagination import LinkPaginator

API = "https://api.github.com"
TOKEN = "ghp_SECRETtokenValue0123456789abcdef"
FIXTURES = Path(__file__).parent / "fixtures" / "octokit"
T = TypeVar("T")
_DROPPED_HEADERS = {"content-length", "content-encoding", "transfer-encoding", "connection"}


class FakeTime:
    """Epoch clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


class Recorder:
    """A ClientObserver that writes down what it is told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.rates: list[RateLimit] = []

    def admit(self, resource: str) -> None:
        self.events.append(("admit", resource))

    def sent(self, resource: str, *, redirect: bool) -> None:
        self.events.append(("hop" if redirect else "sent", resource))

    def rate_seen(self, resource: str, rate: RateLimit) -> None:
        self.rates.append(rate)


def make_client(
    ft: FakeTime,
    *,
    api_url: str = API,
    pause_below: int = 50,
    concurrency: int = 8,
    observer: ClientObserver | None = None,
    on_rate_limit: str = "wait",
    **options: Any,
) -> GitHubClient:
    """A client on fake time; ``options`` are ``ClientOptions`` fields."""
    settings = GitHubSettings(api_url=api_url, concurrency=concurrency, timeout_s=5)
    pacer = Pacer(concurrency, 900, 90.0, clock=ft.clock, sleep=ft.sleep)
    options.setdefault("pacer", pacer)
    return GitHubClient(
        settings,
        TOKEN,
        rate_settings=RateLimitSettings(pause_below=pause_below),
        on_rate_limit="exit" if on_rate_limit == "exit" else "wait",
        observer=observer,
        options=ClientOptions(clock=ft.clock, sleep=ft.sleep, **options),
    )


def run_with(client: GitHubClient, use: Callable[[GitHubClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with client as gh:
            return await use(gh)

    return asyncio.run(main())


def get(client: GitHubClient, url: str, **kwargs: Any) -> Page:
    return run_with(client, lambda gh: gh.get_page(url, **kwargs))


def rate_headers(remaining: int, reset: float, limit: int = 5000) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(int(reset)),
        "x-ratelimit-used": str(limit - remaining),
        "x-ratelimit-resource": "core",
    }


def recorded(name: str) -> list[dict[str, Any]]:
    exchanges: list[dict[str, Any]] = json.loads(
        (FIXTURES / name / "normalized-fixture.json").read_text()
    )
    return exchanges


def recorded_response(exchange: dict[str, Any]) -> httpx.Response:
    headers = {
        key: str(value)
        for key, value in exchange["headers"].items()
        if key.lower() not in _DROPPED_HEADERS
    }
    return httpx.Response(exchange["status"], headers=headers, json=exchange["response"])


# -- pagination -------------------------------------------------------------------------


def walk(client: GitHubClient, paginator: LinkPaginator) -> list[Page]:
    async def pages(gh: GitHubClient) -> list[Page]:
        fetched = []
        while not paginator.finished:
            page = await gh.get_page(paginator.current_url, params=paginator.current_params)
            fetched.append(page)
            paginator.advance(page.next_url)
        return fetched

    return run_with(client, pages)


def test_walks_recorded_issue_pages_following_link_verbatim(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    exchanges = recorded("paginate-issues")
    served = {f"{API}{ex['path']}": recorded_response(ex) for ex in exchanges}
    requested: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return served[str(request.url)]

    router.get(host="api.github.com").mock(side_effect=serve)
    paginator = LinkPaginator("/repos/octokit-fixture-org/paginate-issues/issues", {"per_page": 3})
    pages = walk(make_client(ft), paginator)
    assert requested == list(served)  # page 1 as path + params, then /repositories/1000 URLs
    assert [len(page.items) for page in pages] == [len(ex["response"]) for ex in exchanges]
    assert pages[0].next_url == f"{API}/repositories/1000/issues?per_page=3&page=2"
    assert pages[0].last_url == f"{API}/repositories/1000/issues?per_page=3&page=5"
    assert pages[-1].next_url is None
    # octokit normalises x-ratelimit-reset to 1507651200000 (milliseconds): a reset some
    # 47,000 years away is bad data, so the whole budget reading is treated as absent
    assert pages[0].rate is None


def test_cursor_pages_and_a_full_last_page_without_link(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    cursor_url = f"{API}/repositories/42/issues?per_page=100&state=all&after=Y3Vyc29yOjE%3D"
    first = [{"id": n} for n in range(100)]
    second = [{"id": n} for n in range(100, 200)]
    requested: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        if str(request.url) == cursor_url:
            return httpx.Response(200, json=second, headers={"link": ""})
        return httpx.Response(200, json=first, headers={"link": f'<{cursor_url}>; rel="next"'})

    router.get(host="api.github.com").mock(side_effect=serve)
    paginator = LinkPaginator("/repos/o/r/issues", {"per_page": 100, "state": "all"})
    pages = walk(make_client(ft), paginator)
    assert requested == [f"{API}/repos/o/r/issues?per_page=100&state=all", cursor_url]
    assert [len(page.items) for page in pages] == [100, 100]
    assert pages[1].next_url is None and paginator.page_number == 2


def test_link_to_another_host_is_refused_without_a_request(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    elsewhere = router.get(host="evil.example.com").mock(return_value=httpx.Response(200))
    with pytest.raises(SkippableApiError, match=r"points to evil\.example\.com.*not followed"):
        get(make_client(ft), "https://evil.example.com/repositories/1/issues?page=2")
    with pytest.raises(SkippableApiError, match="not followed"):
        get(make_client(ft), "http://api.github.com/repositories/1/issues?page=2")  # downgrade
    assert not elsewhere.called


# -- headers and the token ----------------------------------------------------------------


def test_sends_github_headers_and_the_token_to_the_api_host(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    route = router.get(f"{API}/orgs/o").mock(return_value=httpx.Response(200, json={"id": 1}))
    assert run_with(make_client(ft, user_agent="gh-collect/test"), lambda gh: gh.get_json("orgs/o"))
    sent = route.calls.last.request.headers
    assert sent["authorization"] == f"Bearer {TOKEN}"
    assert sent["accept"] == "application/vnd.github+json"
    assert sent["x-github-api-version"] == "2022-11-28"
    assert sent["user-agent"] == "gh-collect/test"
    assert TOKEN not in repr(make_client(ft).__dict__)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_to_another_host_is_not_followed(
    ft: FakeTime, router: respx.MockRouter, status: int
) -> None:
    """Another host's data is not the repo's: no request goes there, the unit is skipped."""
    router.get(f"{API}/repos/o/r/issues").mock(
        return_value=httpx.Response(status, headers={"location": "https://cdn.example.com/x"})
    )
    outside = router.get(host="cdn.example.com").mock(
        return_value=httpx.Response(200, json=[{"id": 1}])
    )
    with pytest.raises(SkippableApiError, match=r"redirected to cdn\.example\.com, not followed"):
        get(make_client(ft), "/repos/o/r/issues")
    assert not outside.called


def test_redirect_to_another_port_or_scheme_is_not_followed(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    router.get(f"{API}/a").mock(
        return_value=httpx.Response(302, headers={"location": "https://api.github.com:8443/x"})
    )
    router.get(f"{API}/b").mock(
        return_value=httpx.Response(302, headers={"location": "http://api.github.com/x"})
    )
    elsewhere = router.get(path="/x").mock(return_value=httpx.Response(200, json=[]))
    for path in ("/a", "/b"):
        with pytest.raises(SkippableApiError, match="not followed"):
            get(make_client(ft), path)
    assert not elsewhere.called


def test_same_origin_redirect_chain_is_bounded(ft: FakeTime, router: respx.MockRouter) -> None:
    route = router.get(f"{API}/loop").mock(
        return_value=httpx.Response(302, headers={"location": f"{API}/loop"})
    )
    with pytest.raises(SkippableApiError, match="too many redirects"):
        get(make_client(ft), "/loop")
    assert route.call_count <= 21


def test_renamed_repository_301_is_followed_and_reported(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    moved, target = (ex for ex in recorded("rename-repository") if ex["method"] == "get")
    router.get(f"{API}{moved['path']}").mock(return_value=recorded_response(moved))
    final = router.get(f"{API}{target['path']}").mock(return_value=recorded_response(target))
    recorder = Recorder()
    client = make_client(ft, observer=recorder)
    page = get(client, moved["path"])
    assert page.moved_to == f"{API}/repositories/1000"
    assert page.url == f"{API}/repos/octokit-fixture-org/rename-repository"
    assert page.data["name"] == "rename-repository-newname"
    assert final.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"  # same host
    assert client.stats.requests == 2
    # the hop is counted but was never up for refusal
    assert recorder.events == [("admit", "core"), ("sent", "core"), ("hop", "core")]
    assert client.stats.by_status == {301: 1, 200: 1}


def test_etag_and_304(ft: FakeTime, router: respx.MockRouter) -> None:
    etag, modified = 'W/"abc123"', "Tue, 10 Oct 2017 16:00:00 GMT"
    route = router.get(f"{API}/repos/o/r/pulls").mock(
        side_effect=[
            httpx.Response(
                200, json=[{"id": 1}], headers={"etag": etag, "last-modified": modified}
            ),
            httpx.Response(304, headers={"etag": etag}),
        ]
    )
    client = make_client(ft)

    async def twice(gh: GitHubClient) -> tuple[Page, Page]:
        fresh = await gh.get_page("/repos/o/r/pulls")
        again = await gh.get_page("/repos/o/r/pulls", etag=fresh.etag, last_modified=modified)
        return fresh, again

    fresh, again = run_with(client, twice)
    assert (fresh.etag, fresh.last_modified) == (etag, modified)
    assert route.calls.last.request.headers["if-none-match"] == etag
    assert route.calls.last.request.headers["if-modified-since"] == modified
    assert (again.status, again.items, again.data) == (304, [], None)
    assert client.stats.not_modified == 1 and client.stats.retries == 0


# -- errors that are not retried ----------------------------------------------------------


def test_401_stops_with_bad_credentials_and_no_token_in_the_message(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    route = router.get(f"{API}/orgs/o/repos").mock(
        return_value=httpx.Response(401, json={"message": "Bad credentials"})
    )
    with pytest.raises(BadCredentialsError) as caught:
        get(make_client(ft), "/orgs/o/repos")
    assert caught.value.exit_code == 2
    assert TOKEN not in str(caught.value) and "GITHUB_TOKEN" in str(caught.value)
    assert "401" in str(caught.value) and "/orgs/o/repos" in str(caught.value)
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "Not Found"),
        (451, "Repository access blocked"),
        (410, "Gone"),
        (422, "Pagination with the page parameter is not supported for large datasets"),
        (403, "Resource protected by organization SAML enforcement."),
        (409, "Git Repository is empty."),
    ],
)
def test_skippable_statuses_are_not_retried(
    ft: FakeTime, router: respx.MockRouter, status: int, message: str
) -> None:
    route = router.get(f"{API}/repos/o/gone/pulls").mock(
        return_value=httpx.Response(status, json={"message": message})
    )
    with pytest.raises(SkippableApiError) as caught:
        get(make_client(ft), "/repos/o/gone/pulls")
    assert not isinstance(caught.value, SsoRequiredError)
    assert caught.value.status == status and message in str(caught.value)
    assert f"{API}/repos/o/gone/pulls" in str(caught.value)
    assert route.call_count == 1 and ft.sleeps == []


def test_409_is_an_ordinary_failure_with_a_clear_message(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    """Only an endpoint that declares 409 (commits) reads it as "empty"; the client does not."""
    router.get(f"{API}/repos/o/empty/pulls").mock(
        return_value=httpx.Response(409, json={"message": "Git Repository is empty."})
    )
    with pytest.raises(SkippableApiError) as caught:
        get(make_client(ft), "/repos/o/empty/pulls")
    assert caught.value.status == 409
    assert "conflict" in str(caught.value) and "\n" not in str(caught.value)


SSO_URL = "https://github.com/orgs/acme/sso?authorization_request=A1B2"


@pytest.mark.parametrize(
    ("path", "header", "org", "link"),
    [
        ("/orgs/acme/repos", f"required; url={SSO_URL}", "acme", SSO_URL),
        ("/repos/acme/r/issues", f"required; url={SSO_URL}", "acme", SSO_URL),
        ("/repos/acme/r/pulls", "required; url=javascript:alert(1)", "acme", None),
        ("/repos/acme/r/pulls", "required; url=https://x/\x1b[2J", "acme", None),
    ],
)
def test_saml_sso_names_the_org_and_the_url_to_authorise(
    ft: FakeTime, router: respx.MockRouter, path: str, header: str, org: str, link: str | None
) -> None:
    route = router.get(f"{API}{path}").mock(
        return_value=httpx.Response(
            403,
            json={"message": "Resource protected by organization SAML enforcement."},
            headers={"X-GitHub-SSO": header},
        )
    )
    with pytest.raises(SsoRequiredError) as caught:
        get(make_client(ft), path)
    error = caught.value
    assert error.exit_code == 2 and error.org == org and error.authorize_url == link
    text = str(error)
    assert f"organization {org} enforces SAML" in text and "GITHUB_TOKEN" in text
    assert (link in text) if link else ("authorise it for that organization" in text)
    assert "\n" not in text and "\x1b" not in text and TOKEN not in text
    assert route.call_count == 1 and ft.sleeps == []


def test_sso_partial_results_is_not_a_refusal(ft: FakeTime, router: respx.MockRouter) -> None:
    router.get(f"{API}/orgs/acme/repos").mock(
        return_value=httpx.Response(
            200, json=[], headers={"X-GitHub-SSO": "partial-results; organizations=21955855"}
        )
    )
    assert get(make_client(ft), "/orgs/acme/repos").items == []


# -- retries --------------------------------------------------------------------------------


def test_retries_a_502_then_succeeds(ft: FakeTime, router: respx.MockRouter) -> None:
    route = router.get(f"{API}/repos/o/r/pulls").mock(
        side_effect=[
            httpx.Response(502, json={"error": "Server Error"}),
            httpx.Response(200, json=[{"id": 7}]),
        ]
    )
    client = make_client(ft)
    assert get(client, "/repos/o/r/pulls").items == [{"id": 7}]
    assert route.call_count == 2 and client.stats.requests == 2
    assert client.stats.retries == 1 and client.stats.by_status == {502: 1, 200: 1}
    assert len(ft.sleeps) == 1 and 1 <= ft.sleeps[0] <= 2  # backoff with jitter


def test_retries_timeouts_and_connection_errors(ft: FakeTime, router: respx.MockRouter) -> None:
    router.get(f"{API}/repos/o/r/issues").mock(
        side_effect=[
            httpx.ReadTimeout("timed out"),
            httpx.ConnectError("connection reset by peer"),
            httpx.RemoteProtocolError("peer closed connection"),
            httpx.Response(200, json=[]),
        ]
    )
    client = make_client(ft)
    assert get(client, "/repos/o/r/issues").items == []
    assert client.stats.retries == 3 and client.stats.requests == 4
    assert ft.sleeps == sorted(ft.sleeps)  # exponential


def test_malformed_bodies_are_retried(ft: FakeTime, router: respx.MockRouter) -> None:
    router.get(f"{API}/repos/o/r/pulls").mock(
        side_effect=[
            httpx.Response(
                200, text="<html>Unicorn!</html>", headers={"content-type": "text/html"}
            ),
            httpx.Response(200, content=b""),
            httpx.Response(200, content=b'[{"id": 1}, {"id'),
            httpx.Response(200, json=[{"id": 1}]),
        ]
    )
    client = make_client(ft)
    assert get(client, "/repos/o/r/pulls").items == [{"id": 1}]
    assert client.stats.retries == 3


def test_gives_up_after_max_attempts(ft: FakeTime, router: respx.MockRouter) -> None:
    route = router.get(f"{API}/repos/o/r/pulls").mock(
        return_value=httpx.Response(504, json={"message": "We couldn't respond in time"})
    )
    with pytest.raises(RetriableApiError, match="after 3 attempts") as caught:
        get(make_client(ft, max_attempts=3), "/repos/o/r/pulls")
    assert route.call_count == 3 and caught.value.status == 504
    assert isinstance(caught.value.__cause__, RetriableApiError)


def test_gives_up_on_a_dead_network_with_a_retriable_error(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    router.get(f"{API}/orgs/o/repos").mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(RetriableApiError, match="ConnectError") as caught:
        get(make_client(ft, max_attempts=4), "/orgs/o/repos")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(ft.sleeps) == 3


# -- secondary rate limit -------------------------------------------------------------------

SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


def test_secondary_limit_honours_retry_after(ft: FakeTime, router: respx.MockRouter) -> None:
    router.get(f"{API}/repos/o/r/pulls").mock(
        side_effect=[
            httpx.Response(403, json={"message": SECONDARY}, headers={"retry-after": "30"}),
            httpx.Response(200, json=[{"id": 1}]),
        ]
    )
    client = make_client(ft)
    assert get(client, "/repos/o/r/pulls").items == [{"id": 1}]
    assert ft.sleeps and ft.sleeps[0] >= 30
    assert client.stats.secondary_limited == 1 and client.stats.retries == 0
    assert client.pacer.effective_concurrency == 4  # halved


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (403, SECONDARY),
        (403, "You have triggered an abuse detection mechanism."),
        (429, "Too many requests"),
    ],
)
def test_secondary_limit_without_retry_after_waits_a_minute(
    ft: FakeTime, router: respx.MockRouter, status: int, message: str
) -> None:
    router.get(f"{API}/repos/o/r/pulls").mock(
        side_effect=[
            httpx.Response(status, json={"message": message}),
            httpx.Response(200, json=[]),
        ]
    )
    get(make_client(ft), "/repos/o/r/pulls")
    assert ft.sleeps[0] >= 60


def test_repeated_secondary_hits_back_off_then_give_up(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    route = router.get(f"{API}/repos/o/r/pulls").mock(
        return_value=httpx.Response(403, json={"message": SECONDARY}, headers={"retry-after": "60"})
    )
    with pytest.raises(SecondaryRateLimitError, match="giving up"):
        get(make_client(ft), "/repos/o/r/pulls")
    assert route.call_count == 8 and len(ft.sleeps) == 7
    assert ft.sleeps[:4] == [60, 120, 240, 480] and ft.sleeps == sorted(ft.sleeps)


def test_repeated_secondary_hits_double_the_wait_github_asked_for(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    router.get(f"{API}/repos/o/r/pulls").mock(
        side_effect=[
            httpx.Response(403, json={"message": SECONDARY}, headers={"retry-after": "2"}),
            httpx.Response(403, json={"message": SECONDARY}, headers={"retry-after": "2"}),
            httpx.Response(403, json={"message": SECONDARY}, headers={"retry-after": "2"}),
            httpx.Response(200, json=[]),
        ]
    )
    get(make_client(ft), "/repos/o/r/pulls")
    assert ft.sleeps[:3] == [2, 4, 8]


# -- primary rate limit --------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 429])
def test_primary_exhaustion_waits_for_the_reset(
    ft: FakeTime, router: respx.MockRouter, status: int
) -> None:
    reset = ft.now + 1200
    recorder = Recorder()
    router.get(f"{API}/repos/o/r/issues").mock(
        side_effect=[
            httpx.Response(
                status,
                json={"message": "API rate limit exceeded for user ID 1."},
                headers=rate_headers(0, reset),
            ),
            httpx.Response(200, json=[{"id": 3}], headers=rate_headers(4999, reset + 3600)),
        ]
    )
    client = make_client(ft, observer=recorder)
    assert get(client, "/repos/o/r/issues").items == [{"id": 3}]
    assert ft.sleeps == [pytest.approx(1201)]
    assert client.stats.primary_waits == 1 and client.stats.waited_seconds == pytest.approx(1201)
    assert [rate.remaining for rate in recorder.rates] == [0, 4999]
    assert client.rate is not None and client.rate.remaining == 4999


def test_primary_exhaustion_with_exit_stops_with_code_75(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    reset = ft.now + 600
    router.get(f"{API}/repos/o/r/issues").mock(
        return_value=httpx.Response(
            403, json={"message": "API rate limit exceeded"}, headers=rate_headers(0, reset)
        )
    )
    with pytest.raises(
        RateLimitExit, match=r"spent until \d\d:\d\d:\d\d UTC.*after the reset"
    ) as caught:
        get(make_client(ft, on_rate_limit="exit"), "/repos/o/r/issues")
    assert caught.value.exit_code == 75 and ft.sleeps == []


def test_pause_below_is_never_crossed(ft: FakeTime, router: respx.MockRouter) -> None:
    reset = ft.now + 300
    route = router.get(f"{API}/repos/o/r/pulls").mock(
        side_effect=[
            httpx.Response(200, json=[], headers=rate_headers(50, reset)),
            httpx.Response(200, json=[], headers=rate_headers(4999, reset + 3600)),
        ]
    )
    client = make_client(ft, pause_below=50)

    async def twice(gh: GitHubClient) -> None:
        await gh.get_page("/repos/o/r/pulls")
        assert ft.sleeps == []
        await gh.get_page("/repos/o/r/pulls")

    run_with(client, twice)
    assert ft.sleeps == [pytest.approx(301)] and route.call_count == 2


def test_pause_below_with_exit_sends_nothing_more(ft: FakeTime, router: respx.MockRouter) -> None:
    route = router.get(f"{API}/repos/o/r/pulls").mock(
        return_value=httpx.Response(200, json=[], headers=rate_headers(10, ft.now + 300))
    )
    client = make_client(ft, pause_below=50, on_rate_limit="exit")

    async def twice(gh: GitHubClient) -> None:
        await gh.get_page("/repos/o/r/pulls")
        await gh.get_page("/repos/o/r/pulls")

    with pytest.raises(RateLimitExit):
        run_with(client, twice)
    assert route.call_count == 1


# -- pieces ---------------------------------------------------------------------------------


def test_rate_limit_from_headers_is_case_insensitive() -> None:
    headers = {
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": "4321",
        "X-RateLimit-Reset": "1750000000",
        "X-RateLimit-Used": "679",
        "X-RateLimit-Resource": "core",
    }
    rate = RateLimit.from_headers(headers)
    assert rate == RateLimit(5000, 4321, 1750000000.0, 679, "core")
    assert rate is not None and rate.fraction_left == pytest.approx(0.8642)
    assert RateLimit.from_headers({"x-ratelimit-limit": "5000"}) is None
    assert RateLimit.from_headers(
        httpx.Headers(
            {"X-RATELIMIT-LIMIT": "60", "x-ratelimit-remaining": "1", "x-ratelimit-reset": "9"}
        )
    ) == RateLimit(60, 1, 9.0)


def test_error_for_response_follows_github_s_documented_order() -> None:
    def error(status: int, headers: dict[str, str], message: str = "") -> Any:
        response = httpx.Response(status, headers=headers, json={"message": message})
        return error_for_response(response, url=f"{API}/x", now=1000.0)

    assert error(200, {}) is None and error(304, {}) is None
    primary = error(403, rate_headers(0, 5000))
    assert isinstance(primary, RateLimitError) and primary.reset_at == 5000
    both = error(403, {**rate_headers(0, 5000), "retry-after": "42"})
    assert isinstance(both, SecondaryRateLimitError) and both.retry_after == 42
    dated = error(429, {"retry-after": "Thu, 01 Jan 1970 00:17:40 GMT"})
    assert isinstance(dated, SecondaryRateLimitError) and dated.retry_after == 60
    lockout = error(403, {}, "Maximum number of login attempts exceeded. Please try again later.")
    assert isinstance(lockout, BadCredentialsError)
    assert isinstance(error(500, {}), RetriableApiError)
    assert isinstance(error(400, {}, "Bad request"), SkippableApiError)


def test_client_must_be_entered_before_use(ft: FakeTime) -> None:
    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(make_client(ft).get_page("/x"))


# -- hostile headers: parsed once, at the boundary ------------------------------------------


def good_rate() -> dict[str, str]:
    return {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "4000",
        "x-ratelimit-reset": "1750000000",
        "x-ratelimit-used": "1000",
        "x-ratelimit-resource": "core",
    }


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-ratelimit-reset", "nan"),
        ("x-ratelimit-reset", "inf"),
        ("x-ratelimit-reset", "-inf"),
        ("x-ratelimit-reset", "-5"),
        ("x-ratelimit-reset", "1e400"),
        ("x-ratelimit-reset", "99999999999999999999"),
        ("x-ratelimit-reset", "4102444800"),  # 2100: a reset years away
        ("x-ratelimit-reset", "soon"),
        ("x-ratelimit-remaining", "-5"),
        ("x-ratelimit-remaining", "abc"),
        ("x-ratelimit-remaining", "1e3"),
        ("x-ratelimit-remaining", "99999999999999999999"),
        ("x-ratelimit-remaining", "1_000"),
        ("x-ratelimit-limit", "0"),
        ("x-ratelimit-limit", "-1"),
        ("x-ratelimit-limit", "nan"),
    ],
)
def test_a_bad_required_rate_header_means_no_rate_limit(header: str, value: str) -> None:
    assert RateLimit.from_headers({**good_rate(), header: value}, now=1_750_000_000) is None


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-ratelimit-used", "1e400"),
        ("x-ratelimit-used", "-3"),
        ("x-ratelimit-used", "nan"),
        ("x-ratelimit-resource", "x" * 500),
        ("x-ratelimit-resource", "core\x07"),
    ],
)
def test_a_bad_optional_rate_header_is_absent(header: str, value: str) -> None:
    rate = RateLimit.from_headers({**good_rate(), header: value}, now=1_750_000_000)
    assert rate is not None and rate.remaining == 4000 and rate.reset == 1750000000
    field = header.removeprefix("x-ratelimit-")
    assert getattr(rate, field) is None


def test_bad_rate_headers_on_a_page_are_not_reported(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    recorder = Recorder()
    headers = {**good_rate(), "x-ratelimit-reset": "nan"}
    router.get(f"{API}/repos/o/r/pulls").mock(
        return_value=httpx.Response(200, json=[], headers=headers)
    )
    client = make_client(ft, observer=recorder)
    page = get(client, "/repos/o/r/pulls")
    assert page.rate is None and client.rate is None and recorder.rates == []


@pytest.mark.parametrize("reset", ["nan", "inf", "-1", "garbage"])
def test_spent_budget_with_a_bad_reset_waits_a_bounded_time(
    ft: FakeTime, router: respx.MockRouter, reset: str
) -> None:
    headers = {**rate_headers(0, ft.now + 100), "x-ratelimit-reset": reset}
    router.get(f"{API}/repos/o/r/issues").mock(
        side_effect=[
            httpx.Response(403, json={"message": "API rate limit exceeded"}, headers=headers),
            httpx.Response(200, json=[]),
        ]
    )
    get(make_client(ft), "/repos/o/r/issues")
    assert len(ft.sleeps) == 1 and 0 < ft.sleeps[0] <= MAX_SERVER_WAIT


@pytest.mark.parametrize("value", ["nan", "-inf", "-5", "abc", "", "Thu, 99 Foo 2025"])
def test_a_bad_retry_after_is_treated_as_absent(
    ft: FakeTime, router: respx.MockRouter, value: str
) -> None:
    router.get(f"{API}/repos/o/r/pulls").mock(
        side_effect=[
            httpx.Response(403, json={"message": SECONDARY}, headers={"retry-after": value}),
            httpx.Response(200, json=[]),
        ]
    )
    get(make_client(ft), "/repos/o/r/pulls")
    assert ft.sleeps == [60]


@pytest.mark.parametrize("value", ["1000000000", "inf", "1e400", "Fri, 01 Jan 2100 00:00:00 GMT"])
def test_a_huge_retry_after_is_capped_when_waiting(
    ft: FakeTime, router: respx.MockRouter, value: str
) -> None:
    headers = {"retry-after": value}
    router.get(f"{API}/repos/o/r/pulls").mock(
        side_effect=[
            httpx.Response(403, json={"message": SECONDARY}, headers=headers),
            httpx.Response(200, json=[]),
        ]
    )
    client = make_client(ft)
    get(client, "/repos/o/r/pulls")
    assert ft.sleeps == [MAX_SERVER_WAIT] and client.stats.waited_seconds == MAX_SERVER_WAIT


@pytest.mark.parametrize("value", ["1000000000", "inf", "3000", "Fri, 01 Jan 2100 00:00:00 GMT"])
def test_a_long_server_asked_wait_in_exit_mode_exits_75_without_sleeping(
    ft: FakeTime, router: respx.MockRouter, value: str
) -> None:
    router.get(f"{API}/repos/o/r/pulls").mock(
        return_value=httpx.Response(
            403, json={"message": SECONDARY}, headers={"retry-after": value}
        )
    )
    with pytest.raises(RateLimitExit, match=r"run again after \d\d:\d\d:\d\d UTC") as caught:
        get(make_client(ft, on_rate_limit="exit"), "/repos/o/r/pulls")
    assert caught.value.exit_code == 75 and ft.sleeps == []
    assert "\n" not in str(caught.value)


def test_a_short_secondary_wait_in_exit_mode_is_slept(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    router.get(f"{API}/repos/o/r/pulls").mock(
        side_effect=[
            httpx.Response(403, json={"message": SECONDARY}, headers={"retry-after": "30"}),
            httpx.Response(200, json=[{"id": 1}]),
        ]
    )
    assert get(make_client(ft, on_rate_limit="exit"), "/repos/o/r/pulls").items == [{"id": 1}]
    assert ft.sleeps == [30]


# -- the token: refused at the edge, never in an exception ----------------------------------


def test_a_token_with_a_newline_is_refused_by_the_client() -> None:
    settings = GitHubSettings(api_url=API)
    with pytest.raises(ConfigError, match="cannot hold") as caught:
        GitHubClient(settings, f"{TOKEN}\nline2", rate_settings=RateLimitSettings())
    assert TOKEN not in str(caught.value) and caught.value.exit_code == 2


def test_an_illegal_header_error_never_shows_the_header(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    """httpx/h11 put the refused value in the message: ``Illegal header value b'Bearer ...'``."""
    router.get(f"{API}/orgs/o/repos").mock(
        side_effect=httpx.LocalProtocolError(f"Illegal header value b'Bearer {TOKEN}'")
    )
    with pytest.raises(GhCollectError) as caught:
        get(make_client(ft), "/orgs/o/repos")
    printed = "".join(traceback.format_exception(caught.value))
    assert TOKEN not in printed and "Bearer" not in printed
    assert "header" in str(caught.value) and "\n" not in str(caught.value)


# -- bodies: bounded while streaming --------------------------------------------------------


class EndlessBody(httpx.AsyncByteStream):
    """An endless body of 1 KiB chunks that counts what was pulled from it."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.sent += 1024
            yield b" " * 1024


def test_a_body_over_the_cap_is_refused_while_streaming(
    ft: FakeTime, router: respx.MockRouter
) -> None:
    bodies: list[EndlessBody] = []

    def endless(request: httpx.Request) -> httpx.Response:
        bodies.append(EndlessBody())
        return httpx.Response(200, stream=bodies[-1])

    router.get(f"{API}/repos/o/r/pulls").mock(side_effect=endless)
    with pytest.raises(RetriableApiError, match=r"more than 64 KiB") as caught:
        get(make_client(ft, max_attempts=2, max_body_bytes=64 * 1024), "/repos/o/r/pulls")
    assert len(bodies) == 2 and all(body.sent <= 66 * 1024 for body in bodies)
    assert "\n" not in str(caught.value)


def test_a_body_at_the_cap_is_read(ft: FakeTime, router: respx.MockRouter) -> None:
    body = b"[" + b" " * 1000 + b"]"
    router.get(f"{API}/repos/o/r/pulls").mock(return_value=httpx.Response(200, content=body))
    page = get(make_client(ft, max_body_bytes=len(body)), "/repos/o/r/pulls")
    assert page.items == []
