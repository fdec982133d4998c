"""The credential pool through the real request loop, against a fake GitHub on fake time.

Why: a pool is worth its credentials only if every one of them is spent before the run
waits (and then only until the earliest reset), if tokens of one user are not counted twice,
and if a page re-read in a later run goes with the credential that read it before (GitHub
answers a free 304 only to the same Authorization). respx stands in for GitHub with one
budget per user, so who was asked and what it cost is exact; waits are asserted, not slept.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from gh_collect.config import GitHubSettings, RateLimitSettings
from gh_collect.errors import RateLimitExit, SsoRequiredError
from gh_collect.github.client import ClientOptions, GitHubClient
from gh_collect.github.credentials import Credentials, Secret, TokenSource
from gh_collect.github.pacing import Pacer
from gh_collect.github.pagination import PageRequest
from gh_collect.github.pool import CredentialPool

from .test_client import API, FakeTime

TOKENS = {"A": "ghp_tokenA_secret", "B": "ghp_tokenB_secret", "C": "ghp_tokenC_secret"}


class FakeGitHub:
    """One budget per user (``users``: token -> user id), ``limit`` a window of ``window_s``;
    records which token each request used."""

    def __init__(self, ft: FakeTime, users: dict[str, int], limit: int = 100) -> None:
        self.ft, self.users, self.limit = ft, users, limit
        self.window_s = 600.0
        self.used: Counter[int] = Counter()
        self.reset: dict[int, float] = {}
        self.calls: list[tuple[str, str]] = []  # (token, path)
        self.saml_refuses: set[str] = set()

    def token_of(self, request: httpx.Request) -> str:
        return request.headers.get("authorization", "").removeprefix("Bearer ")

    def __call__(self, request: httpx.Request) -> httpx.Response:
        token = self.token_of(request)
        self.calls.append((token, request.url.path))
        if token not in self.users:
            return httpx.Response(401, json={"message": "Bad credentials"})
        if token in self.saml_refuses and request.url.path.startswith("/orgs/"):
            sso = "required; url=https://github.com/orgs/acme/sso?authorization_request=x"
            message = "Resource protected by organization SAML enforcement."
            return httpx.Response(403, json={"message": message}, headers={"X-GitHub-SSO": sso})
        user = self.users[token]
        now = self.ft.now
        if self.reset.get(user, 0) <= now:
            self.used[user], self.reset[user] = 0, now + self.window_s
        if self.used[user] >= self.limit:
            return httpx.Response(403, json={"message": "API rate limit exceeded"},
                                  headers=self.headers(user))  # fmt: skip
        self.used[user] += 1
        body: Any = {"id": user, "login": f"user{user}"} if request.url.path == "/user" else []
        return httpx.Response(200, json=body, headers=self.headers(user))

    def headers(self, user: int) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.limit - self.used[user]),
            "x-ratelimit-reset": str(int(self.reset[user])),
            "x-ratelimit-resource": "core",
        }

    def by_token(self, path_prefix: str = "/repos") -> Counter[str]:
        return Counter(token for token, path in self.calls if path.startswith(path_prefix))


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


def credentials(*names: str) -> Credentials:
    return Credentials(tuple(TokenSource(f"${name}", name, Secret(TOKENS[name])) for name in names))


def pool_client(
    ft: FakeTime,
    names: tuple[str, ...],
    *,
    pause_below: int = 0,
    on_rate_limit: str = "wait",
    warnings: list[str] | None = None,
    org: str = "acme",
) -> GitHubClient:
    pool = CredentialPool(
        credentials(*names),
        pause_below=pause_below,
        clock=ft.clock,
        warn=(warnings.append if warnings is not None else None),
    )
    settings = GitHubSettings(api_url=API, concurrency=4, timeout_s=5)
    pacer = Pacer(4, 900, 90.0, clock=ft.clock, sleep=ft.sleep)
    return GitHubClient(
        settings,
        pool.view(org),
        rate_settings=RateLimitSettings(pause_below=pause_below),
        on_rate_limit="exit" if on_rate_limit == "exit" else "wait",
        options=ClientOptions(clock=ft.clock, sleep=ft.sleep, pacer=pacer),
    )


def run(client: GitHubClient, paths: list[str]) -> None:
    async def main() -> None:
        async with client as gh:
            for path in paths:
                await gh.get_page(path)

    asyncio.run(main())


def mocked(fake: Callable[[httpx.Request], httpx.Response]) -> respx.MockRouter:
    router = respx.mock(assert_all_mocked=True, assert_all_called=False)
    router.route(host="api.github.com").mock(side_effect=fake)
    return router


def paths(count: int) -> list[str]:
    return [f"/repos/acme/r{i}/pulls" for i in range(count)]


def test_every_budget_is_spent_before_the_run_waits(ft: FakeTime) -> None:
    """3 users x 100: 297 pages (and 3 /user checks) go without a wait; the next waits for
    the earliest reset, once, and nothing is refused by the server (no 403 on a spent
    budget)."""
    fake = FakeGitHub(ft, {TOKENS["A"]: 1, TOKENS["B"]: 2, TOKENS["C"]: 3})
    client = pool_client(ft, ("A", "B", "C"))
    with mocked(fake):
        run(client, paths(297))
    assert ft.sleeps == [] and sum(fake.used.values()) == 300
    assert client.stats.by_status == {200: 300}
    ft_start = ft.now
    with mocked(fake):
        run(client, ["/repos/acme/one-more/pulls"])
    assert len(ft.sleeps) == 1 and ft.now == pytest.approx(ft_start + 601, abs=1)
    assert client.rate is not None and client.rate.limit == 300


def test_one_credential_waits_for_its_reset(ft: FakeTime) -> None:
    fake = FakeGitHub(ft, {TOKENS["A"]: 1})
    client = pool_client(ft, ("A",))
    with mocked(fake):
        run(client, paths(101))
    assert len(ft.sleeps) == 1 and fake.by_token() == {TOKENS["A"]: 101}
    assert [path for _t, path in fake.calls].count("/user") == 0  # one token: no check


def test_exit_75_only_when_every_credential_is_spent(ft: FakeTime) -> None:
    fake = FakeGitHub(ft, {TOKENS["A"]: 1, TOKENS["B"]: 2}, limit=10)
    client = pool_client(ft, ("A", "B"), on_rate_limit="exit")
    with mocked(fake), pytest.raises(RateLimitExit) as info:
        run(client, paths(30))
    assert sum(fake.by_token().values()) == 18  # 20 less the two /user checks
    assert info.value.exit_code == 75 and "run again after the reset" in str(info.value)


def test_a_spent_credential_is_swapped_at_once_not_waited_for(ft: FakeTime) -> None:
    """A 403 primary limit on one token (its budget spent elsewhere, by another program):
    the request goes again at once with another token."""
    fake = FakeGitHub(ft, {TOKENS["A"]: 1, TOKENS["B"]: 2}, limit=50)
    fake.used[1], fake.reset[1] = 50, ft.now + 600  # A's budget spent before the run began
    client = pool_client(ft, ("A", "B"))
    with mocked(fake):
        run(client, paths(20))
    assert ft.sleeps == []
    assert client.stats.by_status[403] == 1 and fake.used[2] == 20 + 1


def test_tokens_of_one_user_share_one_budget_and_the_run_is_told(ft: FakeTime) -> None:
    fake = FakeGitHub(ft, {TOKENS["A"]: 1, TOKENS["B"]: 1, TOKENS["C"]: 2}, limit=100)
    warnings: list[str] = []
    client = pool_client(ft, ("A", "B", "C"), warnings=warnings)
    with mocked(fake):
        run(client, paths(190))
    assert len(warnings) == 1 and "$A, $B are tokens of the same GitHub user" in warnings[0]
    assert all(token not in warnings[0] for token in TOKENS.values())
    assert client.rate is not None and client.rate.limit == 200  # user 1 counted once
    assert ft.sleeps == [] and client.stats.by_status == {200: 193}


def test_a_url_goes_with_the_same_credential_in_every_run(ft: FakeTime) -> None:
    """GitHub's 304 is free only to the same Authorization: each URL has a home, the same
    in every run (two pools here), spread over the credentials."""
    homes = []
    for _run in range(2):
        fake = FakeGitHub(ft, {TOKENS["A"]: 1, TOKENS["B"]: 2, TOKENS["C"]: 3}, limit=1000)
        with mocked(fake):
            run(pool_client(ft, ("A", "B", "C")), paths(60))
        homes.append([token for token, path in fake.calls if path.startswith("/repos")])
    assert homes[0] == homes[1]
    spread = Counter(homes[0])
    assert len(spread) == 3 and min(spread.values()) >= 10


def test_a_url_leaves_its_home_only_when_the_home_is_spent(ft: FakeTime) -> None:
    fake = FakeGitHub(ft, {TOKENS["A"]: 1, TOKENS["B"]: 2}, limit=1000)
    with mocked(fake):
        run(pool_client(ft, ("A", "B")), paths(40))
    home = {path: token for token, path in fake.calls if path.startswith("/repos")}
    fake = FakeGitHub(ft, {TOKENS["A"]: 1, TOKENS["B"]: 2}, limit=1000)
    fake.used[1], fake.reset[1] = 998, ft.now + 600  # A: two requests left
    with mocked(fake):
        run(pool_client(ft, ("A", "B")), paths(40))
    moved = [path for token, path in fake.calls if path in home and home[path] != token]
    a_homed = [path for path, token in home.items() if token == TOKENS["A"]]
    assert len(moved) == len(a_homed) - 1  # A answered its /user check and one page


def test_a_post_goes_where_most_budget_is_left(ft: FakeTime) -> None:
    fake = FakeGitHub(ft, {TOKENS["A"]: 1, TOKENS["B"]: 2}, limit=100)
    fake.used[2], fake.reset[2] = 60, ft.now + 600
    client = pool_client(ft, ("A", "B"))

    async def main() -> None:
        async with client as gh:
            for _ in range(5):
                await gh.fetch(PageRequest("/graphql", method="POST", body={"query": "{}"}))

    with mocked(fake):
        asyncio.run(main())
    posts = [token for token, path in fake.calls if path == "/graphql"]
    assert posts == [TOKENS["A"]] * 5


def test_saml_refusal_moves_the_org_to_the_other_credentials(ft: FakeTime) -> None:
    fake = FakeGitHub(ft, {TOKENS["A"]: 1, TOKENS["B"]: 2}, limit=1000)
    fake.saml_refuses = {TOKENS["A"]}
    warnings: list[str] = []
    client = pool_client(ft, ("A", "B"), warnings=warnings)
    with mocked(fake):
        run(client, [f"/orgs/acme/repos?page={i}" for i in range(1, 20)])
    refused = [path for token, path in fake.calls if token == TOKENS["A"] and path != "/user"]
    assert len(refused) == 1  # asked once, then never again for acme
    assert len(warnings) == 1 and "not authorised for acme's SAML single sign-on" in warnings[0]
    assert "https://github.com/orgs/acme/sso" in warnings[0]


def test_saml_refusal_of_every_credential_stops_with_exit_2(ft: FakeTime) -> None:
    fake = FakeGitHub(ft, {TOKENS["A"]: 1, TOKENS["B"]: 2}, limit=1000)
    fake.saml_refuses = {TOKENS["A"], TOKENS["B"]}
    with mocked(fake), pytest.raises(SsoRequiredError) as info:
        run(pool_client(ft, ("A", "B")), ["/orgs/acme/repos"])
    assert info.value.exit_code == 2 and "acme" in str(info.value)
