"""Newest-first walks in passes, and the sweep of a resumed run: nothing updated meanwhile lost.

Against the simulator in-process: the org is edited while a walk reads it (items jump to the
top of ``sort=updated&direction=desc`` behind the walk, old items enter the year), and the
dataset must still hold every item of the year, each version once in raw.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from gh_collect.durable.envelope import read_envelopes
from gh_collect.errors import RateLimitExit
from gh_collect.harvest import passes
from gh_collect.harvest.run import RunOptions, collect

from .conftest import ORG, TOKEN, dataset
from .test_run import make_config


def _start(start_simulator: Any) -> Any:
    """Two repos of 1,500 pulls and issues over three years and a half: several pages of
    pulls in the year, more before it."""
    return start_simulator(
        repos=2, sizes=(1500,), scenarios=False, history_years=2.0, touched_share=0.05
    )


class EditAfter(httpx.AsyncBaseTransport):
    """Passes requests on; after the ``nth`` answer for the pulls of ``repo`` (either URL
    form), edits ``count`` of its entries, as if people worked while the walk reads."""

    def __init__(self, sim: Any, repo: Any, nth: int, count: int) -> None:
        self.sim, self.repo, self.nth, self.count = sim, repo, nth, count
        self.forms = (f"/repos/{ORG}/{repo.name}/pulls", f"/repositories/{repo.id}/pulls")
        self.seen = 0
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path in self.forms:
            self.seen += 1
            if self.seen == self.nth:
                self.sim.mutate(update=self.count, repos=[self.repo.name], seed=3)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _versions(path: Path) -> Counter[tuple[int, str]]:
    """(id, updated_at) of every raw record of an endpoint: each version once."""
    counts: Counter[tuple[int, str]] = Counter()
    for file in path.glob("*.jsonl"):
        for line in read_envelopes(file):
            counts[(line["data"]["id"], line["data"]["updated_at"])] += 1
    return counts


def test_items_that_jump_behind_the_walk_are_caught_up(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = _start(start_simulator)
    config = make_config(tmp_path, sim.url, endpoints=["pulls"])
    editor = EditAfter(sim, sim.model.repos[0], nth=1, count=60)
    result = collect(config, TOKEN, transport=editor)
    assert result.exit_code == 0
    assert editor.seen >= 3  # a main pass of several pages, then a catch-up
    truth = sim.ground_truth(year=2025, endpoints=("pulls",))
    got = {i for (i, _v) in _versions(dataset(tmp_path).raw_dir / "endpoint=pulls")}
    expected = {o["id"] for objs in truth["pulls"].values() for o in objs}
    assert got == expected
    assert max(_versions(dataset(tmp_path).raw_dir / "endpoint=pulls").values()) == 1


def test_without_the_catch_up_the_same_walk_loses_items(
    tmp_path: Path, start_simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: with catch-up passes disabled, the jumped items are lost."""
    monkeypatch.setattr(passes, "MAX_CATCH_UPS", 0)
    sim = _start(start_simulator)
    config = make_config(tmp_path, sim.url, endpoints=["pulls"])
    assert (
        collect(config, TOKEN, transport=EditAfter(sim, sim.model.repos[0], 1, 60)).exit_code == 0
    )
    truth = sim.ground_truth(year=2025, endpoints=("pulls",))
    got = {i for (i, _v) in _versions(dataset(tmp_path).raw_dir / "endpoint=pulls")}
    expected = {o["id"] for objs in truth["pulls"].values() for o in objs}
    assert expected - got


def test_pulls_cost_the_years_pages_not_the_historys(tmp_path: Path, start_simulator: Any) -> None:
    """Newest-updated first stops at the first pull updated before the year: a repo's walk
    reads up to the page holding it. A walk of several pages then asks its first page again
    with its ETag: nothing moved, so a 304, which GitHub does not charge."""
    sim = _start(start_simulator)
    config = make_config(tmp_path, sim.url, endpoints=["pulls"])
    assert collect(config, TOKEN).exit_code == 0
    start, pages = "2025-01-01T00:00:00Z", []
    for repo in sim.model.repos:
        newest_first = sorted(repo.pulls, key=lambda p: (p.updated_at, p.id), reverse=True)
        below = next((n for n, p in enumerate(newest_first) if p.updated_at < start), None)
        pages.append(below // 100 + 1 if below is not None else max(1, -(-len(repo.pulls) // 100)))
    stats = sim.stats()
    pulls = sum(n for route, n in stats["by_route"].items() if route.endswith("/pulls"))
    catch_ups = sum(1 for n in pages if n > 1)
    assert pulls == sum(pages) + catch_ups
    assert stats["by_status"].get("304", 0) == catch_ups > 0
    end = "2026-01-01T00:00:00Z"  # oldest-created first reads every pull created before it
    oldest_first = sum(sum(p.created_at < end for p in r.pulls) // 100 + 1 for r in sim.model.repos)
    assert sum(pages) < oldest_first


def test_a_resumed_run_sweeps_what_entered_the_year_while_it_was_down(
    tmp_path: Path, start_simulator: Any
) -> None:
    """Run 1 stops (its quota) after some units completed; while no run reads, old items of
    those repos are touched into the year; the resumed run re-reads the completed units
    from what they last read, so the finished dataset holds them."""
    sim = _start(start_simulator)
    config = make_config(tmp_path, sim.url)
    with pytest.raises(RateLimitExit):
        collect(config, TOKEN, RunOptions(max_requests=8))
    sim.mutate(update=80, seed=11)  # old items included: some enter the year
    final = collect(config, TOKEN)
    assert final.exit_code == 0
    truth = sim.ground_truth(year=2025)
    for endpoint in ("pulls", "issues"):
        versions = _versions(dataset(tmp_path).raw_dir / f"endpoint={endpoint}")
        assert max(versions.values()) == 1  # each version once
        latest = {i: v for (i, v) in sorted(versions, key=lambda iv: iv[1])}
        expected = {o["id"]: o["updated_at"] for objs in truth[endpoint].values() for o in objs}
        assert latest == expected  # every item of the year, in its version of now
    assert final.manifest["counts"]["pulls"]["records"] > 0
