"""checkpoint.json, format 2: the state models, and the tallies every report reads from them.

A run's work is split into **units**: one repo x endpoint (``pulls`` of ``o/r``), or one
parent x endpoint where an endpoint fans out (``reviews/123``: the reviews of PR 123 that
overflow a batch). A unit carries everything resuming needs: its status and counts, an opaque
resume token (today the next page's URL exactly as ``Link`` gave it; a GraphQL cursor with
what identifies its query later) and the size of its raw file at the last save. Units live
inside their repo's entry, so a save re-serialises only the repos that changed (``render``).

Counting lives here too (``Tally``, ``failures``): status, the manifest and the run all
read the same numbers, computed once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from gh_collect.durable.paths import safe_part

__all__ = [
    "DISCOVERY_PHASE",
    "FORMAT_VERSION",
    "CheckpointState",
    "CheckpointStatus",
    "DiscoveryProgress",
    "PhaseProgress",
    "RateLimitSnapshot",
    "RepoProgress",
    "Tally",
    "UnitKey",
    "UnitProgress",
    "derive_repo_status",
]

FORMAT_VERSION = 2
DISCOVERY_PHASE = "discovery"
_SAFE_PART = re.compile(r"[A-Za-z0-9._~%-]{1,230}")  # what paths.unique_part produces


class CheckpointStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    FAILED = "failed"


class _Model(BaseModel):
    # Unknown keys mean a hand-edited or foreign file: better refused than half understood.
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, order=True)
class UnitKey:
    """Which unit: ``endpoint`` of ``repo``, or of one ``parent`` of it (a fan-out)."""

    repo: str
    endpoint: str
    parent: str | None = None

    @property
    def name(self) -> str:
        """The unit's key inside its repo's entry: ``pulls``, or ``reviews/123``."""
        return self.endpoint if self.parent is None else f"{self.endpoint}/{self.parent}"

    @classmethod
    def parse(cls, repo: str, name: str) -> UnitKey:
        endpoint, _, parent = name.partition("/")
        return cls(repo, endpoint, parent or None)

    def __str__(self) -> str:
        return f"{self.repo} {self.name}"


class UnitProgress(_Model):
    """One unit: where its pages stand and what resuming needs."""

    status: CheckpointStatus = CheckpointStatus.PENDING
    pages_collected: int = Field(default=0, ge=0)
    records_collected: int = Field(default=0, ge=0)
    last_page_written: int = Field(default=0, ge=0)
    # Where the walk goes on, opaque to all but its paginator (a REST next URL as Link gave
    # it: cursors, /repositories/{id} URLs). None = start from the first page (no pages yet)
    # or nothing left.
    resume_token: str | None = None
    # Size of the unit's raw file at the last save: resume truncates back to it.
    byte_offset: int = Field(default=0, ge=0)
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    error: str | None = None
    retryable: bool | None = None
    # True while a completed unit is re-read with conditional requests (a refresh).
    refreshing: bool = False
    # Walks completed: 1 after the first harvest, +1 per refresh.
    passes: int = Field(default=0, ge=0)
    # A newest-first walk (pulls) goes in passes, each from the top of the list down to its
    # floor: the year's start (None) for the first, the previous pass's start for a catch-up
    # (harvest/passes.py). ``pass_started_at`` is the server's Date on the pass's first
    # page; ``pass_pending``: a catch-up is due and has read no page yet.
    floor: AwareDatetime | None = None
    pass_started_at: AwareDatetime | None = None
    pass_pages: int = Field(default=0, ge=0)
    pass_pending: bool = False
    catch_ups: int = Field(default=0, ge=0)
    # Every item updated before this moment has been read (the start of the last complete
    # pass): the floor of the unit's next refresh or closing sweep.
    read_through: AwareDatetime | None = None

    @property
    def holds_data(self) -> bool:
        """What this unit already holds (a walk completed, or bytes saved) must be kept by
        any walk that starts again from the first page: it re-walks as a refresh."""
        return self.passes > 0 or self.byte_offset > 0

    @property
    def pending(self) -> bool:
        """Not collected yet: neither complete nor failed."""
        return self.status in (CheckpointStatus.PENDING, CheckpointStatus.IN_PROGRESS)

    def has_work(self, *, retry_failed: bool = False) -> bool:
        """Not complete; a FAILED one only with ``retry_failed`` and a retryable error."""
        if self.status == CheckpointStatus.FAILED:
            return retry_failed and bool(self.retryable)
        return self.status != CheckpointStatus.COMPLETE


class RepoProgress(_Model):
    full_name: str
    name: str
    # This repo's raw file part, chosen once when it entered the checkpoint so that no two
    # repos share a file (paths.unique_part); None (checkpoints before it): safe_part(name).
    file_part: str | None = None
    status: CheckpointStatus = CheckpointStatus.PENDING
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    error: str | None = None
    # Unit name (``UnitKey.name``) -> progress; one per endpoint, plus fan-out units.
    units: dict[str, UnitProgress] = Field(default_factory=dict)

    @field_validator("file_part")
    @classmethod
    def _one_safe_component(cls, value: str | None) -> str | None:
        """A hand-edited part must still be one harmless path component."""
        if value is not None and (not _SAFE_PART.fullmatch(value) or value.strip(".") == ""):
            raise ValueError(f"file_part {value!r} is not a safe file name part")
        return value

    @property
    def raw_part(self) -> str:
        """The part of its raw files' names (``DatasetPaths.unit_file``)."""
        return self.file_part or safe_part(self.name)

    def unit_keys(self) -> Iterator[UnitKey]:
        return (UnitKey.parse(self.full_name, name) for name in self.units)


class DiscoveryProgress(_Model):
    """An unfinished discovery: where its walk over the repo listing stands.

    The repos read so far are in ``repos.partial.jsonl``, cut back to ``byte_offset`` on
    resume, so a run stopped mid-discovery (quota, signal, crash) continues from the next
    page instead of starting the listing over.
    """

    path: str | None = None  # the first page's path that answered (org or user listing)
    next_url: str | None = None  # the next page as Link gave it; None: the first page
    pages: int = Field(default=0, ge=0)
    conditional: bool = False  # a refresh asking "changed since?", nothing changed so far
    unchanged: int = Field(default=0, ge=0)  # pages unchanged so far in a conditional walk
    byte_offset: int = Field(default=0, ge=0)


class PhaseProgress(_Model):
    status: CheckpointStatus = CheckpointStatus.PENDING
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    error: str | None = None


class RateLimitSnapshot(_Model):
    limit: int = Field(ge=0)
    remaining: int = Field(ge=0)
    reset: float = Field(ge=0, allow_inf_nan=False)  # epoch seconds; JSON has no NaN
    resource: str | None = None
    seen_at: AwareDatetime


class CheckpointState(_Model):
    """The whole checkpoint.json. ``repos`` keeps discovery order through save and load."""

    format_version: int = Field(default=FORMAT_VERSION, ge=FORMAT_VERSION, le=FORMAT_VERSION)
    config_digest: str
    config: dict[str, Any]  # Config.digest_inputs(), so a mismatch can name what changed
    created_at: AwareDatetime
    updated_at: AwareDatetime
    save_count: int = Field(default=0, ge=0)
    last_save_reason: str | None = None
    last_saved_at: AwareDatetime | None = None
    current_phase: str | None = None
    phases: dict[str, PhaseProgress]
    repos: dict[str, RepoProgress] = Field(default_factory=dict)
    # The budget last seen, per resource (core, graphql, search).
    rate_limits: dict[str, RateLimitSnapshot] = Field(default_factory=dict)
    requests_made: int = Field(default=0, ge=0)
    # Size of validators.jsonl (ETags of list pages) at this save; resume cuts back to it.
    validators_offset: int = Field(default=0, ge=0)
    refreshes: int = Field(default=0, ge=0)
    # An unfinished discovery walk (None: none under way).
    discovery: DiscoveryProgress | None = None
    # The harvest ended but its export and manifest were not written yet (a kill mid-export):
    # the next run only exports, it does not start a refresh.
    export_pending: bool = False
    # Endpoints added to a finished dataset and not finished yet: runs walk only them (see
    # ``CheckpointManager.adopt_endpoints``); emptied when a run ends.
    extending: list[str] = Field(default_factory=list)

    @property
    def endpoints(self) -> list[str]:
        """The config's endpoints in phase order (every phase after discovery)."""
        return [name for name in self.phases if name != DISCOVERY_PHASE]

    @property
    def rate_limit(self) -> RateLimitSnapshot | None:
        """The core budget (what the save strategy and status show), else any seen."""
        return self.rate_limits.get("core") or next(iter(self.rate_limits.values()), None)

    @model_validator(mode="after")
    def _consistent(self) -> CheckpointState:
        """Catch hand edits that would make resuming misbehave rather than fail clearly."""
        if DISCOVERY_PHASE not in self.phases:
            raise ValueError(f"phases lacks '{DISCOVERY_PHASE}'")
        expected = set(self.endpoints)
        for key, repo in self.repos.items():
            if key != repo.full_name:
                raise ValueError(f"repos key {key!r} differs from its full_name {repo.full_name!r}")
            tops = {unit.endpoint for unit in repo.unit_keys() if unit.parent is None}
            if tops != expected:
                raise ValueError(f"repo {key} units {sorted(tops)} != phases")
            strays = {unit.endpoint for unit in repo.unit_keys()} - expected
            if strays:
                raise ValueError(f"repo {key} has units of unknown endpoints {sorted(strays)}")
        return self

    def units(self, endpoint: str | None = None) -> Iterator[tuple[UnitKey, UnitProgress]]:
        """Every unit (of ``endpoint``), in discovery order, fan-out units after their repo's."""
        for repo in self.repos.values():
            for name, progress in repo.units.items():
                key = UnitKey.parse(repo.full_name, name)
                if endpoint is None or key.endpoint == endpoint:
                    yield key, progress

    def tally(self, endpoint: str) -> Tally:
        return Tally.of(progress for _key, progress in self.units(endpoint))

    def failures(self) -> list[dict[str, Any]]:
        """The failed units, as status, the manifest and the run summary report them."""
        return [
            {"repo": key.repo, "endpoint": key.name, "error": p.error, "retryable": p.retryable}
            for key, p in self.units()
            if p.status == CheckpointStatus.FAILED
        ]

    def records_per_repo(self, endpoint: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for key, progress in self.units(endpoint):
            counts[key.repo] = counts.get(key.repo, 0) + progress.records_collected
        return counts


@dataclass(frozen=True)
class Tally:
    """Pages, records and units by status over some units: the one place they are counted."""

    pages: int = 0
    records: int = 0
    statuses: Counter[str] | None = None

    @classmethod
    def of(cls, units: Iterable[UnitProgress]) -> Tally:
        pages = records = 0
        statuses: Counter[str] = Counter()
        for unit in units:
            pages += unit.pages_collected
            records += unit.records_collected
            statuses[str(unit.status)] += 1
        return cls(pages, records, statuses)

    def count(self, status: CheckpointStatus) -> int:
        return (self.statuses or Counter()).get(str(status), 0)

    def as_dict(self) -> dict[str, int]:
        return {
            "pages": self.pages,
            "records": self.records,
            **{str(status): self.count(status) for status in CheckpointStatus},
        }


def derive_repo_status(units: Iterable[UnitProgress]) -> CheckpointStatus:
    """A repo is FAILED if any unit failed, COMPLETE if all are, IN_PROGRESS once started."""
    statuses = [progress.status for progress in units]
    if CheckpointStatus.FAILED in statuses:
        return CheckpointStatus.FAILED
    if statuses and all(status == CheckpointStatus.COMPLETE for status in statuses):
        return CheckpointStatus.COMPLETE
    if any(status != CheckpointStatus.PENDING for status in statuses):
        return CheckpointStatus.IN_PROGRESS
    return CheckpointStatus.PENDING
