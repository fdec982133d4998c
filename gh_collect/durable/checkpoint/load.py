"""Reading checkpoint.json: any defect is one clear error, and nothing is ever written here.

A format-1 file (0.1.0) is migrated in memory (``migrate``); only a manager holding the
dataset's lock writes the migrated state back (``CheckpointManager.load``), so ``status``
can read an old dataset without touching it. A format newer than this code knows is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gh_collect.durable.checkpoint.migrate import migrate_v1
from gh_collect.durable.checkpoint.state import FORMAT_VERSION, CheckpointState
from gh_collect.errors import CheckpointError, CorruptCheckpointError

__all__ = ["Loaded", "load_checkpoint", "read_checkpoint"]


@dataclass(frozen=True)
class Loaded:
    """A checkpoint as read: its state (format 2), and the format and bytes it was read from."""

    state: CheckpointState
    version: int
    raw: bytes


def read_checkpoint(path: Path) -> CheckpointState:
    """Read and validate ``path``; any defect raises CorruptCheckpointError, nothing is written."""
    return load_checkpoint(path).state


def load_checkpoint(path: Path) -> Loaded:
    raw = _read_bytes(path)
    data = _parse_json(path, raw)
    version = _check_version(path, data)
    if version == 1:
        data = migrate_v1(data)
    return Loaded(_validate(path, data), version, raw)


def _corrupt(path: Path, what: str) -> CorruptCheckpointError:
    what = " ".join(what.split())  # one line, whatever the parser said
    return CorruptCheckpointError(
        f"checkpoint {path} is corrupt ({what}): move it aside or run with --force to start over"
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}: run collect to create one") from None
    except OSError as exc:
        raise CorruptCheckpointError(
            f"cannot read checkpoint {path} ({exc.strerror}): fix its permissions, "
            "move it aside, or run with --force to start over"
        ) from None


def _parse_json(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _corrupt(path, f"not valid JSON, truncated? {exc.msg} at line {exc.lineno}") from None
    except ValueError:
        raise _corrupt(path, "not UTF-8 text") from None
    if not isinstance(data, dict):
        raise _corrupt(path, f"expected a JSON object, found {type(data).__name__}")
    return data


def _check_version(path: Path, data: dict[str, Any]) -> int:
    version = data.get("format_version")
    if type(version) is not int or version < 1:
        raise _corrupt(path, f"format_version: {version!r} is not a format number")
    if version > FORMAT_VERSION:
        raise CorruptCheckpointError(
            f"checkpoint {path} has format version {version}, newer than this gh-collect "
            f"reads ({FORMAT_VERSION}): upgrade gh-collect, move it aside, "
            "or run with --force to start over"
        )
    return version


def _validate(path: Path, data: dict[str, Any]) -> CheckpointState:
    try:
        return CheckpointState.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "top level"
        raise _corrupt(path, f"{where}: {error['msg']}") from None
