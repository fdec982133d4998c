"""What every stage of a collect run works with, passed down as one object.

The config and options are read once at the edge; the checkpoint, the raw store, the
validators and the reporter are the run's shared state. A stage (discovery, a phase) takes
a ``RunContext`` and a client and does its part; only ``run`` builds one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

from gh_collect.config import Config
from gh_collect.durable.checkpoint import CheckpointManager, UnitKey
from gh_collect.durable.paths import DatasetPaths
from gh_collect.durable.storage import RawStore
from gh_collect.durable.validators import ValidatorStore
from gh_collect.endpoints import Endpoint, Window
from gh_collect.github.graphql import GraphQLTransport
from gh_collect.report.progress import Reporter

__all__ = ["DISCOVERY", "RunContext", "RunOptions"]

DISCOVERY = "discovery"


@dataclass(frozen=True)
class RunOptions:
    from_repo: str | None = None
    force: bool = False
    retry_failed: bool = False
    only: tuple[str, ...] | None = None
    on_rate_limit: Literal["wait", "exit"] = "wait"
    export: bool = True
    max_requests: int | None = None


@dataclass
class RunContext:
    config: Config
    options: RunOptions
    paths: DatasetPaths
    cp: CheckpointManager
    store: RawStore
    validators: ValidatorStore
    reporter: Reporter
    phases: list[str] = field(default_factory=list)
    # Sends the run's GraphQL queries (paced by points); set once the client is open.
    graphql: GraphQLTransport | None = None
    # Units a job walks now, each with the event set when it is free again (phases overlap:
    # a GraphQL walk carries another phase's unit, a job walks the fan-outs it armed).
    walking: dict[UnitKey, asyncio.Event] = field(default_factory=dict)

    def endpoint(self, name: str) -> Endpoint:
        """The declaration this run reads ``name`` through (``Config.endpoint``)."""
        return self.config.endpoint(name)

    @property
    def window(self) -> Window:
        return Window(self.config.window_start, self.config.window_end)
