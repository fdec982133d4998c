"""Benchmark: ``gh-collect report`` over a synthetic curated dataset of 1,000,000 objects.

    .venv/bin/python scripts/bench_report.py                     # 1M objects
    .venv/bin/python scripts/bench_report.py --objects 50000     # a few seconds
    .venv/bin/python scripts/bench_report.py --keep /tmp/bench   # keep the dataset

Writes a curated dataset in the export's layout (``endpoint=<name>/part-NNNNN.parquet``, the
shared file schema for repos, pulls and issues, every row with a ``raw`` JSON column of a
few hundred bytes) for one org: repos, pulls, issues, and the planned tables of reviews,
issue comments and releases, so every section of the page is computed. Then it runs
``gh-collect report`` in its own process and reports wall time and peak RSS (``wait4``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gh_collect.curated.schemas import to_curated  # noqa: E402
from gh_collect.durable.paths import DatasetPaths  # noqa: E402

ORG, YEAR = "bench-org", 2025
SHARES = {"pulls": 0.40, "issues": 0.30, "reviews": 0.20, "issue_comments": 0.09}
ROWS_PER_FILE = 100_000
START = datetime(2024, 7, 1, tzinfo=UTC)
SPAN_H = 18 * 30 * 24  # created over 18 months: half a year before the window, and the year
PEOPLE = [f"dev-{n}" for n in range(400)] + ["dependabot[bot]", "renovate[bot]", None]
WORDS = ["fix", "crash", "parser", "flaky", "test", "cache", "docs", "bump", "deps", "refactor"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--repos", type=int, default=2_000)
    parser.add_argument(
        "--keep", type=Path, help="write the dataset here and keep it (reused if it is there)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as scratch:
        root = args.keep or Path(scratch)
        if not (root / "data").exists():
            started = time.monotonic()
            written = build(DatasetPaths(root / "data", YEAR, ORG), args.objects, args.repos)
            print(f"dataset: {sum(written.values()):,} objects {written}")
            print(f"  written in {time.monotonic() - started:.1f}s")
        print(f"dataset: {_size(root / 'data'):,} bytes of Parquet in {root / 'data'}")
        wall, cpu, rss, proc = run_report(root)
    print(proc.stdout.strip() or proc.stderr.strip())
    print(
        f"report: wall {wall:.2f}s, CPU {cpu:.2f}s, peak RSS {rss / 2**20:.0f} MiB "
        f"(exit {proc.returncode})"
    )
    return proc.returncode


def build(paths: DatasetPaths, objects: int, repos: int) -> dict[str, int]:
    """The synthetic dataset; returns rows per endpoint (summing to ``objects``)."""
    rng = random.Random(0)
    names = [f"{ORG}/repo-{n:05d}" for n in range(repos)]
    counts = {e: int(objects * share) for e, share in SHARES.items()}
    counts["repos"] = repos
    counts["releases"] = objects - sum(counts.values())
    makers: dict[str, Callable[[int], dict[str, Any]]] = {
        "repos": lambda i: {"id": i, "repo": names[i], "name": names[i].split("/")[1]},
        "pulls": lambda i: _pull(rng, i, names),
        "issues": lambda i: _issue(rng, i, names),
        "reviews": lambda i: _review(rng, i, names, counts["pulls"]),
        "issue_comments": lambda i: _comment(rng, i, names),
        "releases": lambda i: _release(rng, i, names),
    }
    for endpoint, count in counts.items():
        _write(paths, endpoint, (makers[endpoint](i) for i in range(count)), count)
    return counts


def _when(rng: random.Random) -> datetime:
    return START + timedelta(hours=rng.uniform(0, SPAN_H))


def _pull(rng: random.Random, i: int, names: list[str]) -> dict[str, Any]:
    created = _when(rng)
    merged = created + timedelta(hours=rng.expovariate(1 / 60)) if rng.random() < 0.6 else None
    repo = names[int(rng.paretovariate(1.2)) % len(names)]
    return {"id": i, "repo": repo, "number": i, "user_login": rng.choice(PEOPLE),
            "title": " ".join(rng.choices(WORDS, k=6)), "state": "closed" if merged else "open",
            "created_at": created, "updated_at": merged or created, "merged_at": merged,
            "closed_at": merged}  # fmt: skip


def _issue(rng: random.Random, i: int, names: list[str]) -> dict[str, Any]:
    created = _when(rng)
    closed = created + timedelta(hours=rng.expovariate(1 / 300)) if rng.random() < 0.7 else None
    return {"id": i, "repo": names[rng.randrange(len(names))], "number": i,
            "user_login": rng.choice(PEOPLE), "title": " ".join(rng.choices(WORDS, k=6)),
            "created_at": created, "updated_at": closed or created,
            "closed_at": closed}  # fmt: skip


def _review(rng: random.Random, i: int, names: list[str], pulls: int) -> dict[str, Any]:
    number = rng.randrange(max(1, pulls))
    return {"id": i, "repo": names[int(rng.paretovariate(1.2)) % len(names)],
            "pull_number": number, "user_login": rng.choice(PEOPLE),
            "state": rng.choice(("APPROVED", "COMMENTED", "CHANGES_REQUESTED")),
            "submitted_at": _when(rng)}  # fmt: skip


def _comment(rng: random.Random, i: int, names: list[str]) -> dict[str, Any]:
    return {"id": i, "repo": names[rng.randrange(len(names))], "user_login": rng.choice(PEOPLE),
            "created_at": _when(rng)}  # fmt: skip


def _release(rng: random.Random, i: int, names: list[str]) -> dict[str, Any]:
    published = _when(rng)
    return {"id": i, "repo": names[rng.randrange(len(names))], "tag_name": f"v{i}.0",
            "name": f"Release {i}", "author_login": rng.choice(PEOPLE),
            "created_at": published - timedelta(hours=1), "published_at": published,
            "prerelease": rng.random() < 0.2}  # fmt: skip


def _write(paths: DatasetPaths, endpoint: str, rows: Iterator[dict[str, Any]], count: int) -> None:
    folder = paths.curated_endpoint_dir(endpoint)
    folder.mkdir(parents=True, exist_ok=True)
    for part in range(0, max(count, 1), ROWS_PER_FILE):
        batch = [next(rows) for _ in range(min(ROWS_PER_FILE, count - part))]
        if not batch:
            return
        for row in batch:
            row["raw"] = json.dumps({**row, "body": " ".join(random.choices(WORDS, k=60))},
                                    default=str)  # fmt: skip
        table = pa.Table.from_pylist(batch)
        if endpoint in ("repos", "pulls", "issues"):
            table = to_curated(table.cast(_typed(table.schema)))  # the export's file schema
        pq.write_table(table, folder / f"part-{part // ROWS_PER_FILE:05d}.parquet")


def _typed(schema: pa.Schema) -> pa.Schema:
    """Timestamps in UTC microseconds, as the export writes them."""
    ts = pa.timestamp("us", tz="UTC")
    return pa.schema([pa.field(f.name, ts if pa.types.is_timestamp(f.type) else f.type)
                      for f in schema])  # fmt: skip


def run_report(root: Path) -> tuple[float, float, int, subprocess.CompletedProcess[str]]:
    """``gh-collect report`` in its own process: wall and CPU seconds (user + system, all
    threads: the wall time on a loaded machine says little), peak RSS bytes, its output."""
    config = root / "bench.yaml"
    config.write_text(yaml.safe_dump({"target": {"org": ORG}, "year": YEAR,
                                      "output": {"root": str(root / "data")}}))  # fmt: skip
    command = [sys.executable, "-m", "gh_collect", "report", "-c", str(config)]
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss * 1024, subprocess.CompletedProcess(command, code, out, err)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.parquet"))


if __name__ == "__main__":
    sys.exit(main())
