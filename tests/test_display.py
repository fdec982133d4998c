"""What people see: ``status`` (times they can read) and the live bar (each phase its own)."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from gh_collect.durable.checkpoint import CheckpointState
from gh_collect.durable.paths import DatasetPaths
from gh_collect.report.progress import LiveReporter, LogReporter
from gh_collect.report.status import render_status, summarize

NOW = datetime(2026, 12, 3, 13, 42, 10, 987654, tzinfo=UTC)
RESET = datetime(2026, 12, 3, 14, 5, 0, tzinfo=UTC).timestamp() + 0.75


def state() -> CheckpointState:
    return CheckpointState.model_validate(
        {
            "config_digest": "d" * 64,
            "config": {},
            "created_at": NOW,
            "updated_at": NOW,
            "save_count": 4,
            "last_save_reason": "every 10 pages",
            "last_saved_at": NOW,
            "phases": {"discovery": {"status": "complete"}, "pulls": {}, "issues": {}},
            "rate_limits": {
                "core": {
                    "limit": 5000,
                    "remaining": 4990,
                    "reset": RESET,
                    "resource": "core",
                    "seen_at": NOW,
                }
            },
        }
    )


def test_status_shows_the_reset_as_a_time_and_minutes_and_no_microseconds(
    tmp_path: Path,
) -> None:
    status = summarize(state(), DatasetPaths(tmp_path, 2025, "o"))
    text = render_status(status, now=NOW)
    assert "rate limit  4990/5000 left (core), resets 14:05 UTC (in 23 min)" in text
    assert "last save   2026-12-03 13:42:10 UTC (every 10 pages)" in text
    assert "987654" not in text and ".75" not in text and str(int(RESET)) not in text
    later = render_status(status, now=datetime(2026, 12, 3, 14, 6, tzinfo=UTC))
    assert "resets 14:05 UTC (passed: the budget is full)" in later

    as_json = json.loads(json.dumps(status))  # what --json prints: no datetime left over
    assert as_json["last_saved_at"] == "2026-12-03T13:42:10Z"
    rate = as_json["rate_limit"]
    assert rate["reset"] == int(RESET) and rate["reset_at"] == "2026-12-03T14:05:00Z"
    assert rate["seen_at"] == "2026-12-03T13:42:10Z"


def test_status_of_a_checkpoint_never_saved_says_so(tmp_path: Path) -> None:
    never = state().model_copy(update={"last_saved_at": None, "rate_limits": {}})
    text = render_status(summarize(never, DatasetPaths(tmp_path, 2025, "o")), now=NOW)
    assert "last save   never" in text and "rate limit" not in text


def live_output(run: list[tuple[str, int, list[int]]]) -> str:
    """The live bar's final render of phases (name, units, records of each page)."""
    out = io.StringIO()
    reporter = LiveReporter(Console(file=out, width=160, color_system=None))
    for name, units, pages in run:
        reporter.phase(name, units)
        for records in pages:
            reporter.request()
            reporter.page("o/r", name, records)
        for _ in range(units):
            reporter.unit_done("o/r", name, "complete")
    reporter.close()
    return out.getvalue()


def test_the_live_bar_shows_each_phases_own_pages_and_records() -> None:
    text = live_output([("pulls", 2, [100, 100, 51]), ("issues", 1, [40, 2])])
    pulls = next(line for line in text.splitlines() if line.startswith("pulls"))
    issues = next(line for line in text.splitlines() if line.startswith("issues"))
    assert re.search(r"\b3 pages 251 records\b", pulls), pulls
    assert re.search(r"\b2 pages 42 records\b", issues), issues
    assert "run 5 requests" in issues  # requests are the run's: one may serve any phase
    assert "293" not in issues and "5 pages" not in issues  # not the run's totals


def test_log_lines_keep_the_runs_totals_and_the_phases_own() -> None:
    reporter = LogReporter(stream=io.StringIO(), err=io.StringIO())
    reporter.phase("pulls", 1)
    reporter.page("o/r", "pulls", 7)
    reporter.phase("issues", 1)
    reporter.page("o/r", "issues", 3)
    assert (reporter.counters.pages, reporter.counters.records) == (2, 10)
    issues = reporter.counters.phases["issues"]
    assert (issues.pages, issues.records) == (1, 3)


def test_overlapping_phases_count_each_page_and_unit_for_its_own_endpoint() -> None:
    """The pulls' last repos still page after issues began: their pages, records and
    finished units stay on the pulls line; a fan-out unit counts for its endpoint."""
    out = io.StringIO()
    reporter = LiveReporter(Console(file=out, width=160, color_system=None))
    reporter.phase("pulls", 2)
    reporter.page("o/a", "pulls", 100)
    reporter.unit_done("o/a", "pulls", "complete")
    reporter.phase("issues", 1)
    reporter.page("o/b", "pulls", 60)  # the pulls' tail
    reporter.page("o/a", "issues", 9)
    reporter.unit_done("o/b", "pulls", "complete")
    reporter.unit_done("o/a", "issues", "complete")
    reporter.phase("reviews", 1)
    reporter.page("o/a", "reviews/7", 4)
    reporter.unit_done("o/a", "reviews/7", "complete")
    reporter.close()
    phases = reporter.counters.phases
    assert (phases["pulls"].pages, phases["pulls"].records, phases["pulls"].units_done) == (
        2, 160, 2,
    )  # fmt: skip
    assert (phases["issues"].pages, phases["issues"].records, phases["issues"].units_done) == (
        1, 9, 1,
    )  # fmt: skip
    assert (phases["reviews"].records, phases["reviews"].units_done) == (4, 1)
    lines = out.getvalue().splitlines()
    pulls = next(line for line in lines if line.startswith("pulls"))
    issues = next(line for line in lines if line.startswith("issues"))
    assert "2/2" in pulls and re.search(r"\b2 pages 160 records\b", pulls), pulls
    assert "1/1" in issues and re.search(r"\b1 pages 9 records\b", issues), issues
