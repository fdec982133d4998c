"""Torture test: kill, interrupt, fault and race gh-collect, then count what was lost or doubled.

    .venv/bin/python scripts/torture.py --kills 200                 # SIGKILL at 200 random moments
    .venv/bin/python scripts/torture.py --mode sigterm --kills 20   # a SIGTERM storm (exit 143)
    .venv/bin/python scripts/torture.py --mode faults               # 5% faults + a tiny budget
    .venv/bin/python scripts/torture.py --mode concurrent           # two runs on one dataset
    .venv/bin/python scripts/torture.py --mode hostile              # a hostile API, every case
    .venv/bin/python scripts/torture.py --mode churn --kills 20     # kills while the org changes
    .venv/bin/python scripts/torture.py --mode fleet --kills 50     # kill -9 of --queue workers
    .venv/bin/python scripts/torture.py --mode all --kills 10 --json

Why: "nothing lost, nothing twice" is cheap to claim and easy to break (SQLite's crash tests
and the ALICE study found real systems trusting appends to be atomic or renaming without
syncing the folder). So the real CLI (``python -m gh_collect collect``) runs in a subprocess
against the in-process simulator on 127.0.0.1 and is killed, interrupted, fed faults or raced,
rerun until it finishes, and the raw JSONL and the curated Parquet are compared record by
record with the simulator's ground truth. The vanished scenario repo is expected to fail
(exit 1) and is absent from the truth.

Kill moments are seeded (``--seed``) and drawn uniformly between the moment a clean run
first saves its checkpoint and the moment it ends, so they land in resumes, harvests and
exports rather than in the interpreter's start-up; each run picks a checkpoint cadence of
1-3 pages so kills land between saves. When a harvest finishes before the kills are used up,
a new harvest starts in a fresh folder.

Exit status: 0 when every check held; 1 when any record was lost, doubled or altered, a
checkpoint failed to load, or a run ended in a way the SPEC does not allow.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gh_collect import endpoints as declared  # noqa: E402
from gh_collect.durable.checkpoint import CheckpointState, UnitKey, read_checkpoint  # noqa: E402
from gh_collect.durable.paths import DatasetPaths  # noqa: E402
from gh_collect.errors import CheckpointError  # noqa: E402
from gh_collect.simulator import SCENARIO_REPOS, Simulator, SimulatorConfig  # noqa: E402

ORG = "sample-org"
YEAR = 2025
ENDPOINTS = tuple(declared.names())  # every endpoint at once, GraphQL ones too
# --queue walks repo x endpoint units of REST lists (GraphQL pages and fan-outs: not yet)
FLEET_ENDPOINTS = tuple(
    name
    for name in ENDPOINTS
    if (e := declared.get(name)).transport == "rest" and not e.parent and not e.fan_out
)
TOKEN_ENV = "GH_TORTURE_TOKEN"
TOKEN = "ghp_tortureSECRETtoken0123456789"
RUN_TIMEOUT_S = 180.0
MODES = ("kill", "sigint", "sigterm", "faults", "concurrent", "hostile", "churn")
FLEET_WARM_S = 1.2  # --mode fleet: a process is killed only after this long (imports done)
FLEET_WORKERS = 4  # --mode fleet: a planner and three workers (needs redis-server; not in all)
# Each fault kind's share of the error rate: 5xx, HTML pages, cut or empty bodies, dropped
# connections, requests held past the client's timeout, secondary limits.
FAULT_SHARES = {
    "500": 0.10,
    "502": 0.20,
    "503": 0.10,
    "504": 0.05,
    "html": 0.10,
    "malformed": 0.10,
    "empty": 0.05,
    "reset": 0.15,
    "timeout": 0.05,
    "secondary": 0.10,
}
Truth = dict[str, dict[Any, Any]]


# --- results -----------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one mode did and found; ``ok`` is the verdict."""

    mode: str
    interruptions: int = 0  # kills / signals that hit a running harvest
    runs: int = 0  # CLI processes started
    rounds: int = 0  # harvests driven to completion and checked
    expected: int = 0  # records the truth holds (summed over rounds)
    got: int = 0  # raw records found
    missing: int = 0
    duplicated: int = 0
    extra: int = 0  # records the truth does not hold
    altered: int = 0  # records whose content differs from what was served, or unparsable lines
    curated_missing: int = 0
    curated_duplicated: int = 0
    checkpoint_failures: int = 0  # checkpoint loads that failed after an interruption
    torn_tails: int = 0  # interruptions that left unsaved bytes after a saved offset
    landed: dict[str, int] = field(default_factory=dict)  # where the interruptions landed
    requests: int = 0
    clean_requests: int = 0  # requests of one clean harvest of the same org
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    table: str = ""  # a mode's own detail table (hostile: one row per scenario)

    @property
    def lost_or_doubled(self) -> int:
        return (
            self.missing
            + self.duplicated
            + self.extra
            + self.altered
            + self.curated_missing
            + self.curated_duplicated
        )

    @property
    def ok(self) -> bool:
        return not (self.lost_or_doubled or self.checkpoint_failures or self.problems)

    def land(self, where: str) -> None:
        self.landed[where] = self.landed.get(where, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class Options:
    mode: str
    kills: int
    seed: int
    repos: int
    size: int | None
    latency_ms: float
    concurrency: int
    error_rate: float
    trials: int
    harvests: int
    workdir: Path | None
    keep: bool
    as_json: bool
    scenarios: tuple[str, ...] = ()  # hostile mode: only these (default: all)
    churn_ms: float = 5.0  # churn mode: one edit of the org every this many ms


# --- one dataset: its folder, config and CLI runs ----------------------------------------------


@dataclass
class Dataset:
    folder: Path
    api_url: str
    overrides: dict[str, Any]

    @property
    def paths(self) -> DatasetPaths:
        return DatasetPaths(self.folder / "data", YEAR, ORG)

    @property
    def config(self) -> Path:
        return self.folder / "config.yaml"

    @property
    def stderr_log(self) -> Path:
        return self.folder / "stderr.log"

    def write_config(self, every_pages: int, endpoints: tuple[str, ...] = ENDPOINTS) -> None:
        """Cadence is outside the digest, so each run may use another without a mismatch."""
        config: dict[str, Any] = {
            "target": {"org": ORG},
            "year": YEAR,
            "endpoints": list(endpoints),
            "github": {"api_url": self.api_url, "token_env": TOKEN_ENV, "timeout_s": 5},
            "checkpoint": {"every_pages": every_pages, "every_records": 10**9},
            "output": {"root": str(self.folder / "data")},
        }
        for section, values in self.overrides.items():
            config.setdefault(section, {}).update(values)
        self.config.write_text(yaml.safe_dump(config))


class Harness:
    """Runs the CLI against one simulator and checks datasets against its ground truth."""

    def __init__(self, opts: Options, sim: Simulator, workdir: Path) -> None:
        self.opts = opts
        self.sim = sim
        self.workdir = workdir
        self.rng = random.Random(opts.seed)
        self.truth = truth_of(sim)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GH_COLLECT_")}
        self.env.update({TOKEN_ENV: TOKEN, "PYTHONPATH": str(ROOT)})
        self._count = 0

    def dataset(self, name: str, **overrides: dict[str, Any]) -> Dataset:
        self._count += 1
        folder = self.workdir / f"{self._count:04d}-{name}"
        folder.mkdir(parents=True)
        github = {"concurrency": self.opts.concurrency, "retry_initial_s": 0.05}
        merged = {"github": github, **overrides}
        merged["github"] = {**github, **overrides.get("github", {})}
        return Dataset(folder, self.sim.url, merged)

    def launch(self, ds: Dataset, *extra: str, every_pages: int = 2) -> subprocess.Popen[bytes]:
        ds.write_config(every_pages)
        cmd = [sys.executable, "-m", "gh_collect", "collect", "-c", str(ds.config), "--quiet"]
        with ds.stderr_log.open("wb") as err:
            return subprocess.Popen(
                [*cmd, *extra],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=ds.folder,
                start_new_session=True,  # its own group: a SIGKILL takes any child with it
            )

    def cadence(self) -> int:
        return self.rng.choice((1, 2, 3))

    def run_to_end(self, ds: Dataset, tally: Tally, *extra: str) -> int | None:
        tally.runs += 1
        proc = self.launch(ds, *extra, every_pages=self.cadence())
        return self.wait(proc, tally)

    def wait(self, proc: subprocess.Popen[bytes], tally: Tally) -> int | None:
        try:
            return proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            tally.problems.append(f"a run hung for {RUN_TIMEOUT_S:.0f} s and was killed")
            return None

    def check_end(self, ds: Dataset, code: int | None, tally: Tally) -> bool:
        """A run that ended on its own: exit 1 (the vanished repo), no traceback, only it failed."""
        stderr = ds.stderr_log.read_text(errors="replace")
        if "Traceback" in stderr:
            tally.problems.append(f"traceback in {ds.stderr_log}: {last_line(stderr)}")
        if code != 1:
            tally.problems.append(f"run ended with exit {code}, expected 1: {last_line(stderr)}")
            return False
        failed = failed_repos(ds.paths)
        if failed != {SCENARIO_REPOS["vanished"]}:
            tally.problems.append(f"unexpected failed repos {sorted(failed)} in {ds.folder}")
        return True

    def verify(self, ds: Dataset, tally: Tally, truth: Truth | None = None) -> None:
        """Raw records and curated rows against the ground truth, added to ``tally``."""
        tally.rounds += 1
        check = compare(ds.paths, truth or self.truth)
        for key, value in check.items():
            setattr(tally, key, getattr(tally, key) + value)

    def after_interruption(self, ds: Dataset, tally: Tally, before: Snapshot) -> None:
        """The checkpoint must load, and no file may be shorter than its saved offset."""
        tally.land(landing(ds.paths, before))
        try:
            state = read_checkpoint(ds.paths.checkpoint) if ds.paths.checkpoint.exists() else None
        except CheckpointError as exc:
            tally.checkpoint_failures += 1
            tally.problems.append(f"checkpoint unreadable after an interruption: {exc}")
            return
        if state is None:
            return
        torn, short = offsets_vs_files(state, ds.paths)
        tally.torn_tails += bool(torn)
        tally.problems.extend(
            f"data lost: {path} is shorter than its saved offset" for path in short
        )


# --- measuring a dataset ---------------------------------------------------------------------


def key_of(endpoint: str) -> str:
    """The field that identifies a raw record of ``endpoint`` (``id``; a commit's ``sha``;
    a GraphQL node's ``fullDatabaseId``)."""
    return declared.get(endpoint).record_key


def as_raw_key(endpoint: str, ident: Any) -> Any:
    """A curated key as the raw records spell it (GraphQL: the integer id as a string)."""
    return str(ident) if declared.get(endpoint).raw_key is not None else ident


def version_of(endpoint: str, data: dict[str, Any]) -> Any:
    """A raw record's version (``updated_at``); a commit never changes: always the same."""
    field = declared.get(endpoint).record_version
    return str(data.get(field) or "") if field else ""  # a release may have no updated_at


def truth_of(sim: Simulator) -> Truth:
    """key -> object as served, per endpoint; keys are unique across the org's repos."""
    truth = sim.ground_truth(year=YEAR, endpoints=ENDPOINTS)
    return {
        e: {obj[key_of(e)]: obj for objs in truth[e].values() for obj in objs} for e in ENDPOINTS
    }


def raw_records(paths: DatasetPaths, endpoint: str) -> Iterator[Any]:
    """Every line's ``data``; a line that is not a JSON envelope yields None."""
    for path in sorted(paths.endpoint_dir(endpoint).rglob("*.jsonl")):  # fan-outs' files too
        with path.open("rb") as handle:
            for line in handle:
                try:
                    yield json.loads(line)["data"]
                except (ValueError, KeyError, TypeError):
                    yield None


def compare(paths: DatasetPaths, truth: Truth) -> dict[str, int]:
    return compare_sources(lambda e: raw_records(paths, e), lambda e: curated_ids(paths, e), truth)


def compare_sources(
    raw: Callable[[str], Iterator[Any]],
    curated_of: Callable[[str], Counter[Any]],
    truth: Truth,
    endpoints: tuple[str, ...] = ENDPOINTS,
) -> dict[str, int]:
    """Raw records (``raw(endpoint)``: each line's data) and curated keys against the truth."""
    totals: Counter[str] = Counter()
    for endpoint in endpoints:
        expected = truth[endpoint]
        seen: Counter[Any] = Counter()
        for data in raw(endpoint):
            ident = data.get(key_of(endpoint)) if isinstance(data, dict) else None
            if not isinstance(ident, int | str):
                totals["altered"] += 1
                continue
            seen[ident] += 1
            if ident in expected and data != expected[ident]:
                totals["altered"] += 1
        totals["expected"] += len(expected)
        totals["got"] += sum(seen.values())
        totals["missing"] += sum(1 for ident in expected if ident not in seen)
        totals["duplicated"] += sum(n - 1 for ident, n in seen.items() if ident in expected)
        totals["extra"] += sum(n for ident, n in seen.items() if ident not in expected)
        curated = curated_of(endpoint)
        totals["curated_missing"] += len(set(expected) - set(curated))
        totals["curated_duplicated"] += sum(n - 1 for n in curated.values())
        totals["extra"] += len(set(curated) - set(expected))
    return dict(totals)


def curated_ids(paths: DatasetPaths, endpoint: str) -> Counter[Any]:
    """Keys of the curated rows as a reader sees them (pyarrow.dataset, Hive partitions)."""
    import pyarrow.dataset as ds

    root = paths.root / "curated"
    if not root.is_dir():
        return Counter()
    key = declared.get(endpoint).key  # the curated key column
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(
        columns=[key], filter=(ds.field("endpoint") == endpoint) & (ds.field("target") == ORG)
    )
    return Counter(as_raw_key(endpoint, ident) for ident in table.column(key).to_pylist())


def failed_repos(paths: DatasetPaths) -> set[str]:
    state = read_checkpoint(paths.checkpoint)
    return {
        repo.name
        for repo in state.repos.values()
        if any(str(ep.status) == "failed" for ep in repo.units.values())
    }


def offsets_vs_files(state: CheckpointState, paths: DatasetPaths) -> tuple[int, list[Path]]:
    """(files holding unsaved bytes past their offset, files shorter than their offset)."""
    torn, short = 0, []
    for repo in state.repos.values():
        for name, progress in repo.units.items():
            key = UnitKey.parse(repo.full_name, name)
            path = paths.unit_file(key.endpoint, repo, key.parent)  # fan-out units' too
            size = path.stat().st_size if path.exists() else 0
            torn += size > progress.byte_offset
            if size < progress.byte_offset:
                short.append(path)
    return torn, short


Snapshot = tuple[bytes | None, tuple[tuple[str, int], ...]]


def snapshot(paths: DatasetPaths) -> Snapshot:
    checkpoint = paths.checkpoint.read_bytes() if paths.checkpoint.exists() else None
    sizes = tuple(
        (str(path), path.stat().st_size)
        for path in sorted(paths.raw_dir.glob("endpoint=*/**/*.jsonl"))
    )
    return checkpoint, sizes


def landing(paths: DatasetPaths, before: Snapshot) -> str:
    """Where an interruption hit: the export, the harvest, or before the run touched disk."""
    if (paths.root / ".curated-work").exists():
        return "export"
    return "harvest" if snapshot(paths) != before else "start-up"


def tree_state(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root``: size, mtime and content hash; to prove nothing changed."""
    return {
        str(path): (
            path.stat().st_size,
            path.stat().st_mtime_ns,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def save_count(paths: DatasetPaths) -> int:
    try:
        return int(json.loads(paths.checkpoint.read_bytes())["save_count"])
    except (OSError, ValueError, KeyError):
        return 0


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# --- the modes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    total_s: float
    first_save_s: float
    requests: int


def baseline(h: Harness, tally: Tally) -> Baseline:
    """One clean harvest: its duration bounds the kill moments, its requests the overhead."""
    ds = h.dataset("clean")
    before = h.sim.stats()["requests"]
    started = time.monotonic()
    tally.runs += 1
    proc = h.launch(ds, every_pages=2)
    first_save = wait_until(lambda: ds.paths.checkpoint.exists(), proc) - started
    code = h.wait(proc, tally)
    total = time.monotonic() - started
    if h.check_end(ds, code, tally):
        h.verify(ds, tally)
    return Baseline(total, first_save, h.sim.stats()["requests"] - before)


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes]) -> float:
    """Poll ``ready`` until true or the process ends; returns the monotonic time it did."""
    while not ready() and proc.poll() is None:
        time.sleep(0.005)
    return time.monotonic()


def kill_mode(h: Harness) -> Tally:
    """SIGKILL at ``kills`` random moments; every interrupted harvest is rerun to the end."""
    tally = Tally("kill")
    base = baseline(h, tally)
    tally.clean_requests = base.requests
    low, high = base.first_save_s * 0.9, max(base.total_s, base.first_save_s + 0.1)
    left, start_requests = h.opts.kills, h.sim.stats()["requests"]
    harvests = 0
    while True:
        ds, harvests = h.dataset(f"kill-round{harvests}"), harvests + 1
        while True:
            before = snapshot(ds.paths)
            tally.runs += 1
            proc = h.launch(ds, every_pages=h.cadence())
            if left > 0:
                try:
                    code = proc.wait(timeout=h.rng.uniform(low, high))
                except subprocess.TimeoutExpired:
                    kill_group(proc)
                    left -= 1
                    tally.interruptions += 1
                    h.after_interruption(ds, tally, before)
                    continue
            else:
                code = h.wait(proc, tally)
            if h.check_end(ds, code, tally):
                h.verify(ds, tally)
            break
        if left == 0:
            break
    tally.requests = h.sim.stats()["requests"] - start_requests
    ratio = tally.requests / max(1, base.requests * harvests)
    tally.notes.append(
        f"{harvests} harvests; kill window {low:.2f}-{high:.2f} s after start; "
        f"requests {ratio:.2f}x a clean harvest (pages refetched after kills)"
    )
    return tally


def signal_mode(h: Harness, signum: signal.Signals) -> Tally:
    """A storm of SIGINT or SIGTERM: each must exit 128+signum with the signal as save reason."""
    tally = Tally(signum.name.lower())
    left, harvests, slowest = h.opts.kills, 0, 0.0
    while True:
        ds, harvests = h.dataset(f"{tally.mode}-round{harvests}"), harvests + 1
        while True:
            prior = save_count(ds.paths)
            tally.runs += 1
            proc = h.launch(ds, every_pages=h.cadence())
            if left > 0:
                # Two saves by this run: its handlers are installed (a fresh run's first save
                # comes before them), so the signal tests the run, not the interpreter.
                wait_until(lambda p=prior, d=ds: save_count(d.paths) >= p + 2, proc)
                time.sleep(h.rng.uniform(0, 0.15))
                sent = time.monotonic()
                if proc.poll() is None:
                    proc.send_signal(signum)
                code = h.wait(proc, tally)
                slowest = max(slowest, time.monotonic() - sent)
                if code == 128 + signum:
                    left -= 1
                    tally.interruptions += 1
                    check_signal_stop(ds, signum, tally)
                    continue
            else:
                code = h.wait(proc, tally)
            if h.check_end(ds, code, tally):  # the run ended before the signal came
                h.verify(ds, tally)
            break
        if left == 0:
            break
    tally.notes.append(f"{harvests} harvests; slowest exit after the signal {slowest:.2f} s")
    return tally


def check_signal_stop(ds: Dataset, signum: signal.Signals, tally: Tally) -> None:
    tally.land("harvest")
    stderr = ds.stderr_log.read_text(errors="replace")
    if "Traceback" in stderr:
        tally.problems.append(f"traceback after {signum.name}: {last_line(stderr)}")
    try:
        state = read_checkpoint(ds.paths.checkpoint)
    except CheckpointError as exc:
        tally.checkpoint_failures += 1
        tally.problems.append(f"checkpoint unreadable after {signum.name}: {exc}")
        return
    if state.last_save_reason != f"signal {signum.name}":
        tally.problems.append(
            f"after {signum.name} the last save reason is {state.last_save_reason!r}"
        )
    torn, short = offsets_vs_files(state, ds.paths)
    if torn or short:  # a graceful stop counts every byte it wrote, no more, no less
        tally.problems.append(
            f"after {signum.name}: {torn} files past and {len(short)} short of their offsets"
        )
    tally.torn_tails += bool(torn)


def fault_mix(rate: float) -> dict[str, float]:
    return {name: rate * share for name, share in FAULT_SHARES.items()}


def faults_mode(h: Harness) -> Tally:
    """``harvests`` harvests under faults at ``error_rate`` and a budget spent every second or
    two; the retries' request overhead is their requests over as many clean harvests'."""
    tally = Tally("faults")
    tally.clean_requests = baseline(h, tally).requests
    budget = max(10, tally.clean_requests * 2 // 3)  # one exhaustion or so per harvest
    cfg = simulator_config(
        h.opts,
        faults=fault_mix(h.opts.error_rate),
        fault_seed=h.opts.seed,
        rate_limit=budget,
        reset_seconds=1.0,
        secondary_retry_after=1,
        timeout_hold_s=2.0,
    )
    with Simulator(cfg) as sim:
        faulty = Harness(h.opts, sim, h.workdir / "faulty")
        for harvest in range(h.opts.harvests):
            faulty_harvest(faulty, tally, harvest)
        stats = sim.stats()
    tally.requests = stats["requests"]
    injected = sum(stats["faults"].values())
    overhead = tally.requests / max(1, tally.clean_requests * h.opts.harvests)
    tally.notes.append(
        f"{h.opts.harvests} harvests, {tally.requests} requests, {injected} faults injected "
        f"{dict(sorted(stats['faults'].items()))}; budget {budget} per 1 s window, "
        f"{stats['primary_limited']} requests refused for budget; "
        f"request overhead {overhead:.2f}x a clean harvest ({tally.clean_requests} requests)"
    )
    if not injected and h.opts.error_rate:
        tally.problems.append("no fault was injected: raise --error-rate or --harvests")
    return tally


def faulty_harvest(h: Harness, tally: Tally, harvest: int) -> None:
    """Retryable failures (retries exhausted) are resumed with --retry-failed, as cron would."""
    ds = h.dataset(f"harvest{harvest}", github={"timeout_s": 0.5}, rate_limit=PAUSE_LOW)
    code = h.run_to_end(ds, tally)
    for _ in range(5):
        if code != 1 or failed_repos(ds.paths) == {SCENARIO_REPOS["vanished"]}:
            break
        tally.notes.append(f"harvest {harvest}: a retryable failure, rerun with --retry-failed")
        code = h.run_to_end(ds, tally, "--retry-failed")
    if h.check_end(ds, code, tally):
        h.verify(ds, tally)


PAUSE_LOW = {"pause_below": 2, "save_below": 0.2}


def concurrent_mode(h: Harness) -> Tally:
    """Two runs at once on one dataset: exactly one proceeds, the other exits 3, touches nothing."""
    tally = Tally("concurrent")
    for trial in range(h.opts.trials):
        race(h, tally, trial)
        frozen_holder(h, tally, trial)
    return tally


def race(h: Harness, tally: Tally, trial: int) -> None:
    """Both started in the same instant on a fresh dataset."""
    ds = h.dataset(f"race{trial}")
    ds.write_config(2)
    other = Dataset(ds.folder / "second", ds.api_url, ds.overrides)  # own logs, same dataset
    other.folder.mkdir()
    first, second = h.launch(ds), launch_with_config(h, other, ds.config)
    tally.runs += 2
    codes = sorted([h.wait(first, tally) or 0, h.wait(second, tally) or 0])
    tally.interruptions += 1
    if codes != [1, 3]:
        tally.problems.append(f"race {trial}: exit codes {codes}, expected one 1 and one 3")
        return
    loser = ds if first.returncode == 3 else other
    message = loser.stderr_log.read_text()
    if "another gh-collect run holds" not in message or "Traceback" in message:
        tally.problems.append(f"race {trial}: the refused run said {last_line(message)!r}")
    h.verify(ds, tally)


def launch_with_config(h: Harness, ds: Dataset, config: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "gh_collect", "collect", "-c", str(config), "--quiet"]
    with ds.stderr_log.open("wb") as err:
        return subprocess.Popen(
            cmd, env=h.env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
        )


def frozen_holder(h: Harness, tally: Tally, trial: int) -> None:
    """The holder is paused mid-harvest (SIGSTOP), so any change the second run made shows."""
    ds = h.dataset(f"frozen{trial}")
    holder = h.launch(ds)
    tally.runs += 2
    wait_until(lambda: save_count(ds.paths) >= 3, holder)
    if holder.poll() is not None:  # a very fast machine: nothing left to freeze
        tally.notes.append(f"frozen {trial}: the holder finished before it could be paused")
        if h.check_end(ds, holder.returncode, tally):
            h.verify(ds, tally)
        return
    os.killpg(holder.pid, signal.SIGSTOP)
    try:
        time.sleep(0.3)  # let the holder's requests already on the wire be answered
        files, requests = tree_state(ds.folder / "data"), h.sim.stats()["requests"]
        second = subprocess.run(
            [sys.executable, "-m", "gh_collect", "collect", "-c", str(ds.config)],
            env=h.env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        changed = tree_state(ds.folder / "data") != files
        sent = h.sim.stats()["requests"] - requests
    finally:
        with suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGCONT)
    tally.interruptions += 1
    if second.returncode != 3 or changed or sent or "Traceback" in second.stderr:
        tally.problems.append(
            f"frozen {trial}: second run exit {second.returncode}, files changed={changed}, "
            f"requests sent={sent}: {last_line(second.stderr)}"
        )
    code = h.wait(holder, tally)
    if h.check_end(ds, code, tally):
        h.verify(ds, tally)


# --- driving -----------------------------------------------------------------------------------


def hostile_mode(h: Harness) -> Tally:
    """Every scenario of tests/hostile_scenarios.py against the hostile API on 127.0.0.1."""
    from tests import hostile_scenarios  # noqa: F401 - registers the scenarios
    from tests.hostile import SCENARIOS, HostileServer, render, run_scenario

    tally = Tally("hostile")
    chosen = [spec for spec in SCENARIOS if not h.opts.scenarios or spec.name in h.opts.scenarios]
    unknown = set(h.opts.scenarios) - {spec.name for spec in SCENARIOS}
    tally.problems.extend(f"no scenario named {name!r}" for name in sorted(unknown))
    with HostileServer() as server:
        results = [run_scenario(server, spec, h.workdir / spec.name) for spec in chosen]
    tally.runs = sum(len(result.steps) for result in results)
    tally.rounds = len(results)
    tally.problems += [f"{r.name} (case {r.item}): {p}" for r in results for p in r.problems]
    held = sum(result.held for result in results)
    tally.notes.append(f"{held} of {len(results)} scenarios held")
    tally.table = render(results)
    return tally


def churn_mode(h: Harness) -> Tally:
    """The org keeps changing while runs are killed: an edit every ``churn_ms`` (old items
    included, so items enter the year while a run reads and while a killed run is down).
    The finished dataset must hold every item that was in the year when its final run
    started, in that version or a newer one; each id once curated, each version once raw,
    and nothing that never was in the year."""
    tally = Tally("churn")
    with Simulator(simulator_config(h.opts, churn_ms=h.opts.churn_ms)) as sim:
        churned = Harness(h.opts, sim, h.workdir / "churn")
        started = time.monotonic()
        clean = churned.dataset("clean")
        first_save = churned_harvest(churned, clean, tally, kills=0, window=(0.0, 0.0))
        total = time.monotonic() - started
        window = (first_save * 0.9, max(total, first_save + 0.1))
        while tally.interruptions < h.opts.kills:  # a harvest that ends first: another one
            left = h.opts.kills - tally.interruptions
            churned_harvest(churned, churned.dataset("killed"), tally, left, window)
        tally.requests = sim.stats()["requests"]
        tally.notes.append(f"{sim.churn_edits} edits while harvesting; kill window "
                           f"{window[0]:.2f}-{window[1]:.2f} s after start")  # fmt: skip
    return tally


def churned_harvest(
    h: Harness, ds: Dataset, tally: Tally, kills: int, window: tuple[float, float]
) -> float:
    """Run ``ds`` to its end through ``kills`` SIGKILLs, check it against the truth as the
    final run started; returns how long the first run took to save (0 if it never did)."""
    left, first_save = kills, 0.0
    while True:
        before, truth = snapshot(ds.paths), live_truth(h.sim)
        tally.runs += 1
        started = time.monotonic()
        proc = h.launch(ds, every_pages=h.cadence())
        if left > 0:
            try:
                code = proc.wait(timeout=h.rng.uniform(*window))
            except subprocess.TimeoutExpired:
                kill_group(proc)
                left, tally.interruptions = left - 1, tally.interruptions + 1
                h.after_interruption(ds, tally, before)
                time.sleep(h.rng.uniform(0.0, 0.3))  # down a while: the org moves on
                continue
        else:
            if not first_save:
                first_save = wait_until(lambda: ds.paths.checkpoint.exists(), proc) - started
            code = h.wait(proc, tally)
        if h.check_end(ds, code, tally):
            tally.rounds += 1
            for key, value in compare_churned(ds.paths, truth, live_truth(h.sim)).items():
                setattr(tally, key, getattr(tally, key) + value)
        return first_save


def live_truth(sim: Simulator) -> dict[str, dict[Any, Any]]:
    """key -> version of every item in the year, per endpoint, as of now: read through the
    control API, which answers on the server's loop, between two edits."""
    import httpx

    answer = httpx.get(
        f"{sim.url}/__simulator/truth",
        params={"year": str(YEAR), "endpoints": ",".join(ENDPOINTS)},
        timeout=30,
    ).json()["truth"]
    return {
        e: {obj[key_of(e)]: version_of(e, obj) for objs in answer[e].values() for obj in objs}
        for e in ENDPOINTS
    }


def compare_churned(
    paths: DatasetPaths, start: dict[str, dict[Any, Any]], end: dict[str, dict[Any, Any]]
) -> dict[str, int]:
    """``start``: the year when the final run began; ``end``: when it finished."""
    totals: Counter[str] = Counter()
    for endpoint in ENDPOINTS:
        versions: Counter[tuple[Any, Any]] = Counter()
        key = key_of(endpoint)
        for data in raw_records(paths, endpoint):
            if not isinstance(data, dict) or not isinstance(data.get(key), int | str):
                totals["altered"] += 1
                continue
            versions[(data[key], version_of(endpoint, data))] += 1
        totals["duplicated"] += sum(n - 1 for n in versions.values())
        curated = curated_versions(paths, endpoint)
        expected = start[endpoint]
        # A GraphQL table's curated version (``fetched_at``) is not the raw one: held is held.
        by_version = declared.get(endpoint).raw_key is None
        held = sum(
            1
            for i, v in expected.items()
            if i in curated and (not by_version or max(curated[i]) >= v)
        )
        totals["expected"] += len(expected)
        totals["got"] += held  # in the year at the start, held in that version or newer
        totals["missing"] += len(expected) - held
        totals["curated_duplicated"] += sum(len(v) - 1 for v in curated.values())
        totals["extra"] += sum(1 for i in curated if i not in end[endpoint])
    return dict(totals)


def curated_versions(paths: DatasetPaths, endpoint: str) -> dict[Any, list[str]]:
    """key -> the version (``updated_at``, ISO) of its curated rows, as a reader sees them."""
    import pyarrow.dataset as ds

    root = paths.root / "curated"
    if not root.is_dir():
        return {}
    key, version = declared.get(endpoint).key, declared.get(endpoint).version
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(
        columns=[key, *([version] if version else [])],
        filter=(ds.field("endpoint") == endpoint) & (ds.field("target") == ORG),
    )
    stamps = table.column(version).to_pylist() if version else [None] * table.num_rows
    found: dict[Any, list[str]] = {}
    for ident, stamp in zip(table.column(key).to_pylist(), stamps, strict=True):
        stamp_text = stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp else ""
        found.setdefault(as_raw_key(endpoint, ident), []).append(stamp_text)
    return found


def simulator_config(opts: Options, **overrides: Any) -> SimulatorConfig:
    base: dict[str, Any] = {
        "seed": opts.seed,
        "repos": opts.repos,
        "org": ORG,
        "sizes": (opts.size,) if opts.size else None,
        "latency_ms": opts.latency_ms,
        # Unlimited unless a mode says otherwise: hundreds of reruns must not trip the
        # budget or the per-minute secondary limit by accident.
        "rate_limit": 10**9,
        "max_per_minute": 10**9,
    }
    return SimulatorConfig(**{**base, **overrides})


@contextmanager
def workdir(opts: Options) -> Iterator[Path]:
    if opts.workdir is not None:
        opts.workdir.mkdir(parents=True, exist_ok=True)
        yield opts.workdir
        return
    folder = Path(tempfile.mkdtemp(prefix="gh-torture-"))
    try:
        yield folder
    finally:
        if not opts.keep:
            shutil.rmtree(folder, ignore_errors=True)


# --- fleet: kill -9 of --queue workers, output to S3 ----------------------------------------


class FleetHarness:
    """A redis-server and moto's S3 on 127.0.0.1 for fleet runs of the real CLI."""

    def __init__(self, h: Harness) -> None:
        self.h, self.bucket = h, "torture-fleet"
        self.folder = h.workdir / "fleet"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.redis_port, moto_port = _free_port(), _free_port()
        self.redis = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port),
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per S3 request
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        self.moto.start()
        self.env = {
            **h.env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
            "AWS_ACCESS_KEY_ID": "torture", "AWS_SECRET_ACCESS_KEY": "torture",
            "AWS_DEFAULT_REGION": "us-east-1",
        }  # fmt: skip
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("AWS_")})
        import boto3

        boto3.client("s3").create_bucket(Bucket=self.bucket)
        time.sleep(0.3)  # redis-server's start
        self.rounds = 0

    def close(self) -> None:
        self.redis.kill()
        self.redis.wait()
        self.moto.stop()

    def new_round(self) -> tuple[Path, str]:
        """A fresh prefix and Redis database for one harvest: (config, queue URL)."""
        self.rounds += 1
        ds = self.h.dataset(f"fleet-round{self.rounds}", fleet={"lease_s": 1.0})
        ds.overrides["output"] = {"root": f"s3://{self.bucket}/round{self.rounds}"}
        ds.write_config(self.h.cadence(), FLEET_ENDPOINTS)
        return ds.config, f"redis://127.0.0.1:{self.redis_port}/{self.rounds % 16}"

    def failed_units(self, queue: str) -> set[str]:
        """The repos (short names) of the round's failed units, as the queue has them."""
        from gh_collect.fleet.queue import RedisQueue, unit_key

        units = RedisQueue(queue, f"gh-collect:{ORG}:{YEAR}").snapshot()["units"]
        return {
            unit_key(unit)[1].rpartition("/")[2]
            for unit, info in units.items()
            if info.get("state") == "failed"
        }

    def spawn(self, command: str, config: Path, queue: str, *extra: str) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "gh_collect", command, "-c", str(config), "--queue", queue]
        cmd += extra
        with (config.parent / f"{command}.log").open("ab") as log:  # the child keeps its own
            return subprocess.Popen(
                [*cmd, "--quiet"], env=self.env, stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True,
            )  # fmt: skip

    def verify(self, tally: Tally) -> None:
        from gh_collect.fleet.commits import FleetLayout
        from gh_collect.fleet.output import read_committed
        from gh_collect.fleet.store import open_store

        store = open_store(f"s3://{self.bucket}/round{self.rounds}")
        layout = FleetLayout(YEAR, ORG)
        tally.rounds += 1
        check = compare_sources(
            lambda e: (line.get("data") for line in read_committed(store, layout, e)),
            lambda e: _curated_in_store(store, layout, e),
            self.h.truth,
            FLEET_ENDPOINTS,
        )
        for key, value in check.items():
            setattr(tally, key, getattr(tally, key) + value)
        if check.get("missing") or check.get("duplicated") or check.get("extra"):
            kept = self.h.workdir / f"store-round{self.rounds}"
            for key in store.list(""):
                target = kept / key
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(store.get(key) or b"")
            tally.problems.append(f"round {self.rounds}: the store is copied to {kept}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _curated_in_store(store: Any, layout: Any, endpoint: str) -> Counter[Any]:
    import io

    import pyarrow.parquet as pq

    ids: Counter[Any] = Counter()
    for key in store.list(f"{layout.curated}/endpoint={endpoint}/"):
        if key.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(store.get(key)), columns=[key_of(endpoint)])
            ids.update(table.column(0).to_pylist())
    return ids


def fleet_mode(h: Harness) -> Tally:
    """``--queue`` with a planner and workers writing to S3 (moto), kill -9 of a random one
    every 0.2-1 s, restarted with the same command; each harvest checked against the truth.
    Requests repeated per kill: the storm's requests less as many clean harvests', per kill."""
    tally = Tally("fleet")
    fleet = FleetHarness(h)
    try:
        before = h.sim.stats()["requests"]
        _fleet_harvest(fleet, tally, kills=0)
        tally.clean_requests = h.sim.stats()["requests"] - before
        left, start, harvests = h.opts.kills, h.sim.stats()["requests"], 0
        while left > 0:
            harvests += 1
            left -= _fleet_harvest(fleet, tally, kills=left)
        tally.requests = h.sim.stats()["requests"] - start
    finally:
        fleet.close()
    repeated = tally.requests - tally.clean_requests * harvests
    tally.notes.append(
        f"{harvests} harvests by {FLEET_WORKERS} processes into S3 (moto), "
        f"{tally.interruptions} kill -9; clean harvest {tally.clean_requests} requests; "
        f"{repeated / max(1, tally.interruptions):.1f} requests repeated per kill"
    )
    return tally


def _fleet_harvest(fleet: FleetHarness, tally: Tally, *, kills: int) -> int:
    """One harvest to its end (killing up to ``kills`` processes on the way); the kills done.

    A victim has run at least ``FLEET_WARM_S`` (past the interpreter's start-up), so a kill
    lands in planning, walking or committing, not in imports."""
    config, queue = fleet.new_round()
    commands = ["collect"] + ["worker"] * (FLEET_WORKERS - 1)
    running = [(c, time.monotonic(), fleet.spawn(c, config, queue)) for c in commands]
    tally.runs += len(running)
    done = 0
    while done < kills and any(p.poll() is None for _c, _t, p in running):
        time.sleep(fleet.h.rng.uniform(0.2, 1.2))
        warm = time.monotonic() - FLEET_WARM_S
        alive = [(c, t, p) for c, t, p in running if p.poll() is None and t < warm]
        if not alive:
            continue
        command, _started, victim = fleet.h.rng.choice(alive)
        kill_group(victim)
        done += 1
        tally.interruptions += 1
        tally.land(command)
        running.append((command, time.monotonic(), fleet.spawn(command, config, queue)))
        tally.runs += 1
    for _c, _t, proc in running:
        code = fleet.h.wait(proc, tally)
        if code not in (0, 1, -signal.SIGKILL):
            tally.problems.append(f"a fleet process ended with exit {code}")
    parked = fleet.failed_units(queue) - {"vanished-repo"}
    if parked:  # taken too often without progress: retried as cron would, with --retry-failed
        tally.notes.append(f"round {fleet.rounds}: {len(parked)} units parked, retried")
    final = fleet.spawn("collect", config, queue, "--retry-failed")  # and exports
    tally.runs += 1
    if fleet.h.wait(final, tally) != 1:  # 1: the vanished repo's units failed
        tally.problems.append(f"the final collect --queue did not exit 1 ({config.parent})")
    left = fleet.failed_units(queue) - {"vanished-repo"}
    if left:
        tally.problems.append(f"round {fleet.rounds}: units of {sorted(left)} failed")
    for log in config.parent.glob("*.log"):
        if "Traceback" in log.read_text(errors="replace"):
            tally.problems.append(f"traceback in {log}")
    fleet.verify(tally)
    return done


def run_modes(opts: Options) -> list[Tally]:
    modes = MODES if opts.mode == "all" else (opts.mode,)
    runners: dict[str, Callable[[Harness], Tally]] = {
        "kill": kill_mode,
        "sigint": lambda h: signal_mode(h, signal.SIGINT),
        "sigterm": lambda h: signal_mode(h, signal.SIGTERM),
        "faults": faults_mode,
        "concurrent": concurrent_mode,
        "hostile": hostile_mode,
        "churn": churn_mode,
        "fleet": fleet_mode,
    }
    tallies = []
    with workdir(opts) as folder, Simulator(simulator_config(opts)) as sim:
        for mode in modes:
            started = time.monotonic()
            tally = runners[mode](Harness(opts, sim, folder / mode))
            tally.wall_s = round(time.monotonic() - started, 2)
            tallies.append(tally)
    return tallies


COLUMNS = (
    ("mode", "mode"),
    ("interrupted", "interruptions"),
    ("runs", "runs"),
    ("rounds", "rounds"),
    ("expected", "expected"),
    ("got", "got"),
    ("missing", "missing"),
    ("duplicated", "duplicated"),
    ("extra", "extra"),
    ("altered", "altered"),
    ("curated miss/dup", "curated"),
    ("ckpt fails", "checkpoint_failures"),
    ("torn tails", "torn_tails"),
    ("wall s", "wall_s"),
    ("ok", "ok"),
)


def render(tallies: Sequence[Tally]) -> str:
    rows = [[title for title, _ in COLUMNS]]
    for t in tallies:
        values = {**t.as_dict(), "curated": f"{t.curated_missing}/{t.curated_duplicated}"}
        rows.append([str(values[key]) for _, key in COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    for t in tallies:
        landed = ", ".join(f"{n} in {where}" for where, n in sorted(t.landed.items()))
        lines.extend(f"{t.mode}: {note}" for note in t.notes)
        if landed:
            lines.append(f"{t.mode}: interruptions landed {landed}")
        lines.extend(f"{t.mode}: PROBLEM {problem}" for problem in t.problems)
        if t.table:
            lines.extend(["", t.table, ""])
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--mode", choices=(*MODES, "fleet", "all"), default="kill")
    parser.add_argument("--kills", type=int, default=50, help="interruptions (kill/sig modes)")
    parser.add_argument("--seed", type=int, default=0, help="seeds kill moments, org and faults")
    parser.add_argument("--repos", type=int, default=12, help="repos in the simulated org")
    parser.add_argument("--size", type=int, default=None, help="items per ordinary repo")
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--error-rate", type=float, default=0.05, help="faults mode")
    parser.add_argument("--harvests", type=int, default=10, help="faults mode")
    parser.add_argument("--trials", type=int, default=2, help="concurrent mode")
    parser.add_argument("--scenario", action="append", default=[], help="hostile mode: only this")
    parser.add_argument("--churn-ms", type=float, default=5.0, help="churn mode: ms per edit")
    parser.add_argument("--workdir", type=Path, default=None, help="keep datasets here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ns = parser.parse_args(argv)
    if ns.kills < 0 or not 0 <= ns.error_rate <= 1:
        parser.error("--kills must be >= 0 and --error-rate within [0, 1]")
    return Options(
        ns.mode,
        ns.kills,
        ns.seed,
        ns.repos,
        ns.size,
        ns.latency_ms,
        ns.concurrency,
        ns.error_rate,
        ns.trials,
        ns.harvests,
        ns.workdir,
        ns.keep,
        ns.json,
        tuple(ns.scenario),
        ns.churn_ms,
    )


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    started = time.monotonic()
    tallies = run_modes(opts)
    ok = all(t.ok for t in tallies)
    if opts.as_json:
        report = {
            "ok": ok,
            "seed": opts.seed,
            "wall_s": round(time.monotonic() - started, 2),
            "modes": [t.as_dict() for t in tallies],
        }
        print(json.dumps(report, indent=2))
    else:
        print(render(tallies))
        print(
            f"{'OK' if ok else 'FAILED'} in {time.monotonic() - started:.1f} s (seed {opts.seed})"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
