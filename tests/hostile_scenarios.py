"""The hostile scenarios: one per case of the issue "Nothing lost, whatever the server sends".

Each function fills its world (the org named after it) and returns the steps that drive the
CLI and check the result; ``tests/hostile.py`` holds the server and the checks every step and
every scenario gets (no traceback, one error line, token nowhere, checkpoint readable).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from gh_collect.durable.checkpoint import read_checkpoint
from tests.hostile import (
    END,
    ENDPOINTS,
    START,
    Call,
    Ctx,
    Drive,
    Hook,
    HostileServer,
    World,
    error_response,
    iso,
    listed,
    page,
    page_items,
    scenario,
)

DISCOVERY_ENDPOINTS = ("pulls", "issues")  # scenarios of 100+ repos: what discovery finds
STREAM_SECONDS = 60.0  # a hostile stream stops by itself after this long, whoever listens
CHUNK = b" " * 65536


def _for(route: str, repo_name: str, answer: Hook) -> Hook:
    """A hook that answers only ``route`` of one repo."""

    async def hook(call: Call) -> web.StreamResponse | None:
        if call.route == route and call.repo is not None and call.repo.name == repo_name:
            return await answer(call)
        return None

    return hook


def _tree_digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _raw_digest(ctx: Ctx) -> dict[str, dict[str, bytes]]:
    """Every endpoint's raw files, byte for byte."""
    return {e: _tree_digest(ctx.paths.endpoint_dir(e)) for e in ENDPOINTS}


# --------------------------------------------------------------------------- 1: file names


@scenario("1", "two repos with the same name, different owners")
def same_name(world: World) -> Drive:
    world.repo("tools", pulls=5, issues=2)
    world.repo("tools", pulls=3, issues=2, owner="other-owner")

    def drive(ctx: Ctx) -> None:
        ctx.write_config(github={"concurrency": 4})
        ctx.cli("collect", expect=0)
        ctx.expect_exact()

    return drive


@scenario("1", "a case-only rename: Tools and tools")
def case_names(world: World) -> Drive:
    world.repo("Tools", pulls=4, issues=1)
    world.repo("tools", pulls=3, issues=1)

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        ctx.expect_exact()
        for endpoint in ENDPOINTS:
            names = [p.name.lower() for p in ctx.paths.endpoint_dir(endpoint).glob("*.jsonl")]
            unique = len(names) == len(set(names)) == 2
            ctx.expect(unique, f"{endpoint} file names not unique by case: {names}")

    return drive


# --------------------------------------------------------------------------- 2: failed refresh


@scenario("2", "--retry-failed after a refresh failed on page 1")
def failed_refresh(world: World) -> Drive:
    repo = world.repo("flaky", pulls=5, issues=1)
    broken = {"on": False}

    async def bad_gateway(call: Call) -> web.StreamResponse | None:
        return error_response(502, "Server Error") if broken["on"] else None

    world.hook(_for("pulls", "flaky", bad_gateway))

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        before = world.truth("pulls")
        broken["on"] = True
        ctx.cli("collect", expect=1)
        broken["on"] = False
        del repo.pulls[2:]  # the server now serves only 2 of the 5
        ctx.cli("collect", "--retry-failed", expect=0)
        ctx.expect_raw_exact("pulls", before)
        ctx.expect_curated_exact("pulls", before)
        ctx.expect_exact(but=("pulls",))

    return drive


# --------------------------------------------------------------------------- 3: full last page


@scenario("3", "a 101st pull behind a full last page")
def full_last_page(world: World) -> Drive:
    repo = world.repo("hundred", pulls=100, issues=1)

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        world.add_pull(repo, created_at="2025-12-30T00:00:00Z", updated_at="2025-12-30T01:00:00Z")
        ctx.cli("collect", expect=0)
        ctx.expect_exact()

    return drive


@scenario("3", "a 101st repo behind a full last listing page")
def hundred_repos(world: World) -> Drive:
    for n in range(100):
        world.repo(f"r{n:03d}", pulls=0, issues=0)

    def drive(ctx: Ctx) -> None:
        ctx.write_config(endpoints=list(DISCOVERY_ENDPOINTS))
        ctx.cli("collect", expect=0)
        world.repo("zz-new", pulls=2, issues=1)
        ctx.cli("collect", expect=0)
        ctx.expect_raw_exact("pulls")
        ctx.expect_raw_exact("issues")

    return drive


# --------------------------------------------------------------------------- 4: refused export


@scenario("4", "export after a raw file was deleted")
def export_missing_raw(world: World) -> Drive:
    world.repo("a", pulls=4, issues=2)
    world.repo("b", pulls=3, issues=2)

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        before = _tree_digest(ctx.paths.curated_dir)
        victim = sorted(ctx.paths.endpoint_dir("pulls").glob("*.jsonl"))[0]
        victim.unlink()
        out = ctx.cli("export", expect=2)
        ctx.message_matches(out, r"missing|deleted|not found")
        ctx.expect(_tree_digest(ctx.paths.curated_dir) == before, "curated data changed")

    return drive


@scenario("4", "export of a dataset that does not exist")
def export_no_dataset(world: World) -> Drive:
    world.repo("a", pulls=1, issues=1)

    def drive(ctx: Ctx) -> None:
        out = ctx.cli("export", expect=2)
        ctx.message_matches(out, r"collect")
        ctx.expect(not ctx.root.exists(), "export created folders for a dataset that is not there")

    return drive


# --------------------------------------------------------------------------- 5: partial run


@scenario("5", "--from-repo on a fresh dataset leaves repos pending")
def from_repo_fresh(world: World) -> Drive:
    for name in ("a", "b", "c", "d", "e"):
        world.repo(name, pulls=2, issues=1)

    def drive(ctx: Ctx) -> None:
        out = ctx.cli("collect", "--from-repo", f"{world.org}/c", expect=1)
        ctx.message_matches(out, r"from-repo|pending|not collected")
        ctx.expect(ctx.manifest().get("status") == "partial", "manifest status is not 'partial'")
        ctx.cli("collect", expect=0)
        ctx.expect(ctx.manifest().get("status") == "complete", "manifest not complete after all")
        ctx.expect_exact()

    return drive


# --------------------------------------------------------------------------- 6, 12: tokens


@scenario("6", "a token with a newline in it")
def token_newline(world: World) -> Drive:
    world.repo("a", pulls=1, issues=1)

    def drive(ctx: Ctx) -> None:
        ctx.token = "ghp_firstLINEsecret0123\nsecondLINEsecret4567"
        out = ctx.cli("collect", expect=2)
        ctx.message_matches(out, r"header|character")
        ctx.expect(not world.requests, "a request was sent with an unusable token")

    return drive


@scenario("12", "the token variable is named GH_COLLECT_...")
def prefixed_token_env(world: World) -> Drive:
    world.repo("a", pulls=2, issues=1)

    def drive(ctx: Ctx) -> None:
        ctx.token_env = "GH_COLLECT_MY_TOKEN"
        ctx.write_config(github={"token_env": ctx.token_env})
        ctx.cli("collect", expect=0)
        ctx.cli("status", expect=0)
        ctx.expect_exact()

    return drive


# --------------------------------------------------------------------------- 7, 9: headers


@scenario("7", "X-RateLimit-Reset: nan, then inf")
def nan_reset(world: World) -> Drive:
    world.repo("a", pulls=3, issues=1)

    def drive(ctx: Ctx) -> None:
        world.headers = {"x-ratelimit-reset": "nan"}
        ctx.cli("collect", expect=0)
        ctx.cli("status", expect=0)
        world.headers = {"x-ratelimit-reset": "inf", "x-ratelimit-remaining": "nan"}
        world.add_pull(world.repos[0])
        ctx.cli("collect", expect=0)
        ctx.cli("status", "--json", expect=0)
        ctx.expect_exact()

    return drive


@scenario("9", "negative and mistyped rate-limit headers")
def bad_rate_headers(world: World) -> Drive:
    repo = world.repo("a", pulls=3, issues=2)

    def drive(ctx: Ctx) -> None:
        world.headers = {"x-ratelimit-remaining": "-5", "x-ratelimit-used": "1e400"}
        ctx.cli("collect", expect=0)
        world.headers = {"x-ratelimit-limit": "abc", "x-ratelimit-reset": "-1"}
        world.add_pull(repo)
        ctx.cli("collect", expect=0)
        ctx.cli("status", expect=0)
        ctx.expect_exact()

    return drive


# --------------------------------------------------------------------------- 8: bounded


async def _endless(call: Call) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "application/json"})
    await response.prepare(call.request)
    await response.write(b"[")
    ends = time.monotonic() + STREAM_SECONDS
    try:
        while time.monotonic() < ends:
            await response.write(CHUNK)
    except (ConnectionError, RuntimeError):
        pass
    return response


async def _drip(call: Call) -> web.StreamResponse:
    """A byte every half second: each read is fast enough, the body never ends in time."""
    response = web.StreamResponse(headers={"content-type": "application/json"})
    await response.prepare(call.request)
    try:
        await response.write(b"[")
        for _ in range(int(STREAM_SECONDS / 0.5)):
            await asyncio.sleep(0.5)
            await response.write(b" ")
        await response.write(b"]")
    except (ConnectionError, RuntimeError):
        pass
    return response


async def _huge(call: Call) -> web.StreamResponse:
    """200 MB of valid JSON: a list of big objects, streamed."""
    response = web.StreamResponse(headers={"content-type": "application/json"})
    await response.prepare(call.request)
    item = json.dumps({"id": 1, "body": "x" * (1 << 20)}).encode()
    try:
        await response.write(b"[" + item)
        for _ in range(199):
            await response.write(b"," + item)
        await response.write(b"]")
    except (ConnectionError, RuntimeError):
        pass
    return response


def _stream_scenario(world: World, answer: Hook) -> Drive:
    world.repo("victim", pulls=2, issues=2)
    world.repo("fine", pulls=3, issues=2)
    world.hook(_for("pulls", "victim", answer))

    def drive(ctx: Ctx) -> None:
        ctx.write_config(github={"timeout_s": 2})
        out = ctx.cli("collect", expect=1, timeout=120)
        ctx.expect(out.seconds < 45, f"took {out.seconds:.0f} s")
        ctx.expect(out.max_rss_mb < 500, f"peak RSS {out.max_rss_mb:.0f} MB")
        ctx.expect_exact(but=("pulls",))
        fine = Counter(p["id"] for p in world.repos[1].pulls)
        ctx.expect(fine <= ctx.raw_ids("pulls"), "the healthy repo's pulls are missing")

    return drive


@scenario("8", "an endless chunked body")
def endless_body(world: World) -> Drive:
    return _stream_scenario(world, _endless)


@scenario("8", "a byte every 0.5 s: each read in time, the body never")
def drip_body(world: World) -> Drive:
    return _stream_scenario(world, _drip)


@scenario("8", "a 200 MB body")
def huge_body(world: World) -> Drive:
    return _stream_scenario(world, _huge)


def _retry_after_scenario(world: World, value: str) -> Drive:
    world.repo("a", pulls=2, issues=1)

    async def limited(call: Call) -> web.StreamResponse | None:
        return error_response(
            403, "You have exceeded a secondary rate limit", **{"retry-after": value}
        )

    world.hook(_for("pulls", "a", limited))

    def drive(ctx: Ctx) -> None:
        out = ctx.cli("collect", "--on-rate-limit", "exit", expect=75, timeout=60)
        ctx.expect(out.seconds < 30, f"exit mode took {out.seconds:.0f} s")

    return drive


@scenario("8", "Retry-After: 1000000000 with --on-rate-limit exit")
def huge_retry_after(world: World) -> Drive:
    return _retry_after_scenario(world, "1000000000")


@scenario("8", "Retry-After: inf with --on-rate-limit exit")
def inf_retry_after(world: World) -> Drive:
    return _retry_after_scenario(world, "inf")


# --------------------------------------------------------------------------- 9: bodies


@scenario("9", "a repo list of non-objects")
def listing_not_objects(world: World) -> Drive:
    world.listing_override = [1, "two", None]

    def drive(ctx: Ctx) -> None:
        out = ctx.cli("collect", expect=1)
        ctx.message_matches(out, r"repo|list")

    return drive


@scenario("9", "a repo list of objects without id")
def listing_without_id(world: World) -> Drive:
    world.listing_override = [{"name": "x", "full_name": "listing-without-id/x"}]

    def drive(ctx: Ctx) -> None:
        out = ctx.cli("collect", expect=1)
        ctx.message_matches(out, r"id")

    return drive


@scenario("9", "a pulls page whose items are not objects")
def items_not_objects(world: World) -> Drive:
    world.repo("weird", pulls=2, issues=1)
    world.repo("fine", pulls=2, issues=1)

    async def numbers(call: Call) -> web.StreamResponse:
        return web.json_response([1, 2, 3])

    world.hook(_for("pulls", "weird", numbers))

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=1)
        ctx.expect_exact(but=("pulls",))
        state = read_checkpoint(ctx.paths.checkpoint)
        failed = [n for n, r in state.repos.items() if r.status.value == "failed"]
        ctx.expect(failed == [f"{world.org}/weird"], f"failed repos: {failed}")

    return drive


@scenario("9", "a created_at without a timezone")
def naive_timestamp(world: World) -> Drive:
    repo = world.repo("a", pulls=2, issues=1)
    world.add_pull(repo, created_at="2025-03-01T10:00:00", updated_at="2025-03-02T10:00:00")

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        ctx.cli("collect", expect=0)  # a refresh: the same record must not fail it either
        ctx.expect_raw_exact("pulls")
        ctx.expect_curated_exact("pulls")

    return drive


@scenario("9", "manifest.json is a folder")
def manifest_folder(world: World) -> Drive:
    world.repo("a", pulls=2, issues=1)

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        ctx.paths.manifest.unlink()
        ctx.paths.manifest.mkdir()
        out = ctx.cli("collect", expect=1)
        ctx.message_matches(out, r"manifest")
        ctx.paths.manifest.rmdir()
        ctx.cli("collect", expect=0)
        ctx.expect(ctx.manifest().get("status") == "complete", "no manifest after the fix")

    return drive


@scenario("9", "export when the curated folder is a file")
def curated_is_file(world: World) -> Drive:
    world.repo("a", pulls=2, issues=1)

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        curated = ctx.root / "curated"
        shutil.rmtree(curated)
        curated.write_text("not a folder")
        out = ctx.cli("export", expect=None)
        ctx.expect(out.code in (1, 2), f"export exit {out.code}, expected 1 or 2")
        ctx.expect(curated.read_text() == "not a folder", "the file in the way was changed")

    return drive


@scenario("9", "export when output.root is a file")
def root_is_file(world: World) -> Drive:
    world.repo("a", pulls=1, issues=1)

    def drive(ctx: Ctx) -> None:
        ctx.root.parent.mkdir(parents=True, exist_ok=True)
        ctx.root.write_text("not a folder")
        ctx.write_config(checkpoint={"every_pages": 1})  # any config naming that root
        out = ctx.cli("export", expect=2)
        ctx.message_matches(out, r"output.root|not a folder|file")
        ctx.expect(ctx.root.read_text() == "not a folder", "the file in the way was changed")

    return drive


# --------------------------------------------------------------------------- 10: mistyped


@scenario("10", "a title that is a number, a created_at of 'garbage'")
def mistyped_fields(world: World) -> Drive:
    repo = world.repo("a", pulls=3, issues=1)
    world.add_pull(repo, title=12345)
    world.add_pull(repo, created_at="garbage")

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        ctx.expect_curated_exact("pulls")
        text = json.dumps(ctx.manifest().get("export", {}))
        ctx.expect("title" in text and "created_at" in text, "untyped values not counted")
        ctx.cli("export", expect=0)

    return drive


# --------------------------------------------------------------------------- 11: discovery


@scenario("11", "--max-requests below the discovery pages")
def max_requests_discovery(world: World) -> Drive:
    for n in range(201):
        world.repo(f"r{n:03d}", pulls=0, issues=0)

    def drive(ctx: Ctx) -> None:
        ctx.write_config(endpoints=list(DISCOVERY_ENDPOINTS))
        ctx.cli("collect", "--max-requests", "2", expect=75)
        ctx.cli("collect", "--max-requests", "2", expect=75)
        state = read_checkpoint(ctx.paths.checkpoint)
        done = state.phases["discovery"].status.value == "complete"
        ctx.expect(done, "discovery did not finish in two runs of 2 requests")
        ctx.cli("collect", expect=0)
        ctx.expect(len(read_checkpoint(ctx.paths.checkpoint).repos) == 201, "repos missing")

    return drive


# --------------------------------------------------------------------------- 13: the lock


@scenario("13", "checkpoint.json.lock deleted while a run holds it")
def lock_deleted(world: World) -> Drive:
    world.repo("slow", pulls=2, issues=1)

    async def stall(call: Call) -> web.StreamResponse | None:
        await asyncio.sleep(30)
        return None

    world.hook(_for("pulls", "slow", stall))

    def drive(ctx: Ctx) -> None:
        ctx.write_config(github={"timeout_s": 60})
        first = ctx.spawn("collect")
        deadline = time.monotonic() + 20
        while not ctx.paths.checkpoint.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        ctx.paths.lock.unlink(missing_ok=True)
        ctx.cli("collect", expect=3)
        ctx.cli("export", expect=3)
        first.signal(signal.SIGTERM)
        ctx.reap(first, expect=143)

    return drive


# --------------------------------------------------------------------------- 14: the rest


@scenario("14", "repos named '.' and '..', and a full_name '../x'")
def dot_names(world: World) -> Drive:
    world.repo(".", pulls=2, issues=1)
    world.repo("..", pulls=2, issues=1)
    world.repo("x", pulls=2, issues=1, owner="..")

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        bad = [p for p in world.requests if _dot_segments(p)]
        ctx.expect(not bad, f"requests with dot segments: {bad[:3]}")
        ctx.expect_exact()

    return drive


def _dot_segments(path: str) -> bool:
    """A path with a dot-segment, or one that lost its owner/repo to normalisation."""
    parts = path.split("?", 1)[0].split("/")
    return "." in parts or ".." in parts or (parts[1:2] == ["repos"] and len(parts) < 5)


@scenario("14", "a --from-repo typo on a complete dataset")
def from_repo_typo(world: World) -> Drive:
    world.repo("alpha", pulls=2, issues=1)

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        sent = len(world.requests)
        out = ctx.cli("collect", "--from-repo", "alpah", expect=2)
        ctx.message_matches(out, r"alpha")
        ctx.expect(len(world.requests) == sent, "requests were spent before refusing")

    return drive


@scenario("14", "a raw file shorter than the checkpoint says")
def raw_shorter(world: World) -> Drive:
    world.repo("a", pulls=6, issues=1)

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        victim = next(ctx.paths.endpoint_dir("pulls").glob("*.jsonl"))
        with victim.open("r+b") as handle:
            handle.truncate(victim.stat().st_size // 2)
        out = ctx.cli("collect", expect=2)
        ctx.message_matches(out, r"--force")

    return drive


@scenario("14", "duplicate keys in the YAML config")
def duplicate_yaml_keys(world: World) -> Drive:
    def drive(ctx: Ctx) -> None:
        text = ctx.config_path.read_text()
        ctx.config_path.write_text(text + "year: 2024\n")
        out = ctx.cli("validate", expect=2)
        ctx.message_matches(out, r"duplicate|twice|more than once")

    return drive


@scenario("14", "301, 302 and 307 to another host")
def redirect_elsewhere(world: World) -> Drive:
    for name in ("moved301", "moved302", "moved307"):
        world.repo(name, pulls=2, issues=1)
    elsewhere = HostileServer()
    other = elsewhere.world("elsewhere")
    other.repo("x", pulls=5, issues=0)

    def redirect(status: int) -> Hook:
        async def answer(call: Call) -> web.StreamResponse:
            location = f"{elsewhere.url}/repos/elsewhere/x/pulls"
            return web.Response(status=status, headers={"location": location})

        return answer

    for status in (301, 302, 307):
        world.hook(_for("pulls", f"moved{status}", redirect(status)))

    def drive(ctx: Ctx) -> None:
        with elsewhere:
            ctx.cli("collect", expect=1)
        ctx.expect(not other.requests, f"the other host got {len(other.requests)} requests")
        ctx.expect(not ctx.raw_ids("pulls"), "another host's data was stored as the repo's")
        ctx.expect_exact(but=("pulls",))

    return drive


@scenario("14", "a Link header whose next page is on another host")
def link_elsewhere(world: World) -> Drive:
    world.repo("linked", pulls=2, issues=1)
    world.repo("fine", pulls=2, issues=1)
    elsewhere = HostileServer()
    other = elsewhere.world("elsewhere-link")
    other.repo("x", pulls=3, issues=0)

    async def link_out(call: Call) -> web.StreamResponse | None:
        if call.request.query.get("page"):
            return None
        body = [p for p in call.repo.pulls] if call.repo else []
        link = f'<{elsewhere.url}/repos/elsewhere-link/x/pulls?page=2>; rel="next"'
        return web.json_response(body, headers={"link": link})

    world.hook(_for("pulls", "linked", link_out))

    def drive(ctx: Ctx) -> None:
        with elsewhere:
            ctx.cli("collect", expect=1)
        ctx.expect(not other.requests, f"the other host got {len(other.requests)} requests")
        ctx.expect_exact(but=("pulls",))
        ctx.expect_raw_exact("pulls")  # the linked repo's first page, read before the link

    return drive


@scenario("9", "a 200 answer that is an object, not a list")
def object_not_list(world: World) -> Drive:
    world.repo("odd", pulls=2, issues=1)
    world.repo("fine", pulls=2, issues=1)

    async def message(call: Call) -> web.StreamResponse:
        return web.json_response({"message": "this is not a list"})

    world.hook(_for("pulls", "odd", message))

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=1)
        ctx.expect_exact(but=("pulls",))
        fine = Counter(p["id"] for p in world.repos[1].pulls)
        ctx.expect(ctx.raw_ids("pulls") == fine, "pulls other than the healthy repo's were kept")

    return drive


# --------------------------------------------------------------------------- activity endpoints
# issue_comments, review_comments, commits and releases: what is particular to each.


@scenario("9", "an empty repository: commits answer 409; a 409 on another repo's pulls")
def empty_repository(world: World) -> Drive:
    empty = world.repo(
        "empty", pulls=0, issues=0, issue_comments=0, review_comments=0, commits=0, releases=0
    )
    empty.empty_git = True
    conflicted = world.repo("conflicted", pulls=2, issues=1)
    world.repo("fine")

    async def conflict(call: Call) -> web.StreamResponse:
        return error_response(409, "Git Repository is empty.")

    world.hook(_for("pulls", "conflicted", conflict))

    def drive(ctx: Ctx) -> None:
        out = ctx.cli("collect", expect=1)
        ctx.message_matches(out, r"conflicted")
        unfinished = ctx.unfinished_units()
        ctx.expect(unfinished == [(conflicted.full_name, "pulls")], f"unfinished: {unfinished}")
        ctx.expect(world.answered("commits")[409] == 1, "the empty repo's 409 was asked again")
        ctx.expect_exact(but=("pulls",))
        pulls = world.truth("pulls") - Counter(p["id"] for p in conflicted.pulls)
        ctx.expect_raw_exact("pulls", pulls)
        ctx.expect_curated_exact("pulls", pulls)
        asked = len(world.exchanges)
        ctx.cli("collect", "--retry-failed", expect=1)  # a 409 is not retried: still failed
        again = [e for e in world.exchanges[asked:] if e.route == "pulls" and e.status == 409]
        ctx.expect(not again, f"--retry-failed asked the 409 again {len(again)} times")
        ctx.expect(ctx.unfinished_units() == unfinished, "--retry-failed changed what failed")

    return drive


@scenario("14", "commits and releases exactly at the year's start and end")
def year_edges(world: World) -> Drive:
    repo = world.repo("edges", commits=1, releases=1)
    start = world.add_commit(repo, at=START)
    world.add_commit(repo, at=END - timedelta(seconds=1))
    end = world.add_commit(repo, at=END)  # served: ``until`` is inclusive; not the year's
    world.add_commit(repo, at=START - timedelta(seconds=1))  # not served: before ``since``
    undated = world.add_commit(repo)
    del undated["commit"]["committer"]["date"]  # kept: what cannot be judged is kept
    for when in (START, END - timedelta(seconds=1), END, START - timedelta(seconds=1)):
        world.add_release(repo, created_at=iso(when))
    served: Counter[str] = Counter()

    async def record(call: Call) -> web.StreamResponse | None:
        if call.route != "commits":
            return None
        items = listed(call)
        served.update(str(i.get("sha")) for i in page_items(call, items))
        return page(call, items)

    world.hook(record)

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        ctx.expect(served[end["sha"]] == 1, "the commit at the year's end was not served")
        commits = ctx.raw_ids("commits")
        ctx.expect(end["sha"] not in commits, "the commit at the year's end was kept")
        ctx.expect(start["sha"] in commits, "the commit at the year's start was not kept")
        ctx.expect(undated["sha"] in commits, "the commit without a date was not kept")
        ctx.expect(len(world.truth("commits")) == 4, "the world's year is not what it seems")
        ctx.expect(len(world.truth("releases")) == 3, "the world's year is not what it seems")
        ctx.expect_exact()

    return drive


@scenario("10", "commits whose sha is missing, null, a number or empty")
def bad_shas(world: World) -> Drive:
    repo = world.repo("shas", commits=2)
    del world.add_commit(repo)["sha"]
    for sha in (None, 12345, ""):
        world.add_commit(repo, sha=sha)
    world.repo("fine")

    def drive(ctx: Ctx) -> None:
        out = ctx.cli("collect", expect=0)
        ctx.message_matches(out, r"commits: 4 records without a readable id dropped")
        ctx.expect_raw_exact("commits")  # every one read is kept raw: None twice, 12345, ""
        readable = Counter(s for s in world.truth("commits") if isinstance(s, str) and s)
        ctx.expect(len(readable) == 4, f"{len(readable)} readable shas in the world")
        ctx.expect_curated_exact("commits", readable)
        dropped = ctx.export_counts("dropped")
        ctx.expect(dropped == {"commits": 4}, f"export.dropped is {dropped}")
        ctx.expect_exact(but=("commits",))
        raw = _tree_digest(ctx.paths.endpoint_dir("commits"))
        ctx.cli("collect", expect=0)  # a refresh, nothing changed: all 304, nothing written
        ctx.expect(_tree_digest(ctx.paths.endpoint_dir("commits")) == raw, "raw commits changed")
        dropped = ctx.export_counts("dropped")
        ctx.expect(dropped == {"commits": 4}, f"export.dropped after a refresh is {dropped}")

    return drive


@scenario("3", "a page shift while commits and releases are read newest first")
def shifted_pages(world: World) -> Drive:
    busy = world.repo("busy", commits=150, releases=150)
    world.repo("calm")
    before: dict[str, Counter[object]] = {}
    answers: dict[str, list[list[object]]] = {"commits": [], "releases": []}  # keys a page

    async def shift(call: Call) -> web.StreamResponse | None:
        if call.repo is not busy or call.route not in answers:
            return None
        if call.request.query.get("page") == "2" and call.route not in before:
            before[call.route] = world.truth(call.route)  # a newcomer on top: all shift by one
            if call.route == "commits":
                world.add_commit(busy, at="2025-12-30T00:00:00Z")
            else:
                world.add_release(busy, created_at="2025-12-30T00:00:00Z")
        items = listed(call)
        key = "sha" if call.route == "commits" else "id"
        answers[call.route].append([i[key] for i in page_items(call, items)])
        return page(call, items)

    world.hook(shift)

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        for route, pages in answers.items():
            shifted = len(pages) >= 2 and pages[0][-1] == pages[1][0]
            ctx.expect(shifted, f"{route}: page 2 does not begin with page 1's last item")
        # Commits have no catch-up pass: the newcomer arrived after page 1, after the run
        # began (not part of its snapshot); the next run reads it.
        ctx.expect_raw_exact("commits", before.get("commits", Counter()))
        ctx.expect_curated_exact("commits", before.get("commits", Counter()))
        # Releases, newest created first like pulls, get a catch-up pass: it reads the newcomer.
        ctx.expect_exact(but=("commits",))
        ctx.cli("collect", expect=0)
        ctx.expect_exact()

    return drive


@scenario("10", "comments whose issue_url or pull_request_url is garbage or not a string")
def garbage_comment_urls(world: World) -> Drive:
    repo = world.repo("links", pulls=2, issues=2)
    bad_issue_urls: list[object] = ["garbage", 42, {"href": "x"}, f"{repo.api}/issues/abc"]
    bad_issue_urls.append(f"{repo.api}/issues/\u0663")  # a digit, not an ASCII one
    bad_pull_urls: list[object] = ["", ["/pulls/1"], True, f"{repo.api}/pulls/{2**64}"]
    bad = [world.add_issue_comment(repo, issue_url=url)["id"] for url in bad_issue_urls]
    bad += [world.add_review_comment(repo, pull_request_url=url)["id"] for url in bad_pull_urls]
    nulls = [world.add_issue_comment(repo, issue_url=None)["id"]]  # null: null, not untyped
    nulls.append(world.add_review_comment(repo, pull_request_url=None)["id"])

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        ctx.expect_exact()
        untyped = ctx.export_counts("untyped")
        want = {"issue_number": len(bad_issue_urls)}
        ctx.expect(untyped.get("issue_comments") == want, f"untyped: {untyped}")
        want = {"pull_number": len(bad_pull_urls)}
        ctx.expect(untyped.get("review_comments") == want, f"untyped: {untyped}")
        numbers = {
            **ctx.curated_column("issue_comments", "issue_number"),
            **ctx.curated_column("review_comments", "pull_number"),
        }
        for comments in (repo.issue_comments, repo.review_comments):
            for comment in comments:
                url = comment.get("issue_url", comment.get("pull_request_url"))
                good = comment["id"] not in bad and comment["id"] not in nulls
                want_number = int(str(url).rsplit("/", 1)[1]) if good else None
                got = numbers.get(comment["id"], "no row")
                ctx.expect(got == want_number, f"comment {comment['id']}: number {got!r}")

    return drive


@scenario("9", "a releases page that is an object, not a list")
def releases_not_a_list(world: World) -> Drive:
    odd = world.repo("odd")
    fine = world.repo("fine")

    async def message(call: Call) -> web.StreamResponse:
        return web.json_response({"message": "this is not a list"})

    world.hook(_for("releases", "odd", message))

    def drive(ctx: Ctx) -> None:
        out = ctx.cli("collect", expect=1)
        ctx.message_matches(out, r"releases")
        unfinished = ctx.unfinished_units()
        ctx.expect(unfinished == [(odd.full_name, "releases")], f"unfinished: {unfinished}")
        ctx.expect_exact(but=("releases",))
        releases = Counter(r["id"] for r in fine.releases)
        ctx.expect_raw_exact("releases", releases)
        ctx.expect_curated_exact("releases", releases)

    return drive


@scenario("10", "releases without created_at, null, or one that cannot be read")
def undated_releases(world: World) -> Drive:
    repo = world.repo("undated", releases=2)
    del world.add_release(repo)["created_at"]
    world.add_release(repo, created_at=None)
    world.add_release(repo, created_at="garbage")
    world.add_release(repo, created_at="2024-06-01T00:00:00Z")  # before the year: not kept

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        ctx.expect(len(world.truth("releases")) == 5, "the world's year is not what it seems")
        ctx.expect_exact()
        untyped = ctx.export_counts("untyped").get("releases")
        ctx.expect(untyped == {"created_at": 1}, f"untyped releases: {untyped}")

    return drive


@scenario("9", "a server that ignores since (comments) and until (commits): since 2010")
def since_ignored(world: World) -> Drive:
    repo = world.repo("history", issue_comments=3, review_comments=3, commits=3)
    for year in range(2010, 2025):
        for month in range(1, 13, 2):
            when = datetime(year, month, 1, tzinfo=UTC)
            world.add_issue_comment(repo, created_at=iso(when), updated_at=iso(when))
            world.add_review_comment(repo, created_at=iso(when), updated_at=iso(when))
            world.add_commit(repo, at=when)
    later = "2026-02-01T00:00:00Z"  # after the year: served, not kept
    for old, new in (("2015-03-01T00:00:00Z", "2025-05-01T00:00:00Z"), (later, later)):
        world.add_issue_comment(repo, created_at=old, updated_at=new)  # the first is kept
        world.add_review_comment(repo, created_at=old, updated_at=new)
    world.add_commit(repo, at=later)

    async def everything(call: Call) -> web.StreamResponse:
        return page(call, listed(call, ignore=frozenset({"since", "until"})))

    for route in ("issue_comments", "review_comments", "commits"):
        world.hook(_for(route, "history", everything))

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        asked = [p for p in world.requests if "/comments?" in p or "/commits?" in p]
        ctx.expect(all("since=" in p for p in asked), "a list was asked without since")
        for endpoint, kept in (("issue_comments", 4), ("review_comments", 4), ("commits", 3)):
            count = len(world.truth(endpoint))
            ctx.expect(count == kept, f"{endpoint}: the world keeps {count}, not {kept}")
        ctx.expect_exact()

    return drive


@scenario("2", "a refresh where nothing changed: every list answers 304")
def unchanged_refresh(world: World) -> Drive:
    world.repo("small")
    world.repo("big", pulls=120, issues=120, issue_comments=120, commits=120, releases=120)

    def drive(ctx: Ctx) -> None:
        ctx.cli("collect", expect=0)
        raw = _raw_digest(ctx)
        first = len(world.exchanges)
        ctx.cli("collect", expect=0)
        second = [e for e in world.exchanges[first:] if e.route != "rate_limit"]
        fresh = [f"{e.status} {e.path}" for e in second if e.status != 304]
        ctx.expect(not fresh, f"the refresh was answered other than 304: {fresh[:3]}")
        pages = sum(e.status == 200 for e in world.exchanges[:first])
        ctx.expect(len(second) <= pages, f"the refresh asked {len(second)} pages of {pages}")
        asked = Counter(e.route for e in second)
        ctx.expect(set(asked) == {"repos", *ENDPOINTS}, f"the refresh asked {dict(asked)}")
        ctx.expect(_raw_digest(ctx) == raw, "raw files changed")
        ctx.expect_exact()

    return drive
