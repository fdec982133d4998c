"""scripts/bench.py --quick: the benchmark runs from a fresh clone and gh_collect makes exactly
the minimal number of requests (a benchmark, not a timing test: no wall-time assertion)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_reports_gh_collect_at_the_minimum_request_count(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--json", str(out),
         "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| gh_collect harvest |" in done.stdout and "| limit |" in done.stdout
    assert (tmp_path / "bench.md").read_text() == done.stdout.rstrip("\n") + "\n"
    report = json.loads(out.read_text())["default"]
    gh, limit = report["gh_collect"], report["limit"]
    assert gh["exit_code"] == 0 and gh["truth"] == "yes", gh["note"]
    assert gh["requests"] == report["minimum_requests"] == limit["requests"]
    assert gh["secondary"] == limit["secondary"] == 0
    assert gh["wall_s"] > 0 and limit["wall_s"] > 0 and report["wall_vs_limit"] > 0
