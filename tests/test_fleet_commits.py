"""The commit protocol on a local folder and on S3 (moto): a racing second commit loses,
its part is deleted, and readers and the export see committed parts only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gh_collect.durable.checkpoint import CheckpointStatus, UnitKey, UnitProgress
from gh_collect.errors import ConfigError
from gh_collect.fleet.commits import Attempt, FleetLayout, commit, latest, sweep_orphans
from gh_collect.fleet.output import committed_units, read_committed
from gh_collect.fleet.store import (
    LocalStore,
    ObjectStore,
    is_object_store_uri,
    open_store,
    store_uri,
)
from tests.fleet_kit import S3

LAYOUT = FleetLayout(2025, "sample-org")
KEY = UnitKey("sample-org/alpha", "pulls")


def lines(*ids: int) -> bytes:
    return b"".join(
        json.dumps({"endpoint": "pulls", "repo": KEY.repo, "data": {"id": i}}).encode() + b"\n"
        for i in ids
    )


def attempt(fence: int) -> Attempt:
    return Attempt(LAYOUT, KEY, '["pulls","sample-org/alpha",null]', "alpha", fence, f"w{fence}")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "out")
    s3: S3 = request.getfixturevalue("moto_s3")
    return open_store(f"s3://{s3.bucket}/{tmp_path.name}")


def test_create_once_refuses_the_second(store: ObjectStore) -> None:
    assert store.create_once("a/b.json", b"first")
    assert not store.create_once("a/b.json", b"second")
    assert store.get("a/b.json") == b"first"


def test_a_racing_second_commit_loses_and_its_part_is_deleted(store: ObjectStore) -> None:
    progress = UnitProgress(status=CheckpointStatus.IN_PROGRESS, pages_collected=1)
    winner = commit(store, attempt(1), None, lines(1, 2), progress)
    loser = commit(store, attempt(2), None, lines(1, 2, 3), progress)  # same seq, other holder
    assert winner is not None and winner.seq == 1 and loser is None
    parts = [k for k in store.list(LAYOUT.parts_dir(KEY, "alpha")) if "/part-" in k]
    assert parts == [winner.parts[0].key]  # the loser's part is gone
    newest = latest(store, LAYOUT, KEY, "alpha")
    assert newest is not None and newest.fence == 1


def test_records_chain_and_readers_see_committed_parts_only(store: ObjectStore) -> None:
    first = commit(store, attempt(1), None, lines(1, 2), UnitProgress(pages_collected=1))
    second = commit(store, attempt(1), first, lines(3), UnitProgress(pages_collected=2))
    assert second is not None and second.seq == 2 and len(second.parts) == 2
    # an attempt killed between its part and its record: the part is not data
    store.put(LAYOUT.part_key(KEY, "alpha", 9, 3), lines(99))
    got = [r["data"]["id"] for r in read_committed(store, LAYOUT, "pulls")]
    assert got == [1, 2, 3]
    assert next(iter(committed_units(store, LAYOUT).values())).seq == 2
    assert sweep_orphans(store, LAYOUT) == 1
    assert [r["data"]["id"] for r in read_committed(store, LAYOUT, "pulls")] == [1, 2, 3]


def test_an_empty_commit_writes_no_part(store: ObjectStore) -> None:
    record = commit(store, attempt(1), None, b"", UnitProgress())
    assert record is not None and record.parts == []
    assert not [k for k in store.list(f"{LAYOUT.raw}/endpoint=") if "part-" in k]


def test_uris() -> None:
    assert is_object_store_uri(Path("s3://bucket/prefix"))  # as pydantic hands it over
    assert store_uri(Path("s3://bucket/prefix")) == "s3://bucket/prefix"
    assert not is_object_store_uri(Path("/data/x"))
    assert isinstance(open_store("/tmp/x"), LocalStore)
    with pytest.raises(ConfigError, match="not supported yet"):
        open_store("gs://bucket/x")
    with pytest.raises(ConfigError, match="no bucket"):
        open_store("s3://")


def test_a_repo_whose_name_begins_another_has_its_own_records(store: ObjectStore) -> None:
    """Listings are by prefix: repo=alpha must not see repo=alpha-10's records."""
    longer = Attempt(LAYOUT, UnitKey("sample-org/alpha-10", "pulls"), "u", "alpha-10", 1, "w")
    done = UnitProgress(status=CheckpointStatus.COMPLETE, pages_collected=1)
    assert commit(store, longer, None, lines(7), done) is not None
    assert latest(store, LAYOUT, KEY, "alpha") is None
    found = latest(store, LAYOUT, longer.key, "alpha-10")
    assert found is not None and found.progress.status == CheckpointStatus.COMPLETE
