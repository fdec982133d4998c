"""The checkpoint: the progress state that lets a run stop at any instant and resume exactly.

``state`` (format 2: units, tallies), ``load`` (reading, refusing, migrating format 1 via
``migrate``), ``strategies`` (when to save), ``writer`` (how a save is written, off the
event loop), ``repos`` (discovery order, file parts, ``--from-repo``) and ``manager`` (the
``CheckpointManager`` a run changes it through).
"""

from __future__ import annotations

from gh_collect.durable.atomic import SAVE_STEPS, atomic_write
from gh_collect.durable.checkpoint.load import Loaded, load_checkpoint, read_checkpoint
from gh_collect.durable.checkpoint.manager import CheckpointManager
from gh_collect.durable.checkpoint.migrate import V1_BACKUP_NAME, migrate_v1
from gh_collect.durable.checkpoint.state import (
    DISCOVERY_PHASE,
    FORMAT_VERSION,
    CheckpointState,
    CheckpointStatus,
    DiscoveryProgress,
    PhaseProgress,
    RateLimitSnapshot,
    RepoProgress,
    Tally,
    UnitKey,
    UnitProgress,
    derive_repo_status,
)
from gh_collect.durable.checkpoint.strategies import (
    AnyOf,
    EveryPages,
    EveryRecords,
    EverySeconds,
    RateLimitBelow,
    SaveContext,
    SaveStrategy,
    strategy_from_settings,
)

__all__ = [
    "DISCOVERY_PHASE",
    "FORMAT_VERSION",
    "SAVE_STEPS",
    "V1_BACKUP_NAME",
    "AnyOf",
    "CheckpointManager",
    "CheckpointState",
    "CheckpointStatus",
    "DiscoveryProgress",
    "EveryPages",
    "EveryRecords",
    "EverySeconds",
    "Loaded",
    "PhaseProgress",
    "RateLimitBelow",
    "RateLimitSnapshot",
    "RepoProgress",
    "SaveContext",
    "SaveStrategy",
    "Tally",
    "UnitKey",
    "UnitProgress",
    "atomic_write",
    "derive_repo_status",
    "load_checkpoint",
    "migrate_v1",
    "read_checkpoint",
    "strategy_from_settings",
]
