"""The commit protocol: raw data joins the dataset only through a commit record created once.

A unit's holder writes what it fetched since its last commit as an immutable part
(``.../endpoint=E/repo=R/part-<fence>-<seq>.jsonl``), then creates the commit record
``.../_commits/endpoint=E/repo=R/<seq>.json`` with ``create_once``. The record lists every
part of the unit so far (in order) and the unit's progress after them (its resume token,
counts, passes), so the newest record alone says what the unit holds and where it goes on.
Two holders racing for the same ``seq`` (a paused one and its successor) cannot both win:
the loser deletes its part and stops. A part no record lists is not data: readers and the
export read committed parts only, and ``sweep_orphans`` deletes the rest once no unit is
in flight. The store's records are the source of truth; Redis only coordinates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gh_collect.durable.checkpoint import UnitKey, UnitProgress
from gh_collect.durable.paths import safe_part
from gh_collect.errors import CorruptCheckpointError
from gh_collect.fleet.store import ObjectStore

__all__ = ["CommitRecord", "FleetLayout", "PartRef", "commit", "latest", "read_parts"]


class PartRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    size: int = Field(ge=0)


class CommitRecord(BaseModel):
    """What one unit holds after commit ``seq``: its parts, in order, and its progress."""

    model_config = ConfigDict(extra="forbid")
    unit: str
    seq: int = Field(ge=1)
    fence: int = Field(ge=0)
    worker: str
    parts: list[PartRef] = Field(default_factory=list)
    progress: UnitProgress
    committed_at: datetime

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)


@dataclass(frozen=True)
class FleetLayout:
    """The keys of one dataset (org, year) in the store, relative to ``output.root``:
    the SPEC's Hive layout, with a unit's raw data as a folder of parts."""

    year: int
    target: str

    @property
    def raw(self) -> str:
        return f"raw/year={self.year}/source=github/target={safe_part(self.target)}"

    @property
    def curated(self) -> str:
        return f"curated/year={self.year}/source=github/target={safe_part(self.target)}"

    @property
    def repos_file(self) -> str:
        return f"{self.raw}/repos.jsonl"

    @property
    def plan_file(self) -> str:
        return f"{self.raw}/_fleet/plan.json"

    def _unit_path(self, key: UnitKey, repo_part: str) -> str:
        path = f"endpoint={safe_part(key.endpoint)}/repo={repo_part}"
        return path if key.parent is None else f"{path}/parent={safe_part(key.parent)}"

    def parts_dir(self, key: UnitKey, repo_part: str) -> str:
        return f"{self.raw}/{self._unit_path(key, repo_part)}"

    def commits_dir(self, key: UnitKey, repo_part: str) -> str:
        return f"{self.raw}/_commits/{self._unit_path(key, repo_part)}"

    def part_key(self, key: UnitKey, repo_part: str, fence: int, seq: int) -> str:
        return f"{self.parts_dir(key, repo_part)}/part-{fence:012d}-{seq:08d}.jsonl"

    def commit_key(self, key: UnitKey, repo_part: str, seq: int) -> str:
        return f"{self.commits_dir(key, repo_part)}/{seq:08d}.json"


def latest(
    store: ObjectStore, layout: FleetLayout, key: UnitKey, repo_part: str
) -> CommitRecord | None:
    """The unit's newest commit record (None: nothing committed yet)."""
    # the trailing "/": a listing is by prefix, and repo=a-b must not list repo=a-b-10's records
    folder = layout.commits_dir(key, repo_part) + "/"
    records = [k for k in store.list(folder) if k.endswith(".json") and "/" not in k[len(folder) :]]
    if not records:
        return None
    newest = max(records)
    return _parse(newest, store.get(newest))


def _parse(key: str, data: bytes | None) -> CommitRecord:
    if data is None:
        raise CorruptCheckpointError(f"commit record {key} vanished while being read")
    try:
        return CommitRecord.model_validate_json(data)
    except ValidationError:
        raise CorruptCheckpointError(
            f"commit record {key} is not a valid commit record: restore it from a backup, "
            "or delete the unit's _commits folder and parts to harvest it again"
        ) from None


@dataclass(frozen=True)
class Attempt:
    """Who commits: the unit, where its keys live, the holder's fencing token and name."""

    layout: FleetLayout
    key: UnitKey
    unit_id: str
    repo_part: str
    fence: int
    worker: str


def commit(
    store: ObjectStore,
    attempt: Attempt,
    previous: CommitRecord | None,
    data: bytes,
    progress: UnitProgress,
) -> CommitRecord | None:
    """Commit ``data`` (the bytes fetched since ``previous``) and ``progress`` as the next
    record; None if another holder committed that ``seq`` first (its part is then deleted)."""
    seq = previous.seq + 1 if previous else 1
    parts = list(previous.parts) if previous else []
    layout, key, part = attempt.layout, attempt.key, None
    if data:
        part = layout.part_key(key, attempt.repo_part, attempt.fence, seq)
        store.put(part, data)
        parts.append(PartRef(key=part, size=len(data)))
    record = CommitRecord(
        unit=attempt.unit_id, seq=seq, fence=attempt.fence, worker=attempt.worker,
        parts=parts, progress=progress, committed_at=datetime.now(UTC),
    )  # fmt: skip
    won = store.create_once(
        layout.commit_key(key, attempt.repo_part, seq), record.model_dump_json().encode()
    )
    if won:
        return record
    if part is not None:
        store.delete(part)
    return None


def read_parts(store: ObjectStore, record: CommitRecord | None) -> Iterator[bytes]:
    """The unit's committed bytes, part by part; a part shorter than its record is refused."""
    for part in record.parts if record else []:
        data = store.get(part.key)
        if data is None or len(data) < part.size:
            raise CorruptCheckpointError(
                f"part {part.key} is missing or shorter than its commit record says: "
                "restore it, or delete the unit's _commits folder to harvest it again"
            )
        yield data[: part.size]


def committed_parts(store: ObjectStore, layout: FleetLayout) -> set[str]:
    """Every part some newest commit record lists (the dataset's raw data)."""
    newest: dict[str, str] = {}
    for key in store.list(f"{layout.raw}/_commits"):
        if key.endswith(".json"):
            folder = key.rpartition("/")[0]
            newest[folder] = max(newest.get(folder, ""), key)
    listed: set[str] = set()
    for key in newest.values():
        listed.update(part.key for part in _parse(key, store.get(key)).parts)
    return listed


def sweep_orphans(store: ObjectStore, layout: FleetLayout) -> int:
    """Delete the parts no commit record lists (attempts killed between part and record);
    only when no unit is in flight, or a holder's next part could be taken for one."""
    keep = committed_parts(store, layout)
    orphans = [
        key
        for key in store.list(f"{layout.raw}/endpoint=")
        if key.rpartition("/")[2].startswith("part-") and key not in keep
    ]
    for key in orphans:
        store.delete(key)
    return len(orphans)
