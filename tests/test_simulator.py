"""The simulator over real HTTP on 127.0.0.1: it must behave like GitHub as github-api.md
documents it, because every end-to-end test and benchmark trusts it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import gh_collect.simulator as simulator
from gh_collect.simulator import (
    FAULT_NAMES,
    RENAMED_TO,
    SCENARIO_REPOS,
    OrgModel,
    Simulator,
    SimulatorConfig,
    parse_faults,
    serve,
)
from gh_collect.simulator.faults import FaultInjector
from gh_collect.simulator.model import encode_cursor, position_after

ORG = "sample-org"
TOKEN = "sim-test-token"
AUTH = {"Authorization": f"token {TOKEN}"}
Make = Callable[..., Simulator]


def client(sim: Simulator, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=sim.url, headers=AUTH, **kwargs)


def repo_id(sim: Simulator, name: str) -> int:
    return next(repo.id for repo in sim.model.repos if repo.name == name)


def walk(http: httpx.Client, url: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Follow rel="next" verbatim; every page must be a 200."""
    items: list[Any] = []
    next_url: str | None = url
    while next_url:
        response = http.get(next_url, params=params)
        params = None
        assert response.status_code == 200, response.text
        items += response.json()
        next_url = response.links.get("next", {}).get("url")
    return items


def busiest(sim: Simulator) -> str:
    """The ordinary (non-scenario) repo with the most issues and pulls."""
    ordinary = [repo for repo in sim.model.repos if repo.role is None]
    return max(ordinary, key=lambda repo: len(repo.issues)).name


def ids(objects: list[dict[str, Any]]) -> list[int]:
    return [obj["id"] for obj in objects]


# -- public API and data ----------------------------------------------------------------------


def test_public_api_is_exactly_what_other_modules_import() -> None:
    assert set(simulator.__all__) == {
        "FAULT_NAMES",
        "RENAMED_TO",
        "SCENARIO_REPOS",
        "OrgModel",
        "Simulator",
        "SimulatorConfig",
        "parse_faults",
        "run_forever",
        "serve",
    }
    assert all(hasattr(simulator, name) for name in simulator.__all__)


def test_same_seed_gives_byte_identical_objects() -> None:
    first, second = OrgModel.generate(5, 9, ORG), OrgModel.generate(5, 9, ORG)
    other = OrgModel.generate(6, 9, ORG)

    def dump(model: OrgModel) -> list[bytes]:
        return [item.to_bytes("http://h") for repo in model.repos for item in repo.issues]

    assert dump(first) == dump(second)
    assert [r.listing for r in first.repos] == [r.listing for r in second.repos]
    assert dump(first) != dump(other)


def test_scenario_repos_are_there_with_their_exact_sizes(shared: Simulator) -> None:
    repos = {repo.name: repo for repo in shared.model.repos}
    assert set(SCENARIO_REPOS.values()) <= set(repos)
    assert not repos["empty-repo"].pulls and not repos["empty-repo"].issues
    for name, count in (("hundred-repo", 100), ("two-hundred-repo", 200)):
        truth = shared.ground_truth(2025, repos=[name])
        assert len(repos[name].pulls) == count == len(truth["pulls"][name])
        assert len(truth["issues"][name]) == count
    assert repos["fork-repo"].fork and repos["archived-repo"].archived
    assert repos["renamed-repo"].current_name == RENAMED_TO


def test_timestamps_make_the_year_window_matter(shared: Simulator) -> None:
    items = [i for repo in shared.model.repos for i in repo.issues]
    created = [int(i.created_at[:4]) for i in items]
    assert {2022, 2023, 2024, 2025, 2026} <= set(created)
    assert all(i.created_at <= i.updated_at < shared.model.now for i in items)
    old_but_touched = [i for i in items if i.created_at < "2025" <= i.updated_at < "2026"]
    assert len(old_but_touched) >= 5
    assert sum(1 for y in created if y == 2025) > len(items) / 5


def test_objects_have_githubs_shapes_ghosts_and_unicode(shared: Simulator) -> None:
    truth = shared.ground_truth(2025)
    pulls = [p for objs in truth["pulls"].values() for p in objs]
    issues = [i for objs in truth["issues"].values() for i in objs]
    pull_keys = {"id", "node_id", "number", "state", "title", "user", "body", "labels", "head"}
    pull_keys |= {"base", "merged_at", "merge_commit_sha", "draft", "_links", "milestone"}
    assert all(pull_keys <= set(p) for p in pulls)
    issue_keys = {"id", "number", "labels", "state_reason", "comments", "reactions", "type"}
    assert all(issue_keys | {"author_association", "body"} <= set(i) for i in issues)
    assert any(p["user"] is None for p in pulls + issues), "no ghost (deleted) user"
    assert any(p["body"] and len(p["body"]) > 2000 for p in pulls + issues)
    assert any(p["body"] and any(ord(c) > 0xFFFF for c in p["body"]) for p in pulls + issues)
    assert all(label["name"] and "color" in label for p in pulls for label in p["labels"])
    assert any(p["merged_at"] for p in pulls) and any(p["state"] == "open" for p in pulls)


# -- requests that GitHub refuses -------------------------------------------------------------


def test_missing_or_wrong_token_is_401_and_user_agent_is_required(make: Make) -> None:
    sim = make(token=TOKEN)
    with httpx.Client(base_url=sim.url) as http:
        assert http.get(f"/orgs/{ORG}/repos").status_code == 401
        wrong = http.get(f"/orgs/{ORG}/repos", headers={"Authorization": "token nope"})
        assert wrong.status_code == 401
        assert wrong.json()["message"] == "Bad credentials"
        bearer = http.get(f"/orgs/{ORG}/repos", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200
        no_agent = http.get(f"/orgs/{ORG}", headers={**AUTH, "User-Agent": ""})
        assert no_agent.status_code == 403
        bad_version = http.get(f"/orgs/{ORG}", headers={**AUTH, "X-GitHub-Api-Version": "1999"})
        assert bad_version.status_code == 400
    assert sim.stats()["budget_spent"] == 1


def test_unknown_org_and_repo_answer_githubs_basic_error(shared: Simulator) -> None:
    with client(shared) as http:
        for path in ("/orgs/nobody/repos", f"/repos/{ORG}/nope/pulls", "/repositories/1/issues"):
            response = http.get(path)
            assert response.status_code == 404
            body = response.json()
            assert body["message"] == "Not Found" and body["status"] == "404"
            assert "documentation_url" in body


# -- pagination -------------------------------------------------------------------------------


def test_link_headers_follow_githubs_format(shared: Simulator) -> None:
    rid = repo_id(shared, "two-hundred-repo")
    with client(shared) as http:
        first = http.get(f"/repos/{ORG}/two-hundred-repo/pulls?state=all&per_page=30")
        assert list(first.links) == ["next", "last"]
        base = f"{shared.url}/repositories/{rid}/pulls?state=all&per_page=30"
        assert first.headers["link"] == f'<{base}&page=2>; rel="next", <{base}&page=7>; rel="last"'
        middle = http.get(first.links["next"]["url"])
        assert list(middle.links) == ["prev", "next", "last", "first"]
        assert middle.links["prev"]["url"] == f"{base}&page=1"
        last = http.get(middle.links["last"]["url"])
        assert list(last.links) == ["prev", "first"] and len(last.json()) == 200 - 6 * 30


def test_walking_next_yields_every_object_once(shared: Simulator) -> None:
    with client(shared) as http:
        pulls = walk(http, f"/repos/{ORG}/two-hundred-repo/pulls?state=all&per_page=17")
        issues = walk(
            http, f"/repos/{ORG}/{busiest(shared)}/issues", {"state": "all", "per_page": 7}
        )
    repo = next(r for r in shared.model.repos if r.name == "two-hundred-repo")
    assert sorted(ids(pulls)) == sorted(item.id for item in repo.pulls)
    assert len(set(ids(issues))) == len(issues) > 7


def test_no_link_when_everything_fits_on_one_page(shared: Simulator) -> None:
    with client(shared) as http:
        full = http.get(f"/repos/{ORG}/hundred-repo/pulls?state=all&per_page=100")
        empty = http.get(f"/repos/{ORG}/empty-repo/issues?state=all")
    assert len(full.json()) == 100 and "link" not in full.headers
    assert empty.json() == [] and "link" not in empty.headers


def test_repo_list_pages_with_the_organizations_id_form(shared: Simulator) -> None:
    with client(shared) as http:
        page = http.get(f"/orgs/{ORG}/repos?per_page=5")
        assert (
            f"/organizations/{shared.model.org_id}/repos?per_page=5&page=2"
            in (page.links["next"]["url"])
        )
        listed = walk(http, f"/orgs/{ORG}/repos?per_page=5")
        by_user = walk(http, f"/users/{ORG}/repos?per_page=100")
        forks = http.get(f"/orgs/{ORG}/repos?type=forks").json()
        by_name = http.get(f"/orgs/{ORG}/repos?sort=full_name&per_page=100").json()
    assert [r["name"] for r in listed] == [r.name for r in shared.model.repos]
    assert ids(by_user) == ids(listed)
    assert [r["name"] for r in forks] == ["fork-repo"]
    assert [r["name"] for r in by_name] == sorted(r.name for r in shared.model.repos)
    assert "renamed-repo" in {r["name"] for r in listed}
    assert "vanished-repo" in {r["name"] for r in listed}


def test_cursor_pagination_on_big_issue_lists(make: Make) -> None:
    sim = make(cursor_threshold=150)
    with client(sim) as http:
        url = f"/repos/{ORG}/two-hundred-repo/issues?state=all&per_page=100"
        first = http.get(url)
        assert list(first.links) == ["next"] and "after=" in first.links["next"]["url"]
        second = http.get(first.links["next"]["url"])
        assert list(second.links) == ["prev", "next"] and "before=" in second.links["prev"]["url"]
        assert ids(http.get(second.links["prev"]["url"]).json()) == ids(first.json())
        walked = walk(http, url)
        deep = http.get(f"{url}&page=11")
        shallow = http.get(f"{url}&page=2")
        small = http.get(f"/repos/{ORG}/hundred-repo/issues?state=all&per_page=100&page=2")
    assert len(walked) == len(set(ids(walked))) == 400
    assert deep.status_code == 422 and "cursor based pagination" in deep.json()["message"]
    assert ids(shallow.json()) == ids(second.json())
    assert "page=" in small.links["prev"]["url"], "small lists keep page numbers"


def test_cursors_hold_their_place_when_items_are_inserted() -> None:
    keys = [(f"2025-01-{day:02d}", day) for day in range(1, 21)]
    cursor = keys[10]
    before = position_after(keys, cursor, descending=True)
    newer = [*keys, ("2025-02-01", 99)]  # new activity lands at the head of a desc list
    after = position_after(newer, cursor, descending=True)
    assert newer[len(newer) - 1 - after] == keys[len(keys) - 1 - before] == keys[9]
    assert encode_cursor(cursor) != encode_cursor(keys[9])


# -- query parameters -------------------------------------------------------------------------


def test_state_sort_and_direction(shared: Simulator) -> None:
    path = f"/repos/{ORG}/two-hundred-repo"
    with client(shared) as http:
        default = http.get(f"{path}/pulls?per_page=100").json()
        closed = http.get(f"{path}/pulls?state=closed&per_page=100").json()
        by_update = http.get(f"{path}/pulls?state=all&sort=updated&per_page=100").json()
        issues = http.get(f"{path}/issues?state=all&sort=updated&per_page=100").json()
        bad = http.get(f"{path}/pulls?state=maybe")
    assert {p["state"] for p in default} == {"open"} and {p["state"] for p in closed} == {"closed"}
    created = [p["created_at"] for p in default]
    assert created == sorted(created, reverse=True), "pulls: created desc by default"
    updated = [p["updated_at"] for p in by_update]
    assert updated == sorted(updated), "pulls: asc for any other sort"
    updated = [i["updated_at"] for i in issues]
    assert updated == sorted(updated, reverse=True), "issues: desc by default"
    assert bad.status_code == 422


def test_since_filters_issues_by_updated_at(shared: Simulator) -> None:
    since = "2025-06-01T00:00:00Z"
    with client(shared) as http:
        recent = walk(http, f"/repos/{ORG}/{busiest(shared)}/issues?state=all&since={since}")
        everything = walk(http, f"/repos/{ORG}/{busiest(shared)}/issues?state=all&per_page=100")
        bad = http.get(f"/repos/{ORG}/{busiest(shared)}/issues?since=yesterday")
    assert recent and all(i["updated_at"] >= since for i in recent)
    assert ids(recent) == [i["id"] for i in everything if i["updated_at"] >= since]
    assert bad.status_code == 422


def test_issues_list_includes_pulls_with_their_own_ids(shared: Simulator) -> None:
    with client(shared) as http:
        issues = walk(http, f"/repos/{ORG}/{busiest(shared)}/issues?state=all&per_page=100")
        pulls = walk(http, f"/repos/{ORG}/{busiest(shared)}/pulls?state=all&per_page=100")
    as_issues = {i["number"]: i for i in issues if "pull_request" in i}
    assert set(as_issues) == {p["number"] for p in pulls}
    for pull in pulls:
        entry = as_issues[pull["number"]]
        assert entry["id"] != pull["id"]
        assert set(entry["pull_request"]) == {
            "url",
            "html_url",
            "diff_url",
            "patch_url",
            "merged_at",
        }
        assert entry["pull_request"]["merged_at"] == pull["merged_at"]


# -- renamed, vanished, prefixes --------------------------------------------------------------


def test_renamed_repo_answers_301_to_the_repositories_form(shared: Simulator) -> None:
    rid = repo_id(shared, "renamed-repo")
    with client(shared) as http:
        moved = http.get(f"/repos/{ORG}/renamed-repo/pulls?state=all&per_page=5")
        itself = http.get(f"/repos/{ORG}/renamed-repo")
        followed = http.get(moved.headers["location"])
        by_new_name = http.get(f"/repos/{ORG}/{RENAMED_TO}")
    location = f"{shared.url}/repositories/{rid}/pulls?state=all&per_page=5"
    assert moved.status_code == 301 and moved.headers["location"] == location
    assert moved.json()["message"] == "Moved Permanently" and moved.json()["url"] == location
    assert itself.headers["location"] == f"{shared.url}/repositories/{rid}"
    assert followed.status_code == 200 and len(followed.json()) == 5
    assert by_new_name.json()["name"] == RENAMED_TO


def test_vanished_repo_is_listed_but_404(shared: Simulator) -> None:
    rid = repo_id(shared, "vanished-repo")
    with client(shared) as http:
        for path in (f"/repos/{ORG}/vanished-repo/pulls", f"/repositories/{rid}/issues"):
            assert http.get(path).status_code == 404


def test_everything_is_served_under_api_v3_too(shared: Simulator) -> None:
    with client(shared) as http:
        repos = http.get(f"/api/v3/orgs/{ORG}/repos?per_page=2")
        pulls = http.get(f"/api/v3/repos/{ORG}/{busiest(shared)}/pulls?state=all&per_page=2")
    assert repos.status_code == pulls.status_code == 200
    assert repos.links["next"]["url"].startswith(f"{shared.url}/api/v3/organizations/")
    assert pulls.json()[0]["url"].startswith(f"{shared.url}/api/v3/repos/{ORG}/{busiest(shared)}")


# -- rate limits and conditional requests ------------------------------------------------------


def test_primary_budget_counts_down_runs_out_and_refills(make: Make) -> None:
    sim = make(rate_limit=3, reset_seconds=0.6)
    with client(sim) as http:
        seen = [http.get(f"/orgs/{ORG}/repos") for _ in range(4)]
        free = http.get("/rate_limit")
        time.sleep(0.7)
        refilled = http.get(f"/orgs/{ORG}/repos")
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in seen]
    assert remaining == [2, 1, 0, 0]
    assert [r.status_code for r in seen] == [200, 200, 200, 403]
    assert seen[3].json()["message"].startswith("API rate limit exceeded")
    assert seen[0].headers["x-ratelimit-resource"] == "core"
    assert int(seen[0].headers["x-ratelimit-reset"]) >= int(time.time()) - 1
    assert free.json()["resources"]["core"]["remaining"] == 0
    assert int(refilled.headers["x-ratelimit-remaining"]) == 2
    assert sim.stats()["primary_limited"] == 1 and sim.stats()["budget_spent"] == 4


def test_matching_etag_gives_a_free_304(make: Make) -> None:
    sim = make()
    with client(sim) as http:
        first = http.get(f"/repos/{ORG}/hundred-repo/pulls?state=all")
        etag = first.headers["etag"]
        again = http.get(
            f"/repos/{ORG}/hundred-repo/pulls?state=all", headers={"If-None-Match": etag}
        )
    assert etag.startswith('W/"') and "last-modified" not in first.headers  # as on GitHub
    assert again.status_code == 304 and again.content == b""
    assert again.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]
    assert sim.stats()["not_modified"] == 1 and sim.stats()["budget_spent"] == 1


def assert_secondary(response: httpx.Response, retry_after: int = 60) -> None:
    assert response.status_code == 403
    assert "secondary rate limit" in response.json()["message"]
    assert response.headers["retry-after"] == str(retry_after)
    assert not any(name.startswith("x-ratelimit") for name in response.headers)


def test_requests_per_minute_to_one_endpoint_are_limited(make: Make) -> None:
    sim = make(max_per_minute=3, secondary_retry_after=7)
    rid = repo_id(sim, "hundred-repo")
    with client(sim) as http:
        ok = [http.get(f"/repos/{ORG}/hundred-repo/pulls"), http.get(f"/repositories/{rid}/pulls")]
        ok.append(http.get(f"/repos/{ORG}/archived-repo/pulls"))
        limited = http.get(f"/repos/{ORG}/fork-repo/pulls")
        other_endpoint = http.get(f"/repos/{ORG}/fork-repo/issues")
    assert all(r.status_code == 200 for r in ok) and other_endpoint.status_code == 200
    assert_secondary(limited, 7)
    assert sim.stats()["secondary_limited"] == 1 and sim.stats()["budget_spent"] == 4


def test_too_many_concurrent_requests_are_limited(make: Make) -> None:
    sim = make(max_in_flight=2, server_time_ms=150)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=sim.url, headers=AUTH) as http:
            calls = [http.get(f"/repos/{ORG}/hundred-repo/issues") for _ in range(6)]
            return await asyncio.gather(*calls)

    responses = asyncio.run(burst())
    limited = [r for r in responses if r.status_code == 403]
    assert len(limited) >= 3 and sum(r.status_code == 200 for r in responses) >= 2
    assert_secondary(limited[0])
    assert sim.stats()["max_in_flight"] >= 3


def test_server_time_per_minute_is_limited(make: Make) -> None:
    sim = make(server_time_ms=20, max_server_seconds_per_minute=0.05)
    with client(sim) as http:
        responses = [http.get(f"/repos/{ORG}/hundred-repo/pulls?page={n}") for n in (1, 2, 3)]
    assert [r.status_code for r in responses[:2]] == [200, 200]
    assert_secondary(responses[2])


# -- faults -----------------------------------------------------------------------------------


def test_parse_faults_accepts_the_documented_spec_and_rejects_the_rest() -> None:
    assert parse_faults("502:0.03, reset:0.01") == {"502": 0.03, "reset": 0.01}
    assert parse_faults("") == {}
    for bad, words in (("teapot:0.1", "unknown fault"), ("502:1.5", "outside"), ("502", "rate")):
        with pytest.raises(ValueError, match=words):
            parse_faults(bad)
    with pytest.raises(ValueError, match="exceed 1"):
        parse_faults("502:0.7,503:0.7")
    with pytest.raises(ValueError):
        SimulatorConfig(faults={"nope": 0.1})


def test_fault_draws_are_seeded() -> None:
    def draws(seed: int) -> list[str | None]:
        injector = FaultInjector({"502": 0.2, "reset": 0.1}, seed)
        return [injector.draw() for _ in range(500)]

    assert draws(1) == draws(1) != draws(2)
    assert 60 < draws(1).count("502") < 140 and 20 < draws(1).count("reset") < 80


@pytest.mark.parametrize("name", FAULT_NAMES)
def test_each_fault_is_observable(make: Make, name: str) -> None:
    sim = make(faults={name: 1.0}, timeout_hold_s=0.3)
    url = f"/repos/{ORG}/hundred-repo/pulls?state=all"
    with client(sim, timeout=5) as http:
        assert http.get(f"/repos/{ORG}/hundred-repo").status_code == 200, "only list routes"
        assert http.get("/__simulator/stats").status_code == 200
        if name == "reset":
            with pytest.raises(httpx.TransportError):
                http.get(url)
            assert sim.stats()["faults"] == {"reset": 1}
            return
        started = time.monotonic()
        response = http.get(url)
        elapsed = time.monotonic() - started
    check_fault(name, response, elapsed)
    assert sim.stats()["faults"] == {name: 1}


def check_fault(name: str, response: httpx.Response, elapsed: float) -> None:
    if name in ("500", "502", "503", "504"):
        assert response.status_code == int(name)
        assert response.json() == {"error": "Server Error"} if name == "502" else True
    elif name == "timeout":
        assert response.status_code == 200 and elapsed >= 0.3
    elif name == "malformed":
        assert response.status_code == 200 and response.content
        with pytest.raises(json.JSONDecodeError):
            response.json()
    elif name == "html":
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
    elif name == "empty":
        assert response.status_code == 200 and response.content == b""
    else:
        assert_secondary(response)


# -- ground truth, stats, serving -------------------------------------------------------------


def harvest(sim: Simulator, year: int) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """A minimal correct harvester: discovery, then every list walked and window-filtered."""
    low, high = f"{year}-01-01T00:00:00Z", f"{year + 1}-01-01T00:00:00Z"
    got: dict[str, dict[str, list[dict[str, Any]]]] = {"pulls": {}, "issues": {}}
    with client(sim) as http:
        for repo in walk(http, f"/orgs/{ORG}/repos?per_page=100"):
            if repo["fork"]:
                continue
            for endpoint in ("pulls", "issues"):
                url = f"/repos/{ORG}/{repo['name']}/{endpoint}?state=all&per_page=100"
                response = http.get(url)
                if response.status_code == 404:
                    break
                if response.status_code == 301:
                    url = response.headers["location"]
                objects = walk(http, url)
                got[endpoint][repo["name"]] = [
                    obj
                    for obj in objects
                    if obj["created_at"] < high
                    and obj["updated_at"] >= low
                    and "pull_request" not in obj
                ]
    return got


def test_ground_truth_equals_a_manual_filter_of_walked_pages(shared: Simulator) -> None:
    truth = shared.ground_truth(year=2025)
    got = harvest(shared, 2025)
    assert set(truth["pulls"]) == set(got["pulls"]) and "vanished-repo" not in truth["pulls"]
    for endpoint in ("pulls", "issues"):
        for name, objects in truth[endpoint].items():
            assert sorted(objects, key=lambda o: o["id"]) == sorted(
                got[endpoint][name], key=lambda o: o["id"]
            ), f"{endpoint} of {name}"
    assert truth["pulls"]["renamed-repo"], "the renamed repo counts under its old name"


def test_ground_truth_filters_repos_like_gh_collect(shared: Simulator) -> None:
    every = shared.ground_truth(2025, include_forks=True)
    assert "fork-repo" in every["pulls"]
    assert "fork-repo" not in shared.ground_truth(2025)["pulls"]
    assert "archived-repo" not in shared.ground_truth(2025, include_archived=False)["issues"]
    only = shared.ground_truth(2025, endpoints=("issues",), repos=["hundred-repo", "fork-repo"])
    assert list(only) == ["issues"] and list(only["issues"]) == ["hundred-repo"]
    by_full_name = shared.ground_truth(2025, repos=[f"{ORG}/Hundred-Repo"])
    assert list(by_full_name["pulls"]) == ["hundred-repo"], "allowlist ignores case, as GitHub"
    excluded = shared.ground_truth(2025, exclude=["*-repo"])
    assert not any(name.endswith("-repo") for name in excluded["pulls"])
    assert sum(map(len, shared.ground_truth(2024)["pulls"].values())) > 0


def test_stats_count_what_the_client_did(make: Make) -> None:
    sim = make()
    with client(sim) as http:
        http.get(f"/orgs/{ORG}/repos")
        http.get(f"/repos/{ORG}/hundred-repo/pulls")
        http.get(f"/repos/{ORG}/nope/pulls")
        served = http.get("/__simulator/stats").json()
    stats = sim.stats()
    assert stats == served
    assert stats["requests"] == 3 and stats["budget_spent"] == 3
    assert stats["by_route"] == {"/orgs/{org}/repos": 1, "/repos/{owner}/{repo}/pulls": 2}
    assert stats["by_status"] == {"200": 2, "404": 1}
    sim.reset_stats()
    assert sim.stats()["requests"] == 0 and sim.stats()["by_route"] == {}


def test_fifty_concurrent_clients_with_latency_are_served_in_parallel(make: Make) -> None:
    sim = make(latency_ms=200)

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(base_url=sim.url, headers=AUTH, limits=limits) as http:
            path = f"/repos/{ORG}/two-hundred-repo/issues?state=all&per_page=100"
            return await asyncio.gather(*(http.get(f"{path}&page={n % 4 + 1}") for n in range(60)))

    started = time.monotonic()
    responses = asyncio.run(burst())
    assert all(r.status_code == 200 for r in responses)
    assert time.monotonic() - started < 2.0, "latency must not block the event loop"
    assert sim.stats()["max_in_flight"] >= 50


def test_serve_binds_loopback_only_and_announces_its_url() -> None:
    async def scenario() -> tuple[int, str]:
        announced: list[str] = []
        task = asyncio.create_task(
            serve(SimulatorConfig(repos=3), port=0, announce=announced.append)
        )
        while not announced:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(headers=AUTH) as http:
            status = (await http.get(f"{announced[0]}/orgs/{ORG}")).status_code
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return status, announced[0]

    status, url = asyncio.run(scenario())
    assert status == 200 and url.startswith("http://127.0.0.1:")
    with pytest.raises(ValueError, match="only binds to"):
        asyncio.run(serve(SimulatorConfig(repos=3), host="0.0.0.0", port=0))


def test_now_bounds_every_timestamp() -> None:
    model = OrgModel.generate(2, 8, ORG, now="2025-03-01T00:00:00Z")
    latest = max(i.updated_at for repo in model.repos for i in repo.issues)
    assert latest < "2025-03-01T00:00:00Z"
    assert datetime.fromisoformat(latest).tzinfo == UTC


# -- mutation: what cron-refresh tests drive ---------------------------------------------------


def pages(http: httpx.Client, url: str) -> list[httpx.Response]:
    """Every page of a created-asc walk, as responses (bytes and ETags compared later)."""
    out: list[httpx.Response] = []
    next_url: str | None = url
    while next_url:
        response = http.get(next_url)
        assert response.status_code == 200, response.text
        out.append(response)
        next_url = response.links.get("next", {}).get("url")
    return out


OLDEST_FIRST = "state=all&sort=created&direction=asc&per_page=100"


def test_mutate_edits_chosen_objects_and_moves_now_forward(make: Make) -> None:
    sim = make(repos=12)
    before = {item.updated_at for repo in sim.model.repos for item in repo.issues}
    start = sim.now
    changed = sim.mutate(update=30, seed=3)
    edited = {i for ids_ in changed["pulls"].values() for i in ids_} | {
        i for ids_ in changed["issues"].values() for i in ids_
    }
    assert set(changed) == {"pulls", "issues"} and len(edited) == 30
    assert sim.now > start and sim.now > max(before)
    assert changed == make(repos=12).mutate(update=30, seed=3), "choice is seeded"
    assert "vanished-repo" not in changed["pulls"] and "fork-repo" not in changed["issues"]
    truth = sim.ground_truth(2025)
    stamps = []
    for endpoint, by_repo in changed.items():
        for name, ids_ in by_repo.items():
            repo = next(r for r in sim.model.repos if r.name == name)
            items = {i.id: i for i in (repo.pulls if endpoint == "pulls" else repo.issues)}
            in_window = {obj["id"] for obj in truth[endpoint].get(name, [])}
            for object_id in ids_:
                obj = items[object_id].to_json(sim.url)
                assert "(edit " in obj["title"] and obj["updated_at"] == items[object_id].updated_at
                assert (object_id in in_window) is (obj["created_at"] < "2026"), "truth is latest"
                stamps.append(obj["updated_at"])
    assert len(set(stamps)) == len(stamps) and start < min(stamps) <= max(stamps) <= sim.now


def test_mutate_keeps_unchanged_pages_byte_identical(make: Make) -> None:
    sim = make(repos=10, sizes=(700,))
    name = busiest(sim)
    url = f"/repos/{ORG}/{name}/pulls?{OLDEST_FIRST}"
    with client(sim) as http:
        old = pages(http, url)
        for seed in range(100):  # edits of real issues leave the pulls list as it was
            changed = sim.mutate(update=1, repos=[name], seed=seed)
            if changed["pulls"]:
                break
        new = pages(http, url)
        revalidated = [
            http.get(str(p.url), headers={"If-None-Match": p.headers["etag"]}) for p in old
        ]
    assert len(old) == len(new) > 2
    (pull_id,) = changed["pulls"][name]
    touched = [pull_id in ids(page.json()) for page in new]
    for page_old, page_new, hit, again in zip(old, new, touched, revalidated, strict=True):
        same = page_old.content == page_new.content
        assert same is (not hit)
        assert (page_old.headers["etag"] == page_new.headers["etag"]) is same
        assert again.status_code == (200 if hit else 304)


def test_a_pull_edit_reaches_its_issue_twin(make: Make) -> None:
    sim = make(repos=8)
    changed = sim.mutate(update=40, repos=["hundred-repo"], seed=1)
    edited = set(changed["pulls"]["hundred-repo"])
    with client(sim) as http:
        pulls = walk(http, f"/repos/{ORG}/hundred-repo/pulls?{OLDEST_FIRST}")
        issues = walk(http, f"/repos/{ORG}/hundred-repo/issues?{OLDEST_FIRST}")
    twins = {i["number"]: i for i in issues if "pull_request" in i}
    for pull in (p for p in pulls if p["id"] in edited):
        twin = twins[pull["number"]]
        assert (twin["title"], twin["updated_at"]) == (pull["title"], pull["updated_at"])
    assert sorted(changed["issues"].get("hundred-repo", [])) == sorted(
        i["id"] for i in issues if "(edit " in i["title"] and "pull_request" not in i
    )


def test_mutate_rejects_unknown_repos_and_impossible_counts(make: Make) -> None:
    sim = make(repos=8)
    with pytest.raises(ValueError, match="no repo named"):
        sim.mutate(update=1, repos=["nope"])
    with pytest.raises(ValueError, match="cannot edit"):
        sim.mutate(update=10_000, repos=["empty-repo"])
    start = sim.now
    assert sim.mutate() == {"pulls": {}, "issues": {}} and sim.now > start


def test_add_repo_is_listed_in_order_and_harvestable(make: Make) -> None:
    sim = make(repos=8)
    sim.add_repo("aaa-new", items=60, seed=2)
    with pytest.raises(ValueError, match="already exists"):
        sim.add_repo("AAA-new")
    with client(sim) as http:
        listed = walk(http, f"/orgs/{ORG}/repos?sort=full_name&direction=asc&per_page=3")
        org = http.get(f"/orgs/{ORG}").json()
        issues = walk(http, f"/repos/{ORG}/aaa-new/issues?{OLDEST_FIRST}")
    names = [repo["full_name"] for repo in listed]
    assert names == sorted(names, key=str.lower) and names[0] == f"{ORG}/aaa-new"
    assert org["public_repos"] == 9 and len(issues) == 60
    truth = sim.ground_truth(2025)
    assert truth["pulls"]["aaa-new"] and truth["issues"]["aaa-new"]
    assert len({i.id for r in sim.model.repos for i in r.issues}) == sum(
        len(r.issues) for r in sim.model.repos
    ), "ids stay unique"


def test_mutations_are_safe_while_requests_are_served(make: Make) -> None:
    sim = make(repos=10, latency_ms=2)
    failures: list[str] = []

    async def hammer() -> None:
        async with httpx.AsyncClient(base_url=sim.url, headers=AUTH) as http:
            for _ in range(15):
                for name in ("hundred-repo", "two-hundred-repo"):
                    page = await http.get(f"/repos/{ORG}/{name}/issues?{OLDEST_FIRST}")
                    if page.status_code != 200 or not isinstance(page.json(), list):
                        failures.append(f"{page.status_code} {page.text[:80]}")

    async def both() -> None:
        runner = asyncio.gather(*(hammer() for _ in range(4)))
        for seed in range(20):
            await asyncio.to_thread(sim.mutate, update=3, seed=seed)
            await asyncio.to_thread(sim.add_repo, f"added-{seed}", items=5, seed=seed)
        await runner

    asyncio.run(both())
    assert not failures
    assert len(sim.model.repos) == 30 and sim.model.edits == 60


# -- per-item details (for peers that fan out per item) and benchmark orgs ---------------------


def test_detail_routes_agree_with_the_list_objects(shared: Simulator) -> None:
    repo = next(r for r in shared.model.repos if r.name == "hundred-repo")
    pull = repo.pulls[3]
    issue = repo.issues[pull.number - 1]
    base = f"/repos/{ORG}/hundred-repo"
    with client(shared) as http:
        full = http.get(f"{base}/pulls/{pull.number}").json()
        commits = http.get(f"{base}/pulls/{pull.number}/commits").json()
        comments = http.get(f"/api/v3{base}/issues/{pull.number}/comments").json()
        reactions = http.get(f"{base}/issues/{pull.number}/reactions").json()
        reviewers = http.get(f"{base}/pulls/{pull.number}/requested_reviewers").json()
        reviews = http.get(f"{base}/pulls/{pull.number}/reviews")
        user = http.get(f"/users/{full['user']['login']}") if full["user"] else None
        missing = http.get(f"{base}/pulls/99999")
        nobody = http.get("/users/no-such-user")
    listed = pull.to_json(shared.url)
    assert {k: full[k] for k in listed} == listed, "the full pull extends the list object"
    assert full["commits"] == len(commits) > 0 and full["comments"] == issue.comments
    assert len(comments) == issue.comments
    assert all(c["url"].startswith(f"{shared.url}/api/v3/") for c in comments)
    assert len(reactions) == issue.to_json(shared.url)["reactions"]["total_count"]
    assert reviewers == {"users": listed["requested_reviewers"], "teams": []}
    assert reviews.status_code == 200 and isinstance(reviews.json(), list)
    assert user is None or (user.status_code == 200 and "followers" in user.json())
    assert missing.status_code == nobody.status_code == 404


def test_a_user_s_orgs_list_the_org_as_its_simple_object(shared: Simulator) -> None:
    generator = shared.model.generator
    assert generator is not None
    with client(shared) as http:
        org = http.get(f"/orgs/{ORG}").json()
        lists = [http.get(f"/users/{login}/orgs").json() for login in generator.known_logins()]
    members = [orgs for orgs in lists if orgs]
    assert members, "some users belong to the org"
    for (simple,) in members:
        assert {key: org[key] for key in simple} == simple  # the full object extends it
        assert "public_repos" not in simple


def test_benchmark_orgs_can_leave_out_the_scenario_repos() -> None:
    model = OrgModel.generate(0, 10, scenarios=False, sizes=(5,))
    assert all(repo.role is None for repo in model.repos) and len(model.repos) == 10
    assert all(len(repo.issues) == 5 for repo in model.repos)


# -- list routes a test adds (Simulator.add_list_route) ----------------------------------------

TOYS = f"/repos/{ORG}/{{name}}/toys"


def toys(count: int, tag: str = "") -> list[dict[str, Any]]:
    return [{"id": i, "name": f"toy {i}{tag}"} for i in range(1, count + 1)]


def test_an_added_list_pages_like_the_built_in_lists(make: Make) -> None:
    sim = make()
    asked: list[str] = []

    def items(full_name: str) -> list[dict[str, Any]]:
        asked.append(full_name)
        return toys(250)

    sim.add_list_route("/repos/{owner}/{repo}/toys", items)
    rid = repo_id(sim, "hundred-repo")
    with client(sim) as http:
        first = http.get(f"/repos/{ORG}/hundred-repo/toys?per_page=100&sort=created&state=all")
        walked = walk(http, f"/repos/{ORG}/hundred-repo/toys", {"per_page": 100})
        default = http.get(f"/repos/{ORG}/hundred-repo/toys")
        capped = http.get(f"/repositories/{rid}/toys?per_page=500")
    base = f"{sim.url}/repositories/{rid}/toys?per_page=100&sort=created&state=all"
    assert first.status_code == 200 and ids(first.json()) == list(range(1, 101))
    assert first.headers["link"] == f'<{base}&page=2>; rel="next", <{base}&page=3>; rel="last"'
    assert ids(walked) == list(range(1, 251)), "every item once, in the order given"
    assert len(default.json()) == 30 and len(capped.json()) == 100
    assert set(asked) == {f"{ORG}/hundred-repo"} and len(asked) == 6, "asked on every request"
    by_route = sim.stats()["by_route"]
    assert by_route["/repos/{owner}/{repo}/toys"] == 3
    assert by_route["/repositories/{repo_id}/toys"] == 3


def test_an_added_list_answers_304_until_its_items_change(make: Make) -> None:
    sim = make()
    current = {"items": toys(5)}
    sim.add_list_route("/repos/{owner}/{repo}/toys", lambda _name: current["items"])
    url = TOYS.format(name="hundred-repo")
    with client(sim) as http:
        first = http.get(url)
        etag = first.headers["etag"]
        same = http.get(url, headers={"If-None-Match": etag})
        current["items"] = toys(5, tag=" (edited)")
        changed = http.get(url, headers={"If-None-Match": etag})
    assert etag.startswith('W/"') and same.status_code == 304 and same.content == b""
    assert same.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()[0]["name"] == "toy 1 (edited)"
    assert sim.stats()["not_modified"] == 1 and sim.stats()["budget_spent"] == 2


def test_an_added_list_resolves_repos_and_charges_the_budget() -> None:
    sim = Simulator(SimulatorConfig(seed=1, repos=8, org=ORG, rate_limit=10))
    sim.add_list_route("/repos/{owner}/{repo}/toys", lambda _name: toys(3))  # before start()
    with sim, client(sim) as http:
        counted = [http.get(TOYS.format(name="hundred-repo")) for _ in range(3)]
        unknown = http.get(TOYS.format(name="nope"))
        vanished = http.get(TOYS.format(name="vanished-repo"))
        moved = http.get(TOYS.format(name="renamed-repo"), follow_redirects=False)
        followed = http.get(moved.headers["location"])
        url = sim.url
    assert [int(r.headers["x-ratelimit-remaining"]) for r in counted] == [9, 8, 7]
    assert unknown.status_code == vanished.status_code == 404
    assert unknown.json()["message"] == "Not Found" and unknown.json()["status"] == "404"
    renamed = repo_id(sim, "renamed-repo")
    assert moved.status_code == 301
    assert moved.headers["location"] == f"{url}/repositories/{renamed}/toys"
    assert followed.status_code == 200 and len(followed.json()) == 3


def test_an_added_list_is_secondary_limited_and_faulty_like_the_others(make: Make) -> None:
    sim = make(max_per_minute=2, faults={"500": 1.0})
    sim.add_list_route("/repos/{owner}/{repo}/issues/{number}/toys", lambda _name: toys(3))
    with client(sim) as http:
        answers = [http.get(f"/repos/{ORG}/hundred-repo/issues/1/toys") for _ in range(3)]
    assert [r.status_code for r in answers[:2]] == [500, 500]
    assert_secondary(answers[2])
    with pytest.raises(ValueError, match="already routed"):
        sim.add_list_route("/repos/{owner}/{repo}/issues/{number}/toys", lambda _name: [])
    for bad in ("/orgs/{org}/toys", "/repos/{owner}/{repo}", "/repos/{owner}/{repo}/pulls"):
        with pytest.raises(ValueError):
            sim.add_list_route(bad, lambda _name: [])
