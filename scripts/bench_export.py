"""Benchmark: export_dataset against pyarrow.json.read_json over the same raw JSONL files.

    .venv/bin/python scripts/bench_export.py                    # 1,000,000 records
    .venv/bin/python scripts/bench_export.py --records 20000    # a few seconds

Generates a synthetic raw dataset (realistic pull and issue objects, a few percent of them
refreshed later with a newer ``updated_at``, spread over many repo files) in a temporary folder,
then runs each contender in its own subprocess and reports wall time, records/s and peak RSS.
Peak RSS is given two ways: the largest single process (``ru_maxrss`` of the child and of its
own children, e.g. export's scan workers) and the sampled sum over the whole process tree, so a
parallel export cannot hide memory in its workers.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gh_collect.durable.paths import DatasetPaths  # noqa: E402

ORG = "bench-org"
YEAR = 2025
DUPLICATE_SHARE = 0.03
WORDS = [
    "fix",
    "crash",
    "when",
    "日本語",
    "input",
    "parser",
    "résumé",
    "🚀",
    "emoji",
    "flaky",
    "test",
    "ci",
    "cache",
    "docs",
]


# --- synthetic raw data --------------------------------------------------------------------


def _user(login: str, uid: int) -> dict[str, Any]:
    base = f"https://api.github.com/users/{login}"
    return {
        "login": login,
        "id": uid,
        "node_id": f"MDQ6VXNlcj{uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "gravatar_id": "",
        "url": base,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{base}/followers",
        "following_url": f"{base}/following{{/other_user}}",
        "gists_url": f"{base}/gists{{/gist_id}}",
        "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{base}/subscriptions",
        "organizations_url": f"{base}/orgs",
        "repos_url": f"{base}/repos",
        "events_url": f"{base}/events{{/privacy}}",
        "received_events_url": f"{base}/received_events",
        "type": "User",
        "site_admin": False,
    }


def _repo(name: str, rid: int) -> dict[str, Any]:
    return {
        "id": rid,
        "node_id": f"R_{rid}",
        "name": name,
        "full_name": f"{ORG}/{name}",
        "private": False,
        "owner": _user(ORG, 1) | {"type": "Organization"},
        "html_url": f"https://github.com/{ORG}/{name}",
        "description": f"The {name} project",
        "fork": False,
        "url": f"https://api.github.com/repos/{ORG}/{name}",
        "created_at": "2019-04-01T10:00:00Z",
        "updated_at": "2025-06-01T10:00:00Z",
        "pushed_at": "2025-06-02T10:00:00Z",
        "stargazers_count": rid % 977,
        "language": "Python",
        "archived": False,
        "default_branch": "main",
        "visibility": "public",
    }


def _timestamp(rng: random.Random) -> str:
    return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"


def _text(rng: random.Random) -> str | None:
    if rng.random() < 0.1:
        return None
    return " ".join(rng.choices(WORDS, k=rng.randint(5, 200)))


def _issue(rng: random.Random, repo: dict[str, Any], number: int, iid: int) -> dict[str, Any]:
    api = f"{repo['url']}/issues/{number}"
    closed = _timestamp(rng) if rng.random() < 0.6 else None
    return {
        "url": api,
        "repository_url": repo["url"],
        "labels_url": f"{api}/labels{{/name}}",
        "comments_url": f"{api}/comments",
        "events_url": f"{api}/events",
        "html_url": f"{repo['html_url']}/issues/{number}",
        "id": iid,
        "node_id": f"I_{iid}",
        "number": number,
        "title": f"Issue {number}: {_text(rng) or ''}"[:120],
        "user": None if rng.random() < 0.02 else _user(f"user{iid % 500}", 1000 + iid % 500),
        "labels": [{"id": 7, "name": "bug", "color": "d73a4a", "default": True}]
        if rng.random() < 0.3
        else [],
        "state": "closed" if closed else "open",
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": rng.randint(0, 50),
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": _timestamp(rng),
        "closed_at": closed,
        "author_association": "MEMBER",
        "active_lock_reason": None,
        "body": _text(rng),
        "reactions": {"url": f"{api}/reactions", "total_count": 0, "+1": 0, "-1": 0},
        "timeline_url": f"{api}/timeline",
        "performed_via_github_app": None,
        "state_reason": "completed" if closed else None,
    }


def _pull(rng: random.Random, repo: dict[str, Any], number: int, pid: int) -> dict[str, Any]:
    api = f"{repo['url']}/pulls/{number}"
    merged = _timestamp(rng) if rng.random() < 0.5 else None
    sha = f"{pid:040x}"
    return {
        "url": api,
        "id": pid,
        "node_id": f"PR_{pid}",
        "html_url": f"{repo['html_url']}/pull/{number}",
        "diff_url": f"{repo['html_url']}/pull/{number}.diff",
        "patch_url": f"{repo['html_url']}/pull/{number}.patch",
        "issue_url": f"{repo['url']}/issues/{number}",
        "number": number,
        "state": "closed" if merged else "open",
        "locked": False,
        "title": f"Pull {number}: {_text(rng) or ''}"[:120],
        "user": _user(f"user{pid % 500}", 1000 + pid % 500),
        "body": _text(rng),
        "labels": [],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": _timestamp(rng),
        "closed_at": merged,
        "merged_at": merged,
        "merge_commit_sha": sha if merged else None,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "draft": rng.random() < 0.1,
        "commits_url": f"{api}/commits",
        "statuses_url": f"{repo['url']}/statuses/{sha}",
        "head": {"label": f"{ORG}:f{number}", "ref": f"f{number}", "sha": sha, "repo": repo},
        "base": {"label": f"{ORG}:main", "ref": "main", "sha": sha[::-1], "repo": repo},
        "author_association": "CONTRIBUTOR",
        "auto_merge": None,
    }


def _line(endpoint: str, repo: dict[str, Any], data: dict[str, Any]) -> str:
    envelope = {
        "source": "github_rest",
        "endpoint": endpoint,
        "repo": repo["full_name"],
        "page": 1,
        "fetched_at": "2025-12-31T23:00:00+00:00",
        "data": data,
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")) + "\n"


def generate(paths: DatasetPaths, records: int, repos: int, seed: int = 1) -> list[Path]:
    """Write ``records`` lines over ``repos`` repos (pulls and issues); return the files."""
    rng = random.Random(seed)
    repo_objects = [_repo(f"repo-{n:04d}", 100_000 + n) for n in range(repos)]
    paths.raw_dir.mkdir(parents=True, exist_ok=True)
    with paths.repos_file.open("w", encoding="utf-8") as handle:
        handle.writelines(_line("repos", r, r) for r in repo_objects)
    files = [paths.repos_file]
    per_file = max(1, (records - repos) // (2 * repos))
    next_id = 1
    for endpoint, make in (("pulls", _pull), ("issues", _issue)):
        for repo in repo_objects:
            path = paths.endpoint_file(endpoint, repo["name"])
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = per_file - int(per_file * DUPLICATE_SHARE)
            with path.open("w", encoding="utf-8") as handle:
                written = []
                for number in range(1, fresh + 1):
                    data = make(rng, repo, number, next_id)
                    next_id += 1
                    handle.write(_line(endpoint, repo, data))
                    written.append(data)
                for data in rng.sample(written, per_file - fresh):  # refreshed versions
                    newer = copy.deepcopy(data) | {"updated_at": "2025-12-31T12:00:00Z"}
                    handle.write(_line(endpoint, repo, newer))
            files.append(path)
    return files


# --- measuring -------------------------------------------------------------------------------

EXPORT_CHILD = f"""
import json, resource, sys, time
from pathlib import Path
from gh_collect.curated.export import ExportLimits, export_dataset
from gh_collect.durable.paths import DatasetPaths
root, workers = sys.argv[1], int(sys.argv[2])
limits = ExportLimits(workers=workers) if workers else ExportLimits()
started = time.perf_counter()
paths = DatasetPaths(Path(root), {YEAR}, "{ORG}")
result = export_dataset(paths, ["pulls", "issues"], limits=limits)
elapsed = time.perf_counter() - started
print(json.dumps({{
    "seconds": elapsed,
    "records": sum(e.records_read for e in result.endpoints.values()),
    "rows": result.rows_written,
    "duplicates": result.duplicates_dropped,
    "self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
}}))
"""

READ_JSON_CHILD = """
import json, resource, sys, time
import pyarrow.json
files = sys.argv[1:]
started = time.perf_counter()
records = 0
for path in files:
    records += pyarrow.json.read_json(path).num_rows
elapsed = time.perf_counter() - started
print(json.dumps({
    "seconds": elapsed,
    "records": records,
    "self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
}))
"""


@dataclass
class Measurement:
    name: str
    seconds: float
    records: int
    max_process_mib: float
    tree_mib: float
    extra: dict[str, Any]

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _tree_rss_kib(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        stack.extend(_children(current))
    return total


def measure(name: str, code: str, args: list[str]) -> Measurement:
    """Run ``code`` in a fresh interpreter, sampling its process tree's RSS meanwhile."""
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, cwd=ROOT, text=True
    )
    peak = 0

    def sample() -> None:
        nonlocal peak
        while process.poll() is None:
            peak = max(peak, _tree_rss_kib(process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"{name} failed with exit code {process.returncode}")
    report = json.loads(out.strip().splitlines()[-1])
    largest = max(report.pop("self_kb"), report.pop("children_kb")) / 1024
    seconds, records = report.pop("seconds"), report.pop("records")
    return Measurement(name, seconds, records, largest, peak / 1024, report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repos", type=int, default=0, help="default: records/2500, >= 8")
    parser.add_argument("--workers", type=int, default=0, help="export scan workers (0: default)")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the temp dataset")
    args = parser.parse_args()
    repos = args.repos or max(8, args.records // 2500)

    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="bench-export-") as tmp:
        paths = DatasetPaths(Path(tmp) / "data", YEAR, ORG)
        started = time.perf_counter()
        files = generate(paths, args.records, repos)
        size = sum(f.stat().st_size for f in files)
        generated = time.perf_counter() - started
        print(
            f"generated {len(files)} files, {size / 2**20:,.0f} MiB in {generated:.1f}s", flush=True
        )
        baseline = measure("pyarrow.json.read_json", READ_JSON_CHILD, [str(f) for f in files])
        exported = measure("export_dataset", EXPORT_CHILD, [str(paths.root), str(args.workers)])
        output = sum(p.stat().st_size for p in (paths.root / "curated").rglob("*.parquet"))

    print(
        f"\n{baseline.records:,} records, {len(files)} files, {size / 2**20:,.0f} MiB raw JSONL\n"
    )
    print("| step | wall s | records/s | peak RSS, largest process | peak RSS, process tree |")
    print("|---|---:|---:|---:|---:|")
    for m in (exported, baseline):
        print(
            f"| {m.name} | {m.seconds:.1f} | {m.per_second:,.0f} | "
            f"{m.max_process_mib:,.0f} MiB | {m.tree_mib:,.0f} MiB |"
        )
    ratio = exported.seconds / baseline.seconds
    print(f"\nexport/read_json wall-time ratio: {ratio:.2f}x")
    print(
        f"export wrote {exported.extra['rows']:,} rows ({exported.extra['duplicates']:,} "
        f"duplicates dropped), {output / 2**20:,.0f} MiB of Parquet"
    )


if __name__ == "__main__":
    main()
