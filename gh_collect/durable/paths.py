"""Where each file of a dataset lives, and how server-sent names become safe path parts.

Repo names come from the server. They only become path parts through ``safe_part``, which
percent-encodes everything outside GitHub's own name alphabet, so ``..``, ``/`` or NUL can
never make a path leave the dataset folder; pyarrow's Hive partitioning decodes the same
encoding, so partition values read back as the original names.

Two repos must never share a raw file, whatever names the server sends (the same ``name``
under two owners, names that differ only in case on a case-insensitive filesystem). So each
repo's file part is chosen ONCE, when the repo enters the checkpoint (``unique_part``), and
stored with it; ``DatasetPaths.unit_file`` is the one place that turns it into a path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

MAX_PART_BYTES = 180


def safe_part(name: str) -> str:
    """A single path component that round-trips through URI decoding and cannot traverse."""
    encoded = quote(name, safe="")
    if encoded in ("", ".", ".."):
        encoded = encoded.replace(".", "%2E") or "%00empty"
    if len(encoded.encode()) > MAX_PART_BYTES:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        encoded = f"{encoded[: MAX_PART_BYTES - 17]}~{digest}"
    return encoded


def unique_part(name: str, taken: Collection[str], tiebreak: object, full_name: str) -> str:
    """The file part of a repo entering the dataset: ``safe_part(name)`` while no other
    repo's part equals it ignoring case (``taken`` holds them lower-cased), else suffixed
    with ``tiebreak`` (the repo id) or a hash of ``full_name``: unique by construction."""
    base = safe_part(name)
    digest = hashlib.sha256(full_name.encode("utf-8", "surrogatepass")).hexdigest()
    candidates = [base, *([f"{base}~{tiebreak}"] if tiebreak is not None else [])]
    candidates.append(f"{base}~{digest[:16]}")
    candidates += (f"{base}~{digest[:16]}-{n}" for n in range(2, len(taken) + 3))
    return next(part for part in candidates if part.lower() not in taken)


class RepoFile(Protocol):
    """What a unit's file name needs from a checkpoint's repo entry (``RepoProgress``)."""

    @property
    def raw_part(self) -> str: ...


@dataclass(frozen=True)
class DatasetPaths:
    """The SPEC layout for one (root, year, target) dataset."""

    root: Path
    year: int
    target: str

    @property
    def _partition(self) -> Path:
        return Path(f"year={self.year}", "source=github", f"target={safe_part(self.target)}")

    @property
    def raw_dir(self) -> Path:
        return self.root / "raw" / self._partition

    @property
    def curated_dir(self) -> Path:
        return self.root / "curated" / self._partition

    @property
    def checkpoint(self) -> Path:
        return self.raw_dir / "checkpoint.json"

    @property
    def lock(self) -> Path:
        return self.raw_dir / "checkpoint.json.lock"

    @property
    def manifest(self) -> Path:
        return self.raw_dir / "manifest.json"

    @property
    def validators(self) -> Path:
        return self.raw_dir / "validators.jsonl"

    @property
    def repos_file(self) -> Path:
        return self.raw_dir / "repos.jsonl"

    def endpoint_dir(self, endpoint: str) -> Path:
        return self.raw_dir / f"endpoint={safe_part(endpoint)}"

    @property
    def discovery_pages(self) -> Path:
        """The repo listing read so far by an unfinished discovery (resumable)."""
        return self.raw_dir / "repos.partial.jsonl"

    def endpoint_file(self, endpoint: str, repo_name: str) -> Path:
        """The file of a repo named ``repo_name`` with no other repo sharing its part."""
        return self.endpoint_dir(endpoint) / f"repo={safe_part(repo_name)}.jsonl"

    def unit_file(self, endpoint: str, repo: RepoFile, parent: str | None = None) -> Path:
        """The raw file of one unit: the ONE way to find it (run and export). A repo x
        endpoint unit is ``repo=<part>.jsonl``; a fan-out unit (one parent's share) has its
        own file in the repo's folder, so no two units ever append to one file."""
        if parent is None:
            return self.endpoint_dir(endpoint) / f"repo={repo.raw_part}.jsonl"
        return (
            self.endpoint_dir(endpoint)
            / f"repo={repo.raw_part}"
            / f"parent={safe_part(parent)}.jsonl"
        )

    def curated_endpoint_dir(self, endpoint: str) -> Path:
        return self.curated_dir / f"endpoint={safe_part(endpoint)}"
