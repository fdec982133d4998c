"""The client against hostile servers on 127.0.0.1: nothing a server sends is trusted.

Real sockets, because what goes wrong is about time and bytes on the wire: an endless chunked
body, a body dripping a byte at a time (each read is quick, the whole never ends), a huge
body, a ``retry-after`` of a billion seconds, a redirect to another origin, headers that are
NaN or negative. Each must end in a bounded time with a one-line error (or a documented
skip), with memory near the body cap, no request to another origin, a checkpoint that stays
readable and the token nowhere.
"""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiohttp import web

from gh_collect.config import GitHubSettings, RateLimitSettings
from gh_collect.errors import RateLimitExit, RetriableApiError, SkippableApiError
from gh_collect.github.client import MAX_BODY_BYTES, ClientOptions, GitHubClient
from gh_collect.harvest.run import RunOptions, collect
from gh_collect.simulator import SCENARIO_REPOS

from .conftest import TOKEN, dataset, run_cli, write_config

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MiB = 1024 * 1024
SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes."


async def serve(handler: Handler) -> tuple[web.AppRunner, str]:
    """An aiohttp server on 127.0.0.1 (any free port) answering every GET with ``handler``."""
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def against(
    handler: Handler,
    use: Callable[[GitHubClient], Awaitable[T]],
    *,
    on_rate_limit: str = "wait",
    max_body_bytes: int = MAX_BODY_BYTES,
    **github: Any,
) -> T:
    """Run ``use`` with a client of the server ``handler`` makes; real time, real sockets."""

    async def main() -> T:
        runner, url = await serve(handler)
        settings = GitHubSettings(api_url=url, **{"retry_initial_s": 0.01, **github})
        client = GitHubClient(
            settings,
            TOKEN,
            rate_settings=RateLimitSettings(),
            on_rate_limit="exit" if on_rate_limit == "exit" else "wait",
            options=ClientOptions(max_body_bytes=max_body_bytes),
        )
        try:
            async with client as gh:
                return await use(gh)
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def fetch(gh: GitHubClient) -> Awaitable[Any]:
    return gh.get_page("/repos/o/r/pulls")


def assert_one_line_without_token(error: BaseException) -> None:
    text = str(error)
    assert text and "\n" not in text and TOKEN not in text and TOKEN not in repr(error)


async def endless(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    chunk = b"[" + b" " * (64 * 1024 - 1)
    while True:
        await response.write(chunk)


async def drip(request: web.Request) -> web.StreamResponse:
    """One byte every 0.2 s: every read is well inside timeout_s, the answer never ends."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    while True:
        await response.write(b" ")
        await asyncio.sleep(0.2)


def test_an_endless_chunked_body_is_cut_at_the_cap() -> None:
    started = time.monotonic()
    with pytest.raises(RetriableApiError, match=r"more than 1 MiB") as caught:
        against(endless, fetch, max_body_bytes=MiB, retries=2)
    assert time.monotonic() - started < 30
    assert "failed after 2 attempts" in str(caught.value)
    assert_one_line_without_token(caught.value)


def test_a_dripping_body_hits_the_total_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(RetriableApiError, match=r"no complete answer within 2 s") as caught:
        against(drip, fetch, timeout_s=1, request_deadline_s=2, retries=2)
    elapsed = time.monotonic() - started
    assert 3.5 < elapsed < 30  # two attempts of 2 s each, then given up
    assert_one_line_without_token(caught.value)


def test_a_huge_body_is_refused_with_memory_near_the_cap() -> None:
    """200 MB with a Content-Length: refused at 64 MiB; peak memory about the cap, not 4x."""
    size = 200 * 1000 * 1000
    chunk = b" " * MiB

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(size)})
        await response.prepare(request)
        for _ in range(size // len(chunk)):
            await response.write(chunk)
        return response

    tracemalloc.start()
    try:
        with pytest.raises(RetriableApiError, match=r"more than 64 MiB") as caught:
            against(huge, fetch, retries=1)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * MAX_BODY_BYTES + 16 * MiB, f"peak {peak / MiB:.0f} MiB"
    assert_one_line_without_token(caught.value)


@pytest.mark.parametrize("retry_after", ["1000000000", "Fri, 01 Jan 2100 00:00:00 GMT"])
def test_a_long_server_asked_wait_in_exit_mode_exits_75_at_once(retry_after: str) -> None:
    """A cron job must not hold the dataset lock for years: exit 75, saying when to rerun."""
    hits = 0

    async def limited(request: web.Request) -> web.StreamResponse:
        nonlocal hits
        hits += 1
        body = json.dumps({"message": SECONDARY})
        headers = {"Retry-After": retry_after, "Content-Type": "application/json"}
        return web.Response(status=403, text=body, headers=headers)

    started = time.monotonic()
    with pytest.raises(RateLimitExit, match=r"run again after \d\d:\d\d:\d\d UTC") as caught:
        against(limited, fetch, on_rate_limit="exit")
    assert time.monotonic() - started < 10
    assert caught.value.exit_code == 75 and hits == 1
    assert_one_line_without_token(caught.value)


def test_a_redirect_to_another_origin_sends_it_nothing() -> None:
    other_hits: list[str] = []

    async def other(request: web.Request) -> web.StreamResponse:
        other_hits.append(request.path)
        return web.json_response([{"id": 666}])

    async def main() -> None:
        other_runner, other_url = await serve(other)

        async def redirect(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound(f"{other_url}/repositories/1/pulls")

        try:
            with pytest.raises(SkippableApiError, match="not followed") as caught:
                await asyncio.to_thread(against, redirect, fetch)
            assert other_url.removeprefix("http://") in str(caught.value)
            assert_one_line_without_token(caught.value)
        finally:
            await other_runner.cleanup()

    asyncio.run(main())
    assert other_hits == []


def test_same_origin_redirects_are_still_followed() -> None:
    async def moved(request: web.Request) -> web.StreamResponse:
        if request.path == "/repos/o/r/pulls":
            raise web.HTTPMovedPermanently("/repositories/1/pulls")
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        return web.json_response([{"id": 1}])

    page = against(moved, fetch)
    assert page.items == [{"id": 1}] and page.moved_to is not None
    assert page.moved_to.endswith("/repositories/1/pulls")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Reset": "nan"},
        {"X-RateLimit-Reset": "inf"},
        {"X-RateLimit-Remaining": "-5"},
        {"X-RateLimit-Remaining": "abc"},
        {"X-RateLimit-Limit": "0"},
        {"X-RateLimit-Used": "1e400"},
    ],
)
def test_bad_rate_headers_never_raise(headers: dict[str, str]) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        good = {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "4000",
            "X-RateLimit-Reset": str(int(time.time()) + 600),
            "X-RateLimit-Used": "1000",
        }
        return web.json_response([{"id": 1}], headers={**good, **headers})

    page = against(answer, fetch)
    assert page.items == [{"id": 1}]
    if "X-RateLimit-Used" in headers:
        assert page.rate is not None and page.rate.used is None
    else:
        assert page.rate is None


# -- through the run and the CLI ------------------------------------------------------------


class Mangle(httpx.AsyncBaseTransport):
    """Forwards to the simulator, then rewrites what it answers, as a hostile proxy would."""

    def __init__(self, rewrite: Callable[[httpx.Request, httpx.Response], httpx.Response]) -> None:
        self.rewrite = rewrite
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        return self.rewrite(request, response)

    async def aclose(self) -> None:
        await self.inner.aclose()


def library_settings(tmp_path: Path, api_url: str) -> Any:
    from gh_collect.config import load_config

    return load_config(
        write_config(tmp_path, api_url, github={"retries": 2}, checkpoint={"every_pages": 1}),
        environ={},
    )


@pytest.mark.e2e
@pytest.mark.parametrize("reset", ["nan", "inf", "-1", "1e400"])
def test_a_non_finite_reset_leaves_the_checkpoint_readable(
    reset: str, tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()

    def bad_reset(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        response.headers["X-RateLimit-Reset"] = reset
        response.headers["X-RateLimit-Remaining"] = "-5" if reset == "-1" else "4000"
        return response

    config = library_settings(tmp_path, sim.url)
    result = collect(config, TOKEN, RunOptions(export=False), transport=Mangle(bad_reset))
    assert result.exit_code in (0, 1)  # 1: the simulator's vanished repo
    checkpoint = dataset(tmp_path).checkpoint
    assert "NaN" not in checkpoint.read_text() and "Infinity" not in checkpoint.read_text()
    config_path = tmp_path / "config.yaml"
    status = run_cli("status", "-c", str(config_path), "--json")
    assert status.returncode == 0, status.stderr
    json.loads(status.stdout)
    again = run_cli("collect", "-c", str(config_path), "--quiet")
    assert again.returncode in (0, 1), again.stderr
    assert "corrupt" not in again.stderr


@pytest.mark.e2e
def test_an_endless_body_fails_that_unit_and_the_run_goes_on(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    victim = f"/{SCENARIO_REPOS['hundred']}/pulls"

    class Endless(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            chunk = b" " * MiB
            while True:
                yield chunk

    def endless_for_one(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if victim not in request.url.path:
            return response
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=Endless())

    config = library_settings(tmp_path, sim.url)
    result = collect(config, TOKEN, RunOptions(export=False), transport=Mangle(endless_for_one))
    assert result.exit_code == 1
    failed = [f for f in result.failures if f["repo"].endswith(SCENARIO_REPOS["hundred"])]
    assert failed and failed[0]["endpoint"] == "pulls"
    assert "more than 64 MiB" in failed[0]["error"] and "\n" not in failed[0]["error"]
    assert result.records["issues"] > 0  # the other units were collected


@pytest.mark.e2e
def test_a_token_with_a_newline_is_exit_2_and_shown_nowhere(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    before = sim.stats()["requests"]
    config = write_config(tmp_path, sim.url)
    result = run_cli("collect", "-c", str(config), token=f"{TOKEN}\nsecond-line")
    assert result.returncode == 2, result.stderr
    assert "contains characters a header cannot hold (a newline?)" in result.stderr
    assert "$GH_E2E_TOKEN" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    for text in (result.stdout, result.stderr):
        assert TOKEN not in text and "second-line" not in text
    assert sim.stats()["requests"] == before
    assert not (tmp_path / "data").exists()
