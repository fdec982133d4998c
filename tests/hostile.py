"""A hostile GitHub API on 127.0.0.1, and the scenarios gh-collect must survive.

Everything a server sends is untrusted (SPEC, "Bad input and hostile servers"). The built-in
simulator behaves like GitHub; this server misbehaves on purpose: the org name in the
requested path selects a scenario (a ``World``: its repos, their items, and hooks that answer
a request in some hostile way). Each scenario drives the real CLI in a subprocess through one
or more steps and checks what a user would: the exit code, a one-line error and never a
traceback, the data on disk afterwards, a readable checkpoint, and that the token appears in
no output and no file.

    tests/test_hostile.py               one test per scenario
    scripts/torture.py --mode hostile   all of them, as a table
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml
from aiohttp import web

from gh_collect.durable.checkpoint import read_checkpoint
from gh_collect.durable.envelope import read_envelopes
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import GhCollectError

TOKEN = "ghp_hostileSECRETtoken0123456789"
TOKEN_ENV = "GH_HOSTILE_TOKEN"
YEAR = 2025
PER_PAGE_MAX = 100
ERROR_PREFIX = "gh-collect: error:"
Hook = Callable[["Call"], Awaitable[web.StreamResponse | None]]


# --------------------------------------------------------------------------- the world


@dataclass
class Repo:
    full_name: str
    id: int
    pulls: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]

    def listing(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "node_id": f"R_{self.id}",
            "name": self.name,
            "full_name": self.full_name,
            "fork": False,
            "archived": False,
            "private": False,
            "open_issues_count": len(self.issues),
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2025-06-01T00:00:00Z",
            **self.extra,
        }


@dataclass
class Call:
    """One request as the server saw it, and the world it was for."""

    request: web.Request
    world: World
    route: str  # "repos", "pulls", "issues", "rate_limit", "other"
    repo: Repo | None = None


class World:
    """One scenario's GitHub: repos, items, hostile hooks, and the requests it received."""

    def __init__(self, org: str) -> None:
        self.org = org
        self.repos: list[Repo] = []
        self.hooks: list[Hook] = []
        self.listing_override: Any = None  # a body served instead of the repo listing
        self.requests: list[str] = []  # raw paths with query, in arrival order
        self.headers: dict[str, str] = {}  # extra headers on every answer
        self._next_id = 1000

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def repo(self, name: str, *, pulls: int = 3, issues: int = 3, owner: str | None = None) -> Repo:
        repo = Repo(f"{owner or self.org}/{name}", self.new_id())
        for _ in range(pulls):
            self.add_pull(repo)
        for _ in range(issues):
            self.add_issue(repo)
        self.repos.append(repo)
        return repo

    def _item(self, repo: Repo, number: int, kind: str) -> dict[str, Any]:
        created = datetime(YEAR, 1, 2, tzinfo=UTC) + timedelta(hours=7 * number)
        item_id = self.new_id()
        return {
            "id": item_id,
            "node_id": f"{kind}_{item_id}",
            "number": number,
            "title": f"{kind} {number} of {repo.name}",
            "state": "open",
            "user": {"login": "octocat", "id": 1},
            "author_association": "MEMBER",
            "labels": [],
            "locked": False,
            "created_at": _iso(created),
            "updated_at": _iso(created + timedelta(days=1)),
            "closed_at": None,
            "body": "text",
            "html_url": f"https://github.com/{repo.full_name}/{number}",
        }

    def add_pull(self, repo: Repo, **fields: Any) -> dict[str, Any]:
        number = len(repo.pulls) + len(repo.issues) + 1
        pull = {**self._item(repo, number, "PR"), "draft": False, "merged_at": None, **fields}
        repo.pulls.append(pull)
        return pull

    def add_issue(self, repo: Repo, **fields: Any) -> dict[str, Any]:
        number = len(repo.pulls) + len(repo.issues) + 1
        issue = {**self._item(repo, number, "I"), "comments": 0, **fields}
        repo.issues.append(issue)
        return issue

    def hook(self, hook: Hook) -> Hook:
        self.hooks.append(hook)
        return hook

    def truth(self, endpoint: str) -> Counter[int]:
        return Counter(item["id"] for repo in self.repos for item in getattr(repo, endpoint))


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- the server


class HostileServer:
    """aiohttp on 127.0.0.1 in a background thread, serving every registered World."""

    def __init__(self) -> None:
        self.worlds: dict[str, World] = {}
        self._owners: dict[str, World] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def world(self, org: str) -> World:
        world = World(org)
        self.worlds[org.lower()] = world
        return world

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.SockSite(self._runner, sock, shutdown_timeout=0.1)
            loop.run_until_complete(site.start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=serve, name="hostile-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        self._loop = loop
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self.url

    def stop(self) -> None:
        loop, runner = self._loop, self._runner
        if loop is None or runner is None:
            return
        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(_shutdown(runner), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._loop = None

    def __enter__(self) -> HostileServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- routing --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        call = self._call(request)
        if call is None:
            return error_response(404, "Not Found")
        call.world.requests.append(request.raw_path)
        for hook in call.world.hooks:
            answer = await hook(call)
            if answer is not None:
                return answer
        return self._default(call)

    def _call(self, request: web.Request) -> Call | None:
        # Segments decoded one by one from the raw path: no dot-segment normalisation here,
        # so a server-side view of ``/repos/o/%2E%2E/pulls`` stays what the client sent.
        raw = request.raw_path.split("?", 1)[0]
        parts = [unquote(part) for part in raw.split("/") if part]
        if parts[:1] == ["rate_limit"]:
            world = next(iter(self.worlds.values()), None)
            return Call(request, world, "rate_limit") if world else None
        if len(parts) == 3 and parts[0] in ("orgs", "users") and parts[2] == "repos":
            world = self.worlds.get(parts[1].lower())
            return Call(request, world, "repos") if world else None
        if len(parts) >= 4 and parts[0] == "repos":
            full_name = f"{parts[1]}/{parts[2]}"
            for world in self.worlds.values():
                for repo in world.repos:
                    if repo.full_name == full_name:
                        return Call(request, world, parts[3], repo)
        return None

    def _default(self, call: Call) -> web.StreamResponse:
        world, query = call.world, call.request.query
        if call.route == "rate_limit":
            return _json(call, {"resources": {"core": _core()}})
        if call.route == "repos":
            if world.listing_override is not None:
                return _json(call, world.listing_override)
            items = sorted((repo.listing() for repo in world.repos), key=_full_name_key)
            return _page(call, items)
        if call.repo is None or call.route not in ("pulls", "issues"):
            return error_response(404, "Not Found")
        items = list(call.repo.pulls if call.route == "pulls" else call.repo.issues)
        since = query.get("since")
        if since:
            items = [i for i in items if str(i.get("updated_at", "")) >= since]
        key = "updated_at" if query.get("sort") == "updated" else "created_at"
        items.sort(key=lambda i: (str(i.get(key, "")), i.get("id", 0)))
        if query.get("direction", "desc") == "desc":
            items.reverse()
        return _page(call, items)


async def _shutdown(runner: web.AppRunner) -> None:
    """Stop serving, then end the handlers still streaming or stalling (hostile ones do)."""
    await runner.cleanup()
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def _full_name_key(repo: dict[str, Any]) -> str:
    return str(repo["full_name"]).lower()


def _core() -> dict[str, int]:
    return {"limit": 5000, "remaining": 4999, "used": 1, "reset": int(time.time()) + 3600}


def _rate_headers() -> dict[str, str]:
    core = _core()
    return {
        "x-ratelimit-limit": str(core["limit"]),
        "x-ratelimit-remaining": str(core["remaining"]),
        "x-ratelimit-used": str(core["used"]),
        "x-ratelimit-reset": str(core["reset"]),
        "x-ratelimit-resource": "core",
    }


def _page(call: Call, items: list[Any]) -> web.StreamResponse:
    """Page ``items`` by ``page``/``per_page``, with a GitHub-shaped Link header."""
    query = call.request.query
    per_page = min(int(query.get("per_page", "30")), PER_PAGE_MAX)
    page = max(1, int(query.get("page", "1")))
    body = items[(page - 1) * per_page : page * per_page]
    last = max(1, -(-len(items) // per_page))
    links = []
    if page < last:
        links.append(f'<{_page_url(call, page + 1)}>; rel="next"')
        links.append(f'<{_page_url(call, last)}>; rel="last"')
    return _json(call, body, link=", ".join(links))


def _page_url(call: Call, page: int) -> str:
    url = call.request.url.update_query({"page": str(page)})
    return str(url)


def _json(call: Call, payload: Any, *, link: str = "", status: int = 200) -> web.Response:
    body = json.dumps(payload).encode()
    etag = 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {**_rate_headers(), "etag": etag, **call.world.headers}
    if link:
        headers["link"] = link
    if call.request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(status=status, body=body, headers=headers, content_type="application/json")


def error_response(status: int, message: str, **headers: str) -> web.Response:
    body = json.dumps({"message": message, "documentation_url": "https://docs.github.com"})
    return web.Response(status=status, text=body, headers=headers, content_type="application/json")


# --------------------------------------------------------------------------- running the CLI


@dataclass
class Outcome:
    args: tuple[str, ...]
    code: int | None  # None: killed at the time limit
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float


@dataclass
class Result:
    name: str
    item: str
    what: str
    problems: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def held(self) -> bool:
        return not self.problems


class Ctx:
    """What a scenario drives: its world, its folder, the CLI, and the checks."""

    def __init__(self, server: HostileServer, world: World, folder: Path, result: Result):
        self.server, self.world, self.folder, self.result = server, world, folder, result
        self.root = folder / "data"
        self.config_path = folder / "config.yaml"
        self.token = TOKEN
        self.token_env = TOKEN_ENV
        self.outcomes: list[Outcome] = []
        self.write_config()

    @property
    def paths(self) -> DatasetPaths:
        return DatasetPaths(self.root, YEAR, self.world.org)

    def write_config(self, **sections: Any) -> Path:
        config: dict[str, Any] = {
            "target": {"org": self.world.org},
            "year": YEAR,
            "github": {
                "api_url": self.server.url,
                "token_env": self.token_env,
                "timeout_s": 5,
                "retries": 2,
                "retry_initial_s": 0.05,
            },
            "output": {"root": str(self.root)},
        }
        for key, value in sections.items():
            if isinstance(value, dict):
                config.setdefault(key, {}).update(value)
            else:
                config[key] = value
        self.config_path.write_text(yaml.safe_dump(config))
        return self.config_path

    def cli(
        self,
        *args: str,
        expect: int | None,
        token: str | None = None,
        timeout: float = 90,
        env: dict[str, str] | None = None,
    ) -> Outcome:
        """Run ``gh-collect ARGS -c config`` and check the universal rules on its output."""
        outcome = self.spawn(*args, token=token, env=env).wait(timeout)
        self.outcomes.append(outcome)
        self.result.steps.append(f"{' '.join(args)} -> {outcome.code} {_cost(outcome)}")
        self._check_output(outcome, expect)
        return outcome

    def spawn(
        self, *args: str, token: str | None = None, env: dict[str, str] | None = None
    ) -> Running:
        """Start the CLI in the background; ``reap`` it later."""
        secret = {self.token_env: self.token if token is None else token}
        return Running([*args, "-c", str(self.config_path)], {**secret, **(env or {})})

    def reap(self, running: Running, *, expect: int | None, timeout: float = 90) -> Outcome:
        outcome = running.wait(timeout)
        self.outcomes.append(outcome)
        step = f"{outcome.args[0]} (background) -> {outcome.code} {_cost(outcome)}"
        self.result.steps.append(step)
        self._check_output(outcome, expect)
        return outcome

    def _check_output(self, outcome: Outcome, expect: int | None) -> None:
        step = " ".join(outcome.args[:1])
        if outcome.code is None:
            self.fail(f"{step}: still running after {outcome.seconds:.0f} s (killed)")
        elif expect is not None and outcome.code != expect:
            self.fail(f"{step}: exit {outcome.code}, expected {expect}: {last_line(outcome)}")
        if "Traceback" in outcome.stderr or "Traceback" in outcome.stdout:
            self.fail(f"{step}: a traceback: {last_line(outcome)}")
        errors = [line for line in outcome.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
        if len(errors) > 1 or (outcome.code in (2, 3, 75) and len(errors) != 1):
            self.fail(f"{step}: exit {outcome.code} with {len(errors)} error lines, not one")
        for secret in _secret_parts(self.token):
            if secret in outcome.stdout or secret in outcome.stderr:
                self.fail(f"{step}: the token appears in the output")

    def fail(self, problem: str) -> None:
        self.result.problems.append(problem)

    def expect(self, condition: bool, problem: str) -> None:
        if not condition:
            self.fail(problem)

    def message_matches(self, outcome: Outcome, pattern: str) -> None:
        if not re.search(pattern, outcome.stderr + outcome.stdout, re.IGNORECASE):
            self.fail(f"message {last_line(outcome)!r} does not match /{pattern}/")

    # -- the data ---------------------------------------------------------------------------

    def raw_ids(self, endpoint: str) -> Counter[int]:
        folder = self.paths.endpoint_dir(endpoint)
        return Counter(
            line["data"]["id"]
            for path in sorted(folder.glob("*.jsonl"))
            for line in read_envelopes(path)
        )

    def expect_raw_exact(self, endpoint: str, truth: Counter[int] | None = None) -> None:
        got, want = self.raw_ids(endpoint), truth or self.world.truth(endpoint)
        missing, extra = want - got, got - want
        if missing or extra:
            self.fail(f"raw {endpoint}: {sum(missing.values())} missing, {len(extra)} extra ids")

    def curated_ids(self, endpoint: str) -> Counter[int]:
        import pyarrow.dataset as ds

        folder = self.paths.curated_endpoint_dir(endpoint)
        if not folder.exists():
            return Counter()
        table = ds.dataset(folder, format="parquet").to_table(columns=["id"])
        return Counter(table.column("id").to_pylist())

    def expect_curated_exact(self, endpoint: str, truth: Counter[int] | None = None) -> None:
        got, want = self.curated_ids(endpoint), truth or self.world.truth(endpoint)
        if got != Counter(set(want)):
            self.fail(f"curated {endpoint}: {len(got)} ids, expected {len(set(want))}")

    def manifest(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.paths.manifest.read_text()))
        except (OSError, ValueError):
            return {}

    def finish(self) -> None:
        """The rules every scenario ends with: checkpoint readable, token in no file."""
        if self.paths.checkpoint.is_file():
            try:
                read_checkpoint(self.paths.checkpoint)
            except GhCollectError as exc:
                self.fail(f"checkpoint unreadable afterwards: {exc}")
        for path in _files(self.folder):
            data = path.read_bytes()
            if any(secret.encode() in data for secret in _secret_parts(self.token)):
                self.fail(f"the token is written in {path.relative_to(self.folder)}")


def _cost(outcome: Outcome) -> str:
    return f"({outcome.seconds:.1f} s, {outcome.max_rss_mb:.0f} MB)"


def _secret_parts(token: str) -> list[str]:
    return [part for part in token.split() if len(part) >= 8]


def _files(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


def last_line(outcome: Outcome) -> str:
    lines = (outcome.stderr or outcome.stdout).strip().splitlines()
    return lines[-1][:300] if lines else ""


class Running:
    """The real CLI in a subprocess (its own session, so a kill reaches all of it)."""

    def __init__(self, args: list[str], env_extra: dict[str, str]) -> None:
        import tempfile

        env = {k: v for k, v in os.environ.items() if not k.startswith(("GH_", "GITHUB_"))}
        env.update(env_extra)
        self.args = tuple(args)
        self.started = time.monotonic()
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in wait()
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gh_collect", *args],
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )

    def signal(self, signum: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)

    def wait(self, timeout: float) -> Outcome:
        """Reap it (its own peak RSS from wait4); killed when still running after ``timeout``."""
        code, rss_kb = _wait(self.proc, self.started + timeout)
        outputs = []
        for handle in (self._out, self._err):
            handle.seek(0)
            outputs.append(handle.read().decode(errors="replace"))
            handle.close()
        seconds = time.monotonic() - self.started
        return Outcome(self.args, code, outputs[0], outputs[1], seconds, rss_kb / 1024)


def run_cli(args: list[str], env_extra: dict[str, str], timeout: float) -> Outcome:
    return Running(args, env_extra).wait(timeout)


def _wait(proc: subprocess.Popen[bytes], deadline: float) -> tuple[int | None, int]:
    """Exit code (None: killed at ``deadline``) and peak RSS in kB.

    The peak is the process's own high-water mark (``VmHWM``, monotonic, fresh at exec),
    read while it runs: ``wait4``'s ``ru_maxrss`` would count the parent's memory at fork.
    """
    peak = 0
    while True:
        peak = max(peak, _high_water_kb(proc.pid))
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = code = os.waitstatus_to_exitcode(status)
            return (code if code >= 0 else 128 - code), peak
        if time.monotonic() > deadline:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            _, status, _ = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            return None, peak
        time.sleep(0.02)


def _high_water_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


# --------------------------------------------------------------------------- scenarios

Drive = Callable[[Ctx], None]
Build = Callable[[World], Drive]  # fills the world, returns the steps to drive


@dataclass(frozen=True)
class Scenario:
    name: str  # also the org name that selects it on the server
    item: str  # the issue's case number
    what: str
    build: Build


SCENARIOS: list[Scenario] = []


def scenario(item: str, what: str) -> Callable[[Build], Build]:
    """Register ``build(world) -> drive``; the function's name, dashed, is the org name."""

    def register(build: Build) -> Build:
        SCENARIOS.append(Scenario(build.__name__.replace("_", "-"), item, what, build))
        return build

    return register


def run_scenario(server: HostileServer, spec: Scenario, folder: Path) -> Result:
    """Build the scenario's world on ``server``, drive it in ``folder``, check the end state."""
    started = time.monotonic()
    result = Result(spec.name, spec.item, spec.what)
    world = server.world(spec.name)
    drive = spec.build(world)
    folder.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(server, world, folder, result)
    try:
        drive(ctx)
        ctx.finish()
    except Exception as exc:  # a broken scenario is a failed scenario, with its reason
        result.problems.append(f"scenario error: {type(exc).__name__}: {exc}")
    result.seconds = time.monotonic() - started
    return result


def render(results: list[Result]) -> str:
    rows = ["| scenario | case | what | steps (exit codes) | s | held | problems |"]
    rows.append("|---|---|---|---|---|---|---|")
    for r in results:
        held = "yes" if r.held else "NO"
        cells = [r.name, r.item, r.what, "; ".join(r.steps), f"{r.seconds:.1f}", held]
        rows.append("| " + " | ".join([*cells, "; ".join(r.problems)]) + " |")
    return "\n".join(rows)


# The scenarios live in tests/hostile_scenarios.py; importing it fills SCENARIOS.
