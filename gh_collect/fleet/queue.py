"""The work queue: units in a Redis stream, leased to workers, progress fenced.

Redis is the coordinator (the store's commit records are the truth, see ``commits``):

* **planning** is idempotent: a unit id enters the ``planned`` set and the stream in one
  Lua step, so planning twice (a second ``collect``, a parent's fan-out planned again) adds
  nothing;
* **leases**: a worker takes a unit with ``XREADGROUP`` (a consumer group: the unit stays
  in the pending entries list until acknowledged), renews it by resetting the entry's idle
  time (``XCLAIM ... JUSTID`` by the holder, only while its fence is current), and a dead
  worker's units are taken over with ``XAUTOCLAIM`` once idle for a lease;
* **fencing**: each take draws a token (``INCR``); every update of a unit (progress,
  completion, release) is a Lua script that first checks the caller's token is the unit's
  current one, so a paused holder that lost its lease changes nothing and learns it;
* **parking**: a unit taken ``max_stalls`` times in a row without progress is acknowledged
  and parked as failed with its last error (``--retry-failed`` plans it again).

Secrets never come here: ids are endpoint/repo names, values counts and messages.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from gh_collect.errors import DataError, QueueLostError, QueueUnavailableError, UsageError

__all__ = ["Lease", "RedisQueue", "unit_id", "unit_key"]

T = TypeVar("T")

STREAM, GROUP = "units", "workers"

_PLAN = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[3], 'state', 'pending', 'stalls', 0, 'deliveries', 0)
  redis.call('XADD', KEYS[2], '*', 'unit', ARGV[1])
  return 1
end
return 0
"""

# KEYS: unit hash, fence counter; ARGV: worker, message id, now, max stalls
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'complete' or state == 'failed' then return {-1, state} end
local stalls = redis.call('HINCRBY', KEYS[1], 'stalls', 1)
if stalls > tonumber(ARGV[4]) then return {-2, tostring(stalls)} end
local token = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'fence', token, 'holder', ARGV[1], 'msg', ARGV[2],
           'state', 'active', 'since', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'deliveries', 1)
return {token, state or ''}
"""

# KEYS: unit hash, stats hash; ARGV: fence, seq, pages, records, new pages, new records, now
_UPDATE = """
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'seq', ARGV[2], 'pages', ARGV[3], 'records', ARGV[4],
           'stalls', 0, 'updated', ARGV[7])
redis.call('HINCRBY', KEYS[2], 'pages', ARGV[5])
redis.call('HINCRBY', KEYS[2], 'records', ARGV[6])
return 1
"""

# KEYS: unit hash, stream, done set, failed set; ARGV: fence, group, state, error,
# retryable, unit id, now
_FINISH = """
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
local msg = redis.call('HGET', KEYS[1], 'msg')
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'error', ARGV[4], 'retryable', ARGV[5],
           'updated', ARGV[7], 'holder', '')
redis.call('SADD', KEYS[3], ARGV[6])
if ARGV[3] == 'failed' then redis.call('SADD', KEYS[4], ARGV[6]) end
if msg then redis.call('XACK', KEYS[2], ARGV[2], msg) end
return 1
"""

# KEYS: unit hash, stream; ARGV: fence, group, worker, idle ms (0: renew; lease: release), error
_TOUCH = """
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
local msg = redis.call('HGET', KEYS[1], 'msg')
redis.call('XCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, msg, 'IDLE', ARGV[4], 'JUSTID')
if ARGV[4] ~= '0' then redis.call('HSET', KEYS[1], 'state', 'pending') end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) end
return 1
"""


def unit_id(endpoint: str, repo: str, parent: str | None = None) -> str:
    """A unit's id in the queue: JSON, so no repo or parent name can make two ids collide."""
    return json.dumps([endpoint, repo, parent], separators=(",", ":"))


def unit_key(identifier: str) -> tuple[str, str, str | None]:
    """(endpoint, repo, parent) of a unit id; an id this code did not write is refused."""
    try:
        endpoint, repo, parent = json.loads(identifier)
    except (ValueError, TypeError):
        raise DataError(f"the queue holds a unit id that is not one: {identifier[:80]!r}") from None
    return str(endpoint), str(repo), None if parent is None else str(parent)


@dataclass(frozen=True)
class Lease:
    """A unit taken by this worker: its id, the stream entry, and the fencing token."""

    unit: str
    message: str
    fence: int
    taken_over: bool  # a dead (or slow) worker's unit


class RedisQueue:
    """One dataset's queue (a namespace per org and year) in one Redis database."""

    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        lease_s: float = 30.0,
        max_stalls: int = 5,
        retries: int = 3,
        patience_s: float = 20.0,
    ) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise UsageError(f"--queue {_safe_url(url)}: expected redis://HOST:PORT/DB")
        self.url = _safe_url(url)
        self.lease_ms = max(1, int(lease_s * 1000))
        self.max_stalls = max_stalls
        # Safe to repeat: planning is guarded by the planned set, a claim that ran twice only
        # drew two fences (the later one is the holder's), updates and completions are
        # fenced and idempotent, an entry read twice waits in this worker's pending list.
        self.patience_s = patience_s
        self._ns = namespace
        try:
            # Any: redis-py types every command as sync-or-awaitable; this client is sync.
            self._redis: Any = redis.Redis.from_url(
                url,
                socket_timeout=10,
                socket_connect_timeout=5,
                retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
                decode_responses=True,
            )
        except ValueError as exc:
            raise UsageError(f"--queue {self.url}: {exc}") from None
        self._plan: Any = self._redis.register_script(_PLAN)
        self._claim: Any = self._redis.register_script(_CLAIM)
        self._update: Any = self._redis.register_script(_UPDATE)
        self._finish: Any = self._redis.register_script(_FINISH)
        self._touch: Any = self._redis.register_script(_TOUCH)

    def k(self, name: str) -> str:
        return f"{self._ns}:{name}"

    def call(self, action: Callable[[], T]) -> T:
        """Redis errors become one line (the URL without its password), exit 75: the
        harvest can go on when Redis is back; what was committed stays in the store.

        A connection lost is tried again for ``patience_s`` (a Redis restarting: every
        command here is safe to repeat, see ``__init__``), then given up."""
        deadline, pause = time.monotonic() + self.patience_s, 0.1
        while True:
            try:
                return action()
            except redis.ResponseError as exc:
                if "LOADING" in str(exc) and time.monotonic() < deadline:
                    time.sleep(pause)
                    continue
                raise QueueUnavailableError(
                    f"Redis at {self.url} refused a command: {exc}"
                ) from None
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if time.monotonic() >= deadline:
                    raise self._lost(exc) from None
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
            except redis.RedisError as exc:
                raise self._lost(exc) from None

    def _lost(self, exc: Exception) -> QueueUnavailableError:
        return QueueUnavailableError(
            f"lost the queue at {self.url} ({type(exc).__name__}): start Redis again and "
            "rerun the same command; what was committed to the store is kept"
        )

    # ---- planning

    def meta(self) -> dict[str, str]:
        return self.call(lambda: self._redis.hgetall(self.k("meta")))

    def open_plan(self, digest: str, store: str, endpoints: Iterable[str]) -> None:
        """Start (or join) the plan of this dataset; a different digest is refused."""
        meta = self.meta()
        if meta and meta.get("digest") != digest:
            raise UsageError(
                f"the queue at {self.url} holds a harvest of different settings (digest "
                f"{meta.get('digest', '?')[:12]}): use another Redis database, or delete the "
                f"keys {self._ns}:*"
            )
        fields = {"digest": digest, "store": store, "endpoints": ",".join(endpoints)}
        if not meta:
            fields["started"] = f"{time.time():.3f}"
        self.call(lambda: self._redis.hset(self.k("meta"), mapping=fields))
        self._ensure_group()

    def _ensure_group(self) -> None:
        try:
            self._redis.xgroup_create(self.k(STREAM), GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise QueueUnavailableError(f"Redis at {self.url}: {exc}") from None
        except redis.RedisError:
            self.call(lambda: self._redis.ping())

    def plan(self, units: Iterable[str]) -> int:
        """Plan every unit not planned yet; returns how many were new."""
        keys = [self.k("planned"), self.k(STREAM)]
        added = 0
        for unit in units:
            added += int(
                self.call(partial(self._plan, keys=[*keys, self._unit(unit)], args=[unit]))
            )
        return added

    def finish_planning(self) -> None:
        self.call(lambda: self._redis.hset(self.k("meta"), "planned", "1"))

    def require_plan(self) -> dict[str, str]:
        """The plan's meta; QueueLostError when it vanished (Redis lost without persistence)."""
        meta = self.meta()
        if not meta:
            raise QueueLostError(
                f"the queue at {self.url} holds no harvest (Redis restarted without its data?): "
                "run `gh-collect collect --queue` again to plan what is left; what was "
                "committed to the store is kept and adopted"
            )
        return meta

    def retry_failed(self) -> int:
        """Plan the failed units again (retryable or parked ones)."""
        failed = self.call(lambda: self._redis.smembers(self.k("failed")))
        count = 0
        for unit in failed:
            info = self.call(partial(self._redis.hgetall, self._unit(unit)))
            if info.get("retryable") != "1":
                continue
            self.call(partial(self._requeue, unit))
            count += 1
        return count

    def _requeue(self, unit: str) -> None:
        pipe = self._redis.pipeline()
        pipe.srem(self.k("failed"), unit)
        pipe.srem(self.k("done"), unit)
        pipe.hset(self._unit(unit), mapping={"state": "pending", "stalls": 0, "error": ""})
        pipe.xadd(self.k(STREAM), {"unit": unit})
        pipe.execute()

    def _unit(self, unit: str) -> str:
        return self.k(f"unit:{unit}")

    # ---- leases

    def take(self, worker: str, *, block_ms: int = 1000) -> Lease | None:
        """A dead worker's unit idle for a lease, else a new one; None if none came."""
        entry = self._autoclaim(worker)
        taken_over = entry is not None
        if entry is None:
            entry = self._read_new(worker, block_ms)
        if entry is None:
            return None
        message, unit = entry
        return self._claim_unit(worker, message, unit, taken_over)

    def _autoclaim(self, worker: str) -> tuple[str, str] | None:
        answer = self.call(
            lambda: self._redis.xautoclaim(
                self.k(STREAM), GROUP, worker, self.lease_ms, start_id="0-0", count=1
            )
        )
        claimed = answer[1] if len(answer) > 1 else []
        for message, fields in claimed:
            if fields and "unit" in fields:
                return str(message), str(fields["unit"])
        return None

    def _read_new(self, worker: str, block_ms: int) -> tuple[str, str] | None:
        answer = self.call(
            lambda: self._redis.xreadgroup(
                GROUP, worker, {self.k(STREAM): ">"}, count=1, block=block_ms
            )
        )
        for _stream, entries in answer or []:
            for message, fields in entries:
                return str(message), str(fields["unit"])
        return None

    def _claim_unit(self, worker: str, message: str, unit: str, taken_over: bool) -> Lease | None:
        args = [worker, message, f"{time.time():.3f}", self.max_stalls]
        token, detail = self.call(
            lambda: self._claim(keys=[self._unit(unit), self.k("fence")], args=args)
        )
        token = int(token)
        if token == -1:  # planned again after it ended: only the stream entry is left
            self.call(lambda: self._redis.xack(self.k(STREAM), GROUP, message))
            return None
        if token == -2:
            self._park(unit, message, int(detail))
            return None
        return Lease(unit, message, token, taken_over)

    def _park(self, unit: str, message: str, stalls: int) -> None:
        """Taken too often without progress: failed (retryable), with the last error."""
        error = self.call(lambda: self._redis.hget(self._unit(unit), "error")) or ""
        why = f"taken {stalls - 1} times without progress" + (
            f"; last error: {error}" if error else ""
        )
        pipe = self._redis.pipeline()
        pipe.hset(self._unit(unit), mapping={"state": "failed", "error": why, "retryable": "1"})
        pipe.sadd(self.k("done"), unit)
        pipe.sadd(self.k("failed"), unit)
        pipe.xack(self.k(STREAM), GROUP, message)
        self.call(pipe.execute)

    def renew(self, lease: Lease, worker: str) -> bool:
        """Reset the lease's idle time; False when the unit has another holder now."""
        args = [lease.fence, GROUP, worker, 0, ""]
        return bool(
            self.call(lambda: self._touch(keys=[self._unit(lease.unit), self.k(STREAM)], args=args))
        )

    def release(self, lease: Lease, worker: str, error: str) -> bool:
        """Give the unit back at once (its entry made idle for a lease), with the error."""
        args = [lease.fence, GROUP, worker, self.lease_ms, error]
        return bool(
            self.call(lambda: self._touch(keys=[self._unit(lease.unit), self.k(STREAM)], args=args))
        )

    def progress(
        self, lease: Lease, *, seq: int, pages: int, records: int, new_pages: int, new_records: int
    ) -> bool:
        """Record a commit's progress; False: the caller's fence is stale (stop the unit)."""
        args = [lease.fence, seq, pages, records, new_pages, new_records, f"{time.time():.3f}"]
        keys = [self._unit(lease.unit), self.k("stats")]
        return bool(self.call(lambda: self._update(keys=keys, args=args)))

    def check(self, lease: Lease) -> bool:
        """Whether ``lease`` still holds its unit (its fence is the current one)."""
        fence = self.call(lambda: self._redis.hget(self._unit(lease.unit), "fence"))
        return bool(fence == str(lease.fence))

    def finish(self, lease: Lease, state: str, error: str = "", *, retryable: bool = False) -> bool:
        keys = [self._unit(lease.unit), self.k(STREAM), self.k("done"), self.k("failed")]
        args = [
            lease.fence,
            GROUP,
            state,
            error,
            "1" if retryable else "0",
            lease.unit,
            f"{time.time():.3f}",
        ]
        return bool(self.call(lambda: self._finish(keys=keys, args=args)))

    # ---- the whole

    def finished(self) -> bool:
        """Planning is over and every planned unit ended (complete or failed)."""
        meta = self.require_plan()
        if meta.get("planned") != "1":
            return False
        planned = self.call(lambda: self._redis.scard(self.k("planned")))
        done = self.call(lambda: self._redis.scard(self.k("done")))
        return bool(done >= planned)

    def heartbeat(self, worker: str, info: dict[str, Any]) -> None:
        self.call(lambda: self._redis.hset(self.k("workers"), worker, json.dumps(info)))

    def script(self, text: str) -> Any:
        """A Lua script registered on this queue's connection."""
        return self._redis.register_script(text)

    def worker_budgets(self) -> dict[str, tuple[float, list[str]]]:
        """Worker name -> (its last heartbeat, epoch seconds; the budgets it spends)."""
        beats = self.call(lambda: self._redis.hgetall(self.k("workers")))
        out = {}
        for name, value in beats.items():
            info = json.loads(value)
            out[name] = (float(info.get("seen", 0)), [str(b) for b in info.get("budgets", [])])
        return out

    def leave(self, worker: str) -> None:
        """This worker is done: no longer counted among those sharing a credential."""
        self.call(lambda: self._redis.hdel(self.k("workers"), worker))

    def record_budget(self, resource: str, remaining: int, limit: int, reset: float) -> None:
        value = json.dumps(
            {"remaining": remaining, "limit": limit, "reset": reset, "seen": time.time()}
        )
        self.call(lambda: self._redis.hset(self.k("budget"), resource, value))

    def snapshot(self) -> dict[str, Any]:
        """Everything ``status --queue`` shows, read in one pipeline."""
        pipe = self._redis.pipeline()
        pipe.hgetall(self.k("meta"))
        pipe.smembers(self.k("planned"))
        pipe.hgetall(self.k("workers"))
        pipe.hgetall(self.k("stats"))
        pipe.hgetall(self.k("budget"))
        pipe.hgetall(self.k("budgets"))
        meta, planned, workers, stats, budget, shared = self.call(pipe.execute)
        pipe = self._redis.pipeline()
        for unit in sorted(planned):
            pipe.hgetall(self._unit(unit))
        units = dict(zip(sorted(planned), self.call(pipe.execute), strict=True))
        return {
            "meta": meta, "units": units, "workers": workers, "stats": stats, "budget": budget,
            "shared_budgets": shared,
        }  # fmt: skip

    def delete_all(self) -> None:
        """``--force``: forget this dataset's queue (the store is cleared by the caller)."""
        keys = self.call(lambda: list(self._redis.scan_iter(match=f"{self._ns}:*", count=500)))
        if keys:
            self.call(lambda: self._redis.delete(*keys))


def _safe_url(url: str) -> str:
    """The URL without a password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return f"{scheme}{sep}{rest}"
