"""The simulator's repo-wide activity lists (issue 14) over real HTTP on 127.0.0.1: issue
comments, review comments, default-branch commits and releases, filtered, ordered and paged
as GitHub does, consistent with the per-item routes and the items' counts, churned, and
counted in ground truth; and drawing them moves no byte of the pulls, issues or repos."""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from gh_collect.simulator import OrgModel, Simulator, SimulatorConfig
from gh_collect.simulator.model import KINDS, RepoData

ORG = "sample-org"
AUTH = {"Authorization": "token activity-test"}
START, END = "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"
PATHS = {
    "issue_comments": "issues/comments",
    "review_comments": "pulls/comments",
    "commits": "commits",
    "releases": "releases",
}
CLIENT_QUERIES: dict[str, dict[str, str | int]] = {
    "issue_comments": {"sort": "created", "direction": "asc", "per_page": 100, "since": START},
    "review_comments": {"sort": "created", "direction": "asc", "per_page": 100, "since": START},
    "commits": {"per_page": 100, "since": START, "until": END},
    "releases": {"per_page": 100},
}
Make = Callable[..., Simulator]


def client(sim: Simulator) -> httpx.Client:
    return httpx.Client(base_url=sim.url, headers=AUTH, follow_redirects=True, timeout=10)


def walk(http: httpx.Client, url: str, params: Any = None) -> list[dict[str, Any]]:
    """Follow rel="next" verbatim; every page must be a 200."""
    objects: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        response = http.get(next_url, params=params)
        params = None
        assert response.status_code == 200, response.text
        objects += response.json()
        next_url = response.links.get("next", {}).get("url")
    return objects


def repo_named(sim: Simulator, name: str) -> RepoData:
    return next(repo for repo in sim.model.repos if repo.name == name)


def number_of(url: str) -> int:
    return int(url.rsplit("/", 1)[1])


# -- generation: nothing else moves, the same every time --------------------------------------


def digest(model: OrgModel) -> str:
    """A digest of every repo, pull, issue and org byte, and of a repo added later. The
    expected values below were computed by the simulator before activity lists existed
    (commit 239da93): a changed byte would also break tests/fixtures/format1."""
    model.add_repo("joined-later", items=30, seed=2)
    h = hashlib.sha256()
    for repo in model.repos:
        h.update(b"".join(repo.listing))
        h.update(b"".join(repo.current))
        for item in (*repo.pulls, *repo.issues):
            h.update(item.to_bytes("http://h"))
    h.update(b"".join(model.org_object))
    return h.hexdigest()[:16]


def draw_every_activity_object(model: OrgModel) -> int:
    return sum(
        len(entry.to_bytes("http://h"))
        for repo in reversed(model.repos)
        if repo.activity is not None
        for kind in KINDS
        for entry in repo.activity.entries(kind)
    )


@pytest.mark.parametrize(
    ("arguments", "before_activity"),
    [
        ({"seed": 0, "n_repos": 12}, "b7daf227228b7e20"),
        (  # the org tests/fixtures/format1 was harvested from
            {"seed": 11, "n_repos": 3, "sizes": (900, 30), "scenarios": False,
             "history_years": 3.0, "touched_share": 0.1},
            "b5d6e53c77f9e7ea",
        ),
    ],
)  # fmt: skip
def test_drawing_activity_moves_no_byte_of_pulls_issues_or_repos(
    arguments: dict[str, Any], before_activity: str
) -> None:
    model = OrgModel.generate(org=ORG, **arguments)
    assert draw_every_activity_object(model) > 0, "activity drawn and rendered first"
    assert digest(model) == before_activity


def test_same_seed_gives_the_same_activity_whatever_order_it_is_drawn_in() -> None:
    first, second, other = (OrgModel.generate(seed, 9, ORG) for seed in (4, 4, 5))
    second.mutate(update=20, seed=3)  # edits before drawing: activity comes from generation
    for repo in reversed(second.repos):  # drawn in another order, some rendered early
        assert repo.activity is not None
        for entry in repo.activity.entries("releases")[-1:]:
            entry.to_bytes("http://h")

    def dump(model: OrgModel) -> list[bytes]:
        return [
            entry.to_bytes("http://h")
            for repo in model.repos
            if repo.activity is not None
            for kind in KINDS
            for entry in repo.activity.entries(kind)
        ]

    assert dump(first) == dump(second)
    assert dump(first) != dump(other)


def test_volumes_follow_each_repos_activity() -> None:
    model = OrgModel.generate(3, 4, ORG, sizes=(0, 40, 400, 4000), scenarios=False)
    by_size = sorted(model.repos, key=lambda repo: len(repo.issues))
    activities = [repo.activity for repo in by_size]
    assert all(activity is not None for activity in activities)
    in_year = [
        sum(START <= c.created_at < END for c in a.entries("commits")) for a in activities if a
    ]
    assert in_year == sorted(in_year) and in_year[-1] > 10 * max(1, in_year[1])
    for repo in by_size:
        assert repo.activity is not None
        comments = repo.activity.entries("issue_comments")
        assert len(comments) == sum(item.comments for item in repo.issues)
        assert repo.activity.entries("commits"), "every repo but an empty one has a first commit"
    releases = [len(repo.activity.entries("releases")) for repo in by_size if repo.activity]
    assert any(releases) and max(releases) < 300, "a handful a year, over eleven years"


# -- issue and review comments ---------------------------------------------------------------


def test_issue_comments_are_the_items_comments_and_the_per_item_route_agrees(
    shared: Simulator,
) -> None:
    repo = repo_named(shared, "two-hundred-repo")
    with client(shared) as http:
        served = walk(http, f"/repos/{ORG}/{repo.name}/issues/comments?per_page=100")
        sample = [item for item in repo.issues if item.comments][:12]
        per_item = {
            item.number: http.get(f"/repos/{ORG}/{repo.name}/issues/{item.number}/comments").json()
            for item in sample
        }
    on: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for comment in served:
        on[number_of(comment["issue_url"])].append(comment)
    for item in repo.issues:
        mine = on.get(item.number, [])
        assert len(mine) == item.comments == item.to_json(shared.url)["comments"]
        assert all(item.created_at <= c["created_at"] <= c["updated_at"] for c in mine)
        assert all(c["updated_at"] <= item.updated_at for c in mine)
        page = "pull" if item.is_pull else "issues"
        assert all(f"/{page}/{item.number}#issuecomment-" in c["html_url"] for c in mine)
    for number, comments in per_item.items():
        assert comments == on[number], "the per-item route is the same objects"
    ids = [c["id"] for c in served]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), "ascending id by default"
    created = [c["created_at"] for c in served]
    assert created == sorted(created), "ids grow with creation"
    touched = [
        i for i in repo.issues if i.comments and on[i.number][-1]["created_at"] == i.updated_at
    ]
    assert len(touched) > len([i for i in repo.issues if i.comments]) / 3, "a touch is a comment"


def test_review_comments_are_the_pulls_and_the_per_pull_routes_agree(shared: Simulator) -> None:
    repo = repo_named(shared, "hundred-repo")
    with client(shared) as http:
        served = walk(http, f"/repos/{ORG}/{repo.name}/pulls/comments?per_page=100")
        on: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for comment in served:
            on[number_of(comment["pull_request_url"])].append(comment)
        sample = [pull for pull in repo.pulls if on.get(pull.number)][:8] + list(repo.pulls[:4])
        for pull in sample:
            base = f"/repos/{ORG}/{repo.name}/pulls/{pull.number}"
            assert http.get(f"{base}/comments").json() == on.get(pull.number, [])
            assert http.get(base).json()["review_comments"] == len(on.get(pull.number, []))
    by_id = {c["id"]: c for c in served}
    pulls = {pull.number: pull for pull in repo.pulls}
    replies = [c for c in served if "in_reply_to_id" in c]
    assert replies and len(on) < len(repo.pulls), "threads; not every pull has comments"
    for reply in replies:
        parent = by_id[reply["in_reply_to_id"]]
        assert parent["pull_request_url"] == reply["pull_request_url"]
        assert parent["id"] < reply["id"] and parent["created_at"] <= reply["created_at"]
    for number, comments in on.items():
        pull = pulls[number]
        assert all(pull.created_at <= c["created_at"] <= c["updated_at"] for c in comments)
        assert all(c["updated_at"] <= pull.updated_at for c in comments)


@pytest.mark.parametrize("endpoint", ["issue_comments", "review_comments"])
def test_comments_sort_direction_and_since_as_github_documents(
    shared: Simulator, endpoint: str
) -> None:
    repo = repo_named(shared, "two-hundred-repo")
    url = f"/repos/{ORG}/{repo.name}/{PATHS[endpoint]}"
    assert repo.activity is not None
    every = repo.activity.entries(endpoint)
    pivot = sorted(entry.updated_at for entry in every)[len(every) // 2]
    with client(shared) as http:

        def ids(**params: Any) -> list[int]:
            return [c["id"] for c in walk(http, url, {"per_page": 100, **params})]

        default, ignored = ids(), ids(direction="desc")
        created_desc, created_asc = ids(sort="created"), ids(sort="created", direction="asc")
        updated = walk(http, url, {"sort": "updated", "direction": "asc", "per_page": 100})
        since = walk(http, url, {"since": pivot, "per_page": 100})
        bad = [
            http.get(url, params=params)
            for params in ({"sort": "popularity"}, {"direction": "up"}, {"since": "yesterday"})
        ]
        alias = ids(sort="created_at") if endpoint == "review_comments" else created_desc
    assert default == sorted(default) and default == ignored, "direction needs sort"
    assert created_asc == default and created_desc == default[::-1] == alias
    keys = [(c["updated_at"], c["id"]) for c in updated]
    assert keys == sorted(keys) and len(keys) == len(every)
    assert {c["id"] for c in since} == {e.id for e in every if e.updated_at >= pivot}
    assert any(c["updated_at"] == pivot for c in since), "since is inclusive"
    assert [response.status_code for response in bad] == [422, 422, 422]
    assert bad[0].json()["message"] == "Validation Failed"


# -- commits -----------------------------------------------------------------------------------


def test_commits_are_newest_first_and_since_and_until_are_both_inclusive(
    shared: Simulator,
) -> None:
    repo = repo_named(shared, "two-hundred-repo")
    assert repo.activity is not None
    url = f"/repos/{ORG}/{repo.name}/commits"
    with client(shared) as http:
        every = walk(http, url, {"per_page": 100})
        year = walk(http, url, CLIENT_QUERIES["commits"])
        dates = Counter(c["commit"]["committer"]["date"] for c in every)
        tied = max(dates, key=lambda date: dates[date])
        instant = walk(http, url, {"since": tied, "until": tied})
    model = [entry.key for entry in reversed(repo.activity.entries("commits"))]
    assert [c["sha"] for c in every] == model, "newest first; ties in history order"
    stamps = [c["commit"]["committer"]["date"] for c in every]
    assert stamps == sorted(stamps, reverse=True) and dates[tied] > 1
    year_dates = [c["commit"]["committer"]["date"] for c in year]
    assert year_dates[0] == END and year_dates[-1] == START, "bounds included"
    assert all(START <= date <= END for date in year_dates)
    assert [c["sha"] for c in instant] == [
        c["sha"] for c in every if c["commit"]["committer"]["date"] == tied
    ]


def test_commits_form_a_history_with_merges_rebases_and_unlinked_authors(
    shared: Simulator,
) -> None:
    with client(shared) as http:
        commits = walk(http, f"/repos/{ORG}/two-hundred-repo/commits?per_page=100")
    place = {c["sha"]: i for i, c in enumerate(commits)}
    assert commits[-1]["parents"] == [] and commits[-1]["commit"]["message"] == "Initial commit"
    for i, commit in enumerate(commits[:-1]):
        assert 1 <= len(commit["parents"]) <= 2
        assert all(place[parent["sha"]] > i for parent in commit["parents"]), "parents older"
    merges = [c for c in commits if len(c["parents"]) == 2]
    assert merges and all(c["commit"]["message"].startswith("Merge pull request #") for c in merges)
    assert all(c["committer"]["login"] == "web-flow" for c in merges)
    assert any(c["author"] is None for c in commits), "emails linked to no GitHub user"
    rebased = [
        c for c in commits if c["commit"]["author"]["date"] < c["commit"]["committer"]["date"]
    ]
    assert rebased and all(
        c["commit"]["author"]["date"] <= c["commit"]["committer"]["date"] for c in commits
    )


def test_commits_filter_by_sha_path_author_and_committer(shared: Simulator) -> None:
    url = f"/repos/{ORG}/hundred-repo/commits"
    with client(shared) as http:
        every = walk(http, url, {"per_page": 100})
        middle = every[len(every) // 2]
        from_middle = walk(http, url, {"sha": middle["sha"][:12], "per_page": 100})
        on_main = walk(http, url, {"sha": "main", "per_page": 100})
        unknown = http.get(url, params={"sha": "0" * 40})
        readme = walk(http, url, {"path": "README.md", "per_page": 100})
        src = walk(http, url, {"path": "src/", "per_page": 100})
        nowhere = walk(http, url, {"path": "no/such/file"})
        login = next(c["author"]["login"] for c in every if c["author"])
        authored = walk(http, url, {"author": login, "per_page": 100})
        web = walk(http, url, {"committer": "noreply@github.com", "per_page": 100})
    assert from_middle == every[len(every) // 2 :] and on_main == every
    assert unknown.status_code == 404 and "No commit found" in unknown.json()["message"]
    assert 0 < len(readme) < len(every) and 0 < len(src) < len(every) and nowhere == []
    assert authored and all(c["author"]["login"] == login for c in authored)
    assert web and all(c["committer"]["login"] == "web-flow" for c in web)


def test_empty_renamed_and_vanished_repos_answer_as_for_pulls(shared: Simulator) -> None:
    with httpx.Client(base_url=shared.url, headers=AUTH) as http:
        empty = http.get(f"/repos/{ORG}/empty-repo/commits", params=CLIENT_QUERIES["commits"])
        empty_lists = [http.get(f"/repos/{ORG}/empty-repo/{PATHS[k]}") for k in KINDS[:2]]
        empty_lists.append(http.get(f"/repos/{ORG}/empty-repo/releases"))
        moved = {
            k: http.get(f"/repos/{ORG}/renamed-repo/{path}?per_page=3") for k, path in PATHS.items()
        }
        gone = [http.get(f"/repos/{ORG}/vanished-repo/{path}") for path in PATHS.values()]
    assert empty.status_code == 409 and empty.json()["message"] == "Git Repository is empty."
    assert "etag" not in empty.headers
    assert [(r.status_code, r.json()) for r in empty_lists] == [(200, [])] * 3
    renamed = repo_named(shared, "renamed-repo")
    for endpoint, response in moved.items():
        assert response.status_code == 301
        where = f"{shared.url}/repositories/{renamed.id}/{PATHS[endpoint]}?per_page=3"
        assert response.headers["location"] == where
    assert all(response.status_code == 404 for response in gone)


# -- releases ----------------------------------------------------------------------------------


def test_releases_are_newest_first_never_drafts_and_some_repos_have_none(
    shared: Simulator,
) -> None:
    served: dict[str, list[dict[str, Any]]] = {}
    with client(shared) as http:
        for repo in shared.model.repos:
            if not repo.vanished:
                served[repo.name] = walk(http, f"/repos/{ORG}/{repo.current_name}/releases")
    assert any(not releases for releases in served.values()), "some repos have none"
    for releases in served.values():
        keys = [(r["created_at"], r["id"]) for r in releases]
        assert keys == sorted(keys, reverse=True)
        assert not any(r["draft"] for r in releases)
        assert len({r["tag_name"] for r in releases}) == len(releases)
        for release in releases:
            assert release["created_at"] <= release["published_at"]
            assert release.get("updated_at", release["published_at"]) >= release["published_at"]
    spread = {r["created_at"][:4] for releases in served.values() for r in releases}
    assert len(spread) >= 8, "releases spread over the history"


# -- serving machinery -------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", list(PATHS))
def test_activity_lists_page_link_and_answer_304_like_the_other_lists(
    make: Make, endpoint: str
) -> None:
    sim = make()
    repo = repo_named(sim, "two-hundred-repo")
    url = f"/repos/{ORG}/{repo.name}/{PATHS[endpoint]}"
    with client(sim) as http:
        whole = walk(http, url, {"per_page": 100})
        small = http.get(url, params={"per_page": 7})
        walked = walk(http, url, {"per_page": 7})
        capped = http.get(url, params={"per_page": 500})
        again = http.get(
            url, params={"per_page": 7}, headers={"If-None-Match": small.headers["etag"]}
        )
        alone = http.get(url, params={"per_page": 100, "page": 10_000})
    assert walked == whole and len(whole) > 7
    links = small.links
    assert set(links) == {"next", "last"}
    assert (
        links["next"]["url"]
        == f"{sim.url}/repositories/{repo.id}/{PATHS[endpoint]}?per_page=7&page=2"
    )
    assert len(capped.json()) == min(100, len(whole))
    assert small.headers["etag"].startswith('W/"') and "last-modified" not in small.headers
    assert again.status_code == 304 and again.content == b""
    assert alone.json() == [] and "link" in alone.headers
    stats = sim.stats()
    assert stats["not_modified"] == 1
    assert stats["by_route"][f"/repos/{{owner}}/{{repo}}/{PATHS[endpoint]}"] >= 6
    assert stats["by_route"][f"/repositories/{{repo_id}}/{PATHS[endpoint]}"] >= 1


def test_faults_limits_and_slow_pages_reach_the_activity_lists(make: Make) -> None:
    faulty = make(faults={"502": 1.0})
    limited = make(max_per_minute=2, secondary_retry_after=9)
    slow = make(slow_pages={"hundred-repo": 40}, slow_page_hold_s=0.05)
    urls = [f"/repos/{ORG}/hundred-repo/{path}?per_page=50" for path in PATHS.values()]
    with client(faulty) as http:
        assert [http.get(url).status_code for url in urls] == [502] * 4
    with client(limited) as http:
        codes = [http.get(urls[2]).status_code for _ in range(3)]
        assert codes == [200, 200, 403] and http.get(urls[3]).status_code == 200
    with client(slow) as http:
        assert [http.get(url).status_code for url in urls] == [502, 504, 502, 504]
    assert faulty.stats()["faults"] == {"502": 4}


def test_a_repo_with_issues_turned_off_has_no_issue_comments(make: Make) -> None:
    sim = make(issues_disabled=("hundred-repo",))
    with client(sim) as http:
        turned_off = http.get(f"/repos/{ORG}/hundred-repo/issues/comments")
        reviews = http.get(f"/repos/{ORG}/hundred-repo/pulls/comments")
    truth = sim.ground_truth(2025, endpoints=("issue_comments", "review_comments"))
    assert turned_off.status_code == 410 and reviews.status_code == 200
    assert (
        truth["issue_comments"]["hundred-repo"] == [] and truth["review_comments"]["hundred-repo"]
    )


def test_repos_built_by_hand_serve_empty_activity_lists() -> None:
    """Tests build models by hand (test_bench's ``tiny_model``): without activity, the four
    lists are empty and so is their ground truth."""
    model = OrgModel.generate(1, 8, ORG)
    bare = tuple(replace(repo, activity=None) for repo in model.repos)
    hand = OrgModel(model.org, model.org_id, model.clock, bare, model.org_object)
    with Simulator(SimulatorConfig(org=ORG), hand) as sim, client(sim) as http:
        lists = [http.get(f"/repos/{ORG}/hundred-repo/{path}").json() for path in PATHS.values()]
        truth = sim.ground_truth(2025, endpoints=KINDS, repos=["hundred-repo"])
    assert lists == [[]] * 4
    assert truth == {endpoint: {"hundred-repo": []} for endpoint in KINDS}


# -- ground truth and churn --------------------------------------------------------------------


def harvest(sim: Simulator, year: int = 2025) -> dict[str, dict[str, list[Any]]]:
    """A minimal correct harvester of the four lists of ``year``, as SPEC's table reads
    them (the client's queries) and keeps them."""
    start, end = f"{year}-01-01T00:00:00Z", f"{year + 1}-01-01T00:00:00Z"
    got: dict[str, dict[str, list[Any]]] = {endpoint: {} for endpoint in KINDS}
    with client(sim) as http:
        for repo in walk(http, f"/orgs/{ORG}/repos?per_page=100"):
            if repo["fork"] or http.get(f"/repos/{ORG}/{repo['name']}").status_code == 404:
                continue
            for endpoint in KINDS:
                url = f"/repos/{ORG}/{repo['name']}/{PATHS[endpoint]}"
                query = {
                    key: {START: start, END: end}.get(str(value), value)
                    for key, value in CLIENT_QUERIES[endpoint].items()
                }
                if http.get(url, params=query).status_code == 409:
                    got[endpoint][repo["name"]] = []
                    continue
                objects = walk(http, url, query)
                got[endpoint][repo["name"]] = [o for o in objects if kept(endpoint, o, start, end)]
    return got


def kept(endpoint: str, obj: dict[str, Any], start: str, end: str) -> bool:
    if endpoint == "commits":
        return start <= obj["commit"]["committer"]["date"] < end
    if endpoint == "releases":
        return start <= obj["created_at"] < end
    return obj["created_at"] < end and obj["updated_at"] >= start


def ident(obj: dict[str, Any]) -> Any:
    return obj.get("id", obj.get("sha"))


def same(truth: dict[str, dict[str, list[Any]]], got: dict[str, dict[str, list[Any]]]) -> None:
    for endpoint, by_repo in truth.items():
        assert set(by_repo) == set(got[endpoint]), endpoint
        for name, objects in by_repo.items():
            mine = {ident(o): o for o in got[endpoint][name]}
            assert len(mine) == len(got[endpoint][name]), f"{endpoint} {name}: duplicates"
            assert {ident(o): o for o in objects} == mine, f"{endpoint} {name}"


def test_ground_truth_is_what_a_correct_harvest_of_the_year_keeps(shared: Simulator) -> None:
    truth = shared.ground_truth(2025, endpoints=KINDS)
    same(truth, harvest(shared))
    assert "fork-repo" not in truth["commits"] and "vanished-repo" not in truth["commits"]
    assert "renamed-repo" in truth["releases"], "under its discovered name"
    assert all(truth[k]["two-hundred-repo"] for k in KINDS if k != "releases")
    commits = truth["commits"]["two-hundred-repo"]
    dates = [c["commit"]["committer"]["date"] for c in commits]
    assert dates == sorted(dates, reverse=True) and dates[-1] == START and END not in dates
    with client(shared) as http:
        body = http.get("/__simulator/truth", params={"endpoints": "commits,releases"}).json()
        default = http.get("/__simulator/truth").json()
    assert body["truth"] == {k: truth[k] for k in ("commits", "releases")}
    assert set(default["truth"]) == {"pulls", "issues"}, "the default stays pulls and issues"
    with pytest.raises(ValueError, match="unknown endpoint"):
        shared.ground_truth(2025, endpoints=("reactions",))


def test_churn_adds_and_edits_activity_and_the_items_counts_follow() -> None:
    model = OrgModel.generate(1, 8, ORG)
    before = model.ground_truth("http://h", 2026, KINDS)
    started = model.now
    for k in range(400):
        model.churn(random.Random(k))
    after = model.ground_truth("http://h", 2026, KINDS)

    def fresh(endpoint: str) -> list[dict[str, Any]]:
        old = {ident(o) for objects in before[endpoint].values() for o in objects}
        return [o for objs in after[endpoint].values() for o in objs if ident(o) not in old]

    entered = fresh("issue_comments")
    made = [c for c in entered if c["created_at"] >= started]
    edited = [c for c in entered if c["created_at"] < started]
    assert len(made) > 100 and all(c["created_at"] == c["updated_at"] for c in made)
    assert edited and all("_Edited" in c["body"] and c["updated_at"] >= started for c in edited)
    for repo in model.repos:
        assert repo.activity is not None
        comments = repo.activity.entries("issue_comments")
        ids = [entry.id for entry in comments]
        assert ids == sorted(ids), "a new comment's id follows every other in its repo"
    assert fresh("review_comments") and fresh("commits"), "pulls get reviews, branches pushes"
    assert all(c["commit"]["committer"]["date"] >= started for c in fresh("commits"))
    for repo in model.repos:
        assert repo.activity is not None
        counts = Counter(e.number for e in repo.activity.entries("issue_comments"))
        for item in repo.issues:
            assert counts[item.number] == item.comments == item.to_json("http://h")["comments"]


def test_churn_on_a_running_simulator_is_served_and_in_ground_truth(make: Make) -> None:
    """Served, harvested and ground truth agree after churn, and its stamps come from the
    clock the ``Date`` headers come from."""
    sim = make(seed=2)
    with client(sim) as http:
        first = iso_date(http.get(f"/orgs/{ORG}"))
        assert http.post("/__simulator/churn", params={"ms": 1}).status_code == 200
        for _ in range(500):
            if http.get("/__simulator/churn").json()["edits"] >= 120:
                break
        http.post("/__simulator/churn", params={"ms": 0})
        year = {"year": 2026, "endpoints": ",".join(KINDS)}
        truth = http.get("/__simulator/truth", params=year).json()["truth"]
        last = iso_date(http.get(f"/orgs/{ORG}"))
    assert sim.churn_edits >= 120
    same(truth, harvest(sim, 2026))
    stamps = [c["created_at"] for objs in truth["issue_comments"].values() for c in objs]
    churned = [stamp for stamp in stamps if stamp >= first]
    assert churned and max(churned) <= last


def iso_date(response: httpx.Response) -> str:
    """A response's ``Date`` as GitHub's ISO stamp, to compare with objects' stamps."""
    return parsedate_to_datetime(response.headers["date"]).strftime("%Y-%m-%dT%H:%M:%SZ")
