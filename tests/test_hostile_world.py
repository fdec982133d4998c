"""The hostile server's own world (tests/hostile.py) behaves like GitHub where it means to.

The scenarios judge gh-collect against ``World.truth``; these tests judge the world: the
routes of the six REST endpoints, GitHub's object shapes (the fields the published REST
description requires), ``since``/``until`` served inclusively, the orders GitHub lists in,
and the year that ``truth`` keeps by each endpoint's rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gh_collect import endpoints
from tests.hostile import END, ENDPOINTS, START, HostileServer, World, iso

# The ``required`` fields of each list's items in GitHub's REST description
# (@octokit/openapi 23.0.2, generated/api.github.com.deref.json; MIT).
REQUIRED = {
    "issue_comments": {
        "id", "node_id", "html_url", "issue_url", "user", "url", "created_at", "updated_at",
    },
    "review_comments": {
        "url", "id", "node_id", "pull_request_review_id", "diff_hunk", "path", "commit_id",
        "original_commit_id", "user", "body", "created_at", "updated_at", "html_url",
        "pull_request_url", "author_association", "_links",
    },
    "commits": {
        "url", "sha", "node_id", "html_url", "comments_url", "commit", "author", "committer",
        "parents",
    },
    "releases": {
        "assets_url", "upload_url", "tarball_url", "zipball_url", "created_at", "published_at",
        "draft", "id", "node_id", "author", "html_url", "name", "prerelease", "tag_name",
        "target_commitish", "assets", "url",
    },
}  # fmt: skip
PATHS = {
    "pulls": "pulls?state=all",
    "issues": "issues?state=all",
    "issue_comments": "issues/comments?sort=created&direction=asc",
    "review_comments": "pulls/comments?sort=created&direction=asc",
    "commits": "commits",
    "releases": "releases",
}
SHA = re.compile(r"[0-9a-f]{40}")


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as running:
        yield running


def fresh_world(server: HostileServer, org: str) -> World:
    return server.world(f"world-{org}")


def get(server: HostileServer, world: World, repo: str, what: str, **params: str) -> Any:
    url = f"{server.url}/repos/{world.org}/{repo}/{what}"
    answer = httpx.get(url, params={"per_page": "100", **params}, timeout=10)
    answer.raise_for_status()
    return answer.json()


def test_the_world_serves_every_declared_rest_endpoint() -> None:
    rest = [name for name in endpoints.names() if endpoints.get(name).transport == "rest"]
    assert list(ENDPOINTS) == rest  # a new REST endpoint needs its list in the hostile world


def test_every_endpoint_is_served_in_github_shapes(server: HostileServer) -> None:
    world = fresh_world(server, "shapes")
    repo = world.repo("r")
    for endpoint in ENDPOINTS:
        items = get(server, world, "r", PATHS[endpoint])
        assert len(items) == len(repo.items(endpoint)) > 0, endpoint
        for item in items:
            assert REQUIRED.get(endpoint, set()) <= set(item), endpoint
            assert item in repo.items(endpoint), endpoint
    for commit in repo.commits:
        assert SHA.fullmatch(commit["sha"]) and commit["commit"]["committer"]["date"]
        assert commit["html_url"] == f"https://github.com/{repo.full_name}/commit/{commit['sha']}"


def test_comments_point_at_their_issue_or_pull(server: HostileServer) -> None:
    world = fresh_world(server, "links")
    repo = world.repo("r", pulls=2, issues=2, issue_comments=4, review_comments=3)
    pull_numbers = {p["number"] for p in repo.pulls}
    pages = []
    for comment in repo.issue_comments:
        number = int(comment["issue_url"].rsplit("/", 1)[1])
        assert (
            comment["issue_url"] == f"https://api.github.com/repos/{repo.full_name}/issues/{number}"
        )
        page = "pull" if number in pull_numbers else "issues"
        pages.append(page)
        prefix = f"https://github.com/{repo.full_name}/{page}/{number}#issuecomment-"
        assert comment["html_url"] == f"{prefix}{comment['id']}"
    assert set(pages) == {"pull", "issues"}  # both kinds of conversation
    for comment in repo.review_comments:
        number = int(comment["pull_request_url"].rsplit("/", 1)[1])
        assert number in pull_numbers
        assert comment["pull_request_url"].endswith(f"/repos/{repo.full_name}/pulls/{number}")


def test_commits_since_and_until_are_both_inclusive_newest_first(server: HostileServer) -> None:
    world = fresh_world(server, "until")
    repo = world.repo("r", commits=0)
    second = timedelta(seconds=1)
    for when in (START - second, START, START + second, END - second, END, END + second):
        world.add_commit(repo, at=when)
    served = get(server, world, "r", "commits", since=iso(START), until=iso(END))
    dates = [c["commit"]["committer"]["date"] for c in served]
    assert dates == [iso(END), iso(END - second), iso(START + second), iso(START)]
    assert len(world.truth("commits")) == 3  # the year is [start, end): the end is not in it


def test_since_narrows_comments_and_they_come_oldest_first(server: HostileServer) -> None:
    world = fresh_world(server, "since")
    repo = world.repo("r", issue_comments=3)
    old = "2024-05-01T00:00:00Z"
    world.add_issue_comment(repo, created_at=old, updated_at=old)
    served = get(server, world, "r", PATHS["issue_comments"], since=iso(START))
    assert [c["id"] for c in served] == [c["id"] for c in repo.issue_comments[:3]]
    everything = get(server, world, "r", PATHS["issue_comments"])
    assert everything[0]["created_at"] == old


def test_releases_come_newest_created_first(server: HostileServer) -> None:
    world = fresh_world(server, "releases")
    repo = world.repo("r", releases=3)
    served = [r["created_at"] for r in get(server, world, "r", "releases")]
    assert served == sorted((r["created_at"] for r in repo.releases), reverse=True)


def test_an_empty_repository_answers_409_on_commits_only(server: HostileServer) -> None:
    world = fresh_world(server, "empty")
    world.repo("r", commits=0).empty_git = True
    answer = httpx.get(f"{server.url}/repos/{world.org}/r/commits", timeout=10)
    assert answer.status_code == 409
    assert answer.json()["message"] == "Git Repository is empty."
    assert get(server, world, "r", "releases") != []
    assert world.answered("commits") == {409: 1}


def test_paths_that_are_no_list_are_not_served(server: HostileServer) -> None:
    world = fresh_world(server, "other")
    world.repo("r")
    for tail in ("pulls/1", "issues/comments/5", "pulls/comments/x/y", "commits/abc"):
        answer = httpx.get(f"{server.url}/repos/{world.org}/r/{tail}", timeout=10)
        assert answer.status_code == 404, tail
    assert {e.route for e in world.exchanges} == {"other"}


def test_truth_is_keyed_by_each_endpoints_key_and_keeps_the_year(server: HostileServer) -> None:
    world = fresh_world(server, "truth")
    repo = world.repo("r")
    for endpoint in ENDPOINTS:
        key = endpoints.get(endpoint).key
        assert world.truth(endpoint) == {item[key]: 1 for item in repo.items(endpoint)}
    world.add_release(repo, created_at=iso(END))
    undated = world.add_release(repo)
    del undated["created_at"]
    world.add_pull(repo, created_at="2024-01-01T00:00:00Z", updated_at="2024-12-31T23:59:59Z")
    nameless = world.add_commit(repo)
    del nameless["sha"]
    assert undated["id"] in world.truth("releases") and len(world.truth("releases")) == 3
    assert len(world.truth("pulls")) == len(repo.pulls) - 1
    assert world.truth("commits")[None] == 1
