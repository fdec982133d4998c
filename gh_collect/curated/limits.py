"""The export's memory and layout knobs, in their own module.

Every stage reads them (the scan's flush size, the part writer's row groups, the worker
count), so they live apart from the stages and from ``export``, which imports the stages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

MiB = 1 << 20


@dataclass(frozen=True)
class ExportLimits:
    """Memory and layout knobs; the defaults keep peak RSS to a few hundred MiB."""

    flush_bytes: int = 16 * MiB
    bucket_bytes: int = 16 * MiB
    max_buckets: int = 1024
    row_group_rows: int = 65_536
    row_group_bytes: int = 16 * MiB
    rows_per_file: int = 1_000_000
    workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    parallel_min_bytes: int = 64 * MiB  # below this, worker start-up costs more than it saves
