"""Planning a fleet harvest: discovery once, the repo list made durable in the store, then
every repo x endpoint unit planned into the queue (idempotently: a second ``collect --queue``
plans nothing twice and adopts the first one's repo list).

Discovery runs here, in a scratch folder, with the harvest's own walk (``harvest.discovery``).
Its output becomes an immutable part and ``_fleet/plan.json`` (created once) names it with
the repos and their raw file names, so every worker, on any machine, names a repo's files
alike. Endpoints are planned in phase order, each repo's biggest first, so the queue hands
out discovery's order of phases and big repos early.
"""

from __future__ import annotations

import tempfile
import uuid
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from gh_collect.config import Config, OutputSettings
from gh_collect.durable.checkpoint import CheckpointManager, strategy_from_settings
from gh_collect.durable.checkpoint.state import RepoProgress
from gh_collect.durable.paths import DatasetPaths
from gh_collect.durable.storage import RawStore
from gh_collect.durable.validators import ValidatorStore
from gh_collect.errors import CorruptCheckpointError, DataError
from gh_collect.fleet.commits import FleetLayout
from gh_collect.fleet.queue import RedisQueue, unit_id
from gh_collect.fleet.store import ObjectStore
from gh_collect.github.client import GitHubClient
from gh_collect.harvest.context import RunContext, RunOptions
from gh_collect.harvest.discovery import discover
from gh_collect.harvest.listing import ListingHints, listing_hints
from gh_collect.harvest.phases import largest_first
from gh_collect.report.progress import Reporter

__all__ = ["FleetPlan", "load_plan", "make_plan", "plan_units"]


class FleetPlan(BaseModel):
    """``_fleet/plan.json``: the dataset's repos (with their file names) and repos.jsonl."""

    model_config = ConfigDict(extra="forbid")
    digest: str
    endpoints: list[str]
    repos_part: str
    repos: list[RepoProgress]

    @cached_property
    def _by_name(self) -> dict[str, RepoProgress]:
        return {repo.full_name: repo for repo in self.repos}

    def repo(self, full_name: str) -> RepoProgress:
        """The planned repo; a unit of another (a foreign or edited queue) is refused."""
        try:
            return self._by_name[full_name]
        except KeyError:
            raise DataError(
                f"the queue holds a unit of {full_name!r}, which this harvest's plan does not "
                "list: is the queue shared with another harvest of the same org and year?"
            ) from None


def load_plan(store: ObjectStore, layout: FleetLayout) -> FleetPlan | None:
    data = store.get(layout.plan_file)
    if data is None:
        return None
    try:
        return FleetPlan.model_validate_json(data)
    except ValidationError:
        raise CorruptCheckpointError(
            f"{layout.plan_file} in {store.uri} is not a fleet plan: delete it (and the "
            "dataset) with `collect --queue --force`"
        ) from None


def plan_hints(store: ObjectStore, plan: FleetPlan, folder: Path) -> ListingHints:
    """The listing's hints, from the plan's copy of repos.jsonl."""
    path = folder / "repos.jsonl"
    path.write_bytes(store.get(plan.repos_part) or b"")
    return listing_hints(path, plan.endpoints)


async def make_plan(
    config: Config, store: ObjectStore, client: GitHubClient, reporter: Reporter
) -> FleetPlan:
    """The stored plan, or discovery now and its plan created once (a racing planner's wins)."""
    layout = FleetLayout(config.year, config.target.org)
    existing = load_plan(store, layout)
    if existing is not None:
        return existing
    with tempfile.TemporaryDirectory(prefix="gh-collect-plan-") as folder:
        paths, repos = await _discover(config, Path(folder), client, reporter)
        part = f"{layout.raw}/_fleet/repos-{uuid.uuid4().hex}.jsonl"
        store.put(part, paths.repos_file.read_bytes() if paths.repos_file.exists() else b"")
    plan = FleetPlan(
        digest=config.digest, endpoints=list(config.endpoints), repos_part=part, repos=repos
    )
    if store.create_once(layout.plan_file, plan.model_dump_json().encode()):
        return plan
    store.delete(part)
    adopted = load_plan(store, layout)
    assert adopted is not None  # created once, never deleted but by --force
    return adopted


async def _discover(
    config: Config, folder: Path, client: GitHubClient, reporter: Reporter
) -> tuple[DatasetPaths, list[RepoProgress]]:
    """The harvest's discovery, in a scratch dataset: its repos and repos.jsonl."""
    scratch = config.model_copy(update={"output": OutputSettings(root=folder)})
    paths = DatasetPaths(folder, config.year, config.target.org)
    store = RawStore()
    cp = CheckpointManager(
        paths.checkpoint, paths.lock, take_sync=store.take_sync,
        strategy=strategy_from_settings(config.checkpoint, config.rate_limit),
    )  # fmt: skip
    with cp:
        cp.create_new(scratch)
        validators = ValidatorStore(paths.validators, 0, store)
        ctx = RunContext(
            scratch, RunOptions(), paths, cp, store, validators, reporter, list(config.endpoints)
        )
        try:
            await discover(ctx, client)
        finally:
            store.close()
        return paths, list(cp.state.repos.values())


def plan_units(queue: RedisQueue, plan: FleetPlan, hints: ListingHints) -> int:
    """Every repo x endpoint unit into the queue, phase by phase, big repos first."""
    from gh_collect.durable.checkpoint import UnitKey

    added = 0
    for endpoint in plan.endpoints:
        keys = [UnitKey(repo.full_name, endpoint) for repo in plan.repos]
        ordered = largest_first(keys, hints.sizes)
        added += queue.plan(unit_id(key.endpoint, key.repo, key.parent) for key in ordered)
    queue.finish_planning()
    return added
