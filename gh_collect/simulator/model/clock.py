"""The simulated present: one clock for the ``Date`` header and every edit's ``updated_at``.

A client may take a response's ``Date`` as a watermark and later ask for what was updated
since (the catch-up pass of a newest-first walk). That only works when the server's dates
and its objects' stamps come from the same clock, as they do on GitHub; the wall clock is
years away from a simulated ``now``.
"""

from __future__ import annotations

import time


class SimClock:
    """The configured ``now``, plus the real time elapsed since the server started, plus the
    explicit one-second ticks edits add. Never goes backwards."""

    def __init__(self, start: int) -> None:
        self._base = start
        self._ticks = 0
        self._since: float | None = None

    def start(self) -> None:
        """Real time starts counting (idempotent: a model served again keeps its time)."""
        if self._since is None:
            self._since = time.monotonic()

    def now(self) -> int:
        """The simulated present, in whole epoch seconds (GitHub's stamps have no more)."""
        elapsed = 0.0 if self._since is None else time.monotonic() - self._since
        return self._base + self._ticks + int(elapsed)

    def tick(self) -> int:
        """One second on, at once: a stamp taken now is later than any served before."""
        self._ticks += 1
        return self.now()
