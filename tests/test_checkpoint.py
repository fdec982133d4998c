from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from gh_collect.config import CheckpointSettings, Config, RateLimitSettings
from gh_collect.durable import atomic as atomic
from gh_collect.durable import checkpoint as ckpt
from gh_collect.durable.checkpoint import (
    FORMAT_VERSION,
    SAVE_STEPS,
    V1_BACKUP_NAME,
    AnyOf,
    CheckpointManager,
    CheckpointStatus,
    EveryPages,
    EveryRecords,
    EverySeconds,
    RateLimitBelow,
    SaveContext,
    UnitKey,
    UnitProgress,
    derive_repo_status,
    strategy_from_settings,
)
from gh_collect.durable.checkpoint import manager as manager_module
from gh_collect.durable.checkpoint.writer import GroupCommit
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import (
    CheckpointError,
    CorruptCheckpointError,
    DigestMismatchError,
    LockHeldError,
    StorageError,
    UsageError,
)
from gh_collect.report.status import summarize

ROOT = Path(__file__).resolve().parents[1]
REPOS = [
    {"full_name": "sample-org/zeta", "name": "zeta"},
    {"full_name": "sample-org/alpha", "name": "alpha"},
    {"full_name": "sample-org/mid-repo", "name": "mid-repo"},
]
ZETA, ALPHA, MID = (repo["full_name"] for repo in REPOS)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_config(**overrides: Any) -> Config:
    raw: dict[str, Any] = {"target": {"org": "sample-org"}, "year": 2025}
    raw.update(overrides)
    return Config.model_validate(raw)


def paths(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "raw" / "year=2025"
    return folder / "checkpoint.json", folder / "checkpoint.json.lock"


def never() -> AnyOf:
    return AnyOf([])


@pytest.fixture
def cp(tmp_path: Path) -> Iterator[CheckpointManager]:
    """A locked manager with a fresh checkpoint, three repos, and no automatic saves."""
    manager = CheckpointManager(*paths(tmp_path), strategy=never())
    with manager:
        manager.create_new(make_config())
        manager.update_repos(REPOS)
        yield manager


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".checkpoint.json.*.tmp"))


def page(
    manager: CheckpointManager,
    repo: str,
    endpoint: str,
    number: int,
    records: int,
    token: str | None,
    offset: int,
) -> None:
    """One written page, as the run records it (the run saves at its save point after)."""
    manager.record_page(
        UnitKey(repo, endpoint),
        page=number,
        records=records,
        resume_token=token,
        byte_offset=offset,
    )


# --------------------------------------------------------------------- create / save / load


def test_create_new_saves_pending_phases_with_reason(tmp_path: Path) -> None:
    with CheckpointManager(*paths(tmp_path)) as manager:
        state = manager.create_new(make_config(endpoints=["issues", "pulls"]))
    assert state.format_version == FORMAT_VERSION == 2
    assert list(state.phases) == ["discovery", "issues", "pulls"]
    assert state.endpoints == ["issues", "pulls"]
    assert all(p.status == CheckpointStatus.PENDING for p in state.phases.values())
    assert (state.save_count, state.last_save_reason) == (1, "created")
    assert state.config == make_config(endpoints=["issues", "pulls"]).digest_inputs()
    assert state.created_at.tzinfo is not None
    assert json.loads(manager.checkpoint_path.read_bytes())["format_version"] == 2


def test_round_trip_preserves_discovery_order_and_progress(cp: CheckpointManager) -> None:
    page(cp, ALPHA, "pulls", 1, 7, "https://x/?after=c1", 512)
    cp.save("manual")
    text = cp.checkpoint_path.read_text()
    assert text.startswith("{\n  ")  # human-readable
    loaded = CheckpointManager(cp.checkpoint_path, cp.lock_path).load()
    assert list(loaded.repos) == [r["full_name"] for r in REPOS]
    assert loaded == cp.state
    alpha = loaded.repos[ALPHA].units["pulls"]
    assert (alpha.resume_token, alpha.byte_offset, alpha.records_collected) == (
        "https://x/?after=c1",
        512,
        7,
    )
    assert alpha.status == CheckpointStatus.IN_PROGRESS  # a first page starts its unit
    assert (loaded.save_count, loaded.last_save_reason) == (2, "manual")


def test_load_checkpoint_reports_the_version_and_bytes_read(cp: CheckpointManager) -> None:
    loaded = ckpt.load_checkpoint(cp.checkpoint_path)
    assert (loaded.version, loaded.state.format_version) == (2, 2)
    assert loaded.raw == cp.checkpoint_path.read_bytes()
    assert loaded.state == ckpt.read_checkpoint(cp.checkpoint_path)


def test_create_new_refuses_to_replace_an_existing_checkpoint(cp: CheckpointManager) -> None:
    with pytest.raises(CheckpointError, match="already exists"):
        cp.create_new(make_config())
    cp.delete_if_exists()
    assert not cp.exists()
    cp.create_new(make_config())
    assert cp.exists()


def test_writing_requires_the_lock(tmp_path: Path) -> None:
    manager = CheckpointManager(*paths(tmp_path))
    with pytest.raises(RuntimeError, match="lock"):
        manager.create_new(make_config())
    with pytest.raises(RuntimeError, match="load"):
        _ = manager.state


def test_load_missing_checkpoint_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        CheckpointManager(*paths(tmp_path)).load()


# --------------------------------------------------------------------- atomic save


@pytest.mark.parametrize("step", [s for s in SAVE_STEPS if s != "_fsync_dir"])
def test_failed_step_before_rename_keeps_previous_file(
    cp: CheckpointManager, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    before = cp.checkpoint_path.read_bytes()
    count = cp.state.save_count

    def boom(*_args: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, step, boom)
    with pytest.raises(StorageError, match="No space left"):
        cp.save("doomed")
    assert cp.checkpoint_path.read_bytes() == before
    assert temp_files(cp.checkpoint_path.parent) == []
    assert cp.state.save_count == count


def test_interrupt_during_write_removes_the_temp_file(
    cp: CheckpointManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = cp.checkpoint_path.read_bytes()

    def interrupted(fd: int, data: bytes) -> None:
        os.write(fd, data[:10])
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "_write_temp", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cp.save("doomed")
    assert cp.checkpoint_path.read_bytes() == before
    assert temp_files(cp.checkpoint_path.parent) == []


def test_failed_folder_fsync_leaves_the_new_complete_file(
    cp: CheckpointManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(_folder: Path) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(atomic, "_fsync_dir", boom)
    with pytest.raises(StorageError):
        cp.save("late failure")
    assert ckpt.read_checkpoint(cp.checkpoint_path).last_save_reason == "late failure"
    assert temp_files(cp.checkpoint_path.parent) == []


def test_save_fsyncs_the_file_then_the_folder_after_the_rename(
    cp: CheckpointManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, atomic._replace

    def spy_fsync(fd: int) -> None:
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def spy_replace(temp: Path, target: Path) -> None:
        events.append("replace")
        real_replace(temp, target)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(atomic, "_replace", spy_replace)
    cp.save("spied")
    assert events == ["fsync file", "replace", "fsync dir"]


def test_checkpoint_file_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        with CheckpointManager(*paths(tmp_path)) as manager:
            manager.create_new(make_config())
    finally:
        os.umask(old)
    assert stat.S_IMODE(manager.checkpoint_path.stat().st_mode) == 0o640


def test_entering_removes_temp_files_a_killed_run_left(tmp_path: Path) -> None:
    checkpoint_path, lock_path = paths(tmp_path)
    checkpoint_path.parent.mkdir(parents=True)
    stale = checkpoint_path.parent / ".checkpoint.json.deadbeef.tmp"
    stale.write_text("{")
    with CheckpointManager(checkpoint_path, lock_path):
        assert not stale.exists()


# --------------------------------------------------------------------- corrupt checkpoints

# --------------------------------------------------------------------- corrupt checkpoints


def _valid_bytes(tmp_path: Path) -> bytes:
    with CheckpointManager(*paths(tmp_path / "source")) as manager:
        manager.create_new(make_config())
        manager.update_repos(REPOS)
        manager.save("source")
    return manager.checkpoint_path.read_bytes()


def _with_version(version: Any) -> Callable[[bytes], bytes]:
    def damage(raw: bytes) -> bytes:
        data = json.loads(raw)
        data["format_version"] = version
        return json.dumps(data).encode()

    return damage


def _without_version(raw: bytes) -> bytes:
    data = json.loads(raw)
    del data["format_version"]
    return json.dumps(data).encode()


def _bad_status(raw: bytes) -> bytes:
    data = json.loads(raw)
    data["repos"]["sample-org/alpha"]["units"]["pulls"]["status"] = "bogus"
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda raw: b"this is not json", "not valid JSON"),
        (lambda raw: raw[: len(raw) // 2], "not valid JSON"),
        (lambda raw: b"", "not valid JSON"),
        (lambda raw: b"\xff\xfe{", "corrupt"),
        (lambda raw: b"[1, 2]", "expected a JSON object"),
        (_bad_status, "repos.sample-org/alpha.units.pulls.status"),
        (_with_version(3), "format version 3, newer than this gh-collect"),
        (_without_version, "format_version: None is not a format number"),
        (_with_version("2"), "format_version: '2' is not a format number"),
        (_with_version(2.0), "format_version: 2.0 is not a format number"),
        (_with_version(True), "format_version: True is not a format number"),
        (_with_version(0), "format_version: 0 is not a format number"),
    ],
    ids=[
        "garbage",
        "truncated",
        "empty",
        "binary",
        "list",
        "invalid-schema",
        "future-version",
        "missing-version",
        "string-version",
        "float-version",
        "bool-version",
        "zero-version",
    ],
)
def test_corrupt_checkpoint_raises_and_is_left_untouched(
    tmp_path: Path, damage: Any, expected: str
) -> None:
    bad = damage(_valid_bytes(tmp_path))
    checkpoint_path, lock_path = paths(tmp_path)
    checkpoint_path.parent.mkdir(parents=True)
    checkpoint_path.write_bytes(bad)
    with CheckpointManager(checkpoint_path, lock_path) as manager:
        with pytest.raises(CorruptCheckpointError) as info:
            manager.load()
        with pytest.raises(CheckpointError):
            manager.create_new(make_config())  # never overwrites silently
    message = str(info.value)
    assert expected in message
    assert str(checkpoint_path) in message and "--force" in message
    assert "\n" not in message
    assert info.value.exit_code == 2
    assert checkpoint_path.read_bytes() == bad
    assert not (checkpoint_path.parent / V1_BACKUP_NAME).exists()
    assert temp_files(checkpoint_path.parent) == []


def test_repo_key_that_differs_from_full_name_is_corrupt(tmp_path: Path) -> None:
    data = json.loads(_valid_bytes(tmp_path))
    data["repos"]["sample-org/alpha"]["full_name"] = "other/alpha"
    checkpoint_path = tmp_path / "checkpoint.json"
    checkpoint_path.write_text(json.dumps(data))
    with pytest.raises(CorruptCheckpointError, match="full_name"):
        ckpt.read_checkpoint(checkpoint_path)


# --------------------------------------------------------------------- config digest


def test_digest_mismatch_names_the_changed_settings(cp: CheckpointManager) -> None:
    changed = make_config(year=2024, target={"org": "sample-org", "exclude": ["tmp-*"]})
    with pytest.raises(DigestMismatchError) as info:
        cp.validate_config(changed)
    message = str(info.value)
    assert "changed: target.exclude, year" in message
    assert str(cp.checkpoint_path) in message and "--force" in message
    assert info.value.exit_code == 2


def test_settings_outside_the_digest_do_not_invalidate(cp: CheckpointManager) -> None:
    cp.validate_config(make_config(github={"concurrency": 2}, checkpoint={"every_pages": 3}))


# --------------------------------------------------------------------- lock

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from gh_collect.durable.checkpoint import CheckpointManager

    with CheckpointManager(Path(sys.argv[1]), Path(sys.argv[2])):
        print("locked", flush=True)
        sys.stdin.readline()
    """
)


def test_lock_held_by_another_process_names_path_and_pid(tmp_path: Path) -> None:
    checkpoint_path, lock_path = paths(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", HOLDER, str(checkpoint_path), str(lock_path)]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    ) as child:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeldError) as info, CheckpointManager(checkpoint_path, lock_path):
            pass
        child.stdin.close()
        assert child.wait(timeout=10) == 0
    message = str(info.value)
    assert f"another gh-collect run holds {lock_path} (pid {child.pid})" in message
    assert info.value.exit_code == 3
    with CheckpointManager(checkpoint_path, lock_path):  # released when the holder ended
        pass


def test_second_manager_in_the_same_process_is_refused(tmp_path: Path) -> None:
    first, second = CheckpointManager(*paths(tmp_path)), CheckpointManager(*paths(tmp_path))
    with first, pytest.raises(LockHeldError, match=f"pid {os.getpid()}"):
        second.__enter__()


def test_enter_creates_the_folder(tmp_path: Path) -> None:
    checkpoint_path, lock_path = paths(tmp_path)
    with CheckpointManager(checkpoint_path, lock_path):
        assert lock_path.parent.is_dir()


# --------------------------------------------------------------------- strategies


def test_each_strategy_fires_with_its_reason() -> None:
    assert EveryPages(10).reason(SaveContext(pages_since_save=9)) is None
    assert EveryPages(10).reason(SaveContext(pages_since_save=10)) == "every 10 pages"
    assert EveryRecords(100).reason(SaveContext(records_since_save=99)) is None
    assert EveryRecords(100).reason(SaveContext(records_since_save=150)) == "every 100 records"
    assert EverySeconds(60).reason(SaveContext(seconds_since_save=59.9)) is None
    assert EverySeconds(60).reason(SaveContext(seconds_since_save=60)) == "every 60 seconds"
    assert EveryPages(1).reason(SaveContext(pages_since_save=1)) == "every 1 page"


def test_rate_limit_below_fires_once_per_crossing() -> None:
    strategy = RateLimitBelow(0.20)

    def at(remaining: int) -> str | None:
        return strategy.reason(SaveContext(rate_remaining=remaining, rate_limit=5000))

    assert at(1001) is None
    assert at(900) == "rate limit 18% <= 20%"
    assert at(800) is None and at(10) is None  # still below: no save per request
    assert at(5000) is None  # reset re-arms
    assert at(1000) == "rate limit 20% <= 20%"
    assert strategy.reason(SaveContext()) is None  # no budget seen yet


def test_any_of_combines_and_asks_every_member() -> None:
    rate = RateLimitBelow(0.5)
    strategy = AnyOf([EveryPages(2), rate])
    assert strategy.reason(SaveContext(pages_since_save=1)) is None
    both = SaveContext(pages_since_save=2, rate_remaining=1, rate_limit=10)
    assert strategy.reason(both) == "every 2 pages; rate limit 10% <= 50%"
    assert strategy.reason(SaveContext(rate_remaining=1, rate_limit=10)) is None


def test_strategy_from_settings_uses_the_config() -> None:
    strategy = strategy_from_settings(
        CheckpointSettings(every_pages=3, every_records=50, every_seconds=5),
        RateLimitSettings(save_below=0.1),
    )
    assert strategy.reason(SaveContext(pages_since_save=3)) == "every 3 pages"
    assert strategy.reason(SaveContext(records_since_save=50)) == "every 50 records"
    assert strategy.reason(SaveContext(seconds_since_save=5)) == "every 5 seconds"
    low = SaveContext(rate_remaining=400, rate_limit=5000)
    assert strategy.reason(low) == "rate limit 8% <= 10%"


def test_record_page_only_records_and_the_save_point_saves(tmp_path: Path) -> None:
    clock = FakeClock()
    strategy = AnyOf([EveryPages(3), EverySeconds(60)])
    with CheckpointManager(*paths(tmp_path), strategy=strategy, clock=clock) as manager:
        manager.create_new(make_config())
        manager.update_repos(REPOS)

        async def run() -> list[str | None]:
            reasons = []
            for number in range(1, 5):
                page(manager, ALPHA, "pulls", number, 5, "u", number)
                assert manager.state.save_count == 1 + (number > 3)  # record_page never saves
                reasons.append(await manager.maybe_save_async())
            clock.now += 61
            page(manager, ALPHA, "pulls", 5, 5, "u", 5)
            reasons.append(await manager.maybe_save_async())
            return reasons

        reasons = asyncio.run(run())
        # the page counter was reset by the save at page 3
        assert reasons == [None, None, "every 3 pages", None, "every 60 seconds"]
    saved = ckpt.read_checkpoint(manager.checkpoint_path)
    assert (saved.save_count, saved.last_save_reason) == (3, "every 60 seconds")
    assert saved.repos[ALPHA].units["pulls"].last_page_written == 5


def test_any_save_restarts_the_save_point_counters(tmp_path: Path) -> None:
    clock = FakeClock()
    strategy = AnyOf([EveryPages(2), EveryRecords(10), EverySeconds(60)])
    with CheckpointManager(*paths(tmp_path), strategy=strategy, clock=clock) as manager:
        manager.create_new(make_config())
        manager.update_repos(REPOS)
        page(manager, ALPHA, "pulls", 1, 9, "u", 1)
        clock.now += 59
        manager.save("explicit")  # a sync save counts too
        page(manager, ALPHA, "pulls", 2, 9, "u", 2)
        clock.now += 59
        assert asyncio.run(manager.maybe_save_async()) is None
        page(manager, ALPHA, "pulls", 3, 1, "u", 3)
        assert asyncio.run(manager.maybe_save_async()) == "every 2 pages; every 10 records"
        assert manager.state.save_count == 3


def test_a_low_rate_reading_makes_the_next_save_point_save_once(tmp_path: Path) -> None:
    clock = FakeClock()
    strategy = strategy_from_settings(CheckpointSettings(), RateLimitSettings(save_below=0.2))
    with CheckpointManager(*paths(tmp_path), strategy=strategy, clock=clock) as manager:
        manager.create_new(make_config())

        async def reading(remaining: int) -> str | None:
            manager.record_rate_limit(5000, remaining, 1.7e9, "core")  # returns None
            return await manager.maybe_save_async()

        async def run() -> list[str | None]:
            return [await reading(n) for n in (4000, 900, 899, 10, 4999, 950)]

        count = manager.state.save_count
        manager.record_rate_limit(5000, 900, 1.7e9, "core")
        assert manager.state.save_count == count  # recording alone never saves
        manager.record_rate_limit(5000, 4000, 1.7e9, "core")
        reasons = asyncio.run(run())
        assert reasons == [
            None,
            "rate limit 18% <= 20%",
            None,  # still below: no save per request
            None,
            None,  # the reset re-arms
            "rate limit 19% <= 20%",
        ]
        assert manager.state.save_count == count + 2
        manager.save("run end")  # waits for the save points' writes, then writes its own
        saved = ckpt.read_checkpoint(manager.checkpoint_path)
        assert saved.save_count == count + 3
        assert saved.rate_limits["core"].remaining == 950
        status = summarize(saved, DatasetPaths(manager.checkpoint_path.parent, 2025, "o"))
        assert status["rate_limit"]["remaining"] == 950


def test_rate_readings_are_kept_per_resource(cp: CheckpointManager) -> None:
    assert cp.state.rate_limit is None
    cp.record_rate_limit(5000, 10, 1.7e9, "graphql")
    assert cp.state.rate_limit is not None and cp.state.rate_limit.resource == "graphql"  # any
    cp.record_rate_limit(5000, 4000, 1.7e9, None)  # no resource header: core
    cp.record_rate_limit(30, 29, 1.7e9, "search")
    assert set(cp.state.rate_limits) == {"graphql", "core", "search"}
    assert cp.state.rate_limit is cp.state.rate_limits["core"]  # core, once seen
    assert cp.state.rate_limit.remaining == 4000
    with pytest.raises(AttributeError):
        cp.state.rate_limit = None  # read-only
    cp.save("readings")
    saved = ckpt.read_checkpoint(cp.checkpoint_path)
    assert {k: v.remaining for k, v in saved.rate_limits.items()} == {
        "graphql": 10,
        "core": 4000,
        "search": 29,
    }


def test_a_low_reading_of_another_resource_does_not_save(tmp_path: Path) -> None:
    strategy = strategy_from_settings(CheckpointSettings(), RateLimitSettings(save_below=0.2))
    with CheckpointManager(*paths(tmp_path), strategy=strategy, clock=FakeClock()) as manager:
        manager.create_new(make_config())
        manager.record_rate_limit(5000, 4000, 1.7e9, "core")
        manager.record_rate_limit(30, 1, 1.7e9, "search")
        assert asyncio.run(manager.maybe_save_async()) is None  # the strategy watches core


# --------------------------------------------------------------------- take_sync


def test_the_sync_job_runs_before_the_file_is_written(tmp_path: Path) -> None:
    checkpoint_path, lock_path = paths(tmp_path)
    seen: list[tuple[int | None, str]] = []

    def take_sync() -> Callable[[], None]:
        def job() -> None:
            exists = checkpoint_path.exists()
            count = ckpt.read_checkpoint(checkpoint_path).save_count if exists else None
            seen.append((count, threading.current_thread().name))

        return job

    with CheckpointManager(checkpoint_path, lock_path, take_sync=take_sync) as manager:
        manager.create_new(make_config())
        manager.save("second")
        asyncio.run(manager.save_async("third"))
    caller = threading.current_thread().name
    assert [count for count, _ in seen] == [None, 1, 2]
    assert [thread for _, thread in seen[:2]] == [caller, caller]  # sync: the caller's thread
    assert seen[2][1] != caller and seen[2][1].startswith("checkpoint")  # async: the writer's


def _failing_sync() -> Callable[[], None]:
    def job() -> None:
        raise StorageError("fsync of JSONL failed")

    return job


def test_a_failing_sync_job_prevents_the_save(cp: CheckpointManager) -> None:
    before = cp.checkpoint_path.read_bytes()
    count = cp.state.save_count
    cp._take_sync = _failing_sync
    with pytest.raises(StorageError, match="JSONL"):
        cp.save("blocked")
    assert cp.checkpoint_path.read_bytes() == before
    assert cp.state.last_save_reason != "blocked"
    assert cp.state.save_count == count
    assert temp_files(cp.checkpoint_path.parent) == []


def test_a_failing_sync_job_prevents_the_background_save(cp: CheckpointManager) -> None:
    before = cp.checkpoint_path.read_bytes()
    cp._take_sync = _failing_sync
    with pytest.raises(StorageError, match="JSONL"):
        asyncio.run(cp.save_async("blocked"))
    assert cp.checkpoint_path.read_bytes() == before
    assert ckpt.read_checkpoint(cp.checkpoint_path).last_save_reason != "blocked"
    assert temp_files(cp.checkpoint_path.parent) == []


def test_a_failed_sync_save_stops_every_later_save(cp: CheckpointManager) -> None:
    """Storage.take_sync hands its dirty files to the job and counts them clean: once that
    job failed, no later checkpoint may be written (as GroupCommit does for save_async)."""
    before = cp.checkpoint_path.read_bytes()
    cp._take_sync = _failing_sync
    with pytest.raises(StorageError):
        cp.save("blocked")
    cp._take_sync = manager_module._no_sync  # the next job owes nothing: the debt was lost
    with pytest.raises(StorageError):
        cp.save("after the failure")
    assert cp.checkpoint_path.read_bytes() == before


# --------------------------------------------------------------------- units to process


def test_retry_failed_only_takes_retryable_failures(cp: CheckpointManager) -> None:
    for repo in (ZETA, ALPHA, MID):
        cp.complete_unit(UnitKey(repo, "pulls"), byte_offset=0)
        cp.complete_unit(UnitKey(repo, "issues"), byte_offset=0)
    cp.fail_unit(UnitKey(ZETA, "pulls"), "503 twice", retryable=True)
    cp.fail_unit(UnitKey(ALPHA, "issues"), "404 gone", retryable=False)
    assert cp.units_to_process("pulls") == cp.units_to_process("issues") == []
    assert cp.units_to_process("pulls", retry_failed=True) == [UnitKey(ZETA, "pulls")]
    assert cp.units_to_process("issues", retry_failed=True) == []
    assert cp.unit(UnitKey(ZETA, "pulls")).has_work(retry_failed=True)
    assert not cp.unit(UnitKey(ALPHA, "issues")).has_work(retry_failed=True)
    assert cp.state.repos[ALPHA].status == CheckpointStatus.FAILED
    assert cp.state.repos[ALPHA].error == "issues: 404 gone"


def test_failed_endpoint_does_not_hide_other_pending_endpoints(cp: CheckpointManager) -> None:
    cp.fail_unit(UnitKey(ZETA, "pulls"), "403 forbidden", retryable=False)
    assert UnitKey(ZETA, "pulls") not in cp.units_to_process("pulls")
    assert UnitKey(ZETA, "issues") in cp.units_to_process("issues")
    assert cp.unit(UnitKey(ZETA, "issues")).has_work()


def test_units_to_process_are_in_discovery_order(cp: CheckpointManager) -> None:
    assert cp.units_to_process("issues") == [UnitKey(r, "issues") for r in (ZETA, ALPHA, MID)]
    cp.start_unit(UnitKey(ALPHA, "issues"))  # an unfinished unit still has work
    assert UnitKey(ALPHA, "issues") in cp.units_to_process("issues")


@pytest.mark.parametrize("wanted", ["sample-org/alpha", "alpha", "SAMPLE-ORG/Alpha", " ALPHA "])
def test_from_repo_starts_at_that_repo(cp: CheckpointManager, wanted: str) -> None:
    assert cp.units_to_process("pulls", from_repo=wanted) == [
        UnitKey(ALPHA, "pulls"),
        UnitKey(MID, "pulls"),
    ]
    assert cp.repos_before(wanted) == [ZETA]
    cp.check_from_repo(wanted)


def test_unknown_from_repo_lists_close_matches(cp: CheckpointManager) -> None:
    with pytest.raises(UsageError) as info:
        cp.units_to_process("pulls", from_repo="sample-org/alpah")
    assert "did you mean sample-org/alpha" in str(info.value)
    assert info.value.exit_code == 2
    with pytest.raises(UsageError, match="pass owner/name"):
        cp.check_from_repo("nothing-like-it-at-all")
    with pytest.raises(UsageError, match="not among the 3 discovered repos"):
        cp.repos_before("nothing-like-it-at-all")


def test_update_repos_keeps_prior_progress(cp: CheckpointManager) -> None:
    page(cp, ALPHA, "pulls", 1, 3, "n", 99)
    cp.update_repos([{"full_name": "sample-org/new", "name": "new"}, *REPOS[1:]])
    assert list(cp.state.repos) == [
        "sample-org/new",
        ALPHA,
        MID,
        ZETA,  # no longer discovered: kept, its data is on disk
    ]
    assert cp.unit(UnitKey(ALPHA, "pulls")).byte_offset == 99
    new = cp.state.repos["sample-org/new"]
    assert list(new.units) == ["pulls", "issues"]
    assert new.status == CheckpointStatus.PENDING


# --------------------------------------------------------------------- unit progress


def test_unit_lifecycle_and_repo_status(cp: CheckpointManager) -> None:
    key = UnitKey(ALPHA, "pulls")
    assert cp.unit(key).last_page_written + 1 == 1  # the resume page
    cp.start_unit(key)
    assert cp.state.repos[ALPHA].status == CheckpointStatus.IN_PROGRESS
    assert cp.state.repos[ALPHA].started_at is not None
    page(cp, ALPHA, "pulls", 1, 100, "p2", 10)
    page(cp, ALPHA, "pulls", 2, 20, None, 20)
    assert cp.unit(key).last_page_written + 1 == 3
    cp.complete_unit(key, byte_offset=20)
    done = cp.unit(key)
    assert done.status == CheckpointStatus.COMPLETE
    assert (done.pages_collected, done.records_collected, done.passes) == (2, 120, 1)
    assert done.resume_token is None and done.completed_at is not None
    assert not done.has_work(retry_failed=True)
    assert cp.state.repos[ALPHA].status == CheckpointStatus.IN_PROGRESS
    cp.complete_unit(UnitKey(ALPHA, "issues"), byte_offset=0)
    assert cp.state.repos[ALPHA].status == CheckpointStatus.COMPLETE
    assert cp.state.repos[ALPHA].completed_at is not None


def test_progress_only_moves_forward(cp: CheckpointManager) -> None:
    page(cp, ALPHA, "pulls", 1, 1, "p2", 10)
    with pytest.raises(ValueError, match="does not follow"):
        page(cp, ALPHA, "pulls", 1, 1, "p2", 20)
    with pytest.raises(ValueError, match="does not follow"):
        page(cp, ALPHA, "pulls", 2, 1, "p3", 5)
    assert cp.unit(UnitKey(ALPHA, "pulls")).pages_collected == 1  # refused pages leave no trace


def test_reset_and_retry_of_a_failed_unit(cp: CheckpointManager) -> None:
    key = UnitKey(ALPHA, "pulls")
    page(cp, ALPHA, "pulls", 1, 4, "p2", 10)
    cp.fail_unit(key, "502", retryable=True)
    failed = cp.unit(key)
    assert (failed.status, failed.resume_token, failed.retryable) == ("failed", "p2", True)
    cp.start_unit(key)  # resume keeps the resume point
    resumed = cp.unit(key)
    assert (resumed.status, resumed.resume_token, resumed.error) == ("in_progress", "p2", None)
    assert (resumed.byte_offset, resumed.pages_collected) == (10, 1)
    cp.reset_unit(key)
    assert cp.unit(key) == UnitProgress()
    with pytest.raises(KeyError):
        cp.reset_unit(UnitKey(ALPHA, "commits"))
    with pytest.raises(KeyError, match="sample-org/nowhere"):
        cp.unit(UnitKey("sample-org/nowhere", "pulls"))


def test_begin_refresh_rewalks_from_the_first_page_keeping_the_data(
    cp: CheckpointManager,
) -> None:
    key = UnitKey(ALPHA, "pulls")
    page(cp, ALPHA, "pulls", 1, 4, "p2", 10)
    page(cp, ALPHA, "pulls", 2, 4, None, 20)
    cp.complete_unit(key, byte_offset=20)
    cp.begin_refresh(key)
    refreshing = cp.unit(key)
    assert refreshing.status == CheckpointStatus.IN_PROGRESS and refreshing.refreshing
    assert (refreshing.last_page_written, refreshing.resume_token) == (0, None)
    assert (refreshing.byte_offset, refreshing.records_collected) == (20, 8)  # kept
    assert refreshing.holds_data
    page(cp, ALPHA, "pulls", 1, 1, None, 30)
    cp.complete_unit(key, byte_offset=30)
    assert (cp.unit(key).passes, cp.unit(key).refreshing) == (2, False)


def test_unit_is_a_copy(cp: CheckpointManager) -> None:
    cp.unit(UnitKey(ALPHA, "pulls")).pages_collected = 99
    assert cp.unit(UnitKey(ALPHA, "pulls")).pages_collected == 0


def test_derive_repo_status() -> None:
    done = UnitProgress(status=CheckpointStatus.COMPLETE)
    pending = UnitProgress()
    failed = UnitProgress(status=CheckpointStatus.FAILED)
    assert derive_repo_status([pending, pending]) == CheckpointStatus.PENDING
    assert derive_repo_status([done, pending]) == CheckpointStatus.IN_PROGRESS
    assert derive_repo_status([done, done]) == CheckpointStatus.COMPLETE
    assert derive_repo_status([done, failed]) == CheckpointStatus.FAILED


# --------------------------------------------------------------------- phases and counts


def test_end_phase_records_and_the_caller_saves(cp: CheckpointManager) -> None:
    cp.set_current_phase("pulls")
    assert not cp.is_phase_complete("pulls")
    before = cp.checkpoint_path.read_bytes()
    cp.end_phase("pulls")
    assert cp.is_phase_complete("pulls")
    assert cp.checkpoint_path.read_bytes() == before  # end_phase never saves
    cp.save("phase end: pulls")
    saved = ckpt.read_checkpoint(cp.checkpoint_path)
    assert saved.last_save_reason == "phase end: pulls"
    assert saved.phases["pulls"].status == CheckpointStatus.COMPLETE
    assert saved.phases["pulls"].completed_at is not None
    assert saved.current_phase == "pulls"
    cp.end_phase("issues", "2 repos failed")
    issues = cp.state.phases["issues"]
    assert (issues.status, issues.error, issues.completed_at) == ("failed", "2 repos failed", None)
    cp.set_current_phase("issues")  # --retry-failed re-enters a phase
    assert cp.state.phases["issues"].error is None
    with pytest.raises(KeyError, match="unknown phase"):
        cp.set_current_phase("commits")
    with pytest.raises(KeyError, match="unknown phase"):
        cp.end_phase("commits")


def test_counts_come_from_tallies_failures_and_the_status_summary(
    cp: CheckpointManager, tmp_path: Path
) -> None:
    page(cp, ZETA, "pulls", 1, 30, None, 300)
    cp.complete_unit(UnitKey(ZETA, "pulls"), byte_offset=300)
    cp.complete_unit(UnitKey(ZETA, "issues"), byte_offset=0)
    page(cp, ALPHA, "pulls", 1, 2, "p2", 20)
    cp.fail_unit(UnitKey(MID, "issues"), "451", retryable=False)
    cp.count_request(3)
    cp.save("stats")
    state = ckpt.read_checkpoint(cp.checkpoint_path)

    pulls = state.tally("pulls")
    assert (pulls.pages, pulls.records) == (2, 32)
    counts = {str(status): pulls.count(status) for status in CheckpointStatus}
    assert counts == {"pending": 1, "in_progress": 1, "complete": 1, "failed": 0}
    assert pulls.as_dict() == {"pages": 2, "records": 32, **counts}
    assert state.tally("issues").count(CheckpointStatus.FAILED) == 1
    assert state.tally("commits").as_dict()["pages"] == 0  # no units: nothing counted
    assert state.records_per_repo("pulls") == {ZETA: 30, ALPHA: 2, MID: 0}
    assert state.failures() == [
        {"repo": MID, "endpoint": "issues", "error": "451", "retryable": False}
    ]

    dataset = DatasetPaths(tmp_path, 2025, "sample-org")
    status = summarize(state, dataset)
    assert status["repos"] == {
        "total": 3, "complete": 1, "in_progress": 1, "pending": 0, "failed": 1,
    }  # fmt: skip
    assert status["endpoints"]["pulls"] == {
        "pages": 2, "records": 32, "complete": 1, "failed": 0, "pending": 2,
    }  # fmt: skip
    assert status["endpoints"]["issues"]["failed"] == 1
    assert status["phases"] == {"discovery": "pending", "pulls": "pending", "issues": "pending"}
    assert (status["save_count"], status["last_save_reason"]) == (2, "stats")
    assert status["requests_made"] == 3
    assert status["failures"] == [{"repo": MID, "endpoint": "issues", "error": "451"}]
    assert status["checkpoint"] == str(dataset.checkpoint)
    json.dumps(status, default=str)  # ready for `status --json` (the CLI's dumps)


# --------------------------------------------------------------------- rendering


def _saved_equals_state(cp: CheckpointManager) -> None:
    on_disk = json.loads(cp.checkpoint_path.read_bytes())
    assert on_disk == json.loads(cp.state.model_dump_json())
    assert list(on_disk["repos"]) == list(cp.state.repos)  # discovery order kept


def test_saved_file_is_the_state_whatever_changed_since_the_last_save(
    cp: CheckpointManager,
) -> None:
    # The renderer re-serializes only touched repos: every kind of change must reach the file.
    cp.save("first")
    _saved_equals_state(cp)
    page(cp, ALPHA, "pulls", 1, 5, "https://x/p2", 50)
    cp.save("a page")
    _saved_equals_state(cp)
    cp.complete_unit(UnitKey(ALPHA, "pulls"), byte_offset=50)
    cp.fail_unit(UnitKey(ZETA, "issues"), "boom", retryable=True)
    cp.save("complete and failed")
    _saved_equals_state(cp)
    cp.reset_unit(UnitKey(ZETA, "issues"))
    cp.begin_refresh(UnitKey(ALPHA, "pulls"))
    cp.save("reset and refresh")
    _saved_equals_state(cp)
    cp.start_unit(UnitKey(MID, "issues"))
    cp.add_unit(UnitKey(MID, "pulls", "7"))
    cp.save("start and fan-out")
    _saved_equals_state(cp)
    cp.update_repos([{"full_name": 'sample-org/ünïcode "q"', "name": "x"}, *REPOS])
    cp.save("new repo")
    _saved_equals_state(cp)
    assert cp.load().model_dump() == cp.state.model_dump()


def test_saved_file_is_indented_json_like_the_model_dump(cp: CheckpointManager) -> None:
    page(cp, ZETA, "pulls", 1, 1, None, 9)
    cp.save("readable")
    text = cp.checkpoint_path.read_text()
    expected = json.loads(cp.state.model_dump_json(indent=2))
    assert json.loads(text) == expected
    assert '\n    "sample-org/zeta": {\n      "full_name": "sample-org/zeta",' in text
    assert text.endswith("\n  }\n}\n")


def test_a_checkpoint_with_no_repos_renders_valid_json(tmp_path: Path) -> None:
    with CheckpointManager(*paths(tmp_path), strategy=never()) as manager:
        manager.create_new(make_config())
        assert json.loads(manager.checkpoint_path.read_bytes())["repos"] == {}


# --------------------------------------------------------------------- background saves


def test_group_commit_lands_in_order_and_shares_a_write() -> None:
    entered, release = threading.Event(), threading.Event()
    written: list[bytes] = []

    def write(data: bytes) -> None:
        if not written:
            entered.set()
            release.wait(5)  # hold the first write while more saves are asked for
        written.append(data)

    synced: list[int] = []
    commit = GroupCommit(write)
    first = commit.submit(lambda: synced.append(1), b"one")
    assert entered.wait(5)
    later = [commit.submit(partial(synced.append, n), f"s{n}".encode()) for n in (2, 3, 4)]
    release.set()
    commit.wait()
    commit.close()
    assert first.done() and all(f is later[0] for f in later)  # one batch for the three
    assert written == [b"one", b"s4"]  # the newest state, written once
    assert synced == [1, 2, 3, 4]  # every save's data fsyncs ran before its checkpoint


def test_group_commit_fails_every_write_after_a_failed_one() -> None:
    written: list[bytes] = []

    def write(data: bytes) -> None:
        if data == b"bad":
            raise StorageError("disk full")
        written.append(data)

    commit = GroupCommit(write)
    with pytest.raises(StorageError):
        commit.submit(lambda: None, b"bad").result(5)
    with pytest.raises(StorageError):
        commit.submit(lambda: None, b"good").result(5)  # its fsync debt died with "bad"
    with pytest.raises(StorageError):
        commit.wait()
    commit.close()
    assert written == []


def test_save_async_writes_the_snapshot_and_runs_the_sync_job_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    checkpoint_path, lock_path = paths(tmp_path)

    def take_sync() -> Any:
        def job() -> None:
            order.append("sync")

        return job

    real = ckpt.atomic_write  # what the manager module imported

    def recording_write(target: Path, data: bytes) -> None:
        order.append("write")
        real(target, data)

    async def scenario(manager: CheckpointManager) -> None:
        page(manager, ZETA, "pulls", 1, 3, None, 30)
        monkeypatch.setattr(manager_module, "atomic_write", recording_write)
        await manager.save_async("background")

    with CheckpointManager(
        checkpoint_path, lock_path, strategy=never(), take_sync=take_sync
    ) as manager:
        manager.create_new(make_config())
        manager.update_repos(REPOS)
        order.clear()
        asyncio.run(scenario(manager))
        on_disk = json.loads(checkpoint_path.read_bytes())
        assert order == ["sync", "write"]
        assert on_disk["last_save_reason"] == "background"
        assert on_disk["repos"]["sample-org/zeta"]["units"]["pulls"]["byte_offset"] == 30
        assert manager.load().save_count == on_disk["save_count"]


def test_a_failed_background_save_stops_every_later_save(tmp_path: Path) -> None:
    checkpoint_path, lock_path = paths(tmp_path)
    failing = False

    def take_sync() -> Any:
        def job() -> None:
            raise StorageError("cannot fsync: injected")

        return job if failing else (lambda: None)

    with CheckpointManager(
        checkpoint_path, lock_path, strategy=never(), take_sync=take_sync
    ) as manager:
        manager.create_new(make_config())  # its own sync save runs take_sync too
        before = checkpoint_path.read_bytes()
        failing = True
        with pytest.raises(StorageError, match="injected"):
            asyncio.run(manager.save_async("doomed"))
        failing = False  # later jobs succeed, but the failed one's fsyncs are lost
        with pytest.raises(StorageError, match="injected"):
            asyncio.run(manager.save_async("after the failure"))
        with pytest.raises(StorageError, match="injected"):
            manager.save("after the failure")  # would claim bytes never fsynced
        assert checkpoint_path.read_bytes() == before


def test_a_cancelled_waiter_does_not_cancel_the_write(tmp_path: Path) -> None:
    checkpoint_path, lock_path = paths(tmp_path)
    gate = threading.Event()
    held: list[bool] = []

    def take_sync() -> Any:
        return (lambda: gate.wait(5)) if held else (lambda: None)

    async def scenario(manager: CheckpointManager) -> None:
        waiter = asyncio.create_task(manager.save_async("cancelled waiter"))
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        gate.set()

    with CheckpointManager(
        checkpoint_path, lock_path, strategy=never(), take_sync=take_sync
    ) as manager:
        manager.create_new(make_config())
        held.append(True)  # hold the background save's fsync until the waiter is gone
        asyncio.run(scenario(manager))
        manager.save("after")  # waits for the write the waiter left behind, then saves
        assert manager.load().save_count == 3  # created, cancelled waiter's, after


# --------------------------------------------------------------------- raw file parts (item 1)


def test_repos_entering_get_file_parts_unique_ignoring_case(cp: CheckpointManager) -> None:
    cp.update_repos(
        [
            {"id": 11, "full_name": "other-owner/alpha", "name": "alpha"},  # same name
            {"id": 12, "full_name": "sample-org/Alpha", "name": "Alpha"},  # case only
            {"id": 13, "full_name": "sample-org/ALPHA", "name": "ALPHA"},
        ]
    )
    parts = [repo.raw_part for repo in cp.state.repos.values()]
    assert len({part.lower() for part in parts}) == len(parts) == 6
    assert cp.state.repos["sample-org/alpha"].file_part == "alpha"  # readable, first come
    assert cp.state.repos["other-owner/alpha"].file_part == "alpha~11"
    cp.save("parts")
    reloaded = ckpt.read_checkpoint(cp.checkpoint_path)
    assert [r.raw_part for r in reloaded.repos.values()] == parts  # decided once, kept


def test_checkpoint_without_file_parts_derives_them_as_before(tmp_path: Path) -> None:
    checkpoint_path, _ = paths(tmp_path)
    with CheckpointManager(*paths(tmp_path), strategy=never()) as manager:
        manager.create_new(make_config())
        manager.update_repos(REPOS)
        manager.save("with parts")
    data = json.loads(checkpoint_path.read_text())
    for repo in data["repos"].values():
        del repo["file_part"]  # a checkpoint written before the field existed
    checkpoint_path.write_text(json.dumps(data))
    state = ckpt.read_checkpoint(checkpoint_path)
    assert [repo.raw_part for repo in state.repos.values()] == ["zeta", "alpha", "mid-repo"]


@pytest.mark.parametrize("part", ["..", ".", "a/b", "", "x\x00y"])
def test_unsafe_file_part_in_a_checkpoint_is_corrupt(tmp_path: Path, part: str) -> None:
    checkpoint_path, _ = paths(tmp_path)
    with CheckpointManager(*paths(tmp_path), strategy=never()) as manager:
        manager.create_new(make_config())
        manager.update_repos(REPOS)
        manager.save("with parts")
    data = json.loads(checkpoint_path.read_text())
    data["repos"]["sample-org/zeta"]["file_part"] = part
    checkpoint_path.write_text(json.dumps(data))
    with pytest.raises(CorruptCheckpointError, match="file_part"):
        ckpt.read_checkpoint(checkpoint_path)


# --------------------------------------------------------------------- the dataset lock (item 13)


def test_deleting_the_lock_file_does_not_release_the_lock(tmp_path: Path) -> None:
    checkpoint_path, lock_path = paths(tmp_path)
    with CheckpointManager(checkpoint_path, lock_path):
        lock_path.unlink()  # what a user does about a "stale" lock
        with pytest.raises(LockHeldError, match="another gh-collect run"):
            CheckpointManager(checkpoint_path, lock_path).__enter__()
    with CheckpointManager(checkpoint_path, lock_path):  # released on exit
        assert lock_path.read_text().strip() == str(os.getpid())


def test_old_checkpoint_with_colliding_names_separates_the_one_without_data(
    tmp_path: Path,
) -> None:
    checkpoint_path, _ = paths(tmp_path)
    twins = [
        {"id": 1, "full_name": "sample-org/Twin", "name": "Twin"},
        {"id": 2, "full_name": "other/twin", "name": "twin"},
    ]
    with CheckpointManager(*paths(tmp_path), strategy=never()) as manager:
        manager.create_new(make_config())
        manager.update_repos(twins)
        page(manager, "sample-org/Twin", "pulls", 1, 1, None, 10)
        manager.save("before file parts existed")
    data = json.loads(checkpoint_path.read_text())
    for repo in data["repos"].values():
        del repo["file_part"]  # both derive "Twin"/"twin": the old collision
    checkpoint_path.write_text(json.dumps(data))
    with CheckpointManager(*paths(tmp_path), strategy=never()) as manager:
        manager.load()
        manager.update_repos(twins)
        repos = manager.state.repos
        assert repos["sample-org/Twin"].raw_part == "Twin"  # holds data: its file stays
        assert repos["other/twin"].raw_part.lower() != "twin"


@pytest.mark.parametrize("reset", [float("nan"), float("inf"), -1.0])
def test_a_rate_reading_that_cannot_be_stored_is_ignored(tmp_path: Path, reset: float) -> None:
    """Belt and braces behind the client's header parser: the checkpoint stays loadable."""
    manager = CheckpointManager(tmp_path / "checkpoint.json", tmp_path / "checkpoint.json.lock")
    with manager:
        manager.create_new(make_config())
        manager.record_rate_limit(5000, 4000, 1_900_000_000.0, "core")
        manager.record_rate_limit(5000, 3999, reset, "core")
        manager.save("test")
    loaded = ckpt.read_checkpoint(tmp_path / "checkpoint.json")
    assert loaded.rate_limit is not None and loaded.rate_limit.remaining == 4000
    assert loaded.rate_limits["core"].remaining == 4000


# --------------------------------------------------------------------- format 1 (0.1.0) checkpoints

V1_CREATED = "2026-11-30T09:00:00.000000Z"
V1_LATER = "2026-11-30T09:14:07.250000Z"
V1_PULLS_NEXT = (
    "https://api.github.com/repositories/600110002/pulls"
    "?state=all&sort=created&direction=asc&per_page=100&page=3"
)
V1_ISSUES_NEXT = "https://api.github.com/repositories/600110001/issues?state=all&page=2"


def _v1_unit(status: str = "pending", **fields: Any) -> dict[str, Any]:
    unit: dict[str, Any] = {
        "status": status,
        "pages_collected": 0,
        "records_collected": 0,
        "last_page_written": 0,
        "next_url": None,
        "byte_offset": 0,
        "started_at": None,
        "completed_at": None,
        "error": None,
        "retryable": None,
        "refreshing": False,
        "passes": 0,
    }
    unit.update(fields)
    return unit


def format1_checkpoint() -> dict[str, Any]:
    """A checkpoint as gh-collect 0.1.0 wrote it, killed mid-run: zeta's pulls done and its
    issues failed (retryable), alpha's pulls in progress on page 3, its issues not begun."""
    config = make_config()
    phase_done = {"status": "complete", "started_at": V1_CREATED, "completed_at": V1_CREATED}
    return {
        "format_version": 1,
        "config_digest": config.digest,
        "config": config.digest_inputs(),
        "created_at": V1_CREATED,
        "updated_at": V1_LATER,
        "save_count": 7,
        "last_save_reason": "every 10 pages",
        "last_saved_at": V1_LATER,
        "current_phase": "pulls",
        "phases": {
            "discovery": {**phase_done, "error": None},
            "pulls": {
                "status": "in_progress",
                "started_at": V1_CREATED,
                "completed_at": None,
                "error": None,
            },
            "issues": {
                "status": "in_progress",
                "started_at": V1_CREATED,
                "completed_at": None,
                "error": None,
            },
        },
        "rate_limit": {
            "limit": 5000,
            "remaining": 4321,
            "reset": 1796177301.0,
            "resource": "core",
            "seen_at": V1_LATER,
        },
        "requests_made": 23,
        "validators_offset": 1234,
        "refreshes": 0,
        "export_pending": False,
        "repos": {
            ZETA: {
                "full_name": ZETA,
                "name": "zeta",
                "status": "failed",
                "started_at": V1_CREATED,
                "completed_at": None,
                "error": "issues: 502 Bad Gateway after 5 attempts",
                "endpoints": {
                    "pulls": _v1_unit(
                        "complete",
                        pages_collected=3,
                        records_collected=210,
                        last_page_written=3,
                        byte_offset=81920,
                        started_at=V1_CREATED,
                        completed_at=V1_LATER,
                        passes=1,
                    ),
                    "issues": _v1_unit(
                        "failed",
                        pages_collected=1,
                        records_collected=100,
                        last_page_written=1,
                        next_url=V1_ISSUES_NEXT,
                        byte_offset=20480,
                        started_at=V1_CREATED,
                        error="502 Bad Gateway after 5 attempts",
                        retryable=True,
                    ),
                },
            },
            ALPHA: {
                "full_name": ALPHA,
                "name": "alpha",
                "status": "in_progress",
                "started_at": V1_LATER,
                "completed_at": None,
                "error": None,
                "endpoints": {
                    "pulls": _v1_unit(
                        "in_progress",
                        pages_collected=2,
                        records_collected=200,
                        last_page_written=2,
                        next_url=V1_PULLS_NEXT,
                        byte_offset=37249,
                        started_at=V1_LATER,
                    ),
                    "issues": _v1_unit(),
                },
            },
        },
    }


def write_format1(tmp_path: Path) -> tuple[Path, Path, bytes]:
    checkpoint_path, lock_path = paths(tmp_path)
    checkpoint_path.parent.mkdir(parents=True)
    raw = json.dumps(format1_checkpoint(), indent=2).encode()
    checkpoint_path.write_bytes(raw)
    return checkpoint_path, lock_path, raw


def assert_migrated(state: ckpt.CheckpointState) -> None:
    """format1_checkpoint() in format 2: the same progress, unit by unit."""
    assert state.format_version == 2
    assert list(state.repos) == [ZETA, ALPHA]
    assert state.phases["discovery"].status == CheckpointStatus.COMPLETE
    assert state.endpoints == ["pulls", "issues"]
    assert (state.current_phase, state.requests_made, state.validators_offset) == (
        "pulls",
        23,
        1234,
    )
    zeta, alpha = state.repos[ZETA], state.repos[ALPHA]
    assert list(zeta.units) == list(alpha.units) == ["pulls", "issues"]
    assert (zeta.status, alpha.status) == ("failed", "in_progress")
    assert zeta.error == "issues: 502 Bad Gateway after 5 attempts"
    done, failed, going = zeta.units["pulls"], zeta.units["issues"], alpha.units["pulls"]
    assert (done.status, done.pages_collected, done.records_collected) == ("complete", 3, 210)
    assert (done.byte_offset, done.passes, done.resume_token) == (81920, 1, None)
    assert (failed.status, failed.retryable, failed.error) == (
        "failed",
        True,
        "502 Bad Gateway after 5 attempts",
    )
    assert (failed.resume_token, failed.byte_offset, failed.last_page_written) == (
        V1_ISSUES_NEXT,
        20480,
        1,
    )
    assert (going.status, going.resume_token, going.byte_offset) == (
        "in_progress",
        V1_PULLS_NEXT,
        37249,
    )
    assert (going.pages_collected, going.records_collected, going.last_page_written) == (2, 200, 2)
    assert alpha.units["issues"] == UnitProgress()
    assert (state.tally("pulls").pages, state.tally("pulls").records) == (5, 410)
    assert state.tally("issues").count(CheckpointStatus.FAILED) == 1
    assert state.records_per_repo("pulls") == {ZETA: 210, ALPHA: 200}
    assert state.failures() == [
        {
            "repo": ZETA,
            "endpoint": "issues",
            "error": "502 Bad Gateway after 5 attempts",
            "retryable": True,
        }
    ]
    assert list(state.rate_limits) == ["core"]
    core = state.rate_limits["core"]
    assert (core.limit, core.remaining, core.reset, core.resource) == (
        5000,
        4321,
        1796177301.0,
        "core",
    )
    assert state.rate_limit is core
    assert zeta.raw_part == "zeta" and zeta.file_part is None  # 0.1.0 derived it


def test_read_checkpoint_migrates_format1_in_memory_only(tmp_path: Path) -> None:
    checkpoint_path, _, raw = write_format1(tmp_path)
    before = sorted(checkpoint_path.parent.iterdir())
    state = ckpt.read_checkpoint(checkpoint_path)
    assert_migrated(state)
    assert (state.save_count, state.last_save_reason) == (7, "every 10 pages")  # not saved
    loaded = ckpt.load_checkpoint(checkpoint_path)
    assert (loaded.version, loaded.raw, loaded.state) == (1, raw, state)
    assert checkpoint_path.read_bytes() == raw  # byte-identical
    assert sorted(checkpoint_path.parent.iterdir()) == before  # no backup, no temp file


def test_migrate_v1_is_pure_and_maps_only_the_renamed_fields() -> None:
    v1 = format1_checkpoint()
    pristine = json.loads(json.dumps(v1))
    v2 = ckpt.migrate_v1(v1)
    assert v1 == pristine  # the input is not changed
    assert v2["format_version"] == 2 and "rate_limit" not in v2
    assert v2["rate_limits"] == {"core": v1["rate_limit"]}
    unit = v2["repos"][ALPHA]["units"]["pulls"]
    assert "next_url" not in unit and unit["resume_token"] == V1_PULLS_NEXT
    assert "endpoints" not in v2["repos"][ALPHA]
    untouched = set(v1) - {"format_version", "rate_limit", "repos"}
    assert {key: v2[key] for key in untouched} == {key: v1[key] for key in untouched}
    no_resource = {**v1, "rate_limit": {**v1["rate_limit"], "resource": None}}
    assert list(ckpt.migrate_v1(no_resource)["rate_limits"]) == ["core"]
    assert "rate_limits" not in ckpt.migrate_v1({**v1, "rate_limit": None})


def test_status_reads_a_format1_dataset_without_touching_it(tmp_path: Path) -> None:
    checkpoint_path, lock_path, raw = write_format1(tmp_path)
    state = CheckpointManager(checkpoint_path, lock_path).load()  # no lock: status
    assert_migrated(state)
    status = summarize(state, DatasetPaths(tmp_path, 2025, "sample-org"))
    assert status["rate_limit"]["remaining"] == 4321
    assert status["failures"] == [
        {"repo": ZETA, "endpoint": "issues", "error": "502 Bad Gateway after 5 attempts"}
    ]
    assert checkpoint_path.read_bytes() == raw
    assert not (checkpoint_path.parent / V1_BACKUP_NAME).exists()


def test_load_under_the_lock_migrates_on_disk_and_keeps_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint_path, lock_path, raw = write_format1(tmp_path)
    backup = checkpoint_path.with_name(V1_BACKUP_NAME)
    with CheckpointManager(checkpoint_path, lock_path, strategy=never()) as manager:
        state = manager.load()
        assert_migrated(state)
        assert (state.save_count, state.last_save_reason) == (8, "migrated from format 1")
        assert backup.read_bytes() == raw  # the original, byte for byte
        on_disk = ckpt.load_checkpoint(checkpoint_path)
        assert on_disk.version == 2 and json.loads(on_disk.raw)["format_version"] == 2
        assert on_disk.state == manager.state
        assert_migrated(on_disk.state)
        assert temp_files(checkpoint_path.parent) == []

        # Loading again is a no-op: nothing is written, no new backup.
        replaced: list[Path] = []
        real_replace = atomic._replace

        def spy(temp: Path, target: Path) -> None:
            replaced.append(target)
            real_replace(temp, target)

        monkeypatch.setattr(atomic, "_replace", spy)
        written = checkpoint_path.read_bytes()
        backup_stat = backup.stat()
        again = manager.load()
        assert replaced == []
        assert again.save_count == 8
        assert checkpoint_path.read_bytes() == written
        assert (backup.stat().st_ino, backup.stat().st_mtime_ns) == (
            backup_stat.st_ino,
            backup_stat.st_mtime_ns,
        )

        # The migrated checkpoint resumes where 0.1.0 stopped.
        assert manager.units_to_process("pulls") == [UnitKey(ALPHA, "pulls")]
        assert manager.unit(UnitKey(ALPHA, "pulls")).last_page_written + 1 == 3
        assert manager.units_to_process("issues") == [UnitKey(ALPHA, "issues")]
        assert manager.units_to_process("issues", retry_failed=True) == [
            UnitKey(ZETA, "issues"),
            UnitKey(ALPHA, "issues"),
        ]
        manager.validate_config(make_config())  # the digest carries over
        manager.delete_if_exists()  # --force: the backup goes with the dataset
    assert not checkpoint_path.exists() and not backup.exists()


def test_a_crash_after_the_backup_leaves_format1_and_the_next_load_migrates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint_path, lock_path, raw = write_format1(tmp_path)
    backup = checkpoint_path.with_name(V1_BACKUP_NAME)
    calls: list[Path] = []
    real_replace = atomic._replace

    def crash_on_second(temp: Path, target: Path) -> None:
        calls.append(target)
        if len(calls) == 2:  # the backup landed; now checkpoint.json's rename fails
            raise OSError(28, "No space left on device")
        real_replace(temp, target)

    monkeypatch.setattr(atomic, "_replace", crash_on_second)
    manager = CheckpointManager(checkpoint_path, lock_path, strategy=never())
    with manager, pytest.raises(StorageError, match="No space left"):
        manager.load()
    assert calls == [backup, checkpoint_path]
    assert checkpoint_path.read_bytes() == raw  # untouched, still format 1
    assert json.loads(checkpoint_path.read_bytes())["format_version"] == 1
    assert backup.read_bytes() == raw
    assert temp_files(checkpoint_path.parent) == []

    monkeypatch.setattr(atomic, "_replace", real_replace)
    with CheckpointManager(checkpoint_path, lock_path, strategy=never()) as manager:
        assert_migrated(manager.load())
    assert ckpt.load_checkpoint(checkpoint_path).version == 2
    assert_migrated(ckpt.read_checkpoint(checkpoint_path))
    assert backup.read_bytes() == raw


def test_a_crash_writing_the_backup_leaves_everything_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint_path, lock_path, raw = write_format1(tmp_path)

    def boom(*_args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, "_replace", boom)
    manager = CheckpointManager(checkpoint_path, lock_path, strategy=never())
    with manager, pytest.raises(StorageError, match=V1_BACKUP_NAME):
        manager.load()
    assert checkpoint_path.read_bytes() == raw
    assert not checkpoint_path.with_name(V1_BACKUP_NAME).exists()
    assert temp_files(checkpoint_path.parent) == []


def test_a_corrupt_format1_file_is_refused_before_any_backup(tmp_path: Path) -> None:
    checkpoint_path, lock_path, _ = write_format1(tmp_path)
    data = format1_checkpoint()
    data["repos"][ALPHA]["endpoints"]["pulls"]["byte_offset"] = -1
    raw = json.dumps(data).encode()
    checkpoint_path.write_bytes(raw)
    manager = CheckpointManager(checkpoint_path, lock_path)
    with manager, pytest.raises(CorruptCheckpointError, match="byte_offset"):
        manager.load()
    assert checkpoint_path.read_bytes() == raw
    assert not checkpoint_path.with_name(V1_BACKUP_NAME).exists()


def test_a_newer_format_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    checkpoint_path, lock_path = paths(tmp_path)
    checkpoint_path.parent.mkdir(parents=True)
    data = json.loads(_valid_bytes(tmp_path))
    data["format_version"] = 3
    data["something_new"] = {"units": "elsewhere"}  # whatever format 3 holds
    raw = json.dumps(data).encode()
    checkpoint_path.write_bytes(raw)
    with pytest.raises(CorruptCheckpointError, match="format version 3"):
        ckpt.read_checkpoint(checkpoint_path)
    with CheckpointManager(checkpoint_path, lock_path) as manager:
        listing = sorted(path.name for path in checkpoint_path.parent.iterdir())
        with pytest.raises(CorruptCheckpointError, match="format version 3") as info:
            manager.load()
        assert sorted(path.name for path in checkpoint_path.parent.iterdir()) == listing
    assert "upgrade gh-collect" in str(info.value)
    assert checkpoint_path.read_bytes() == raw
    assert not checkpoint_path.with_name(V1_BACKUP_NAME).exists()
    assert list(checkpoint_path.parent.glob("checkpoint.v*.json")) == []
    assert temp_files(checkpoint_path.parent) == []


def test_a_halted_manager_saves_nothing_more(cp: CheckpointManager) -> None:
    """After a page's step failed half way, no save may persist the state in memory."""
    cp.save("before")
    before = cp.checkpoint_path.read_bytes()
    cp.halt("recording page 3 failed")
    cp.state.refreshes += 1
    cp.save("after")
    asyncio.run(cp.save_async("after, async"))
    assert cp.checkpoint_path.read_bytes() == before


def test_a_save_point_hands_the_write_over_and_a_failed_write_fails_the_next(
    tmp_path: Path,
) -> None:
    """The walk goes on while the writer fsyncs (a save point that waited added a disk's
    latency to every page); a write that failed stops the run at its next save point."""
    checkpoint_path, lock_path = paths(tmp_path)
    gate, failing = threading.Event(), [False]

    def take_sync() -> Any:
        def job() -> None:
            gate.wait(5)
            if failing[0]:
                raise StorageError("cannot fsync: injected")

        return job

    with CheckpointManager(
        checkpoint_path, lock_path, strategy=AnyOf([EveryPages(1)]), take_sync=take_sync
    ) as manager:
        gate.set()
        manager.create_new(make_config())
        manager.update_repos(REPOS)
        manager.save("repos listed")
        before = checkpoint_path.read_bytes()
        gate.clear()
        failing[0] = True
        page(manager, ALPHA, "pulls", 1, 9, "u", 1)
        reason = asyncio.run(asyncio.wait_for(manager.maybe_save_async(), 2))
        assert reason == "every 1 page"  # returned while the write is still blocked
        assert checkpoint_path.read_bytes() == before
        gate.set()
        page(manager, ALPHA, "pulls", 2, 9, "u", 2)
        with pytest.raises(StorageError, match="injected"):
            for _ in range(50):  # the writer thread fails the write soon after the gate opens
                asyncio.run(manager.maybe_save_async())
                time.sleep(0.02)
        assert checkpoint_path.read_bytes() == before
