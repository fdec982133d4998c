"""The queue against a real redis-server: planning, leases, takeover, fencing, parking."""

from __future__ import annotations

import time

import pytest

from gh_collect.errors import DataError, QueueLostError, QueueUnavailableError, UsageError
from gh_collect.fleet.queue import RedisQueue, unit_id, unit_key
from tests.fleet_kit import RedisServer

UNITS = [unit_id("pulls", f"org/repo-{i}") for i in range(3)]


def make_queue(server: RedisServer, **options: float) -> RedisQueue:
    queue = RedisQueue(server.url, "test:q", **options)  # type: ignore[arg-type]
    queue.open_plan("digest-1", "store", ["pulls"])
    return queue


def test_planning_is_idempotent(redis_server: RedisServer) -> None:
    queue = make_queue(redis_server)
    assert queue.plan(UNITS) == 3
    assert queue.plan([*UNITS, unit_id("issues", "org/repo-0")]) == 1
    queue.finish_planning()
    taken = {queue.take("w1", block_ms=10) for _ in range(5)} - {None}
    assert sorted(lease.unit for lease in taken if lease) == sorted(
        [*UNITS, unit_id("issues", "org/repo-0")]
    )


def test_a_second_plan_with_other_settings_is_refused(redis_server: RedisServer) -> None:
    make_queue(redis_server)
    other = RedisQueue(redis_server.url, "test:q")
    with pytest.raises(UsageError, match="different settings"):
        other.open_plan("digest-2", "store", ["pulls"])


def test_a_dead_workers_unit_is_taken_over_after_the_lease(redis_server: RedisServer) -> None:
    queue = make_queue(redis_server, lease_s=0.3)
    queue.plan(UNITS[:1])
    first = queue.take("w1", block_ms=10)
    assert first is not None and not first.taken_over
    assert queue.take("w2", block_ms=10) is None  # leased: nobody else gets it
    time.sleep(0.4)
    second = queue.take("w2", block_ms=10)
    assert second is not None and second.taken_over and second.unit == first.unit
    assert second.fence > first.fence


def test_renewal_keeps_the_lease(redis_server: RedisServer) -> None:
    queue = make_queue(redis_server, lease_s=0.3)
    queue.plan(UNITS[:1])
    lease = queue.take("w1", block_ms=10)
    assert lease is not None
    for _ in range(4):
        time.sleep(0.15)
        assert queue.renew(lease, "w1")
        assert queue.take("w2", block_ms=10) is None


def test_fencing_refuses_a_stale_holder(redis_server: RedisServer) -> None:
    queue = make_queue(redis_server, lease_s=0.2)
    queue.plan(UNITS[:1])
    stale = queue.take("w1", block_ms=10)
    time.sleep(0.3)
    current = queue.take("w2", block_ms=10)
    assert stale is not None and current is not None
    progress = {"seq": 1, "pages": 1, "records": 5, "new_pages": 1, "new_records": 5}
    assert not queue.progress(stale, **progress)
    assert not queue.renew(stale, "w1")
    assert not queue.finish(stale, "complete")
    assert queue.progress(current, **progress)
    assert queue.finish(current, "complete")
    queue.finish_planning()
    assert queue.finished()
    assert queue.snapshot()["units"][UNITS[0]]["state"] == "complete"


def test_a_unit_taken_too_often_without_progress_is_parked(redis_server: RedisServer) -> None:
    queue = make_queue(redis_server, lease_s=0.05, max_stalls=2)
    queue.plan(UNITS[:1])
    queue.finish_planning()
    for worker in ("w1", "w2"):
        lease = queue.take(worker, block_ms=10)
        assert lease is not None
        assert queue.release(lease, worker, "boom: the walk crashed")
        time.sleep(0.1)
    assert queue.take("w3", block_ms=10) is None  # the third take parks it
    unit = queue.snapshot()["units"][UNITS[0]]
    assert unit["state"] == "failed" and "boom: the walk crashed" in unit["error"]
    assert queue.finished()
    assert queue.retry_failed() == 1
    assert not queue.finished()
    again = queue.take("w3", block_ms=10)
    assert again is not None and again.unit == UNITS[0]


def test_progress_resets_the_stall_count(redis_server: RedisServer) -> None:
    queue = make_queue(redis_server, lease_s=0.05, max_stalls=2)
    queue.plan(UNITS[:1])
    for seq in range(1, 5):  # four takes, each making progress: never parked
        lease = queue.take("w", block_ms=10)
        assert lease is not None
        assert queue.progress(lease, seq=seq, pages=seq, records=seq, new_pages=1, new_records=1)
        time.sleep(0.1)
    assert queue.snapshot()["units"][UNITS[0]]["state"] == "active"


def test_redis_gone_is_one_line_with_exit_75(redis_server: RedisServer) -> None:
    queue = make_queue(redis_server)
    redis_server.stop(kill=True)
    fast = RedisQueue(redis_server.url, "test:q", retries=1, patience_s=0.5)
    with pytest.raises(QueueUnavailableError) as raised:
        fast.plan(UNITS)
    assert raised.value.exit_code == 75 and "\n" not in str(raised.value)
    assert queue.url in str(raised.value)


def test_a_redis_that_lost_the_plan_says_so(redis_server: RedisServer) -> None:
    queue = make_queue(redis_server)
    redis_server.restart()  # no persistence: everything is gone
    with pytest.raises(QueueLostError, match="collect --queue"):
        queue.finished()


def test_a_password_never_shows(redis_server: RedisServer) -> None:
    queue = RedisQueue(f"redis://:hunter2secret@127.0.0.1:{redis_server.port}/0", "x")
    assert "hunter2secret" not in queue.url
    with pytest.raises(UsageError) as raised:
        RedisQueue("http://:hunter2secret@host/0", "x")
    assert "hunter2secret" not in str(raised.value)


def test_a_unit_id_this_code_did_not_write_is_one_line() -> None:
    assert unit_key(unit_id("reviews", "org/a", "12")) == ("reviews", "org/a", "12")
    with pytest.raises(DataError, match="not one"):
        unit_key("pulls:org/a")
