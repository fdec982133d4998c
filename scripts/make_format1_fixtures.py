"""Make the format-1 datasets of tests/fixtures/format1/ with gh-collect 0.1.0 itself.

    git worktree add /tmp/gh-collect-0.1.0 7f7f730      # the 0.1.0 release
    .venv/bin/python scripts/make_format1_fixtures.py /tmp/gh-collect-0.1.0 tests/fixtures/format1

(``git archive 7f7f730 | tar -x -C /tmp/gh-collect-0.1.0`` works as well.)

Why: a checkpoint format change must be tested against checkpoints the old release really
wrote, killed where users kill it, not against files the new code imagines. This script runs
the release's own harvester (its package, from the checkout given) against THIS checkout's
simulator, served on a fixed port (the api_url is part of the config digest): the test serves
the same org with the same simulator, so whenever the simulator's data changes (issue 13
gave it long histories), run this again. It leaves three datasets:

- ``complete``: a finished harvest;
- ``killed-mid-pulls`` / ``killed-mid-issues``: a harvest killed with SIGKILL while that
  phase had pages saved, its files holding the torn tails a kill leaves.

Each is packed as ``NAME.tar.gz`` (``data/`` inside); tests/test_format1.py resumes each
with the current code and checks the result exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

PORT = 47193
TOKEN_ENV = "GH_FIXTURE_TOKEN"
ROOT = Path(__file__).resolve().parent.parent
SIMULATOR = {
    "seed": 11,
    "repos": 3,
    "sizes": (900, 30),
    "scenarios": False,
    "latency_ms": 120.0,
    "history_years": 3.0,  # a short history: several pages of each list in the window
    "touched_share": 0.1,
}  # tests/test_format1.py serves the same org (without the latency)
KILL_TIMEOUT_S = 60.0


def main(release: Path, out: Path) -> int:
    sys.path.insert(0, str(ROOT))
    from gh_collect.simulator import Simulator, SimulatorConfig

    out.mkdir(parents=True, exist_ok=True)
    sim = Simulator(SimulatorConfig(**SIMULATOR))  # type: ignore[arg-type]
    sim.start(port=PORT)
    try:
        for name, phase in (
            ("complete", None),
            ("killed-mid-pulls", "pulls"),
            ("killed-mid-issues", "issues"),
        ):
            folder = Path(tempfile.mkdtemp(prefix=f"format1-{name}-"))
            config = write_config(folder, sim.url)
            harvest(release, config, folder, phase)
            print(f"{name}: {describe(folder)}")
            pack(folder / "data", out / f"{name}.tar.gz")
            shutil.rmtree(folder)
    finally:
        sim.stop()
    return 0


def pack(data: Path, archive: Path) -> None:
    """``data/`` as a reproducible tar.gz (sorted, no owners or times): 10x smaller."""

    def plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info

    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(data.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(data.parent)), recursive=False, filter=plain)


def write_config(folder: Path, api_url: str) -> Path:
    config = folder / "config.yaml"
    config.write_text(
        "target: {org: sample-org}\n"
        "year: 2025\n"
        f"github: {{api_url: '{api_url}', token_env: {TOKEN_ENV}, concurrency: 2}}\n"
        "checkpoint: {every_pages: 1}\n"
        "output: {root: data}\n"
    )
    return config


def harvest(release: Path, config: Path, folder: Path, kill_in: str | None) -> None:
    env = {**os.environ, "PYTHONPATH": str(release), TOKEN_ENV: "ghp_fixture"}
    command = [sys.executable, "-m", "gh_collect", "collect", "-c", config.name, "--quiet"]
    proc = subprocess.Popen(command, cwd=folder, env=env, start_new_session=True)
    if kill_in is None:
        if proc.wait(KILL_TIMEOUT_S) != 0:
            raise SystemExit(f"the release's harvest failed in {folder}")
        return
    checkpoint = next_checkpoint(folder)
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if mid_phase(checkpoint, kill_in):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.005)
    raise SystemExit(f"never saw {kill_in} in progress in {folder}")


def next_checkpoint(folder: Path) -> Path:
    return folder / "data/raw/year=2025/source=github/target=sample-org/checkpoint.json"


def mid_phase(checkpoint: Path, phase: str) -> bool:
    """Some repo's walk of the phase is saved part-way: pages written and a next URL."""
    try:
        state = json.loads(checkpoint.read_text())
    except (OSError, ValueError):
        return False
    units = [repo["endpoints"][phase] for repo in state["repos"].values()]
    return any(
        u["status"] == "in_progress" and u["pages_collected"] and u["next_url"] for u in units
    )


def describe(folder: Path) -> str:
    state = json.loads(next_checkpoint(folder).read_text())
    phases = {name: phase["status"] for name, phase in state["phases"].items()}
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return f"phases {phases}, format {state['format_version']}, {size} bytes"


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()))
