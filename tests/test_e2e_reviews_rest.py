"""``reviews`` without GraphQL (``github.graphql: false``): one REST list per pull that
``pulls`` keeps, end to end against the simulator, and the same curated table as GraphQL's."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from gh_collect.config import Config
from gh_collect.durable.envelope import read_envelopes
from gh_collect.durable.paths import DatasetPaths
from gh_collect.simulator import SCENARIO_REPOS, Simulator

from .conftest import cli_env, dataset, gh_collect_cmd, run_cli, write_config

pytestmark = pytest.mark.e2e

HUNDRED = SCENARIO_REPOS["hundred"]
REVIEWS_ROUTES = ("/repos/{owner}/{repo}/pulls/{number}/reviews",
                  "/repositories/{repo_id}/pulls/{number}/reviews")  # fmt: skip
PER_RUN = ("fetched_at", "raw")  # when, and in which transport's shape, each run read it


def rest_config(tmp_path: Path, url: str, **sections: Any) -> str:
    github = {"graphql": False, **sections.pop("github", {})}
    return str(write_config(tmp_path, url, endpoints=["pulls", "reviews"], github=github,
                            **sections))  # fmt: skip


def raw_reviews(paths: DatasetPaths) -> list[dict[str, Any]]:
    return [
        line for p in paths.endpoint_dir("reviews").rglob("*.jsonl") for line in read_envelopes(p)
    ]


def truth_reviews(sim: Simulator) -> Counter[int]:
    truth = sim.ground_truth(year=2025, endpoints=("reviews",))["reviews"]
    return Counter(int(r["fullDatabaseId"]) for nodes in truth.values() for r in nodes)


def curated_reviews(root: Path) -> pa.Table:
    table = ds.dataset(root / "curated", format="parquet", partitioning="hive").to_table(
        filter=ds.field("endpoint") == "reviews"
    )
    return table.sort_by("id")


def pulls_kept(paths: DatasetPaths) -> int:
    return len(
        {
            (line["repo"], line["data"]["number"])
            for p in paths.endpoint_dir("pulls").rglob("*.jsonl")
            for line in read_envelopes(p)
        }
    )


def assert_rest_exact(paths: DatasetPaths, sim: Simulator) -> None:
    """Every review of the year once in the raw files (REST ``id``s), and in the curated table."""
    got = Counter(line["data"]["id"] for line in raw_reviews(paths))
    expected = truth_reviews(sim)
    missing, extra = expected - got, got - expected
    assert not missing and not extra, (
        f"{sum(missing.values())} missing, {sum(extra.values())} extra"
    )
    curated = Counter(curated_reviews(paths.root).column("id").to_pylist())
    assert curated == expected


def test_rest_fallback_and_graphql_give_identical_curated_reviews(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    roots = {}
    for graphql in (True, False):
        folder = tmp_path / ("graphql" if graphql else "rest")
        folder.mkdir()
        config = write_config(folder, sim.url, endpoints=["pulls", "reviews"],
                              github={"graphql": graphql})  # fmt: skip
        sim.reset_stats()
        assert run_cli("collect", "-c", str(config), "--quiet").returncode == 1  # vanished repo
        roots[graphql] = dataset(folder)
        stats = sim.stats()
        rest_lists = sum(stats["by_route"].get(route, 0) for route in REVIEWS_ROUTES)
        if graphql:
            assert rest_lists == 0 and stats["graphql_queries"] > 0
        else:
            assert stats["graphql_queries"] == 0
            assert rest_lists >= pulls_kept(roots[graphql])  # one list (at least) per pull
    by_graphql, by_rest = (curated_reviews(roots[g].root) for g in (True, False))
    assert by_graphql.num_rows == by_rest.num_rows == sum(truth_reviews(sim).values()) > 100
    assert by_graphql.schema == by_rest.schema
    columns = [name for name in by_graphql.column_names if name not in PER_RUN]
    assert by_graphql.select(columns).to_pylist() == by_rest.select(columns).to_pylist()
    # the REST rows are the REST shape: a bot keeps its [bot], the id is REST's integer
    assert {line["source"] for line in raw_reviews(roots[False])} == {"github_rest"}
    assert {line["source"] for line in raw_reviews(roots[True])} == {"github_graphql"}
    assert all(isinstance(line["data"]["id"], int) for line in raw_reviews(roots[False]))


def test_rest_fallback_reads_the_pull_with_250_reviews_complete(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    assert run_cli("collect", "-c", rest_config(tmp_path, sim.url), "--quiet").returncode == 1
    paths = dataset(tmp_path)
    truth = sim.ground_truth(year=2025, endpoints=("reviews",))["reviews"][HUNDRED]
    newest = max(r["pullRequest"]["number"] for r in truth)
    expected = Counter(int(r["fullDatabaseId"]) for r in truth
                       if r["pullRequest"]["number"] == newest)  # fmt: skip
    assert len(expected) == 250
    unit_file = paths.endpoint_dir("reviews") / f"repo={HUNDRED}" / f"parent={newest}.jsonl"
    got = Counter(line["data"]["id"] for line in read_envelopes(unit_file))
    assert got == expected  # three pages of 100, the PENDING one skipped
    state = json.loads(paths.checkpoint.read_text())
    unit = state["repos"][f"sample-org/{HUNDRED}"]["units"][f"reviews/{newest}"]
    assert unit["status"] == "complete" and unit["pages_collected"] == 3
    assert_rest_exact(paths, sim)


def test_kill_9_during_rest_reviews_then_resume_is_exact(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator(latency_ms=10)
    config = rest_config(tmp_path, sim.url, checkpoint={"every_pages": 1})
    paths = dataset(tmp_path)
    for _kill in range(3):
        proc = subprocess.Popen(
            gh_collect_cmd("collect", "-c", config, "--quiet"),
            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not _reviews_written(paths) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert run_cli("collect", "-c", config, "--quiet").returncode == 1
    assert_rest_exact(paths, sim)


def _reviews_written(paths: DatasetPaths) -> bool:
    return any(paths.endpoint_dir("reviews").rglob("parent=*.jsonl"))


def test_a_rest_refresh_asks_each_list_again_conditionally_and_writes_nothing(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator()
    config = rest_config(tmp_path, sim.url)
    assert run_cli("collect", "-c", config, "--quiet").returncode == 1
    paths = dataset(tmp_path)
    sizes = {p: p.stat().st_size for p in paths.endpoint_dir("reviews").rglob("*.jsonl")}
    sim.reset_stats()
    assert run_cli("collect", "-c", config, "--quiet").returncode == 1
    assert {p: p.stat().st_size for p in sizes} == sizes
    stats = sim.stats()
    assert stats["not_modified"] >= pulls_kept(paths)  # each pull's list: 304, free
    assert_rest_exact(paths, sim)


def test_switching_the_transport_of_a_dataset_is_refused(
    tmp_path: Path, start_simulator: Any
) -> None:
    sim = start_simulator(repos=3)
    assert run_cli("collect", "-c", rest_config(tmp_path, sim.url), "--quiet").returncode == 0
    graphql = write_config(tmp_path, sim.url, endpoints=["pulls", "reviews"])
    proc = run_cli("collect", "-c", str(graphql), "--quiet")
    assert proc.returncode == 2 and "graphql" in proc.stderr and "Traceback" not in proc.stderr


def _config(**github: Any) -> dict[str, Any]:
    return {"target": {"org": "o"}, "year": 2025, "github": github}


@pytest.mark.parametrize(
    ("listed", "message"),
    [
        (["reviews"], "list pulls before reviews"),
        (["reviews", "pulls"], "list pulls before reviews"),
        (["pulls", "pull_stats"], "pull_stats are read only through GitHub's GraphQL API"),
    ],
)
def test_without_graphql_the_config_says_what_to_do(listed: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config.model_validate({**_config(graphql=False), "endpoints": listed})


def test_the_fallback_is_chosen_by_the_config_and_bound_to_its_digest() -> None:
    rest = Config.model_validate({**_config(graphql=False), "endpoints": ["pulls", "reviews"]})
    graphql = Config.model_validate({**_config(), "endpoints": ["pulls", "reviews"]})
    assert rest.endpoint("reviews").transport == "rest"
    assert rest.endpoint("reviews").source == "github_rest"
    assert graphql.endpoint("reviews").transport == "graphql"
    assert rest.endpoint("reviews").columns == graphql.endpoint("reviews").columns
    assert rest.digest != graphql.digest and rest.digest_inputs()["graphql"] is False
    plain = Config.model_validate({**_config(graphql=False), "endpoints": ["pulls"]})
    assert "graphql" not in plain.digest_inputs()  # no fallback in use: digests unchanged
