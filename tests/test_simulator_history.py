"""The simulator's long histories, its one clock and its churn (issue 13): what a harvest of
one year out of ten, and a torture that edits items while a harvest runs, rely on."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from gh_collect.simulator import OrgModel, Simulator, SimulatorConfig
from gh_collect.simulator.model import SORT_KEYS, parse_time

ORG = "sample-org"
AUTH = {"Authorization": "token history-test"}
LOW, HIGH = "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"
NOW = "2026-07-01T00:00:00Z"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(seed=1, repos=8, org=ORG, now=NOW)) as running:
        yield running


def client(sim: Simulator) -> httpx.Client:
    return httpx.Client(base_url=sim.url, headers=AUTH, timeout=10)


def date_of(response: httpx.Response) -> int:
    return int(parsedate_to_datetime(response.headers["date"]).timestamp())


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


# -- long histories ---------------------------------------------------------------------------


def test_by_default_most_items_lie_outside_the_window_and_a_few_old_ones_are_touched() -> None:
    model = OrgModel.generate(3, 6, ORG, sizes=(2000,), scenarios=False)
    items = [item for repo in model.repos for item in repo.issues]
    old = [item for item in items if item.created_at < LOW]
    touched = [item for item in old if item.updated_at >= LOW]
    in_window = [item for item in items if item.created_at < HIGH and item.updated_at >= LOW]
    assert len(items) == 12_000
    assert min(item.created_at for item in items) < "2015-02", "ten years before 2025"
    assert len(old) > 0.8 * len(items) and len(in_window) < 0.2 * len(items)
    assert 0.02 < len(touched) / len(old) < 0.04, "about 3% of old items touched in the year"
    assert all(item.updated_at < HIGH for item in touched), "touched in the year itself"
    assert all(item.created_at <= item.updated_at < NOW for item in items)


def test_history_years_and_touched_share_are_the_knobs() -> None:
    short = OrgModel.generate(3, 4, ORG, sizes=(500,), scenarios=False, history_years=0)
    assert all(item.created_at >= LOW for repo in short.repos for item in repo.issues)
    none = OrgModel.generate(3, 4, ORG, sizes=(500,), scenarios=False, touched_share=0.0)
    old = [i for repo in none.repos for i in repo.issues if i.created_at < LOW]
    assert old and all(item.updated_at < LOW for item in old)
    every = OrgModel.generate(3, 4, ORG, sizes=(500,), scenarios=False, touched_share=1.0)
    old = [i for repo in every.repos for i in repo.issues if i.created_at < LOW]
    assert old and all(LOW <= item.updated_at < HIGH for item in old)
    with pytest.raises(ValueError, match="touched_share"):
        SimulatorConfig(touched_share=1.5)
    with pytest.raises(ValueError, match="churn_ms"):
        SimulatorConfig(churn_ms=-1)


def test_objects_are_the_same_whenever_and_in_whatever_order_they_are_first_served() -> None:
    first, second = OrgModel.generate(4, 9, ORG), OrgModel.generate(4, 9, ORG)
    second.add_repo("joined-later", items=30, seed=2)  # its own stream: nothing else moves

    def every(model: OrgModel) -> list[Any]:
        return [i for repo in model.repos for i in (*repo.pulls, *repo.issues)]

    late = {item.id: item.to_bytes("http://h") for item in reversed(every(second))}
    assert [item.to_bytes("http://h") for item in every(first)] == [
        late[item.id] for item in every(first)
    ]
    pull = next(item for item in every(first) if item.is_pull)
    assert pull.fragments is pull.fragments, "rendered once, then kept"


def test_edits_keep_every_cached_ordering_sorted() -> None:
    model = OrgModel.generate(5, 8, ORG)
    repo = max(model.repos, key=lambda r: len(r.issues))
    for kind in ("pulls", "issues"):
        for sort in SORT_KEYS:
            repo.select(kind, "all", sort, None)
    model.mutate(update=40, repos=[repo.name], seed=1)
    for kind, source in (("pulls", repo.pulls), ("issues", repo.issues)):
        for sort, key in SORT_KEYS.items():
            expected = sorted(source, key=lambda item, key=key: (key(item), item.id))
            assert repo.select(kind, "all", sort, None).items == tuple(expected), (kind, sort)


# -- one clock ----------------------------------------------------------------------------------


def test_date_header_and_edit_stamps_come_from_one_simulated_clock(sim: Simulator) -> None:
    configured = parse_time(NOW)
    with client(sim) as http:
        first = date_of(http.get(f"/orgs/{ORG}"))
        assert configured <= first < configured + 60, "the simulated now, not the wall clock"
        changed = sim.mutate(update=5, seed=2)
        after = date_of(http.get(f"/orgs/{ORG}"))
        time.sleep(1.1)
        later = date_of(http.get("/__simulator/stats"))
    edited = [
        item.updated_at
        for repo in sim.model.repos
        for item in (*repo.pulls, *repo.issues)
        if item.id in {i for ids in changed["pulls"].values() for i in ids}
        or item.id in {i for ids in changed["issues"].values() for i in ids}
    ]
    stamps = sorted(parse_time(stamp) for stamp in edited)
    assert len(stamps) == 5 and stamps[0] > first, "an edit is newer than any Date served"
    assert stamps[-1] <= after, "and a later Date is not older than the edit"
    assert later >= after + 1, "real time moves the clock"
    assert parse_time(sim.now) >= later


# -- churn and the control API ----------------------------------------------------------------


def truth_ids(http: httpx.Client) -> tuple[set[int], int]:
    response = http.get("/__simulator/truth", params={"year": 2025})
    assert response.status_code == 200
    body = response.json()
    assert body["year"] == 2025 and set(body["truth"]) == {"pulls", "issues"}
    found = {
        o["id"] for by_repo in body["truth"].values() for objs in by_repo.values() for o in objs
    }
    return found, date_of(response)


def test_churn_moves_edited_items_to_the_top_and_into_the_window(sim: Simulator) -> None:
    with client(sim) as http:
        before, started = truth_ids(http)
        assert http.post("/__simulator/churn", params={"ms": 2}).json()["ms"] == 2
        wait_until(lambda: http.get("/__simulator/churn").json()["edits"] >= 60)
        stopped = http.post("/__simulator/churn", params={"ms": 0}).json()
        time.sleep(0.05)
        assert http.get("/__simulator/churn").json()["edits"] == stopped["edits"], "off is off"
        after, ended = truth_ids(http)
        tops = {
            repo.name: http.get(
                f"/repositories/{repo.id}/pulls",
                params={"state": "all", "sort": "updated", "direction": "desc", "per_page": 100},
            ).json()
            for repo in sim.model.repos
            if not repo.vanished
        }
    entered = [
        item
        for repo in sim.model.repos
        for item in (*repo.pulls, *repo.issues)
        if item.id in after - before
    ]
    assert entered and any(item.created_at < LOW for item in entered), "old items entered"
    edited = [p for page in tops.values() for p in page if "(edit " in p["title"]]
    assert edited, "churn reached the pulls"
    for page in tops.values():
        flags = ["(edit " in pull["title"] for pull in page]
        assert flags == sorted(flags, reverse=True), "edited pulls lead updated-desc"
    stamps = [parse_time(pull["updated_at"]) for pull in edited]
    assert started <= min(stamps) and max(stamps) <= ended


def test_churn_from_the_config_and_from_the_threaded_simulator() -> None:
    config = SimulatorConfig(seed=2, repos=8, org=ORG, churn_ms=2)
    with Simulator(config) as sim:
        wait_until(lambda: sim.churn_edits >= 5)
        sim.churn(0)
        edits = sim.churn_edits
        time.sleep(0.05)
        assert sim.churn_edits == edits and sim.model.edits == edits
        sim.churn(1)
        wait_until(lambda: sim.churn_edits > edits)


def test_control_api_refuses_bad_values_in_one_line(sim: Simulator) -> None:
    with client(sim) as http:
        for ms in ("-1", "abc", "nan"):
            bad = http.post("/__simulator/churn", params={"ms": ms})
            assert bad.status_code == 422 and "\n" not in bad.json()["message"]
        assert http.get("/__simulator/truth", params={"year": "x"}).status_code == 422
        assert http.get("/__simulator/nope").status_code == 404
        assert http.get("/__simulator/churn").json()["ms"] == 0
    assert sim.stats()["requests"] == 0, "the control API is never counted"
