"""Benchmark a yearly pull: gh_collect against the limit, its peers and itself (issue 6).

    .venv/bin/python scripts/bench.py                 # everything, ~1 hour on 2 cores
    .venv/bin/python scripts/bench.py --quick         # tiny org, gh_collect and the limit
    .venv/bin/python scripts/bench.py --sections default,peers --runs 5 --json out.json

Every harvester runs as its own subprocess against the built-in simulator on 127.0.0.1
(no token, no network), so wall time, CPU time and peak RSS are the process's own
(``os.wait4``) and the request count is what the simulator saw. Sections:

* ``default``: gh_collect (harvest, then ``gh-collect export``) and **the limit**, a bare
  async httpx loop that fetches exactly the fewest pages any REST client needs (computed
  from the simulator's model: ``minimal_pages``) with the same concurrency, no processing, paced
  by an oracle that knows the simulator's rules exactly (see ``limit_worker``).
* ``peers``: meltanolabs-tap-github, Perceval and github-to-sqlite, each pip-installed into
  its own venv under ``bench-out/venvs``, run with a network guard that sends
  ``https://api.github.com`` to the simulator and refuses every non-loopback address.
* ``scaling``: gh_collect and the limit at several org sizes and latencies.
* ``checkpoint``: time inside ``CheckpointManager.save`` over wall time, at 5,000 tiny repos.
* ``resume``: requests repeated after a SIGKILL at a random point and a rerun.
* ``reviews``: ``reviews`` + ``pull_stats`` on the default org: the GraphQL points they cost
  against (pulls in the window) / 40 plus the overflow follow-ups, the REST requests of the
  fallback (``github.graphql: false``: one list per pull), and the wall of gh_collect's
  GraphQL walk against a bare loop posting the same queries (``graphql_worker``).

Output: markdown tables on stdout, ``--json`` for machines, and a PNG chart (wall time vs
org size; matplotlib is installed into its own venv, never into the project's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gh_collect import endpoints as declared  # noqa: E402
from gh_collect.simulator import OrgModel, Simulator, SimulatorConfig  # noqa: E402
from gh_collect.simulator.model import (  # noqa: E402
    Entry,
    RepoData,
    encode_cursor,
    iso,
    select_repos,
    year_start,
)

YEAR = 2025
ORG = "bench-org"
TOKEN_ENV = "BENCH_GH_TOKEN"
OUT = ROOT / "bench-out"
BUDGET = 10_000_000  # the primary budget is set out of the way: the request column is the cost
CURSOR_THRESHOLD = 0
"""Issue lists page with ``after`` cursors from the first page, as GitHub answers today
(tap-github #415 and go-github #3565 saw cursor links on small repos too); tap-github relies
on it and reads only one page of issues from ``page=`` links."""
SECTIONS = ("default", "peers", "scaling", "checkpoint", "resume", "reviews", "fleet")
DEFAULT_SECTIONS = SECTIONS[:-1]  # fleet needs redis-server: asked for by name
RAW_ENDPOINTS = ("pulls", "issues")
REST_ENDPOINTS = ("pulls", "issues", "issue_comments", "review_comments", "commits", "releases")
PULLS_ROUTE, ISSUES_ROUTE = "/repos/{owner}/{repo}/pulls", "/repos/{owner}/{repo}/issues"
ACTIVITY_PATHS = {
    "issue_comments": "issues/comments",
    "review_comments": "pulls/comments",
    "commits": "commits",
    "releases": "releases",
}
"""The repo-wide lists of issue 14, by endpoint name: their paths under a repo (the
simulator's route key is ``/repos/{owner}/{repo}/`` + path)."""


# ---------------------------------------------------------------------------------------------
# scenarios


@dataclass(frozen=True)
class Scenario:
    """One simulated org and network: what a measurement runs against."""

    name: str
    repos: int
    sizes: tuple[int, ...] | None  # items (pulls + issues) per repo, cycled; None: random 0-400
    latency_ms: float
    server_time_ms: float
    concurrency: int
    seed: int = 0
    history_years: float = 10.0  # of history before the report year
    touched_share: float = 0.03  # of the items created before the year, updated in it
    endpoints: tuple[str, ...] = RAW_ENDPOINTS  # what gh_collect harvests and the limit reads
    graphql: bool = True  # github.graphql: false reads reviews through REST, per pull

    def sim_config(self) -> SimulatorConfig:
        return SimulatorConfig(
            seed=self.seed,
            repos=self.repos,
            org=ORG,
            latency_ms=self.latency_ms,
            server_time_ms=self.server_time_ms,
            rate_limit=BUDGET,
            sizes=self.sizes,
            scenarios=False,
            cursor_threshold=CURSOR_THRESHOLD,
            history_years=self.history_years,
            touched_share=self.touched_share,
        )

    @property
    def model_key(self) -> tuple[object, ...]:
        return (self.repos, self.sizes, self.seed, self.history_years, self.touched_share)


def spread(repos: int, biggest: int) -> tuple[int, ...]:
    """Repo sizes from 0 to ``biggest``, most repos small and a few big, as in a real org."""
    if repos <= 1:
        return (biggest,)
    return tuple(round(biggest * (i / (repos - 1)) ** 2.5) for i in range(repos))


def warm(model: OrgModel) -> int:
    """Render every object before anything is timed (returns how many). The simulator
    renders an object the first time it serves it; whichever tool ran first would pay for
    that, and gh_collect's pacer would even count it as GitHub's server time. The cyclic
    collector is paused meanwhile: rendering makes no cycles, and re-scanning the millions of
    objects it keeps would double the time."""
    gc.disable()
    try:
        return sum(
            len(item.fragments) > 0 for repo in model.repos for item in (*repo.pulls, *repo.issues)
        )
    finally:
        gc.enable()


class Models:
    """Generated orgs, kept for reuse across latencies: generating a big org is slow."""

    def __init__(self) -> None:
        self._models: dict[tuple[object, ...], OrgModel] = {}

    def get(self, scenario: Scenario) -> OrgModel:
        key = scenario.model_key
        if key not in self._models:
            self._models.clear()  # one at a time: a 1,000-repo org is hundreds of MB
            log(f"generating a {scenario.repos}-repo org ...")
            started = time.perf_counter()
            self._models[key] = OrgModel.generate(
                scenario.seed, scenario.repos, ORG, sizes=scenario.sizes, scenarios=False,
                history_years=scenario.history_years, touched_share=scenario.touched_share,
            )  # fmt: skip
            log(f"generated in {time.perf_counter() - started:.1f} s; rendering every object ...")
            started = time.perf_counter()
            count = warm(self._models[key])
            log(f"rendered {count} objects in {time.perf_counter() - started:.1f} s")
        return self._models[key]

    @contextlib.contextmanager
    def serve(self, scenario: Scenario) -> Iterator[Simulator]:
        with Simulator(scenario.sim_config(), self.get(scenario)) as sim:
            yield sim


# ---------------------------------------------------------------------------------------------
# the minimal page set


@dataclass(frozen=True)
class PagePlan:
    endpoint: str  # the simulator's route key: what its per-endpoint limit counts
    url: str  # relative to the API root


PER_PAGE = 100


def minimal_pages(
    model: OrgModel,
    year: int = YEAR,
    cursor_threshold: int = CURSOR_THRESHOLD,
    endpoints: Sequence[str] = RAW_ENDPOINTS,
) -> list[PagePlan]:
    """The fewest requests ANY REST client needs for a correct harvest of ``year``, computed
    from the simulator's model (not from gh_collect's strategy), ``per_page=100`` throughout:

    * the org's repo listing, every page;
    * per repo a default config harvests: the issues list with ``since`` = the year's start,
      created ascending, up to the first page holding an item created at or after the
      year's end (or the list's end): nothing after it can be in the window;
    * its pulls (no ``since`` exists), newest-updated first, up to the first page holding a
      pull updated before the year's start (or the list's end);
    * when ``endpoints`` name them (in their order, after pulls and issues): its issue and
      review comments like the issues list (``since``, created ascending, up to the first
      page holding one created at or after the year's end); its commits with ``since`` and
      ``until`` = the year's bounds, every page (an empty repo: the one 409); its releases
      (no filter exists), newest first, up to the first page whose last release was created
      before the year's start (or the list's end).

    Each URL is the one the simulator's ``Link`` header gives (the ``/repositories/{id}``
    form, page numbers or ``after`` cursors beyond ``cursor_threshold`` items, the request's
    own query kept), so the limit fetches exactly this page set."""
    listing = f"/orgs/{ORG}/repos"
    base: dict[str, str | int] = {"type": "all", "sort": "full_name", "direction": "asc"}
    base["per_page"] = PER_PAGE
    later = f"/organizations/{model.org_id}/repos?{_query(base)}"
    pages = [PagePlan(listing, f"{listing}?{_query(base)}")]
    pages += [
        PagePlan(listing, f"{later}&page={n}")
        for n in range(2, -(-len(model.repos) // PER_PAGE) + 1)
    ]
    repos = sorted(select_repos(model.repos, [], [], False, True), key=lambda r: r.name.lower())
    if "pulls" in endpoints:
        for repo in repos:
            pages += [PagePlan(PULLS_ROUTE, url) for url in _pull_pages(repo, year)]
    if "issues" in endpoints:
        for repo in repos:
            urls = _issue_pages(repo, year, cursor_threshold)
            pages += [PagePlan(ISSUES_ROUTE, url) for url in urls]
    for endpoint in (name for name in endpoints if name in ACTIVITY_PATHS):
        route = f"/repos/{{owner}}/{{repo}}/{ACTIVITY_PATHS[endpoint]}"
        for repo in repos:
            pages += [PagePlan(route, url) for url in _activity_pages(repo, endpoint, year)]
    return pages


def _query(params: dict[str, str | int]) -> str:
    """Encoded as the simulator writes its ``Link`` URLs."""
    return urlencode(params, quote_via=quote, safe=":,")


def _pull_pages(repo: RepoData, year: int) -> list[str]:
    """Newest-updated first: the pulls updated in or after the year come first; the page
    holding the first one updated before it is the last needed."""
    params: dict[str, str | int] = {"state": "all", "sort": "updated", "direction": "desc"}
    params["per_page"] = PER_PAGE
    pulls = repo.select("pulls", "all", "updated", None)
    start = iso(year_start(year))
    recent = sum(1 for item in pulls.items if item.updated_at >= start)
    count = min(recent // PER_PAGE + 1, max(1, -(-len(pulls) // PER_PAGE)))
    first = f"/repos/{ORG}/{repo.name}/pulls?{_query(params)}"
    later = f"/repositories/{repo.id}/pulls?{_query(params)}"
    return [first, *(f"{later}&page={n}" for n in range(2, count + 1))]


def _issue_pages(repo: RepoData, year: int, cursor_threshold: int) -> list[str]:
    """Created ascending since the year's start, up to the page holding an item created at or
    after the year's end."""
    since = iso(year_start(year))
    selection = repo.select("issues", "all", "created", since)
    params: dict[str, str | int] = {"state": "all", "sort": "created", "direction": "asc"}
    params.update(per_page=PER_PAGE, since=since)
    end = iso(year_start(year + 1))
    urls = [f"/repos/{ORG}/{repo.name}/issues?{_query(params)}"]
    cursors = len(selection) > cursor_threshold
    for start in range(0, len(selection), PER_PAGE):
        last = start + PER_PAGE
        if any(item.created_at >= end for item in selection.items[start:last]):
            break
        if last >= len(selection):
            break
        position: dict[str, str | int] = (
            {"after": encode_cursor(selection.keys[last - 1])}
            if cursors
            else {"page": last // PER_PAGE + 1}
        )
        urls.append(f"/repositories/{repo.id}/issues?{_query({**params, **position})}")
    return urls


def _activity_pages(repo: RepoData, endpoint: str, year: int) -> list[str]:
    """The pages of one repo-wide list of issue 14 a correct harvest of ``year`` reads."""
    start, end = iso(year_start(year)), iso(year_start(year + 1))
    activity = repo.activity
    params: dict[str, str | int]
    if endpoint == "commits":
        params = {"per_page": PER_PAGE, "since": start, "until": end}
        if activity is not None and activity.empty_repository:
            return _numbered(repo, endpoint, params, 1)  # answered 409
        served = activity.select("commits", "created", start, end) if activity else ()
        return _numbered(repo, endpoint, params, _pages_through(served, lambda _page: False))
    if endpoint == "releases":
        params = {"per_page": PER_PAGE}
        served = activity.entries("releases")[::-1] if activity else ()
        count = _pages_through(served, lambda page: page[-1].created_at < start)
        return _numbered(repo, endpoint, params, count)
    params = {"sort": "created", "direction": "asc", "per_page": PER_PAGE, "since": start}
    served = activity.select(endpoint, "created", start) if activity else ()
    count = _pages_through(served, lambda page: any(e.created_at >= end for e in page))
    return _numbered(repo, endpoint, params, count)


def _pages_through(served: Sequence[Entry], done: Callable[[Sequence[Entry]], bool]) -> int:
    """How many pages of ``served`` (in the order served) a walk reads: up to and including
    the first page ``done`` says ends it, else all of them; at least one."""
    for start in range(0, len(served), PER_PAGE):
        if done(served[start : start + PER_PAGE]):
            return start // PER_PAGE + 1
    return max(1, -(-len(served) // PER_PAGE))


def _numbered(repo: RepoData, endpoint: str, params: dict[str, str | int], count: int) -> list[str]:
    """The first page as the client asks for it, then the Link header's page-number URLs."""
    path, query = ACTIVITY_PATHS[endpoint], _query(params)
    later = f"/repositories/{repo.id}/{path}?{query}"
    return [
        f"/repos/{ORG}/{repo.name}/{path}?{query}",
        *(f"{later}&page={n}" for n in range(2, count + 1)),
    ]


# ---------------------------------------------------------------------------------------------
# running and measuring processes


@dataclass
class Proc:
    returncode: int
    wall_s: float
    cpu_s: float
    rss_mb: float
    timed_out: bool
    stderr: str


LAUNCHER = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    start = time.perf_counter()
    child = subprocess.Popen(sys.argv[2:])
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    with open(sys.argv[1], "w") as out:
        json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                   "maxrss_kb": usage.ru_maxrss}, out)
    sys.exit(os.waitstatus_to_exitcode(status) % 256)
    """
)
"""Runs the measured command and reports its ``wait4`` rusage. Needed because Linux charges a
child spawned straight from this process with our peak RSS: a vfork/``posix_spawn`` child
shares our memory until exec, and exec records that memory's high-water mark as the child's
``ru_maxrss``. The small launcher's own children start clean."""


def run_proc(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    stdout: Path | None = None,
    kill_when: Callable[[], bool] | None = None,
) -> Proc:
    """Run one process (through ``LAUNCHER``) and measure it: wall, CPU and peak RSS are its
    own. ``kill_when`` is polled every 10 ms; when it turns true, or at ``timeout``, the whole
    process group gets SIGKILL (the resume benchmark's crash)."""
    argv = ["env", "-C", str(cwd), *cmd] if cwd else list(cmd)
    with contextlib.ExitStack() as stack:
        err = stack.enter_context(tempfile.TemporaryFile())
        out = stack.enter_context((stdout or Path(os.devnull)).open("wb"))
        usage_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "usage.json"
        launcher = [sys.executable, "-c", LAUNCHER, str(usage_file), *argv]
        actions = [(os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
        start = time.perf_counter()
        pid = os.posix_spawn(
            sys.executable, launcher, env if env is not None else dict(os.environ),
            file_actions=actions, setsid=True,
        )  # fmt: skip
        done = threading.Event()
        watcher = threading.Thread(target=_watch, args=(pid, done, start, timeout, kill_when))
        watcher.start()
        _, status, _ = os.wait4(pid, 0)
        wall = time.perf_counter() - start
        done.set()
        watcher.join()
        err.seek(0)
        text = err.read().decode(errors="replace")[-4000:]
        usage = json.loads(usage_file.read_text()) if usage_file.exists() else {}
    code = os.waitstatus_to_exitcode(status)
    if code > 128 and usage:  # the launcher reports a signal death as 256 - signal
        code = code - 256
    return Proc(
        code,
        usage.get("wall", wall),
        usage.get("cpu", 0.0),
        usage.get("maxrss_kb", 0) / 1024,
        timeout is not None and wall >= timeout and code < 0,
        text,
    )


def _watch(
    pid: int,
    done: threading.Event,
    start: float,
    timeout: float | None,
    kill_when: Callable[[], bool] | None,
) -> None:
    """Kill the process group on timeout or when ``kill_when`` fires; never after the wait
    returned (the pid could be reused)."""
    while not done.wait(0.01):
        late = timeout is not None and time.perf_counter() - start >= timeout
        if late or (kill_when is not None and kill_when()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            return


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GH_COLLECT_", "BENCH_"))}
    env.update(extra)
    return env


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# one measurement


@dataclass
class Result:
    tool: str
    scenario: str
    wall_s: float
    cpu_s: float
    rss_mb: float
    requests: int
    secondary: int
    objects: int
    truth: str  # "yes", "no (...)", "n/a"
    exit_code: int
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Counted:
    """Simulator counters around one run: requests and secondary-limit refusals it caused."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.before = sim.stats()

    def delta(self) -> tuple[int, int, dict[str, int]]:
        after = self.sim.stats()
        routes = {
            route: count - self.before["by_route"].get(route, 0)
            for route, count in after["by_route"].items()
            if count - self.before["by_route"].get(route, 0)
        }
        return (
            after["requests"] - self.before["requests"],
            after["secondary_limited"] - self.before["secondary_limited"],
            routes,
        )

    def spent(self) -> int:
        """Requests charged to the budget since (a 304 is not: GitHub does not charge it)."""
        return int(self.sim.stats()["budget_spent"] - self.before["budget_spent"])


def new_token(tool: str) -> str:
    """A fresh token per run: each run gets its own budget and secondary-limit windows."""
    return f"bench-{tool}-{uuid.uuid4().hex[:12]}"


HARVEST = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import gh_collect.durable.checkpoint as checkpoint
    from gh_collect.durable.checkpoint import writer
    from gh_collect.config import load_config, resolve_token
    from gh_collect.report.progress import LogReporter
    from gh_collect.harvest.run import RunOptions, collect

    saves = {"loop": 0.0, "count": 0, "writer": 0.0}

    def timed(original, key, count):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                saves[key] += time.perf_counter() - started
                if count:  # the writer thread leaves the count to the loop
                    saves["count"] += count
        return wrapper

    manager = checkpoint.CheckpointManager
    manager.save = timed(manager.save, "loop", 1)  # on the event loop, whole
    manager._submit_save = timed(manager._submit_save, "loop", 1)  # the loop's part
    writer.GroupCommit._write_next = timed(writer.GroupCommit._write_next, "writer", 0)
    config = load_config(Path(sys.argv[1]))
    started = time.perf_counter()
    code = 2
    try:
        result = collect(
            config, resolve_token(config), RunOptions(export=False),
            reporter=LogReporter(quiet=True),
        )
        code = result.exit_code
    finally:
        Path(sys.argv[2]).write_text(json.dumps(
            {"save_s": saves["loop"], "saves": saves["count"], "writer_s": saves["writer"],
             "wall_s": time.perf_counter() - started}
        ))
    sys.exit(code)
    """
)
"""``collect`` as the CLI runs it (quiet log reporter) minus the Parquet export, which is
timed on its own with ``gh-collect export``. Saving is timed in place: on the event loop
(``save``, and the snapshot of a background save) and on the checkpoint writer thread."""


class GhCollect:
    """gh_collect runs in a work folder: config, dataset and the harvest runner."""

    def __init__(
        self,
        sim: Simulator,
        scenario: Scenario,
        work: Path,
        checkpoint: dict[str, int] | None = None,
    ) -> None:
        self.sim, self.scenario, self.work = sim, scenario, work
        self.checkpoint = checkpoint or {}  # cadence overrides; {} = the SPEC defaults
        work.mkdir(parents=True, exist_ok=True)
        self.config = work / "config.yaml"
        self.runner = work / "harvest.py"
        self.saves = work / "saves.json"
        self.runner.write_text(HARVEST)
        self.token = new_token("gh_collect")
        self.config.write_text(yaml.safe_dump(self._config()))

    def _config(self) -> dict[str, Any]:
        return {
            "target": {"org": ORG},
            "year": YEAR,
            "endpoints": list(self.scenario.endpoints),
            "github": {
                "api_url": self.sim.url,
                "token_env": TOKEN_ENV,
                "concurrency": self.scenario.concurrency,
                "timeout_s": 30,
                "graphql": self.scenario.graphql,
            },
            "output": {"root": str(self.work / "data")},
            **({"checkpoint": self.checkpoint} if self.checkpoint else {}),
        }

    @property
    def raw_dir(self) -> Path:
        return self.work / "data" / "raw" / f"year={YEAR}" / "source=github" / f"target={ORG}"

    def harvest(self, kill_when: Callable[[], bool] | None = None, timeout: float = 3600) -> Proc:
        cmd = [sys.executable, str(self.runner), str(self.config), str(self.saves)]
        env = clean_env(**{TOKEN_ENV: self.token})
        return run_proc(cmd, env=env, cwd=self.work, timeout=timeout, kill_when=kill_when)

    def export(self) -> Proc:
        cmd = [sys.executable, "-m", "gh_collect", "export", "-c", str(self.config)]
        return run_proc(cmd, env=clean_env(), cwd=self.work, timeout=3600)

    def harvested(self) -> dict[str, Counter[Any]]:
        found: dict[str, Counter[Any]] = {}
        for endpoint in self.scenario.endpoints:
            ids: Counter[Any] = Counter()
            key = declared.get(endpoint).key
            for path in sorted((self.raw_dir / f"endpoint={endpoint}").glob("*.jsonl")):
                with path.open("rb") as lines:
                    ids.update(json.loads(line)["data"][key] for line in lines)
            found[endpoint] = ids
        return found

    def save_timing(self) -> dict[str, float]:
        loaded: dict[str, float] = json.loads(self.saves.read_text())
        return loaded


def truth_ids(sim: Simulator, endpoints: Sequence[str] = RAW_ENDPOINTS) -> dict[str, Counter[Any]]:
    truth = sim.ground_truth(YEAR, tuple(endpoints))
    return {
        ep: Counter(obj[declared.get(ep).key] for objs in truth[ep].values() for obj in objs)
        for ep in truth
    }


def compare(found: dict[str, Counter[Any]], truth: dict[str, Counter[Any]]) -> str:
    """ "yes" when every ground-truth object is there exactly once and nothing else is."""
    problems = []
    for endpoint, expected in truth.items():
        got = found.get(endpoint, Counter())
        missing, extra = expected - got, got - expected
        if missing or extra:
            problems.append(
                f"{endpoint}: {sum(missing.values())} missing, {sum(extra.values())} extra"
            )
    return "yes" if not problems else "no (" + "; ".join(problems) + ")"


def measure_gh_collect(
    sim: Simulator,
    scenario: Scenario,
    work: Path,
    *,
    export: bool = True,
    checkpoint: dict[str, int] | None = None,
) -> Result:
    tool = GhCollect(sim, scenario, work, checkpoint)
    counted = Counted(sim)
    proc = tool.harvest()
    requests, secondary, routes = counted.delta()
    found = tool.harvested()
    saves = tool.save_timing()
    extra: dict[str, Any] = {"routes": routes, "saves": saves}
    if export:
        exported = tool.export()
        extra["export"] = {
            "wall_s": exported.wall_s,
            "cpu_s": exported.cpu_s,
            "rss_mb": exported.rss_mb,
            "exit_code": exported.returncode,
        }
    checkpoint = tool.raw_dir / "checkpoint.json"
    extra["checkpoint_bytes"] = checkpoint.stat().st_size if checkpoint.exists() else 0
    note = "" if proc.returncode == 0 else proc.stderr[-300:]
    shutil.rmtree(work, ignore_errors=True)
    return Result(
        "gh_collect",
        scenario.name,
        proc.wall_s,
        proc.cpu_s,
        proc.rss_mb,
        requests,
        secondary,
        sum(sum(ids.values()) for ids in found.values()),
        compare(found, truth_ids(sim, scenario.endpoints)),
        proc.returncode,
        note,
        extra,
    )


def measure_refresh(sim: Simulator, scenario: Scenario, work: Path) -> dict[str, Any]:
    """A full harvest, then the same command again with nothing changed (a nightly cron):
    what each is charged (304s are free), and the share the refresh costs."""
    tool = GhCollect(sim, scenario, work)
    full = Counted(sim)
    first = tool.harvest()
    full_charged = full.spent()
    again = Counted(sim)
    second = tool.harvest()
    requests, _secondary, _routes = again.delta()
    shutil.rmtree(work, ignore_errors=True)
    return {
        "full_charged": full_charged,
        "refresh_requests": requests,
        "refresh_charged": again.spent(),
        "refresh_share": again.spent() / max(full_charged, 1),
        "refresh_wall_s": second.wall_s,
        "exit_codes": [first.returncode, second.returncode],
    }


# ---------------------------------------------------------------------------------------------
# the limit


def limit_worker(plan_file: Path) -> None:
    """The bare loop (run in its own process): ``concurrency`` workers GET the planned pages,
    read each body and drop it. Pacing is an oracle: it knows the simulator's rules exactly
    (a rolling 60 s window of 900 starts per endpoint, 90 s of *server* time per 60 s, 100
    in flight), with no safety margin beyond a 0.5 s longer window for clock jitter. A real
    client can only estimate server time from response times (which include the network), so
    this is a lower bound no GitHub client can beat."""
    import httpx

    plan = json.loads(plan_file.read_text())
    pages: deque[tuple[str, str]] = deque(tuple(page) for page in plan["pages"])
    window = 60.5
    cost = plan["server_time_ms"] / 1000.0
    starts: dict[str, deque[float]] = {}
    work: deque[float] = deque()
    statuses: Counter[int] = Counter()

    def delay(endpoint: str, now: float) -> float:
        hits = starts.setdefault(endpoint, deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        while work and work[0] <= now - window:
            work.popleft()
        wait = 0.0
        if len(hits) >= plan["max_per_minute"]:
            wait = hits[len(hits) - plan["max_per_minute"]] + window - now
        if cost and (len(work) + 1) * cost > plan["max_server_s"]:
            excess = len(work) + 1 - int(plan["max_server_s"] / cost)
            wait = max(wait, work[excess - 1] + window - now)
        return wait

    async def worker(http: httpx.AsyncClient) -> None:
        while pages:
            endpoint, url = pages.popleft()
            while (wait := delay(endpoint, time.monotonic())) > 0:
                await asyncio.sleep(wait)
            now = time.monotonic()
            starts[endpoint].append(now)
            if cost:
                work.append(now)
            async with http.stream("GET", url) as response:
                async for _chunk in response.aiter_raw():
                    pass  # no processing: the body is read off the socket and dropped
            statuses[response.status_code] += 1

    async def main() -> None:
        limits = httpx.Limits(
            max_connections=plan["concurrency"], max_keepalive_connections=plan["concurrency"]
        )
        headers = {"Authorization": f"Bearer {plan['token']}", "User-Agent": "bench-limit"}
        async with httpx.AsyncClient(
            base_url=plan["base"], headers=headers, limits=limits, follow_redirects=True
        ) as http:
            await asyncio.gather(*(worker(http) for _ in range(plan["concurrency"])))

    asyncio.run(main())
    print(json.dumps({"statuses": {str(k): v for k, v in statuses.items()}}))


def measure_limit(sim: Simulator, scenario: Scenario, pages: list[PagePlan], work: Path) -> Result:
    work.mkdir(parents=True, exist_ok=True)
    cfg = sim.cfg
    plan = {
        "base": sim.url,
        "token": new_token("limit"),
        "concurrency": min(scenario.concurrency, cfg.max_in_flight),
        "max_per_minute": cfg.max_per_minute,
        "max_server_s": cfg.max_server_seconds_per_minute,
        "server_time_ms": cfg.server_time_ms,
        "pages": [(page.endpoint, page.url) for page in pages],
    }
    plan_file, out = work / "plan.json", work / "limit.json"
    plan_file.write_text(json.dumps(plan))
    counted = Counted(sim)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--limit-worker", str(plan_file)]
    proc = run_proc(cmd, env=clean_env(), timeout=3600, stdout=out)
    requests, secondary, routes = counted.delta()
    statuses = json.loads(out.read_text())["statuses"] if proc.returncode == 0 else {}
    shutil.rmtree(work, ignore_errors=True)
    ok = statuses.get("200", 0)
    return Result(
        "limit",
        scenario.name,
        proc.wall_s,
        proc.cpu_s,
        proc.rss_mb,
        requests,
        secondary,
        0,
        "n/a",
        proc.returncode,
        "" if ok == len(pages) else f"statuses {statuses}",
        {"routes": routes, "pages": len(pages)},
    )


# ---------------------------------------------------------------------------------------------
# peers


GUARD = textwrap.dedent(
    '''
    """Bench network guard (sitecustomize): https://api.github.com goes to the simulator and
    nothing may connect to or look up anything but loopback."""
    import os
    import socket

    _SIM = os.environ["BENCH_SIM_URL"].rstrip("/")
    _GITHUB = "https://api.github.com"


    def _loopback(host):
        host = str(host or "")
        return host in ("localhost", "::1", "") or host.startswith("127.")


    _connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


    def _check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            raise OSError(f"bench network guard: refused {address!r}")


    def connect(self, address):
        _check(self, address)
        return _connect(self, address)


    def connect_ex(self, address):
        _check(self, address)
        return _connect_ex(self, address)


    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    _getaddrinfo = socket.getaddrinfo


    def getaddrinfo(host, *args, **kwargs):
        if not _loopback(host.decode() if isinstance(host, bytes) else host):
            raise socket.gaierror(f"bench network guard: no lookup of {host!r}")
        return _getaddrinfo(host, *args, **kwargs)


    socket.getaddrinfo = getaddrinfo
    try:
        import requests.sessions
    except ImportError:
        pass
    else:
        _request = requests.sessions.Session.request
        _REWRITE = os.environ.get("BENCH_AS_GITHUB") == "1"

        def request(self, method, url, *args, **kwargs):
            if isinstance(url, str) and url.startswith(_GITHUB):
                url = _SIM + url[len(_GITHUB):]
            response = _request(self, method, url, *args, **kwargs)
            if _REWRITE:  # the peer parses api.github.com URLs out of bodies: serve them so
                response._content = response.content.replace(_SIM.encode(), _GITHUB.encode())
                if "Link" in response.headers:
                    response.headers["Link"] = response.headers["Link"].replace(_SIM, _GITHUB)
            return response

        requests.sessions.Session.request = request
    '''
)


@dataclass(frozen=True)
class Peer:
    name: str
    package: str
    check: str  # an executable in the venv's bin


PEERS = (
    Peer("tap-github", "meltanolabs-tap-github", "tap-github"),
    Peer("perceval", "perceval", "perceval"),
    Peer("github-to-sqlite", "github-to-sqlite", "github-to-sqlite"),
)


def peer_venv(peer: Peer, out: Path) -> Path | None:
    """The peer's own venv (created and pip-installed once, reused after), or None."""
    venv = out / "venvs" / peer.name
    if (venv / "bin" / peer.check).exists():
        return venv
    log(f"installing {peer.package} into {venv} ...")
    shutil.rmtree(venv, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", peer.package],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        log(f"skipping {peer.name}: pip install {peer.package} failed: {detail[-500:]!r}")
        return None
    return venv


def guard_dir(out: Path) -> Path:
    folder = out / "guard"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(GUARD)
    return folder


def peer_env(sim: Simulator, out: Path, *, as_github: bool = False) -> dict[str, str]:
    """Environment for a peer: the guard on PYTHONPATH; ``as_github`` also rewrites the
    simulator's URLs in bodies and Link headers to https://api.github.com."""
    return clean_env(
        BENCH_SIM_URL=sim.url,
        BENCH_AS_GITHUB="1" if as_github else "0",
        PYTHONPATH=str(guard_dir(out)),
        NO_PROXY="*",
        no_proxy="*",
        HTTP_PROXY="",
        HTTPS_PROXY="",
    )


def in_window(obj: dict[str, Any]) -> bool:
    created, updated = obj.get("created_at") or "", obj.get("updated_at") or ""
    return created < f"{YEAR + 1}-01-01" and updated >= f"{YEAR}-01-01"


def window_ids(objs: Iterable[dict[str, Any]], *, pulls: bool) -> Counter[int]:
    """The ids a peer's output holds after the same window filter (issues without pulls)."""
    return Counter(
        int(obj["id"])
        for obj in objs
        if in_window(obj) and (pulls or "pull_request" not in obj or not obj["pull_request"])
    )


def peer_result(
    peer: str,
    scenario: Scenario,
    procs: list[Proc],
    counted: Counted,
    found: dict[str, Counter[int]] | None,
    sim: Simulator,
    note: str = "",
) -> Result:
    requests, secondary, routes = counted.delta()
    failed = [p for p in procs if p.returncode != 0]
    timed_out = any(p.timed_out for p in procs)
    if failed and not note:
        note = f"{len(failed)} of {len(procs)} runs failed: " + failed[0].stderr[-300:]
    if timed_out:
        note = f"timed out (killed); {note}"
    truth = compare(found, truth_ids(sim)) if found is not None else "n/a"
    objects = sum(sum(c.values()) for c in found.values()) if found else 0
    return Result(
        peer,
        scenario.name,
        sum(p.wall_s for p in procs),
        sum(p.cpu_s for p in procs),
        max((p.rss_mb for p in procs), default=0.0),
        requests,
        secondary,
        objects,
        truth,
        failed[0].returncode if failed else 0,
        note.strip(),
        {"routes": routes, "processes": len(procs), "timed_out": timed_out},
    )


def run_tap_github(
    sim: Simulator, scenario: Scenario, venv: Path, out: Path, work: Path, timeout: float
) -> Result:
    """Discover, select repositories + pull_requests + issues, run with start_date = year
    start. Its token check (GET https://api.github.com/rate_limit) goes to the simulator
    through the guard. Output: Singer messages on stdout, parsed afterwards."""
    work.mkdir(parents=True, exist_ok=True)
    config = {
        "auth_token": new_token("tap"),
        "api_url_base": sim.url,
        "organizations": [ORG],
        "start_date": f"{YEAR}-01-01T00:00:00Z",
        "rate_limit_buffer": 0,
    }
    (work / "config.json").write_text(json.dumps(config))
    env = peer_env(sim, out)
    tap = str(venv / "bin" / "tap-github")
    catalog = subprocess.run(
        [tap, "--config", "config.json", "--discover"],
        cwd=work,
        env=env,
        capture_output=True,
        timeout=300,
        check=True,
    ).stdout
    (work / "catalog.json").write_text(json.dumps(_select(json.loads(catalog))))
    counted = Counted(sim)
    output = work / "singer.jsonl"
    proc = run_proc(
        [tap, "--config", "config.json", "--catalog", "catalog.json"],
        env=env,
        cwd=work,
        timeout=timeout,
        stdout=output,
    )
    found = _singer_records(output)
    shutil.rmtree(work, ignore_errors=True)
    return peer_result("tap-github", scenario, [proc], counted, found, sim)


def _select(catalog: dict[str, Any]) -> dict[str, Any]:
    wanted = {"repositories", "pull_requests", "issues"}
    for stream in catalog["streams"]:
        chosen = stream["tap_stream_id"] in wanted
        for entry in stream.get("metadata", []):
            if not entry.get("breadcrumb"):
                entry["metadata"]["selected"] = chosen
    return catalog


def _singer_records(path: Path) -> dict[str, Counter[int]]:
    pulls: list[dict[str, Any]] = []
    issues: list[dict[str, Any]] = []
    with path.open("rb") as lines:
        for line in lines:
            if not line.startswith(b'{"type":"RECORD"') and b'"RECORD"' not in line[:40]:
                continue
            message = json.loads(line)
            if message.get("type") != "RECORD":
                continue
            if message["stream"] == "pull_requests":
                pulls.append(message["record"])
            elif message["stream"] == "issues":
                record = message["record"]
                if record.get("type") == "issue":
                    issues.append(record)
    return {
        "pulls": window_ids(pulls, pulls=True),
        "issues": window_ids(issues, pulls=False),
    }


def run_perceval(
    sim: Simulator, scenario: Scenario, venv: Path, out: Path, work: Path, timeout: float
) -> Result:
    """One ``perceval github`` process per repo and category, as Perceval is used, against
    the simulator's ``/api/v3`` (``--enterprise-url``), from the year start. Perceval fetches
    every pull request's detail, reviews, commits, requested reviewers, every comment, every
    reaction list and every user: the simulator serves those routes."""
    work.mkdir(parents=True, exist_ok=True)
    env = peer_env(sim, out)
    token = new_token("perceval")
    repos = sorted(r.name for r in select_repos(sim.model.repos, [], [], False, True))
    counted = Counted(sim)
    procs: list[Proc] = []
    found: dict[str, list[dict[str, Any]]] = {"pulls": [], "issues": []}
    deadline = time.perf_counter() + timeout
    for category, key in (("pull_request", "pulls"), ("issue", "issues")):
        for name in repos:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            output = work / f"{category}-{name}.jsonl"
            cmd = [
                str(venv / "bin" / "perceval"),
                "github",
                ORG,
                name,
                "--enterprise-url",
                sim.url,
                "--category",
                category,
                "--from-date",
                f"{YEAR}-01-01",
                "-t",
                token,
                "--json-line",
            ]
            procs.append(run_proc(cmd, env=env, cwd=work, timeout=left, stdout=output))
            found[key] += [item["data"] for item in _json_lines(output)]
    complete = len(procs) == 2 * len(repos) and not any(p.timed_out for p in procs)
    note = "" if complete else f"stopped after {len(procs)} of {2 * len(repos)} processes"
    ids = {
        "pulls": window_ids(found["pulls"], pulls=True),
        "issues": window_ids(found["issues"], pulls=False),
    }
    shutil.rmtree(work, ignore_errors=True)
    result = peer_result("perceval", scenario, procs, counted, ids, sim, note)
    result.extra["timed_out"] = not complete
    return result


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open("rb") as lines:
        for line in lines:
            if line.strip().startswith(b"{"):
                with contextlib.suppress(ValueError):
                    yield json.loads(line)


def run_github_to_sqlite(
    sim: Simulator, scenario: Scenario, venv: Path, out: Path, work: Path, timeout: float
) -> Result:
    """``pull-requests --org`` (one process for the org) and ``issues`` per repo (it takes
    one repo). It hard-codes https://api.github.com: the guard sends that to the simulator.
    It has no date filter, so it reads every item of every repo."""
    work.mkdir(parents=True, exist_ok=True)
    env = peer_env(sim, out, as_github=True)
    (work / "auth.json").write_text(json.dumps({"github_personal_token": new_token("g2s")}))
    tool = str(venv / "bin" / "github-to-sqlite")
    db = work / "github.db"
    repos = sorted(r.name for r in select_repos(sim.model.repos, [], [], False, True))
    counted = Counted(sim)
    deadline = time.perf_counter() + timeout
    procs = [
        run_proc([tool, "pull-requests", str(db), "--org", ORG], env=env, cwd=work, timeout=timeout)
    ]
    for name in repos:
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        procs.append(
            run_proc([tool, "issues", str(db), f"{ORG}/{name}"], env=env, cwd=work, timeout=left)
        )
    complete = len(procs) == 1 + len(repos) and not any(p.timed_out for p in procs)
    note = "" if complete else f"stopped after {len(procs)} of {1 + len(repos)} processes"
    found = _sqlite_ids(db)
    shutil.rmtree(work, ignore_errors=True)
    result = peer_result("github-to-sqlite", scenario, procs, counted, found, sim, note)
    result.extra["timed_out"] = not complete
    return result


def _sqlite_ids(db: Path) -> dict[str, Counter[int]]:
    if not db.exists():
        return {"pulls": Counter(), "issues": Counter()}
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables = {row[0] for row in conn.execute("select name from sqlite_master")}
        pulls = issues = []
        if "pull_requests" in tables:
            query = "select id, created_at, updated_at from pull_requests"
            pulls = [
                dict(zip(("id", "created_at", "updated_at"), r, strict=True))
                for r in conn.execute(query)
            ]
        if "issues" in tables:
            query = "select id, created_at, updated_at, type from issues"
            issues = [
                {"id": r[0], "created_at": r[1], "updated_at": r[2], "pull_request": r[3] == "pull"}
                for r in conn.execute(query)
            ]
    return {"pulls": window_ids(pulls, pulls=True), "issues": window_ids(issues, pulls=False)}


PEER_RUNNERS: dict[str, Callable[..., Result]] = {
    "tap-github": run_tap_github,
    "perceval": run_perceval,
    "github-to-sqlite": run_github_to_sqlite,
}


# ---------------------------------------------------------------------------------------------
# reviews and pull_stats (issue 15)


GRAPHQL_ENDPOINTS = ("reviews", "pull_stats")
REVIEW_ROUTES = (
    "/repos/{owner}/{repo}/pulls/{number}/reviews",
    "/repositories/{repo_id}/pulls/{number}/reviews",
)


def graphql_worker(plan_file: Path) -> None:
    """The bare GraphQL loop (its own process): ``concurrency`` workers, each taking the next
    repo and posting gh_collect's own ``PULLS_WITH_REVIEWS`` (the same page size and nested
    reviews) down to the first pull updated before the year, then ``PULL_REVIEWS`` for each
    pull in the year whose reviews overflow the batch. Bodies are parsed (the cursor is in
    them) and dropped: no checkpoint, no files, no retries, no pacing."""
    import httpx

    from gh_collect.github.graphql_queries import (
        PULL_REVIEWS,
        PULLS_WITH_REVIEWS,
        pull_reviews_variables,
        pulls_with_reviews_variables,
    )

    plan = json.loads(plan_file.read_text())
    repos: deque[str] = deque(plan["repos"])
    start, end = plan["start"], plan["end"]
    counts = Counter[str]()

    async def post(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> Any:
        response = await http.post("/graphql", json={"query": query, "variables": variables})
        counts[str(response.status_code)] += 1
        return response.json()["data"]

    async def follow_up(http: httpx.AsyncClient, pull: dict[str, Any]) -> None:
        info = pull["reviews"]["pageInfo"]
        while info["hasNextPage"]:
            variables = pull_reviews_variables(pull["id"], after=info["endCursor"])
            info = (await post(http, PULL_REVIEWS, variables))["node"]["reviews"]["pageInfo"]
            counts["follow_ups"] += 1

    async def walk(http: httpx.AsyncClient, full_name: str) -> None:
        owner, _, name = full_name.partition("/")
        after: str | None = None
        while True:
            variables = pulls_with_reviews_variables(owner, name, after=after)
            pulls = (await post(http, PULLS_WITH_REVIEWS, variables))["repository"]
            page = pulls["pullRequests"]
            for pull in page["nodes"]:
                if pull["createdAt"] < end and pull["updatedAt"] >= start:
                    await follow_up(http, pull)
            nodes = page["nodes"]
            if not page["pageInfo"]["hasNextPage"] or (nodes and nodes[-1]["updatedAt"] < start):
                return
            after = page["pageInfo"]["endCursor"]

    async def worker(http: httpx.AsyncClient) -> None:
        while repos:
            await walk(http, repos.popleft())

    async def main() -> None:
        concurrency = plan["concurrency"]
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {"Authorization": f"Bearer {plan['token']}", "User-Agent": "bench-graphql"}
        async with httpx.AsyncClient(
            base_url=plan["base"], headers=headers, limits=limits, timeout=60
        ) as http:
            await asyncio.gather(*(worker(http) for _ in range(concurrency)))

    asyncio.run(main())
    print(json.dumps(dict(counts)))


def measure_graphql_loop(sim: Simulator, scenario: Scenario, work: Path) -> Result:
    """The bare loop over the repos gh_collect harvests, timed like any tool."""
    work.mkdir(parents=True, exist_ok=True)
    repos = select_repos(sim.model.repos, [], [], False, True)
    plan = {
        "base": sim.url.rstrip("/"),
        "token": new_token("graphql-loop"),
        "concurrency": scenario.concurrency,
        "repos": [f"{ORG}/{repo.current_name}" for repo in repos],
        "start": f"{YEAR}-01-01T00:00:00Z",
        "end": f"{YEAR + 1}-01-01T00:00:00Z",
    }
    plan_file, out = work / "plan.json", work / "loop.json"
    plan_file.write_text(json.dumps(plan))
    before = sim.stats()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--graphql-worker", str(plan_file)]
    proc = run_proc(cmd, env=clean_env(), timeout=3600, stdout=out)
    counts = json.loads(out.read_text()) if proc.returncode == 0 else {}
    shutil.rmtree(work, ignore_errors=True)
    points = sim.stats()["graphql_points"] - before["graphql_points"]
    return Result(
        "bare GraphQL loop", scenario.name, proc.wall_s, proc.cpu_s, proc.rss_mb,
        sim.stats()["graphql_queries"] - before["graphql_queries"], 0, 0, "n/a",
        proc.returncode, "" if proc.returncode == 0 else proc.stderr[-300:],
        {"points": points, "follow_ups": counts.get("follow_ups", 0), "statuses": counts},
    )  # fmt: skip


def review_truth(sim: Simulator) -> tuple[Counter[int], int]:
    """The year's reviews by REST id, and the pulls in the window (``pull_stats``' rows)."""
    truth = sim.ground_truth(YEAR, GRAPHQL_ENDPOINTS)
    reviews = Counter(int(r["fullDatabaseId"]) for rs in truth["reviews"].values() for r in rs)
    return reviews, sum(len(pulls) for pulls in truth["pull_stats"].values())


def harvested_reviews(tool: GhCollect) -> Counter[int]:
    """The raw reviews by REST id, whichever transport wrote them (fan-out files too)."""
    key = "fullDatabaseId" if tool.scenario.graphql else "id"
    found: Counter[int] = Counter()
    for path in sorted((tool.raw_dir / "endpoint=reviews").rglob("*.jsonl")):
        with path.open("rb") as lines:
            found.update(int(json.loads(line)["data"][key]) for line in lines)
    return found


def measure_reviews_harvest(
    sim: Simulator, scenario: Scenario, work: Path, *, graphql: bool
) -> Result:
    """gh_collect on ``scenario``'s endpoints, GraphQL on or off: wall, requests, GraphQL
    points and queries, the REST review lists, and whether the reviews equal the truth."""
    import dataclasses

    scenario = dataclasses.replace(scenario, graphql=graphql)
    tool = GhCollect(sim, scenario, work)
    before, counted = sim.stats(), Counted(sim)
    proc = tool.harvest()
    requests, secondary, routes = counted.delta()
    after = sim.stats()
    expected, _pulls = review_truth(sim)
    found = harvested_reviews(tool)
    missing, extra = expected - found, found - expected
    truth = (
        "yes" if not missing and not extra else f"no ({len(missing)} missing, {len(extra)} extra)"
    )
    shutil.rmtree(work, ignore_errors=True)
    return Result(
        "gh_collect" + ("" if graphql else " (REST fallback)"), scenario.name, proc.wall_s,
        proc.cpu_s, proc.rss_mb, requests, secondary, sum(found.values()), truth,
        proc.returncode, "" if proc.returncode == 0 else proc.stderr[-300:],
        {
            "points": after["graphql_points"] - before["graphql_points"],
            "queries": after["graphql_queries"] - before["graphql_queries"],
            "review_lists": sum(routes.get(route, 0) for route in REVIEW_ROUTES),
            "routes": routes,
        },
    )  # fmt: skip


def section_reviews(opts: Options, models: Models) -> dict[str, Any]:
    """Per run: gh_collect's GraphQL walk alone (``reviews`` + ``pull_stats``), the bare loop
    posting the same queries, then ``pulls`` + both through GraphQL (the points); then, on
    the small org, ``pulls`` + ``reviews`` through the REST fallback (its requests)."""
    import dataclasses

    base = dataclasses.replace(opts.default, endpoints=GRAPHQL_ENDPOINTS)
    full = dataclasses.replace(opts.default, endpoints=("pulls", *GRAPHQL_ENDPOINTS))
    # The fallback costs a request per pull, and GitHub's 900 a minute per endpoint make
    # the default org's ~15,000 pulls 17 minutes at best: it runs on the small org.
    small = Scenario("small org", 10, spread(10, 300), opts.default.latency_ms,
                     opts.default.server_time_ms, opts.default.concurrency, opts.seed)  # fmt: skip
    rest = dataclasses.replace(small, endpoints=("pulls", "reviews"))
    runs: dict[str, list[Result]] = {"walk": [], "loop": [], "full": [], "rest": []}
    with models.serve(opts.default) as sim:
        for run in range(opts.runs):
            log(f"reviews: run {run + 1}/{opts.runs}: walk, bare loop, with pulls")
            work = opts.work / f"reviews-{run}"
            runs["walk"].append(measure_reviews_harvest(sim, base, work / "w", graphql=True))
            runs["loop"].append(measure_graphql_loop(sim, base, work / "l"))
            runs["full"].append(measure_reviews_harvest(sim, full, work / "f", graphql=True))
        reviews, pulls = review_truth(sim)
    with models.serve(small) as sim:
        for run in range(opts.runs):
            log(f"reviews: run {run + 1}/{opts.runs}: the small org through the REST fallback")
            work = opts.work / f"reviews-rest-{run}"
            runs["rest"].append(measure_reviews_harvest(sim, rest, work, graphql=False))
        rest_pulls = review_truth(sim)[1]
    medians = {name: median_result(results) for name, results in runs.items()}
    follow_ups = medians["loop"].extra["follow_ups"]
    return {
        "scenario": asdict(opts.default),
        "pulls_in_window": pulls,
        "reviews_in_window": sum(reviews.values()),
        "follow_ups": follow_ups,
        "points_budget": pulls / 40 + follow_ups,
        **{name: asdict(result) for name, result in medians.items()},
        "points": medians["full"].extra["points"],
        "rest_review_lists": medians["rest"].extra["review_lists"],
        "rest_pulls_in_window": rest_pulls,
        "walk_vs_loop": medians["walk"].wall_s / medians["loop"].wall_s,
        "walk_vs_loop_runs": [
            w.wall_s / loop.wall_s for w, loop in zip(runs["walk"], runs["loop"], strict=True)
        ],
    }


def _report_reviews(rv: dict[str, Any]) -> str:
    sc = rv["scenario"]
    labels = {
        "walk": ": reviews + pull_stats",
        "loop": ": the same queries",
        "full": ": pulls + reviews + pull_stats",
        "rest": ": pulls + reviews, small org",
    }
    rows = []
    for name, label in labels.items():
        run, extra = rv[name], rv[name]["extra"]
        queries = extra.get("queries", run["requests"])
        rows.append([run["tool"] + label, fmt(run["wall_s"]), fmt(run["cpu_s"]),
                     extra.get("points", "-"), queries, extra.get("review_lists", "-"),
                     run["requests"], run["truth"]])  # fmt: skip
    header = ["run", "wall s", "CPU s", "GraphQL points", "GraphQL queries",
              "REST review lists", "HTTP requests", "reviews = truth"]  # fmt: skip
    ratios = ", ".join(f"{r:.2f}" for r in rv["walk_vs_loop_runs"])
    return (
        f"## reviews and pull_stats ({sc['repos']} repos, latency {sc['latency_ms']:g} ms, "
        f"concurrency {sc['concurrency']}; {rv['pulls_in_window']} pulls and "
        f"{rv['reviews_in_window']} reviews in the window, {rv['follow_ups']} overflow "
        f"follow-ups; the small org: {rv['rest_pulls_in_window']} pulls)\n\n"
        + table(header, rows)
        + f"\n\nGraphQL walk / bare loop, per run: {ratios}"
    )


# ---------------------------------------------------------------------------------------------
# sections


@dataclass
class Options:
    runs: int
    out: Path
    work: Path
    default: Scenario
    peer_scenarios: list[Scenario]
    peer_timeout: float
    peers: list[str]
    scale_repos: list[int]
    scale_latencies: list[float]
    scale_runs: int
    checkpoint_repos: int
    resume_runs: int
    seed: int


def median_result(results: list[Result]) -> Result:
    """The run with the median wall time, with every numeric column replaced by its median."""
    ordered = sorted(results, key=lambda r: r.wall_s)
    middle = ordered[len(ordered) // 2]
    merged = Result(**{**asdict(middle)})
    for name in ("wall_s", "cpu_s", "rss_mb"):
        setattr(merged, name, statistics.median(getattr(r, name) for r in results))
    merged.extra = {**middle.extra, "runs": [asdict(r) | {"extra": {}} for r in results]}
    return merged


def section_default(opts: Options, models: Models) -> dict[str, Any]:
    scenario = opts.default
    pages = minimal_pages(models.get(scenario), endpoints=scenario.endpoints)
    gh: list[Result] = []
    limit: list[Result] = []
    with models.serve(scenario) as sim:
        for run in range(opts.runs):
            log(f"default org: run {run + 1}/{opts.runs}: gh_collect, then the limit")
            gh.append(measure_gh_collect(sim, scenario, opts.work / f"gh-{run}"))
            limit.append(measure_limit(sim, scenario, pages, opts.work / f"limit-{run}"))
        log("default org: a full harvest, then a no-change refresh")
        refresh = measure_refresh(sim, scenario, opts.work / "refresh")
    gh_m, limit_m = median_result(gh), median_result(limit)
    export = {
        key: statistics.median(r.extra["export"][key] for r in gh)
        for key in ("wall_s", "cpu_s", "rss_mb")
    }
    return {
        "scenario": asdict(scenario),
        "minimum_requests": len(pages),
        "gh_collect": asdict(gh_m),
        "limit": asdict(limit_m),
        "export": export,
        "wall_vs_limit": gh_m.wall_s / limit_m.wall_s,
        "requests_vs_minimum": gh_m.requests / len(pages),
        "checkpoint_bytes": gh_m.extra["checkpoint_bytes"],
        "refresh": refresh,
    }


def section_peers(opts: Options, models: Models) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for scenario in opts.peer_scenarios:
        venvs = {peer.name: peer_venv(peer, opts.out) for peer in PEERS if peer.name in opts.peers}
        with models.serve(scenario) as sim:
            log(f"peers on {scenario.name}: gh_collect first")
            gh = measure_gh_collect(sim, scenario, opts.work / "peer-gh", export=False)
            row: dict[str, Any] = {"scenario": asdict(scenario), "gh_collect": asdict(gh)}
            for name, venv in venvs.items():
                if venv is None:
                    row[name] = {"skipped": f"pip install of {name} failed"}
                    continue
                log(f"peers on {scenario.name}: {name} (timeout {opts.peer_timeout:.0f} s)")
                try:
                    result = PEER_RUNNERS[name](
                        sim, scenario, venv, opts.out, opts.work / name, opts.peer_timeout
                    )
                except (subprocess.SubprocessError, OSError, ValueError) as exc:
                    row[name] = {"skipped": f"{name} could not run: {exc}"}
                    continue
                row[name] = asdict(result)
                row[name]["wall_vs_gh_collect"] = result.wall_s / gh.wall_s
                row[name]["requests_vs_gh_collect"] = result.requests / max(1, gh.requests)
            rows.append(row)
    return rows


def section_scaling(opts: Options, models: Models) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for repos in opts.scale_repos:
        for latency in opts.scale_latencies:
            scenario = Scenario(
                f"{repos} repos, {latency:g} ms",
                repos,
                None,
                latency,
                opts.default.server_time_ms,
                opts.default.concurrency,
                opts.seed,
                opts.default.history_years,
                opts.default.touched_share,
            )
            pages = minimal_pages(models.get(scenario), endpoints=scenario.endpoints)
            gh: list[Result] = []
            limit: list[Result] = []
            with models.serve(scenario) as sim:
                for run in range(opts.scale_runs):
                    log(f"scaling: {scenario.name}, run {run + 1}/{opts.scale_runs}")
                    gh.append(measure_gh_collect(sim, scenario, opts.work / "s-gh", export=False))
                    limit.append(measure_limit(sim, scenario, pages, opts.work / "s-limit"))
            gh_m, limit_m = median_result(gh), median_result(limit)
            rows.append(
                {
                    "repos": repos,
                    "latency_ms": latency,
                    "minimum_requests": len(pages),
                    "gh_collect": asdict(gh_m),
                    "limit": asdict(limit_m),
                }
            )
    return rows


# --- fleet: 1, 2 and 4 workers (--queue), one credential each ----------------------------------

FLEET_WORKERS = (1, 2, 4)
FLEET_NEEDS = 8  # the harvest needs this many windows of one credential's budget
FLEET_RESET_S = 3.0  # the simulator's budget window, instead of GitHub's hour


def section_fleet(opts: Options, models: Models) -> dict[str, Any]:
    """N workers with N credentials (of N users) against a harvest bound by the rate limit:
    one credential's budget a window is 1/FLEET_NEEDS of what the harvest spends, so one
    worker waits for about FLEET_NEEDS - 1 resets and N workers for FLEET_NEEDS/N - 1."""
    redis_port = _bench_free_port()
    redis = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
         "--appendonly", "no", "--dir", str(opts.work)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.3)
        spent = _fleet_run(opts, redis_port, 0, workers=1, budget=10**9)["budget_spent"]
        budget = max(20, spent // FLEET_NEEDS)
        rows = []
        for db, workers in enumerate(FLEET_WORKERS, start=1):
            log(f"fleet: {workers} workers, budget {budget} a {FLEET_RESET_S:g} s window each")
            rows.append(_fleet_run(opts, redis_port, db, workers=workers, budget=budget))
        # the shared budget's test: four workers, one credential, no faster and no 403s
        log("fleet: 4 workers sharing one credential")
        rows.append(_fleet_run(opts, redis_port, 9, workers=4, budget=budget, one_token=True))
    finally:
        redis.kill()
        redis.wait()
    return {"spent": spent, "budget": budget, "reset_s": FLEET_RESET_S, "rows": rows}


def _bench_free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fleet_run(
    opts: Options, port: int, db: int, *, workers: int, budget: int, one_token: bool = False
) -> dict[str, Any]:
    """One fleet harvest: ``collect --queue`` and ``workers - 1`` workers, a token each
    (``one_token``: all the same one)."""
    from gh_collect.fleet.commits import FleetLayout
    from gh_collect.fleet.output import read_committed
    from gh_collect.fleet.store import LocalStore

    tokens = [f"bench-fleet-token-{0 if one_token else i}" for i in range(workers)]
    users = {f"user-{i}": (t,) for i, t in enumerate(dict.fromkeys(tokens))}
    cfg = SimulatorConfig(
        seed=opts.seed, repos=opts.default.repos, org=ORG, rate_limit=budget,
        reset_seconds=FLEET_RESET_S, users=users,
        scenarios=False, history_years=1, latency_ms=opts.default.latency_ms,
    )  # fmt: skip
    folder = opts.work / f"fleet-{db}"
    folder.mkdir(parents=True, exist_ok=True)
    with Simulator(cfg) as sim:
        config = folder / "config.yaml"
        config.write_text(
            yaml.safe_dump({
                "target": {"org": ORG}, "year": YEAR,
                "github": {"api_url": sim.url, "token_env": "BENCH_FLEET_TOKEN"},
                "rate_limit": {"pause_below": 0}, "output": {"root": str(folder / "data")},
                "fleet": {"lease_s": 10},
            })
        )  # fmt: skip
        queue = f"redis://127.0.0.1:{port}/{db}"
        logs = [(folder / f"stderr-{i}.log").open("wb") for i in range(workers)]
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gh_collect",
                    "collect" if i == 0 else "worker",
                    "-c",
                    str(config),
                    "--queue",
                    queue,
                    "--quiet",
                ],
                env=clean_env(BENCH_FLEET_TOKEN=token, PYTHONPATH=str(ROOT)),
                stdout=subprocess.DEVNULL,
                stderr=logs[i],
            )
            for i, token in enumerate(tokens)
        ]
        for log_file in logs:  # each child holds its own descriptor
            log_file.close()
        codes = [proc.wait(timeout=1800) for proc in procs]
        wall = time.perf_counter() - started
        stats = sim.stats()
        truth = sim.ground_truth(year=YEAR, endpoints=("pulls", "issues"))
        store, layout = LocalStore(folder / "data"), FleetLayout(YEAR, ORG)
        missing = extra = 0
        for endpoint in ("pulls", "issues"):
            got = Counter(r["data"]["id"] for r in read_committed(store, layout, endpoint))
            want = Counter(o["id"] for objs in truth[endpoint].values() for o in objs)
            missing += sum((want - got).values())
            extra += sum((got - want).values())
    return {
        "credentials": len(set(tokens)),
        "workers": workers, "wall_s": round(wall, 2), "requests": stats["requests"],
        "budget_spent": stats["budget_spent"], "refused_403": stats["primary_limited"],
        "exit_codes": codes, "missing": missing, "extra": extra,
        "exact": not missing and not extra,
    }  # fmt: skip


def _report_fleet(fleet: dict[str, Any]) -> str:
    rows = fleet["rows"]
    one = rows[0]["wall_s"] if rows else 0.0
    return (
        f"## Fleet: workers with a credential each (budget {fleet['budget']} a "
        f"{fleet['reset_s']:g} s window each; the harvest spends {fleet['spent']})\n\n"
        + table(
            ["workers", "credentials", "wall s", "speed-up", "requests", "403s", "exact"],
            [
                [
                    r["workers"],
                    r.get("credentials", r["workers"]),
                    fmt(r["wall_s"], 1),
                    fmt(one / r["wall_s"], 1) + "x",
                    r["requests"],
                    r["refused_403"],
                    r["exact"],
                ]
                for r in rows
            ],
        )
    )


def section_checkpoint(opts: Options, models: Models) -> dict[str, Any]:
    """Tiny repos (2 items each) make saves as frequent and as big as they get per page."""
    scenario = Scenario(
        f"{opts.checkpoint_repos} tiny repos",
        opts.checkpoint_repos,
        (2,),
        5.0,
        opts.default.server_time_ms,
        opts.default.concurrency,
        opts.seed,
    )
    with models.serve(scenario) as sim:
        log(f"checkpoint overhead: {scenario.name}")
        result = measure_gh_collect(sim, scenario, opts.work / "cp", export=False)
    saves = result.extra["saves"]
    return {
        "scenario": asdict(scenario),
        "result": asdict(result),
        "save_s": saves["save_s"],
        "writer_s": saves.get("writer_s", 0.0),
        "saves": saves["saves"],
        "overhead": saves["save_s"] / saves["wall_s"] if saves["wall_s"] else 0.0,
        "checkpoint_bytes": result.extra["checkpoint_bytes"],
    }


RESUME_CADENCES: dict[str, dict[str, int]] = {
    "SPEC default (10 pages, 100 records, 60 s)": {},
    "every page (checkpoint.every_pages: 1)": {"every_pages": 1},
}


def section_resume(opts: Options, models: Models) -> dict[str, Any]:
    """Per save cadence: an uninterrupted run, then ``resume_runs`` times: SIGKILL when the
    simulator has answered a seeded random share (10% to 90%) of the uninterrupted run's
    requests, rerun, and count the requests made twice (both runs' requests minus the
    uninterrupted count). The same kill points for each cadence."""
    scenario = opts.default
    cadences = []
    with models.serve(scenario) as sim:
        for label, cadence in RESUME_CADENCES.items():
            cadences.append(_resume_cadence(opts, sim, scenario, label, cadence))
    return {
        "concurrency": scenario.concurrency,
        "cadences": cadences,
        "max_repeated": {c["cadence"]: c["max_repeated"] for c in cadences},
    }


def _resume_cadence(
    opts: Options, sim: Simulator, scenario: Scenario, label: str, cadence: dict[str, int]
) -> dict[str, Any]:
    rng = random.Random(f"bench-resume:{opts.seed}")
    log(f"resume ({label}): uninterrupted run")
    counted = Counted(sim)
    base = measure_gh_collect(sim, scenario, opts.work / "r-base", export=False, checkpoint=cadence)
    base_spent = counted.spent()
    kills: list[dict[str, Any]] = []
    for attempt in range(opts.resume_runs):
        target = int(base.requests * rng.uniform(0.1, 0.9))
        log(f"resume ({label}): kill -9 after {target} requests, then rerun ({attempt + 1})")
        tool = GhCollect(sim, scenario, opts.work / f"r-{attempt}", cadence)
        counted = Counted(sim)
        start = counted.before["requests"]
        first = tool.harvest(kill_when=partial(_answered, sim, start + target))
        first_requests, _, _ = counted.delta()
        first_spent = counted.spent()
        counted = Counted(sim)
        second = tool.harvest()
        second_requests, _, _ = counted.delta()
        second_spent = counted.spent()
        truth = compare(tool.harvested(), truth_ids(sim, scenario.endpoints))
        shutil.rmtree(tool.work, ignore_errors=True)
        kills.append(
            {
                "kill_after_requests": target,
                "killed": first.returncode == -signal.SIGKILL,
                "first_requests": first_requests,
                "second_requests": second_requests,
                "second_exit": second.returncode,
                "repeated": first_requests + second_requests - base.requests,
                # The rerun's sweep asks what earlier runs completed "changed since?": 304s.
                "repeated_charged": first_spent + second_spent - base_spent,
                "exactly_once": truth,
            }
        )
    return {
        "cadence": label,
        "uninterrupted_requests": base.requests,
        "uninterrupted_wall_s": base.wall_s,
        "saves": base.extra["saves"]["saves"],
        "kills": kills,
        "max_repeated": max((k["repeated"] for k in kills), default=0),
        "max_repeated_charged": max((k["repeated_charged"] for k in kills), default=0),
    }


def _answered(sim: Simulator, count: int) -> bool:
    return bool(sim.stats()["requests"] >= count)


# ---------------------------------------------------------------------------------------------
# reporting


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def report(data: dict[str, Any]) -> str:
    parts = [f"# gh_collect benchmark\n\n`{data['command']}`  \n{data['machine']}\n"]
    if "default" in data:
        parts.append(_report_default(data["default"]))
    if "peers" in data:
        parts.append(_report_peers(data["peers"]))
    if "scaling" in data:
        parts.append(_report_scaling(data["scaling"]))
    if "fleet" in data:
        parts.append(_report_fleet(data["fleet"]))
    if "checkpoint" in data:
        cp = data["checkpoint"]
        parts.append(
            f"## Checkpoint overhead ({cp['scenario']['name']})\n\n"
            + table(
                [
                    "wall s",
                    "saves",
                    "saving on the event loop s",
                    "writer thread s (overlapped)",
                    "overhead (loop / wall)",
                    "checkpoint.json",
                ],
                [
                    [
                        fmt(cp["result"]["wall_s"], 1),
                        cp["saves"],
                        fmt(cp["save_s"], 2),
                        fmt(cp.get("writer_s", 0.0), 2),
                        f"{cp['overhead']:.1%}",
                        f"{cp['checkpoint_bytes'] / 1e6:.2f} MB",
                    ]
                ],
            )
        )
    if "resume" in data:
        parts.append(_report_resume(data["resume"]))
    if "reviews" in data:
        parts.append(_report_reviews(data["reviews"]))
    if "targets" in data:
        parts.append(
            "## Targets\n\n"
            + table(["target", "measured", "met"], [[t[0], t[1], t[2]] for t in data["targets"]])
        )
    return "\n\n".join(parts) + "\n"


def _report_resume(rs: dict[str, Any]) -> str:
    parts = []
    for c in rs.get("cadences", []):
        rows = [
            [
                k["kill_after_requests"],
                k["killed"],
                k["first_requests"],
                k["second_requests"],
                k["repeated"],
                k.get("repeated_charged", ""),
                k["exactly_once"],
            ]
            for k in c["kills"]
        ]
        parts.append(
            f"## Resume waste, saving {c['cadence']} (uninterrupted: "
            f"{c['uninterrupted_requests']} requests in {fmt(c['uninterrupted_wall_s'])} s, "
            f"{c['saves']} saves; concurrency {rs['concurrency']})\n\n"
            + table(
                [
                    "kill after requests",
                    "killed",
                    "requests before",
                    "after",
                    "repeated",
                    "repeated, charged",
                    "exact",
                ],
                rows,
            )
        )
    return "\n\n".join(parts)


def _report_default(d: dict[str, Any]) -> str:
    sc, gh, lim = d["scenario"], d["gh_collect"], d["limit"]
    head = (
        f"## Default org: {sc['repos']} repos, sizes 0-{max(sc['sizes'] or [0])} items over "
        f"{sc.get('history_years', 0):g} years before the year "
        f"({sc.get('touched_share', 0):.0%} of the older ones touched in it), "
        f"{sc['latency_ms']:g} ms latency + {sc['server_time_ms']:g} ms server time, "
        f"concurrency {sc['concurrency']} (median of {len(gh['extra']['runs'])} runs); "
        f"endpoints {', '.join(sc.get('endpoints') or RAW_ENDPOINTS)}\n\n"
    )
    rows = [
        [
            "gh_collect harvest",
            fmt(gh["wall_s"]),
            fmt(gh["cpu_s"]),
            fmt(gh["rss_mb"], 0),
            gh["requests"],
            gh["secondary"],
            gh["objects"],
            gh["truth"],
        ],
        [
            "gh_collect export",
            fmt(d["export"]["wall_s"]),
            fmt(d["export"]["cpu_s"]),
            fmt(d["export"]["rss_mb"], 0),
            0,
            0,
            "",
            "",
        ],
        [
            "limit",
            fmt(lim["wall_s"]),
            fmt(lim["cpu_s"]),
            fmt(lim["rss_mb"], 0),
            lim["requests"],
            lim["secondary"],
            "",
            "n/a",
        ],
    ]
    header = [
        "",
        "wall s",
        "CPU s",
        "peak RSS MB",
        "requests",
        "secondary 403",
        "objects",
        "= truth",
    ]
    return (
        head
        + table(header, rows)
        + f"\n\nminimum requests: {d['minimum_requests']}; gh_collect/minimum = "
        + f"{d['requests_vs_minimum']:.3f}; gh_collect wall / limit = {d['wall_vs_limit']:.2f}; "
        + f"checkpoint.json {d['checkpoint_bytes'] / 1e3:.0f} kB"
        + _report_refresh(d.get("refresh"))
    )


def _report_refresh(refresh: dict[str, Any] | None) -> str:
    if not refresh:
        return ""
    return (
        f"\n\nno-change refresh: {refresh['refresh_requests']} requests, "
        f"{refresh['refresh_charged']} charged (304s are free) against "
        f"{refresh['full_charged']} for the full harvest = {refresh['refresh_share']:.2%}"
    )


def _report_peers(rows: list[dict[str, Any]]) -> str:
    out = []
    for row in rows:
        sc = row["scenario"]
        lines = []
        for name in ("gh_collect", *PEER_RUNNERS):
            r = row.get(name)
            if r is None:
                continue
            if "skipped" in r:
                lines.append([name, "skipped", "", "", "", "", "", "", r["skipped"]])
                continue
            wall = fmt(r["wall_s"], 1) + (" (cut)" if r["extra"].get("timed_out") else "")
            ratio = "1" if name == "gh_collect" else f"{r['wall_vs_gh_collect']:.1f}"
            req_ratio = "1" if name == "gh_collect" else f"{r['requests_vs_gh_collect']:.1f}"
            lines.append(
                [
                    name,
                    wall,
                    ratio,
                    r["requests"],
                    req_ratio,
                    r["secondary"],
                    r["objects"],
                    r["truth"],
                    r["note"][:120],
                ]
            )
        out.append(
            f"## Peers: {sc['name']} ({sc['repos']} repos, {sc['latency_ms']:g} ms latency + "
            f"{sc['server_time_ms']:g} ms server time)\n\n"
            + table(
                [
                    "tool",
                    "wall s",
                    "wall / gh_collect",
                    "requests",
                    "requests / gh_collect",
                    "secondary 403",
                    "objects (window)",
                    "= truth",
                    "note",
                ],
                lines,
            )
        )
    return "\n\n".join(out)


def _report_scaling(rows: list[dict[str, Any]]) -> str:
    lines = [
        [
            r["repos"],
            f"{r['latency_ms']:g}",
            r["minimum_requests"],
            fmt(r["gh_collect"]["wall_s"]),
            fmt(r["limit"]["wall_s"]),
            fmt(r["gh_collect"]["wall_s"] / r["limit"]["wall_s"]),
            r["gh_collect"]["requests"],
            r["limit"]["requests"],
            r["gh_collect"]["secondary"],
            fmt(r["gh_collect"]["rss_mb"], 0),
            fmt(r["gh_collect"]["cpu_s"]),
        ]
        for r in rows
    ]
    return "## Scaling (random repo sizes 0-400 items)\n\n" + table(
        [
            "repos",
            "latency ms",
            "minimum",
            "gh_collect s",
            "limit s",
            "ratio",
            "gh_collect requests",
            "limit requests",
            "secondary 403",
            "peak RSS MB",
            "CPU s",
        ],
        lines,
    )


def targets(data: dict[str, Any]) -> list[tuple[str, str, bool]]:
    found: list[tuple[str, str, bool]] = []
    d = data.get("default")
    if d:
        found.append(
            ("wall <= 1.3 x limit", f"{d['wall_vs_limit']:.2f} x", d["wall_vs_limit"] <= 1.3)
        )
        found.append(
            (
                "requests <= 1.10 x the true minimum",
                f"{d['requests_vs_minimum']:.3f} x",
                d["requests_vs_minimum"] <= 1.10,
            )
        )
        sec = d["gh_collect"]["secondary"]
        found.append(("zero secondary-limit responses", str(sec), sec == 0))
        refresh = d.get("refresh")
        if refresh:
            share = refresh["refresh_share"]
            found.append(
                ("no-change refresh charged <= 1% of a full run", f"{share:.2%}", share <= 0.01)
            )
    for row in data.get("peers", []):
        walls = [row[n]["wall_vs_gh_collect"] for n in PEER_RUNNERS if "wall_s" in row.get(n, {})]
        if walls:
            best = min(walls)
            found.append(
                (
                    f"wall <= 1/10 of fastest peer ({row['scenario']['name']})",
                    f"fastest peer {best:.1f} x gh_collect",
                    best >= 10,
                )
            )
    sized = [(r["repos"], r["gh_collect"]["rss_mb"]) for r in data.get("scaling", [])]
    if data.get("checkpoint"):
        cp_run = data["checkpoint"]
        sized.append((cp_run["scenario"]["repos"], cp_run["result"]["rss_mb"]))
    if sized:
        (small, low), (big, high) = min(sized), max(sized)
        found.append(
            (
                "peak RSS flat in org size (within 1.5x)",
                f"{low:.0f} MB at {small} repos, {high:.0f} MB at {big}",
                max(rss for _, rss in sized) <= 1.5 * min(rss for _, rss in sized),
            )
        )
    cp = data.get("checkpoint")
    if cp:
        found.append(("checkpoint overhead <= 5%", f"{cp['overhead']:.1%}", cp["overhead"] <= 0.05))
    rs = data.get("resume")
    for c in rs.get("cadences", []) if rs else []:
        # The rerun's sweep re-asks what earlier runs completed, as free 304s: the budget is
        # what a kill wastes: a page in flight per worker, and a catch-up request per unit
        # the kill left half read (what changed while no run was reading it).
        worst = c.get("max_repeated_charged", c["max_repeated"])
        found.append(
            (
                f"budget repeated after a kill <= 2 x concurrency, saving {c['cadence']}",
                f"{worst} (concurrency {rs['concurrency']})",
                worst <= 2 * rs["concurrency"],
            )
        )
    rv = data.get("reviews")
    if rv:
        found.append(
            (
                "reviews + pull_stats GraphQL points <= pulls/40 + follow-ups",
                f"{rv['points']} <= {rv['points_budget']:.1f}",
                rv["points"] <= rv["points_budget"],
            )
        )
        lists = rv["rest_review_lists"]
        found.append(
            (
                "REST fallback: >= 1 request per pull (small org)",
                f"{lists} lists for {rv['rest_pulls_in_window']} pulls",
                lists >= rv["rest_pulls_in_window"],
            )
        )
        found.append(
            (
                "GraphQL walk wall <= 1.3 x a bare GraphQL loop",
                f"{rv['walk_vs_loop']:.2f} x",
                rv["walk_vs_loop"] <= 1.3,
            )
        )
    return found


def chart(data: dict[str, Any], path: Path, out: Path) -> str:
    """Wall time vs org size, one line per tool; matplotlib runs in its own venv."""
    scaling = data.get("scaling")
    if not scaling:
        return "no chart: the scaling section did not run"
    python = _plot_python(out)
    if python is None:
        return "no chart: matplotlib could not be installed"
    series: dict[str, list[tuple[int, float]]] = {}
    for row in scaling:
        for tool in ("gh_collect", "limit"):
            label = f"{tool} ({row['latency_ms']:g} ms)"
            series.setdefault(label, []).append((row["repos"], row[tool]["wall_s"]))
    points: dict[str, tuple[int, float]] = {}
    for row in data.get("peers", []):
        for name in ("gh_collect", *PEER_RUNNERS):
            r = row.get(name, {})
            if "wall_s" in r:
                cut = ", cut: at least" if r["extra"].get("timed_out") else ""
                label = f"{name} ({row['scenario']['name']}{cut})"
                points[label] = (row["scenario"]["repos"], r["wall_s"])
    if data.get("default"):
        d = data["default"]
        points["limit (default org)"] = (d["scenario"]["repos"], d["limit"]["wall_s"])
    spec = json.dumps({"series": series, "points": points, "path": str(path)})
    script = textwrap.dedent(
        """
        import json, sys
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        spec = json.loads(sys.argv[1])
        fig, ax = plt.subplots(figsize=(11, 5.5))
        for label, pts in spec["series"].items():
            xs, ys = zip(*sorted(pts))
            ax.plot(xs, ys, marker="o", label=label)
        for label, (x, y) in spec["points"].items():
            ax.scatter([x], [y], marker="D" if "gh_collect" in label or "limit" in label
                   else "x", s=60, label=label)
        ax.set_xscale("log"); ax.set_yscale("log")
        ax.set_xlabel("repos in the org"); ax.set_ylabel("wall time (s)")
        ax.set_title("Yearly pull: wall time vs org size (lines: random sizes 0-400; "
                     "markers: peer comparison orgs)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
        fig.tight_layout(); fig.savefig(spec["path"], dpi=120)
        """
    )
    done = subprocess.run([str(python), "-c", script, spec], capture_output=True, check=False)
    if done.returncode != 0:
        return f"no chart: {done.stderr.decode()[-300:]}"
    return f"chart: {path}"


def _plot_python(out: Path) -> Path | None:
    venv = out / "venvs" / "plot"
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import matplotlib"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    log("installing matplotlib into its own venv (bench only) ...")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "matplotlib"],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    return python


# ---------------------------------------------------------------------------------------------
# command line


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, Options]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny org, gh_collect and the limit only")
    p.add_argument(
        "--sections", default=",".join(DEFAULT_SECTIONS), help=f"any of {','.join(SECTIONS)}"
    )
    p.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    p.add_argument("--repos", type=int, default=100, help="default org: repos")
    p.add_argument(
        "--biggest",
        type=int,
        default=10_000,
        help="default org: largest repo (items; 10,000 over ten years holds about as many in\n"
        "the window as 3,000 did over the short history before issue 13)",
    )
    p.add_argument("--history-years", type=float, default=10.0, help="years before the year")
    p.add_argument("--touched-share", type=float, default=0.03, help="old items touched")
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--server-time-ms", type=float, default=20.0)
    p.add_argument("--concurrency", type=int, default=8, help="gh_collect's and the limit's")
    p.add_argument(
        "--endpoints",
        default=",".join(RAW_ENDPOINTS),
        help="what gh_collect harvests in the default org; 'rest': all six REST endpoints",
    )
    p.add_argument("--peers", default="tap-github,perceval,github-to-sqlite")
    p.add_argument("--peer-timeout", type=float, default=900.0, help="seconds per peer run")
    p.add_argument("--peer-orgs", default="small,default", help="small and/or default")
    p.add_argument("--scale-repos", default="10,100,1000")
    p.add_argument("--scale-latencies", default="5,50")
    p.add_argument("--scale-runs", type=int, default=1)
    p.add_argument("--checkpoint-repos", type=int, default=5000)
    p.add_argument("--resume-runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.add_argument("--out", type=Path, default=OUT, help="venvs, chart and reports")
    p.add_argument(
        "--report-from", type=Path, nargs="+", help="merge earlier --json files into one report"
    )
    p.add_argument("--limit-worker", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--graphql-worker", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.sections, args.runs, args.repos, args.biggest = "default", 1, 12, 1000
        args.latency_ms, args.server_time_ms = 5.0, 2.0
    history = {"history_years": args.history_years, "touched_share": args.touched_share}
    harvested = tuple(REST_ENDPOINTS if args.endpoints == "rest" else args.endpoints.split(","))
    unknown = set(harvested) - set(REST_ENDPOINTS)
    if unknown:
        p.error(f"--endpoints: unknown {', '.join(sorted(unknown))}; choose from {REST_ENDPOINTS}")
    default = Scenario(
        "default org",
        args.repos,
        spread(args.repos, args.biggest),
        args.latency_ms,
        args.server_time_ms,
        args.concurrency,
        args.seed,
        endpoints=harvested,
        **history,
    )
    small = Scenario(
        "small org",
        10,
        spread(10, 300),
        args.latency_ms,
        args.server_time_ms,
        args.concurrency,
        args.seed,
        **history,
    )
    peer_orgs = {"small": small, "default": default}
    opts = Options(
        runs=args.runs,
        out=args.out,
        work=Path(),  # a temporary folder, made only when sections run
        default=default,
        peer_scenarios=[peer_orgs[n] for n in args.peer_orgs.split(",") if n in peer_orgs],
        peer_timeout=args.peer_timeout,
        peers=[n for n in args.peers.split(",") if n],
        scale_repos=[int(n) for n in args.scale_repos.split(",") if n],
        scale_latencies=[float(n) for n in args.scale_latencies.split(",") if n],
        scale_runs=args.scale_runs,
        checkpoint_repos=args.checkpoint_repos,
        resume_runs=args.resume_runs,
        seed=args.seed,
    )
    return args, opts


def merged_report(args: argparse.Namespace, opts: Options) -> int:
    """One report (tables, targets, chart) from sections measured by separate runs."""
    data: dict[str, Any] = {"command": [], "machine": ""}
    for path in args.report_from:
        part = json.loads(path.read_text())
        data["command"].append(part["command"])
        data["machine"] = part["machine"]
        data.update({k: v for k, v in part.items() if k in SECTIONS})
    data["command"] = " && ".join(data["command"])
    finish(data, args, opts)
    return 0


def finish(data: dict[str, Any], args: argparse.Namespace, opts: Options) -> None:
    opts.out.mkdir(parents=True, exist_ok=True)
    data["targets"] = targets(data)
    if not args.quick:
        data["chart"] = chart(data, opts.out / "bench.png", opts.out)
    text = report(data)
    if "chart" in data:
        text += f"\n{data['chart']}\n"
    print(text)
    (opts.out / "bench.md").write_text(text)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2, default=str))


def main(argv: Sequence[str] | None = None) -> int:
    args, opts = parse(sys.argv[1:] if argv is None else argv)
    if args.limit_worker:
        limit_worker(args.limit_worker)
        return 0
    if args.graphql_worker:
        graphql_worker(args.graphql_worker)
        return 0
    if args.report_from:
        return merged_report(args, opts)
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        print(f"unknown sections {sorted(unknown)}: use {','.join(SECTIONS)}", file=sys.stderr)
        return 2
    opts.out.mkdir(parents=True, exist_ok=True)
    opts.work = Path(tempfile.mkdtemp(prefix="gh-collect-bench-"))
    data: dict[str, Any] = {
        "command": "python scripts/bench.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {sys.platform}, "
        f"load average {os.getloadavg()[0]:.1f} at start",
    }
    models = Models()
    runners: dict[str, Callable[[Options, Models], Any]] = {
        "default": section_default,
        "peers": section_peers,
        "scaling": section_scaling,
        "checkpoint": section_checkpoint,
        "resume": section_resume,
        "reviews": section_reviews,
        "fleet": section_fleet,
    }
    try:
        for name in SECTIONS:
            if name in sections:
                data[name] = runners[name](opts, models)
    finally:
        shutil.rmtree(opts.work, ignore_errors=True)
    data["load_average"] = os.getloadavg()
    finish(data, args, opts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
