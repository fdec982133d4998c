"""What an audit against GitHub's docs found (github-api.md, "Repos and errors"), each end to
end against the simulator: 409 is "empty" only where an endpoint declares it; a user target
listed with the user's own token includes private repos; issues turned off are zero issues,
never asked for when the listing says so; a SAML-protected org is one line naming the org
and the URL; limits answered with 403 and with 429 are waited out, or exit 75."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gh_collect import RunOptions, collect, estimate_sync, load_config
from gh_collect.curated.columns import FETCHED_AT, ID, REPO, TIMES
from gh_collect.durable.checkpoint import read_checkpoint
from gh_collect.durable.envelope import read_envelopes
from gh_collect.endpoints import Endpoint, register, unregister
from gh_collect.simulator import Simulator
from gh_collect.simulator.server.owners import ISSUES_DISABLED_MESSAGE, PRIVATE_REPO

from .conftest import ORG, TOKEN, assert_exactly_truth, dataset, run_cli, write_config

pytestmark = pytest.mark.e2e

EMPTIES = Endpoint(
    name="empties",
    path="/repos/{full_name}/empties",
    columns=(ID, REPO, *TIMES, FETCHED_AT),
    empty_statuses=frozenset({409}),  # as a commits endpoint declares "Git Repository is empty"
)


def small(start_simulator: Any, **options: Any) -> Simulator:
    sim: Simulator = start_simulator(scenarios=False, repos=3, **options)
    return sim


def first_repo(sim: Simulator) -> str:
    return sorted(repo.name for repo in sim.model.repos)[0]


def unit(tmp_path: Path, name: str, endpoint: str) -> Any:
    return read_checkpoint(dataset(tmp_path).checkpoint).repos[f"{ORG}/{name}"].units[endpoint]


def listed_names(tmp_path: Path) -> set[str]:
    return {line["data"]["name"] for line in read_envelopes(dataset(tmp_path).repos_file)}


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]


# -- 409 ------------------------------------------------------------------------------------


@pytest.fixture
def empties() -> Iterator[Endpoint]:
    register(EMPTIES)
    yield EMPTIES
    unregister(EMPTIES.name)


def test_409_is_empty_only_where_the_endpoint_declares_it(
    tmp_path: Path, start_simulator: Any, empties: Endpoint
) -> None:
    sim = small(start_simulator)
    stamp = "2025-03-01T00:00:00Z"
    sim.add_list_route(
        "/repos/{owner}/{repo}/empties",
        lambda full: [{"id": abs(hash(full)) % 10**9, "created_at": stamp, "updated_at": stamp}],
    )
    empty = first_repo(sim)
    sim.fail(f"/{empty}/empties", status=409)
    sim.fail(f"/{empty}/pulls", status=409)
    config = load_config(write_config(tmp_path, sim.url, endpoints=["pulls", "empties"]))
    result = collect(config, TOKEN, RunOptions(export=False))

    assert result.exit_code == 1
    assert [(f["repo"], f["endpoint"]) for f in result.failures] == [(f"{ORG}/{empty}", "pulls")]
    error = result.failures[0]["error"]
    assert "409" in error and "conflict" in error and "\n" not in error
    declared = unit(tmp_path, empty, "empties")
    assert declared.status == "complete" and declared.records_collected == 0
    assert result.records["empties"] == 2  # the other two repos' one record each


# -- a user target ----------------------------------------------------------------------------


def test_a_user_target_with_its_own_token_lists_private_repos(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = small(start_simulator, owner_type="user", owner_token=TOKEN)
    proc = run_cli("collect", "-c", str(write_config(tmp_path, sim.url)), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert PRIVATE_REPO in listed_names(tmp_path)
    assert_exactly_truth(dataset(tmp_path), sim)
    routes = sim.stats()["by_route"]
    assert routes["/orgs/{org}/repos"] == 1 and routes["/user"] == 1
    assert routes["/user/repos"] >= 1 and "/users/{user}/repos" not in routes


def test_a_user_target_with_another_token_lists_public_repos(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = small(start_simulator, owner_type="user", owner_token="the-owners-own-token")
    proc = run_cli("collect", "-c", str(write_config(tmp_path, sim.url)), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert PRIVATE_REPO not in listed_names(tmp_path)
    assert_exactly_truth(dataset(tmp_path), sim, exclude=[PRIVATE_REPO])
    routes = sim.stats()["by_route"]
    assert routes["/user"] == 1 and routes["/users/{user}/repos"] >= 1
    assert "/user/repos" not in routes


# -- issues turned off --------------------------------------------------------------------------


def test_the_simulator_answers_410_for_issues_turned_off(start_simulator: Any) -> None:
    name = first_repo(small(start_simulator))
    off = small(start_simulator, issues_disabled=(name,))
    headers = {"Authorization": f"token {TOKEN}", "User-Agent": "audit-test"}
    with httpx.Client(base_url=off.url, headers=headers) as http:
        listed = {r["name"]: r["has_issues"] for r in http.get(f"/orgs/{ORG}/repos").json()}
        answer = http.get(f"/repos/{ORG}/{name}/issues")
        pulls = http.get(f"/repos/{ORG}/{name}/pulls")
    assert listed[name] is False and sum(listed.values()) == len(listed) - 1
    assert answer.status_code == 410 and answer.json()["message"] == ISSUES_DISABLED_MESSAGE
    assert pulls.status_code == 200


def test_issues_turned_off_in_the_listing_are_zero_without_a_request(
    tmp_path: Path, start_simulator: Any
) -> None:
    probe = small(start_simulator)
    name = first_repo(probe)
    sim = small(start_simulator, issues_disabled=(name,))
    sim.fail(f"/{name}/issues", status=500)  # a tripwire: any request for them is counted
    proc = run_cli("collect", "-c", str(write_config(tmp_path, sim.url)), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "scripted 500" not in sim.stats()["faults"]
    off = unit(tmp_path, name, "issues")
    assert off.status == "complete" and off.records_collected == 0 and off.pages_collected == 0
    assert_exactly_truth(dataset(tmp_path), sim)


def test_a_dry_run_counts_no_request_for_issues_turned_off(
    tmp_path: Path, start_simulator: Any
) -> None:
    probe = small(start_simulator)
    name = first_repo(probe)
    sim = small(start_simulator, issues_disabled=(name,))
    sim.fail(f"/{name}/issues", status=500)  # the tripwire again
    plan = estimate_sync(load_config(write_config(tmp_path, sim.url)), TOKEN)
    baseline = estimate_sync(load_config(write_config(tmp_path, probe.url)), TOKEN)
    assert "scripted 500" not in sim.stats()["faults"]
    assert plan.repos == baseline.repos == 3 and plan.pages["pulls"] == baseline.pages["pulls"]
    assert plan.pages["issues"] < baseline.pages["issues"]


def test_a_410_on_issues_the_listing_said_exist_is_zero_and_keeps_collected_data(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = small(start_simulator)
    name = first_repo(sim)
    config = str(write_config(tmp_path, sim.url))
    sim.fail(f"/{name}/issues", status=410)  # turned off between discovery and the walk
    first = run_cli("collect", "-c", config, "--quiet")
    assert first.returncode == 0, first.stderr
    raced = unit(tmp_path, name, "issues")
    assert raced.status == "complete" and raced.records_collected == 0 and not raced.error

    sim.clear_failures()
    run_cli("collect", "-c", config, "--force", "--quiet")
    paths = dataset(tmp_path)
    assert_exactly_truth(paths, sim)
    issues_file = paths.unit_file(
        "issues", read_checkpoint(paths.checkpoint).repos[f"{ORG}/{name}"]
    )
    held = issues_file.read_bytes()
    assert held, "the repo should have issues in the window: the test proves nothing"
    sim.fail(f"/{name}/issues", status=410)  # a refresh finds issues turned off
    again = run_cli("collect", "-c", config, "--quiet")
    assert again.returncode == 0, again.stderr
    assert issues_file.read_bytes() == held  # what was collected stays
    assert unit(tmp_path, name, "issues").status == "complete"
    assert sim.stats()["not_modified"] > 0  # ETags still work without Last-Modified


# -- SAML SSO -------------------------------------------------------------------------------------


def test_a_saml_protected_org_is_one_line_naming_the_org_and_the_url(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = small(start_simulator, saml_sso=True)
    proc = run_cli("collect", "-c", str(write_config(tmp_path, sim.url)))
    assert proc.returncode == 2, proc.stderr
    line = one_line_error(proc.stderr)
    assert f"organization {ORG} enforces SAML single sign-on" in line
    assert f"https://github.com/orgs/{ORG}/sso?authorization_request=" in line
    assert "GH_E2E_TOKEN" in line and TOKEN not in proc.stderr + proc.stdout
    assert sim.stats()["requests"] == 1
    read_checkpoint(dataset(tmp_path).checkpoint)  # readable, for the run after authorising


# -- limits answered with 403 and with 429 -----------------------------------------------------


def spend_budget(sim: Simulator, status: int) -> None:
    """Spend the token's budget outside gh-collect, so its first request meets the limit."""
    headers = {"Authorization": f"token {TOKEN}", "User-Agent": "audit-test"}
    with httpx.Client(base_url=sim.url, headers=headers) as http:
        for _ in range(50):
            answer = http.get(f"/orgs/{ORG}")
            if answer.status_code == status:
                assert answer.headers["x-ratelimit-remaining"] == "0"
                return
    raise AssertionError("the budget never ran out")


@pytest.mark.parametrize("status", [403, 429])
def test_a_spent_primary_budget_exits_75_or_is_waited_out(
    tmp_path: Path, start_simulator: Any, status: int
) -> None:
    sim = small(start_simulator, limit_status=status, rate_limit=12, reset_seconds=6.0)
    config = str(write_config(tmp_path, sim.url, rate_limit={"pause_below": 1}))
    spend_budget(sim, status)
    stopped = run_cli("collect", "-c", config, "--on-rate-limit", "exit")
    assert stopped.returncode == 75, stopped.stderr
    assert "rate limit" in one_line_error(stopped.stderr)

    spend_budget(sim, status)
    limited = sim.stats()["primary_limited"]
    waited = run_cli("collect", "-c", config, "--quiet")
    assert waited.returncode == 0, waited.stderr
    assert sim.stats()["primary_limited"] > limited  # it met the limit, then waited it out
    assert_exactly_truth(dataset(tmp_path), sim)


@pytest.mark.parametrize("status", [403, 429])
def test_secondary_limits_answered_with_403_or_429_are_waited_out(
    tmp_path: Path, start_simulator: Any, status: int
) -> None:
    sim = small(
        start_simulator, limit_status=status, faults={"secondary": 0.25}, fault_seed=11,
        secondary_retry_after=1,
    )  # fmt: skip
    started = time.monotonic()
    proc = run_cli("collect", "-c", str(write_config(tmp_path, sim.url)), "--quiet")
    assert proc.returncode == 0, proc.stderr
    stats = sim.stats()
    assert stats["faults"].get("secondary", 0) > 0, "no limit was hit: the test proves nothing"
    assert stats["by_status"].get(str(status), 0) == stats["faults"]["secondary"]
    assert time.monotonic() - started >= 1.0  # retry-after was honoured
    assert_exactly_truth(dataset(tmp_path), sim)
