"""The simulator's heavy pages: a repo's list requests above a bound per page are cut short
with GitHub's 502 or 504 after a hold; lighter requests and other repos are served as ever."""

from __future__ import annotations

import time

import httpx
import pytest
from click.testing import CliRunner

from gh_collect.cli import cli
from gh_collect.simulator import SCENARIO_REPOS, Simulator, SimulatorConfig
from gh_collect.simulator.faults import SlowPages, parse_slow_pages

ORG = "sample-org"
SLOW = SCENARIO_REPOS["hundred"]
HEADERS = {"Authorization": "token slow-test", "User-Agent": "test"}


def test_slow_pages_cut_only_the_named_repo_above_its_bound() -> None:
    config = SimulatorConfig(seed=1, repos=8, org=ORG, slow_pages={SLOW: 40}, slow_page_hold_s=0.2)
    with Simulator(config) as sim, httpx.Client(base_url=sim.url, headers=HEADERS) as http:
        repo_id = next(repo.id for repo in sim.model.repos if repo.name == SLOW)
        started = time.monotonic()
        cut = [http.get(f"/repos/{ORG}/{SLOW}/pulls", params={"per_page": 50, "state": "all"})]
        held = time.monotonic() - started
        cut.append(http.get(f"/repositories/{repo_id}/issues", params={"per_page": 100}))
        light = http.get(f"/repos/{ORG}/{SLOW}/pulls", params={"per_page": 40, "state": "all"})
        other = http.get(f"/repos/{ORG}/{SCENARIO_REPOS['two_hundred']}/pulls?per_page=100")
        default = http.get(f"/repos/{ORG}/{SLOW}/issues")  # GitHub's default of 30
        stats = sim.stats()
    assert [response.status_code for response in cut] == [502, 504]
    assert cut[0].json() == {"error": "Server Error"}
    assert "couldn't respond to your request in time" in cut[1].json()["message"]
    assert held >= 0.2
    assert light.status_code == 200 and len(light.json()) == 40
    assert other.status_code == 200 and default.status_code == 200
    assert stats["faults"] == {"502": 1, "504": 1}


def test_slow_pages_alternate_502_and_504() -> None:
    slow = SlowPages({"big": 25})
    assert [slow.cut("big", 26), slow.cut("big", 25), slow.cut("big", 100)] == ["502", None, "504"]
    assert slow.cut("small", 100) is None
    assert not SlowPages({})


def test_parse_slow_pages_and_bad_bounds() -> None:
    assert parse_slow_pages("big-repo:40, other:10,") == {"big-repo": 40, "other": 10}
    assert parse_slow_pages("") == {}
    for bad in ("big-repo", "big-repo:x", ":40", "big-repo:0"):
        with pytest.raises(ValueError, match="slow page"):
            parse_slow_pages(bad)
    with pytest.raises(ValueError, match="slow page bound"):
        SimulatorConfig(slow_pages={"big": 0})


def test_simulate_refuses_a_bad_slow_pages_spec_in_one_line() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--slow-pages", "big-repo"])
    assert result.exit_code == 2
    assert "--slow-pages" in result.output and "REPO:PER_PAGE" in result.output
    assert "Traceback" not in result.output
