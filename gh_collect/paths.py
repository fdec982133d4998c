"""Where each file of a dataset lives, and how server-sent names become safe path parts.

Repo names come from the server. They only become path parts through ``safe_part``, which
percent-encodes everything outside GitHub's own name alphabet, so ``..``, ``/`` or NUL can
never make a path leave the dataset folder; pyarrow's Hive partitioning decodes the same
encoding, so partition values read back as the original names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
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

    def endpoint_file(self, endpoint: str, repo_name: str) -> Path:
        return self.endpoint_dir(endpoint) / f"repo={safe_part(repo_name)}.jsonl"

    def curated_endpoint_dir(self, endpoint: str) -> Path:
        return self.curated_dir / f"endpoint={safe_part(endpoint)}"
