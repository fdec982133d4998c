"""What the client counts, for logs, ``status`` and the manifest.

Kept apart from the request loop so that the waits (``waiting``) and the loop (``client``)
count into the same object without importing each other.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["ClientStats"]


@dataclass
class ClientStats:
    """Counters of one client. ``waited_seconds``: rate-limit waits, not retry backoffs.

    ``requests`` counts what went out (redirect hops included); a request the observer
    refused is not in it.
    """

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    secondary_limited: int = 0
    primary_waits: int = 0
    waited_seconds: float = 0.0
    not_modified: int = 0
