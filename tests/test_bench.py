"""scripts/bench.py: the quick bench runs from a fresh clone and gh_collect stays within 10% of
the fewest requests any REST client needs (a benchmark, not a timing test: no wall-time
assertion); and that minimum, on a model small enough to count by hand."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from gh_collect.simulator import OrgModel, Simulator, SimulatorConfig
from gh_collect.simulator.model import Item, RepoData

ROOT = Path(__file__).resolve().parent.parent


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts" / "bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_quick_bench_keeps_gh_collect_within_a_tenth_of_the_true_minimum(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--json", str(out),
         "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| gh_collect harvest |" in done.stdout and "| limit |" in done.stdout
    assert (tmp_path / "bench.md").read_text() == done.stdout.rstrip("\n") + "\n"
    report = json.loads(out.read_text())["default"]
    gh, limit = report["gh_collect"], report["limit"]
    assert gh["exit_code"] == 0 and gh["truth"] == "yes", gh["note"]
    assert limit["requests"] == report["minimum_requests"] and limit["note"] == "", limit["note"]
    assert gh["requests"] <= 1.10 * report["minimum_requests"], (
        f"{gh['requests']} requests, minimum {report['minimum_requests']}"
    )
    assert gh["secondary"] == limit["secondary"] == 0
    assert gh["wall_s"] > 0 and limit["wall_s"] > 0 and report["wall_vs_limit"] > 0


# -- the true minimum, by hand ------------------------------------------------------------------

START, END = "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"
OLD, RECENT, LATE = "2019-05-01T00:00:00Z", "2025-03-01T00:00:00Z", "2026-02-01T00:00:00Z"


def item(ident: int, number: int, created: str, updated: str, is_pull: bool) -> Item:
    obj = {"id": ident, "number": number, "created_at": created, "updated_at": updated}
    encoded = (json.dumps(obj).encode(),)
    return Item(ident, number, "closed", created, updated, 0, is_pull, encoded=encoded)


def repo_with(model: OrgModel, index: int, name: str, pulls: list[Item], issues: list[Item],
              fork: bool = False) -> RepoData:  # fmt: skip
    return replace(
        model.repos[index], name=name, current_name=name, fork=fork, role=None,
        pulls=tuple(pulls), issues=tuple(issues), _orders={},
    )  # fmt: skip


def tiny_model() -> OrgModel:
    """Four repos, pages countable by hand (per_page=100):

    * ``alpha``: 250 pulls, 130 updated in the year (the rest in 2019): newest-updated first,
      page 2 holds the first older one: 2 pulls pages. Its issues list is their 250 twins,
      130 of them since the year's start, all created before its end: 2 issues pages.
    * ``bravo``: nothing: 1 + 1 pages.
    * ``charlie``: 30 pulls, all recent: 1 page. 310 issues updated in the year, the 206th
      (position 205) onward created after it: the third page holds it: 3 pages of 4.
    * ``delta``: a fork, not harvested by a default config.

    Plus 1 listing page: 11 requests."""
    model = OrgModel.generate(0, 4, "bench-org", sizes=(1,), scenarios=False)
    alpha = [item(1000 + n, n, OLD, RECENT if n < 130 else OLD, True) for n in range(250)]
    alpha_twins = [item(p.id + 5000, p.number, p.created_at, p.updated_at, True) for p in alpha]
    charlie = [item(3000 + n, n, RECENT, RECENT, True) for n in range(30)]
    created = [RECENT if n < 205 else LATE for n in range(310)]
    charlie_issues = [item(4000 + n, n, created[n], LATE, False) for n in range(310)]
    repos = (
        repo_with(model, 0, "alpha", alpha, alpha_twins),
        repo_with(model, 1, "bravo", [], []),
        repo_with(model, 2, "charlie", charlie, charlie_issues),
        repo_with(model, 3, "delta", charlie, charlie_issues, fork=True),
    )
    return OrgModel(model.org, model.org_id, model.clock, repos, model.org_object)


def ideal_client(sim: Simulator, first: str, done: Any) -> list[str]:
    """Follow ``Link: next`` verbatim from ``first`` until ``done(page)`` or the list ends."""
    urls: list[str] = []
    url: str | None = first
    with httpx.Client(base_url=sim.url, headers={"Authorization": "token t"}) as http:
        while url is not None:
            urls.append(url.removeprefix(sim.url))
            response = http.get(url)
            assert response.status_code == 200, response.text
            if done(response.json()):
                break
            url = response.links.get("next", {}).get("url")
    return urls


def test_minimal_pages_counts_the_fewest_requests_and_the_simulator_serves_those_urls() -> None:
    bench = load_bench()
    model = tiny_model()
    pages = bench.minimal_pages(model, 2025)
    assert len(pages) == 11
    pulls = [p.url for p in pages if p.endpoint == bench.PULLS_ROUTE]
    issues = [p.url for p in pages if p.endpoint == bench.ISSUES_ROUTE]
    assert len(pulls) == 2 + 1 + 1 and len(issues) == 2 + 1 + 3
    assert not any("delta" in url for url in pulls + issues)
    config = SimulatorConfig(org="bench-org", cursor_threshold=bench.CURSOR_THRESHOLD)
    with Simulator(config, model) as sim:
        walked = ideal_client(sim, pages[0].url, lambda _page: False)
        for name in ("alpha", "bravo", "charlie"):
            first = f"/repos/bench-org/{name}/pulls?state=all&sort=updated&direction=desc"
            walked += ideal_client(
                sim,
                f"{first}&per_page=100",
                lambda page: any(p["updated_at"] < START for p in page),
            )
        for name in ("alpha", "bravo", "charlie"):
            first = f"/repos/bench-org/{name}/issues?state=all&sort=created&direction=asc"
            walked += ideal_client(
                sim,
                f"{first}&per_page=100&since={START}",
                lambda page: any(i["created_at"] >= END for i in page),
            )
    assert walked == [page.url for page in pages], "the limit fetches what a client follows"
    assert "after=" in issues[-1] and "page=2" in pulls[1]


# -- the true minimum for the activity lists (issue 14) -----------------------------------------

ACTIVITY = ("issue_comments", "review_comments", "commits", "releases")


def activity_walks(sim: Simulator, names: list[str]) -> list[str]:
    """What any REST client must request for the four lists of 2025, following ``Link``:
    comments since the year's start, created ascending, until a page holds one created
    after the year; commits of the year, every page; releases newest first until a page
    ends before the year."""
    start = f"since={START}"
    stops: dict[str, tuple[str, Any]] = {
        "issue_comments": (
            f"issues/comments?sort=created&direction=asc&per_page=100&{start}",
            lambda page: any(c["created_at"] >= END for c in page),
        ),
        "review_comments": (
            f"pulls/comments?sort=created&direction=asc&per_page=100&{start}",
            lambda page: any(c["created_at"] >= END for c in page),
        ),
        "commits": (f"commits?per_page=100&{start}&until={END}", lambda _page: False),
        "releases": ("releases?per_page=100", lambda page: page[-1]["created_at"] < START),
    }
    walked: list[str] = []
    for endpoint in ACTIVITY:
        path, done = stops[endpoint]
        for name in names:
            walked += ideal_client(sim, f"/repos/bench-org/{name}/{path}", done)
    return walked


def test_minimal_pages_counts_the_activity_lists_and_the_simulator_serves_those_urls() -> None:
    bench = load_bench()
    model = OrgModel.generate(
        2, 4, "bench-org", sizes=(0, 60, 700, 3000), scenarios=False, touched_share=0.2
    )
    default = bench.minimal_pages(model, 2025)
    pages = bench.minimal_pages(model, 2025, endpoints=("pulls", "issues", *ACTIVITY))
    assert pages[: len(default)] == default, "pulls and issues as before"
    added = pages[len(default) :]
    routes = [f"/repos/{{owner}}/{{repo}}/{path}" for path in bench.ACTIVITY_PATHS.values()]
    assert {page.endpoint for page in added} == set(routes)
    assert len(added) > 4 * len(model.repos) and any("&page=3" in p.url for p in added)
    names = sorted(repo.name for repo in model.repos)
    config = SimulatorConfig(org="bench-org", cursor_threshold=bench.CURSOR_THRESHOLD)
    with Simulator(config, model) as sim:
        assert activity_walks(sim, names) == [page.url for page in added]
    only = bench.minimal_pages(model, 2025, endpoints=("commits",))
    assert only[1:] == [page for page in added if page.endpoint == routes[2]]


def test_minimal_pages_asks_an_empty_repos_commits_once() -> None:
    bench = load_bench()
    model = OrgModel.generate(0, 8, "bench-org")
    empty = next(repo for repo in model.repos if repo.role == "empty")
    urls = bench._activity_pages(empty, "commits", 2025)
    assert urls == [f"/repos/bench-org/{empty.name}/commits?per_page=100&since={START}&until={END}"]
    with (
        Simulator(SimulatorConfig(org="bench-org"), model) as sim,
        httpx.Client(base_url=sim.url, headers={"Authorization": "token t"}) as http,
    ):
        assert http.get(urls[0]).status_code == 409
