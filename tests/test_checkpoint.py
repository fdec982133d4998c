from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from gh_collect import atomic
from gh_collect import checkpoint as ckpt
from gh_collect.checkpoint import (
    SAVE_STEPS,
    AnyOf,
    CheckpointManager,
    CheckpointStatus,
    EndpointProgress,
    EveryPages,
    EveryRecords,
    EverySeconds,
    RateLimitBelow,
    SaveContext,
    derive_repo_status,
    strategy_from_settings,
)
from gh_collect.config import CheckpointSettings, Config, RateLimitSettings
from gh_collect.errors import (
    CheckpointError,
    CorruptCheckpointError,
    DigestMismatchError,
    LockHeldError,
    StorageError,
    UsageError,
)

ROOT = Path(__file__).resolve().parents[1]
REPOS = [
    {"full_name": "sample-org/zeta", "name": "zeta"},
    {"full_name": "sample-org/alpha", "name": "alpha"},
    {"full_name": "sample-org/mid-repo", "name": "mid-repo"},
]


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


# --------------------------------------------------------------------- create / save / load


def test_create_new_saves_pending_phases_with_reason(tmp_path: Path) -> None:
    with CheckpointManager(*paths(tmp_path)) as manager:
        state = manager.create_new(make_config(endpoints=["issues", "pulls"]))
    assert list(state.phases) == ["discovery", "issues", "pulls"]
    assert all(p.status == CheckpointStatus.PENDING for p in state.phases.values())
    assert (state.save_count, state.last_save_reason) == (1, "created")
    assert state.config == make_config(endpoints=["issues", "pulls"]).digest_inputs()
    assert state.created_at.tzinfo is not None


def test_round_trip_preserves_discovery_order_and_progress(cp: CheckpointManager) -> None:
    cp.update_progress(
        "sample-org/alpha", "pulls", page=1, records=7, next_url="https://x/?after=c1",
        byte_offset=512,
    )  # fmt: skip
    cp.save("manual")
    text = cp.checkpoint_path.read_text()
    assert text.startswith("{\n  ")  # human-readable
    loaded = CheckpointManager(cp.checkpoint_path, cp.lock_path).load()
    assert list(loaded.repos) == [r["full_name"] for r in REPOS]
    assert loaded == cp.state
    alpha = loaded.repos["sample-org/alpha"].endpoints["pulls"]
    assert (alpha.next_url, alpha.byte_offset, alpha.records_collected) == (
        "https://x/?after=c1",
        512,
        7,
    )
    assert (loaded.save_count, loaded.last_save_reason) == (2, "manual")


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


def _valid_bytes(tmp_path: Path) -> bytes:
    with CheckpointManager(*paths(tmp_path / "source")) as manager:
        manager.create_new(make_config())
        manager.update_repos(REPOS)
        manager.save("source")
    return manager.checkpoint_path.read_bytes()


def _future(raw: bytes) -> bytes:
    data = json.loads(raw)
    data["format_version"] = 2
    return json.dumps(data).encode()


def _bad_status(raw: bytes) -> bytes:
    data = json.loads(raw)
    data["repos"]["sample-org/alpha"]["endpoints"]["pulls"]["status"] = "bogus"
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda raw: b"this is not json", "not valid JSON"),
        (lambda raw: raw[: len(raw) // 2], "not valid JSON"),
        (lambda raw: b"", "not valid JSON"),
        (lambda raw: b"\xff\xfe{", "corrupt"),
        (lambda raw: b"[1, 2]", "expected a JSON object"),
        (_bad_status, "repos.sample-org/alpha.endpoints.pulls.status"),
        (_future, "newer than this gh-collect"),
    ],
    ids=["garbage", "truncated", "empty", "binary", "list", "invalid-schema", "future-version"],
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
    from gh_collect.checkpoint import CheckpointManager

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


def test_update_progress_saves_when_the_strategy_fires(tmp_path: Path) -> None:
    clock = FakeClock()
    strategy = AnyOf([EveryPages(3), EverySeconds(60)])
    with CheckpointManager(*paths(tmp_path), strategy=strategy, clock=clock) as manager:
        manager.create_new(make_config())
        manager.update_repos(REPOS)
        repo = "sample-org/alpha"

        def page(number: int) -> str | None:
            return manager.update_progress(
                repo, "pulls", page=number, records=5, next_url="u", byte_offset=number
            )

        assert [page(1), page(2), page(3), page(4)] == [None, None, "every 3 pages", None]
        clock.now += 61
        assert page(5) == "every 60 seconds"  # page counter was reset by the save at page 3
    saved = ckpt.read_checkpoint(manager.checkpoint_path)
    assert (saved.save_count, saved.last_save_reason) == (3, "every 60 seconds")
    assert saved.repos[repo].endpoints["pulls"].last_page_written == 5


def test_record_rate_limit_saves_once_below_threshold(tmp_path: Path) -> None:
    strategy = strategy_from_settings(CheckpointSettings(), RateLimitSettings(save_below=0.2))
    with CheckpointManager(*paths(tmp_path), strategy=strategy) as manager:
        manager.create_new(make_config())
        assert manager.record_rate_limit(5000, 4000, 1.7e9, "core") is None
        assert manager.record_rate_limit(5000, 900, 1.7e9, "core") == "rate limit 18% <= 20%"
        assert manager.record_rate_limit(5000, 899, 1.7e9, "core") is None
        assert manager.state.save_count == 2
        assert manager.get_stats()["rate_limit"]["remaining"] == 899


# --------------------------------------------------------------------- before_save


def test_before_save_runs_before_the_file_is_written(tmp_path: Path) -> None:
    checkpoint_path, lock_path = paths(tmp_path)
    seen: list[int | None] = []

    def before_save() -> None:
        exists = checkpoint_path.exists()
        seen.append(ckpt.read_checkpoint(checkpoint_path).save_count if exists else None)

    with CheckpointManager(checkpoint_path, lock_path, before_save=before_save) as manager:
        manager.create_new(make_config())
        manager.save("second")
    assert seen == [None, 1]


def test_raising_before_save_prevents_the_save(cp: CheckpointManager) -> None:
    before = cp.checkpoint_path.read_bytes()

    def fail() -> None:
        raise StorageError("fsync of JSONL failed")

    cp._before_save = fail
    with pytest.raises(StorageError, match="JSONL"):
        cp.save("blocked")
    assert cp.checkpoint_path.read_bytes() == before
    assert cp.state.last_save_reason != "blocked"


# --------------------------------------------------------------------- repos to process


def test_retry_failed_only_takes_retryable_failures(cp: CheckpointManager) -> None:
    for repo in ("sample-org/zeta", "sample-org/alpha", "sample-org/mid-repo"):
        cp.mark_repo_endpoint_complete(repo, "pulls", byte_offset=0)
        cp.mark_repo_endpoint_complete(repo, "issues", byte_offset=0)
    cp.mark_repo_endpoint_failed("sample-org/zeta", "pulls", "503 twice", retryable=True)
    cp.mark_repo_endpoint_failed("sample-org/alpha", "issues", "404 gone", retryable=False)
    assert cp.get_repos_to_process() == []
    assert cp.get_repos_to_process(retry_failed=True) == ["sample-org/zeta"]
    assert cp.state.repos["sample-org/alpha"].status == CheckpointStatus.FAILED
    assert cp.state.repos["sample-org/alpha"].error == "issues: 404 gone"


def test_failed_endpoint_does_not_hide_other_pending_endpoints(cp: CheckpointManager) -> None:
    cp.mark_repo_endpoint_failed("sample-org/zeta", "pulls", "403 forbidden", retryable=False)
    assert "sample-org/zeta" in cp.get_repos_to_process()
    assert "sample-org/zeta" not in cp.get_repos_to_process(endpoint="pulls")
    assert "sample-org/zeta" in cp.get_repos_to_process(endpoint="issues")


@pytest.mark.parametrize("wanted", ["sample-org/alpha", "alpha", "SAMPLE-ORG/Alpha", " ALPHA "])
def test_from_repo_starts_at_that_repo(cp: CheckpointManager, wanted: str) -> None:
    assert cp.get_repos_to_process(from_repo=wanted) == ["sample-org/alpha", "sample-org/mid-repo"]


def test_unknown_from_repo_lists_close_matches(cp: CheckpointManager) -> None:
    with pytest.raises(UsageError) as info:
        cp.get_repos_to_process(from_repo="sample-org/alpah")
    assert "did you mean sample-org/alpha" in str(info.value)
    assert info.value.exit_code == 2
    with pytest.raises(UsageError, match="pass owner/name"):
        cp.get_repos_to_process(from_repo="nothing-like-it-at-all")


def test_update_repos_keeps_prior_progress(cp: CheckpointManager) -> None:
    cp.update_progress("sample-org/alpha", "pulls", page=1, records=3, next_url="n", byte_offset=99)
    cp.update_repos([{"full_name": "sample-org/new", "name": "new"}, *REPOS[1:]])
    assert list(cp.state.repos) == [
        "sample-org/new",
        "sample-org/alpha",
        "sample-org/mid-repo",
        "sample-org/zeta",  # no longer discovered: kept, its data is on disk
    ]
    assert cp.endpoint_progress("sample-org/alpha", "pulls").byte_offset == 99
    new = cp.state.repos["sample-org/new"]
    assert list(new.endpoints) == ["pulls", "issues"]
    assert new.status == CheckpointStatus.PENDING


# --------------------------------------------------------------------- endpoint progress


def test_endpoint_lifecycle_and_repo_status(cp: CheckpointManager) -> None:
    repo = "sample-org/alpha"
    assert cp.get_resume_page(repo, "pulls") == 1
    cp.mark_repo_endpoint_in_progress(repo, "pulls")
    assert cp.state.repos[repo].status == CheckpointStatus.IN_PROGRESS
    cp.update_progress(repo, "pulls", page=1, records=100, next_url="p2", byte_offset=10)
    cp.update_progress(repo, "pulls", page=2, records=20, next_url=None, byte_offset=20)
    assert cp.get_resume_page(repo, "pulls") == 3
    cp.mark_repo_endpoint_complete(repo, "pulls", byte_offset=20)
    assert cp.is_repo_endpoint_complete(repo, "pulls")
    assert cp.state.repos[repo].status == CheckpointStatus.IN_PROGRESS
    cp.mark_repo_endpoint_complete(repo, "issues", byte_offset=0)
    assert cp.state.repos[repo].status == CheckpointStatus.COMPLETE
    assert cp.state.repos[repo].completed_at is not None


def test_progress_only_moves_forward(cp: CheckpointManager) -> None:
    repo = "sample-org/alpha"
    cp.update_progress(repo, "pulls", page=1, records=1, next_url="p2", byte_offset=10)
    with pytest.raises(ValueError, match="does not follow"):
        cp.update_progress(repo, "pulls", page=1, records=1, next_url="p2", byte_offset=20)
    with pytest.raises(ValueError, match="does not follow"):
        cp.update_progress(repo, "pulls", page=2, records=1, next_url="p3", byte_offset=5)


def test_reset_and_retry_of_a_failed_endpoint(cp: CheckpointManager) -> None:
    repo = "sample-org/alpha"
    cp.update_progress(repo, "pulls", page=1, records=4, next_url="p2", byte_offset=10)
    cp.mark_repo_endpoint_failed(repo, "pulls", "502", retryable=True)
    cp.mark_repo_endpoint_in_progress(repo, "pulls")  # resume keeps the resume point
    resumed = cp.endpoint_progress(repo, "pulls")
    assert (resumed.status, resumed.next_url, resumed.error) == ("in_progress", "p2", None)
    cp.reset_repo_endpoint(repo, "pulls")
    assert cp.endpoint_progress(repo, "pulls") == EndpointProgress()
    with pytest.raises(KeyError):
        cp.reset_repo_endpoint(repo, "commits")


def test_endpoint_progress_is_a_copy(cp: CheckpointManager) -> None:
    cp.endpoint_progress("sample-org/alpha", "pulls").pages_collected = 99
    assert cp.endpoint_progress("sample-org/alpha", "pulls").pages_collected == 0


def test_derive_repo_status() -> None:
    done = EndpointProgress(status=CheckpointStatus.COMPLETE)
    pending = EndpointProgress()
    failed = EndpointProgress(status=CheckpointStatus.FAILED)
    assert derive_repo_status([pending, pending]) == CheckpointStatus.PENDING
    assert derive_repo_status([done, pending]) == CheckpointStatus.IN_PROGRESS
    assert derive_repo_status([done, done]) == CheckpointStatus.COMPLETE
    assert derive_repo_status([done, failed]) == CheckpointStatus.FAILED


# --------------------------------------------------------------------- phases and stats


def test_phase_end_saves_with_reason(cp: CheckpointManager) -> None:
    cp.set_current_phase("pulls")
    assert not cp.is_phase_complete("pulls")
    cp.mark_phase_complete("pulls")
    saved = ckpt.read_checkpoint(cp.checkpoint_path)
    assert saved.last_save_reason == "phase end: pulls"
    assert saved.phases["pulls"].status == CheckpointStatus.COMPLETE
    assert saved.current_phase == "pulls"
    cp.mark_phase_failed("issues", "2 repos failed")
    assert cp.state.phases["issues"].error == "2 repos failed"
    assert cp.state.last_save_reason == "phase end: issues (failed)"
    with pytest.raises(KeyError, match="unknown phase"):
        cp.set_current_phase("commits")


def test_get_stats_counts(cp: CheckpointManager) -> None:
    cp.update_progress(
        "sample-org/zeta", "pulls", page=1, records=30, next_url=None, byte_offset=300
    )
    cp.mark_repo_endpoint_complete("sample-org/zeta", "pulls", byte_offset=300)
    cp.mark_repo_endpoint_complete("sample-org/zeta", "issues", byte_offset=0)
    cp.update_progress(
        "sample-org/alpha", "pulls", page=1, records=2, next_url="p2", byte_offset=20
    )
    cp.mark_repo_endpoint_failed("sample-org/mid-repo", "issues", "451", retryable=False)
    cp.count_request(3)
    cp.save("stats")
    stats = cp.get_stats()
    assert (stats["total_repos"], stats["repos_complete"], stats["repos_in_progress"]) == (3, 1, 1)
    assert (stats["repos_pending"], stats["repos_failed"]) == (0, 1)
    assert stats["endpoints"]["pulls"] == {
        "pages": 2, "records": 32, "complete": 1, "in_progress": 1, "pending": 1, "failed": 0,
    }  # fmt: skip
    assert stats["endpoints"]["issues"]["failed"] == 1
    assert stats["phases"] == {"discovery": "pending", "pulls": "pending", "issues": "pending"}
    assert (stats["save_count"], stats["last_save_reason"]) == (2, "stats")
    assert stats["requests_made"] == 3
    assert stats["failures"] == [
        {"repo": "sample-org/mid-repo", "endpoint": "issues", "error": "451", "retryable": False}
    ]
    json.dumps(stats)  # ready for `status --json`


# --------------------------------------------------------------------- signals


def test_signal_handler_via_signal_module(cp: CheckpointManager) -> None:
    received: list[int] = []
    previous = signal.getsignal(signal.SIGTERM)
    cp.install_signal_handlers(received.append)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
    finally:
        cp.restore_signal_handlers()
    assert received == [signal.SIGTERM]
    assert cp.stop_signal == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == previous


def test_signal_handler_via_event_loop(cp: CheckpointManager) -> None:
    received: list[int] = []

    async def main() -> None:
        cp.install_signal_handlers(received.append, asyncio.get_running_loop())
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.01)
        finally:
            cp.restore_signal_handlers()

    asyncio.run(main())
    assert received == [signal.SIGINT]
    assert cp.stop_signal == signal.SIGINT


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
    cp.update_progress(
        "sample-org/alpha", "pulls", page=1, records=5, next_url="https://x/p2", byte_offset=50
    )
    cp.save("a page")
    _saved_equals_state(cp)
    cp.mark_repo_endpoint_complete("sample-org/alpha", "pulls", byte_offset=50)
    cp.mark_repo_endpoint_failed("sample-org/zeta", "issues", "boom", retryable=True)
    cp.save("complete and failed")
    _saved_equals_state(cp)
    cp.reset_repo_endpoint("sample-org/zeta", "issues")
    cp.begin_refresh("sample-org/alpha", "pulls")
    cp.save("reset and refresh")
    _saved_equals_state(cp)
    cp.update_repos([{"full_name": 'sample-org/ünïcode "q"', "name": "x"}, *REPOS])
    cp.save("new repo")
    _saved_equals_state(cp)
    assert cp.load().model_dump() == cp.state.model_dump()


def test_saved_file_is_indented_json_like_the_model_dump(cp: CheckpointManager) -> None:
    cp.update_progress("sample-org/zeta", "pulls", page=1, records=1, next_url=None, byte_offset=9)
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
    commit = ckpt._GroupCommit(write)
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

    commit = ckpt._GroupCommit(write)
    with pytest.raises(StorageError):
        commit.submit(lambda: None, b"bad").result(5)
    with pytest.raises(StorageError):
        commit.submit(lambda: None, b"good").result(5)  # its fsync debt died with "bad"
    with pytest.raises(StorageError):
        commit.wait()
    commit.close()
    assert written == []


def test_save_async_writes_the_snapshot_and_runs_the_sync_job_first(tmp_path: Path) -> None:
    order: list[str] = []
    checkpoint_path, lock_path = paths(tmp_path)

    def take_sync() -> Any:
        def job() -> None:
            order.append("sync")

        return job

    async def scenario(manager: CheckpointManager) -> None:
        manager.update_progress(
            "sample-org/zeta", "pulls", page=1, records=3, next_url=None, byte_offset=30,
            save=False,
        )  # fmt: skip
        real = ckpt.atomic_write

        def recording_write(target: Path, data: bytes) -> None:
            order.append("write")
            real(target, data)

        ckpt.atomic_write = recording_write
        try:
            await manager.save_async("background")
        finally:
            ckpt.atomic_write = real

    with CheckpointManager(
        checkpoint_path, lock_path, strategy=never(), take_sync=take_sync
    ) as manager:
        manager.create_new(make_config())
        manager.update_repos(REPOS)
        asyncio.run(scenario(manager))
        on_disk = json.loads(checkpoint_path.read_bytes())
        assert order == ["sync", "write"]
        assert on_disk["last_save_reason"] == "background"
        assert on_disk["repos"]["sample-org/zeta"]["endpoints"]["pulls"]["byte_offset"] == 30
        assert manager.load().save_count == on_disk["save_count"]


def test_a_failed_background_save_stops_every_later_save(tmp_path: Path) -> None:
    checkpoint_path, lock_path = paths(tmp_path)

    def take_sync() -> Any:
        def job() -> None:
            raise StorageError("cannot fsync: injected")

        return job

    with CheckpointManager(
        checkpoint_path, lock_path, strategy=never(), take_sync=take_sync
    ) as manager:
        manager.create_new(make_config())
        before = checkpoint_path.read_bytes()
        with pytest.raises(StorageError, match="injected"):
            asyncio.run(manager.save_async("doomed"))
        with pytest.raises(StorageError, match="injected"):
            manager.save("after the failure")  # would claim bytes never fsynced
        assert checkpoint_path.read_bytes() == before


def test_a_cancelled_waiter_does_not_cancel_the_write(tmp_path: Path) -> None:
    checkpoint_path, lock_path = paths(tmp_path)
    gate = threading.Event()

    def take_sync() -> Any:
        return lambda: gate.wait(5)

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
        manager.update_progress(
            "sample-org/Twin", "pulls", page=1, records=1, next_url=None, byte_offset=10
        )
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
