"""What a run tells its user: a live display on a terminal, log lines otherwise.

The run calls one ``Reporter``; which one is chosen at the edge (the CLI): ``LiveReporter``
on a terminal, ``LogReporter`` with text or JSON lines for cron and log shippers. Quiet mode
keeps warnings and the final summary only. No reporter ever receives the token.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

LogFormat = Literal["text", "json"]


@dataclass
class PhaseCounts:
    """What one phase alone has done: its line shows these, not the run's totals (an
    issues line counting the pulls read before it would overstate the issues)."""

    units_total: int = 0
    units_done: int = 0
    pages: int = 0
    records: int = 0


@dataclass
class Counters:
    """Running totals the displays show: the run's, and each phase's (``phases``).

    Phases overlap at their tails (the pulls' biggest repos still page while issues
    begin), so a page or a finished unit counts for its own endpoint's phase, never for
    whichever phase started last. Requests are the run's: one may serve any phase."""

    pages: int = 0
    records: int = 0
    requests: int = 0
    rate_remaining: int | None = None
    rate_limit: int | None = None
    failures: list[str] = field(default_factory=list)
    phases: dict[str, PhaseCounts] = field(default_factory=dict)

    def start_phase(self, name: str, units: int) -> None:
        self.phases[name] = PhaseCounts(units_total=units)

    def phase_of(self, endpoint: str) -> PhaseCounts:
        """The phase a unit counts for: ``reviews/123`` (a fan-out) counts for ``reviews``."""
        return self.phases.setdefault(endpoint.partition("/")[0], PhaseCounts())

    @property
    def units_done(self) -> int:
        return sum(p.units_done for p in self.phases.values())

    @property
    def units_total(self) -> int:
        return sum(p.units_total for p in self.phases.values())


class Reporter(Protocol):
    counters: Counters

    def phase(self, name: str, units: int) -> None: ...
    def page(self, repo: str, endpoint: str, records: int) -> None: ...
    def unit_done(self, repo: str, endpoint: str, status: str, detail: str = "") -> None: ...
    def rate(self, remaining: int, limit: int) -> None: ...
    def request(self) -> None: ...
    def info(self, message: str, **fields: Any) -> None: ...
    def warning(self, message: str, **fields: Any) -> None: ...
    def summary(self, message: str, **fields: Any) -> None: ...
    def close(self) -> None: ...


class _Base:
    def __init__(self) -> None:
        self.counters = Counters()

    def page(self, repo: str, endpoint: str, records: int) -> None:
        counters, phase = self.counters, self.counters.phase_of(endpoint)
        counters.pages += 1
        counters.records += records
        phase.pages += 1
        phase.records += records
        self._refresh(endpoint)

    def request(self) -> None:
        self.counters.requests += 1

    def _count_done(self, repo: str, endpoint: str, status: str, detail: str) -> None:
        self.counters.phase_of(endpoint).units_done += 1
        if status == "failed":
            self.counters.failures.append(f"{repo} {endpoint}: {detail}")

    def rate(self, remaining: int, limit: int) -> None:
        self.counters.rate_remaining, self.counters.rate_limit = remaining, limit

    def _refresh(self, endpoint: str) -> None:
        pass


class LogReporter(_Base):
    """Plain lines (``text``) or one JSON object a line (``json``) on a stream."""

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        err: TextIO | None = None,
        fmt: LogFormat = "text",
        quiet: bool = False,
    ) -> None:
        super().__init__()
        self._out = stream or sys.stdout
        self._err = err or sys.stderr
        self._fmt = fmt
        self._quiet = quiet

    def phase(self, name: str, units: int) -> None:
        self.counters.start_phase(name, units)
        self.info(f"phase {name}: {units} repos to collect", phase=name, repos=units)

    def unit_done(self, repo: str, endpoint: str, status: str, detail: str = "") -> None:
        self._count_done(repo, endpoint, status, detail)
        fields = {"repo": repo, "endpoint": endpoint, "status": status}
        if status == "failed":
            self.warning(f"{endpoint} {repo} failed: {detail}", **fields)
        else:
            self.info(f"{endpoint} {repo} {status} {detail}".rstrip(), **fields)

    def info(self, message: str, **fields: Any) -> None:
        if not self._quiet:
            self._emit(self._out, "info", message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._emit(self._err, "warning", message, fields)

    def summary(self, message: str, **fields: Any) -> None:
        self._emit(self._out, "summary", message, fields)

    def close(self) -> None:
        self._out.flush()

    def _emit(self, stream: TextIO, level: str, message: str, fields: dict[str, Any]) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        if self._fmt == "json":
            line = json.dumps({"time": stamp, "level": level, "message": message, **fields})
        else:
            line = f"{stamp} {level.upper():7} {message}"
        print(line, file=stream, flush=True)


class LiveReporter(_Base):
    """A rich progress bar: repos done/total, pages, records, requests, budget, ETA."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__()
        self._console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self._console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._last_refresh = 0.0
        self._progress.start()

    def phase(self, name: str, units: int) -> None:
        self.counters.start_phase(name, units)
        self._tasks[name] = self._progress.add_task(name, total=units, stats=self._stats(name))

    def unit_done(self, repo: str, endpoint: str, status: str, detail: str = "") -> None:
        self._count_done(repo, endpoint, status, detail)
        if status == "failed":
            self._console.print(f"[yellow]warning[/] {endpoint} {repo} failed: {detail}")
        name = endpoint.partition("/")[0]
        if name in self._tasks:
            phase = self.counters.phase_of(name)
            self._progress.update(
                self._tasks[name], completed=phase.units_done, stats=self._stats(name)
            )

    def info(self, message: str, **fields: Any) -> None:
        self._console.print(message, highlight=False)

    def warning(self, message: str, **fields: Any) -> None:
        self._console.print(f"[yellow]warning[/] {message}", highlight=False)

    def summary(self, message: str, **fields: Any) -> None:
        self.close()
        print(message, flush=True)

    def _refresh(self, endpoint: str) -> None:
        now = time.monotonic()
        name = endpoint.partition("/")[0]
        if name in self._tasks and now - self._last_refresh > 0.2:
            self._last_refresh = now
            self._progress.update(self._tasks[name], stats=self._stats(name))

    def close(self) -> None:
        for name, task in self._tasks.items():  # each line ends on its own final figures
            self._progress.update(task, stats=self._stats(name))
        self._progress.stop()

    def _stats(self, name: str) -> str:
        c, mine = self.counters, self.counters.phase_of(name)
        budget = f" budget {c.rate_remaining}/{c.rate_limit}" if c.rate_limit else ""
        return f"{mine.pages} pages {mine.records} records · run {c.requests} requests{budget}"
