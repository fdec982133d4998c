"""Security: the token stays secret, goes to one host only, and server-sent names stay put.

Why: a harvester holds a credential with read access to a whole organization and writes
files named after what a server says. So: the token must appear in no file, no log line at
any level or format, no error text and no ``status --json``; ``Authorization`` must reach only
``github.api_url``'s origin (another port is another origin), even through redirects and
Link headers; a repo name such as ``..``, ``a/b``, one with NUL or 300 characters must never
make a path outside the dataset folder; files get the user's umask and are never
world-writable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from click.testing import CliRunner, Result

from gh_collect.cli import cli
from gh_collect.config import Config
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import GhCollectError
from gh_collect.harvest.run import RunOptions, collect
from gh_collect.simulator import SCENARIO_REPOS, Simulator, SimulatorConfig

from .conftest import ORG, TOKEN, YEAR, assert_exactly_truth, dataset, write_config

TOKEN_ENV = "GH_E2E_TOKEN"
HUNDRED = SCENARIO_REPOS["hundred"]
FAULTS = {"502": 0.05, "malformed": 0.03, "reset": 0.03, "secondary": 0.03}


def run(*args: str) -> Result:
    return CliRunner(env={TOKEN_ENV: TOKEN}).invoke(cli, list(args))


def files_holding(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def library_config(tmp_path: Path, api_url: str, org: str = ORG) -> Config:
    return Config.model_validate(
        {
            "target": {"org": org},
            "year": YEAR,
            "github": {"api_url": api_url, "timeout_s": 5, "retries": 2, "retry_initial_s": 0.01},
            "checkpoint": {"every_pages": 2},
            "output": {"root": str(tmp_path / "data")},
        }
    )


@pytest.fixture(scope="module")
def faulty() -> Iterator[Simulator]:
    """Faults make the run log retries, warnings and failures: more text to leak into."""
    cfg = SimulatorConfig(seed=7, repos=8, org=ORG, faults=FAULTS, secondary_retry_after=0)
    with Simulator(cfg) as simulator:
        yield simulator


# --- the token is never written ------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_token_is_in_no_file_log_line_or_status(
    log_format: str, tmp_path: Path, faulty: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger at every level, httpx and httpcore included
    config = write_config(tmp_path, faulty.url, checkpoint={"every_pages": 1})
    result = run("collect", "-c", str(config), "--log-format", log_format)
    assert result.exit_code == 1, result.output  # the vanished repo
    assert result.stdout.strip() and caplog.records, "nothing was logged: the test proves nothing"
    status = run("status", "-c", str(config), "--json")
    assert status.exit_code == 0
    json.loads(status.stdout)
    for text in (result.stdout, result.stderr, caplog.text, status.stdout, status.stderr):
        assert TOKEN not in text
    for record in caplog.records:
        assert TOKEN not in record.getMessage() and TOKEN not in repr(record.args)
    assert files_holding(tmp_path, TOKEN) == []
    assert_exactly_truth(dataset(tmp_path), faulty)


def test_token_is_in_no_error_text(tmp_path: Path) -> None:
    """Errors and their whole chain of causes, as a traceback would print them."""
    texts = []
    with Simulator(SimulatorConfig(seed=7, repos=8, org=ORG, token="another-token")) as strict:
        with pytest.raises(GhCollectError) as bad_credentials:
            collect(library_config(tmp_path / "a", strict.url), TOKEN)
        texts.append(bad_credentials)
    with pytest.raises(GhCollectError) as unreachable:  # nobody listens on port 9
        collect(library_config(tmp_path / "b", "http://127.0.0.1:9"), TOKEN)
    texts.append(unreachable)
    for raised in texts:
        printed = "".join(traceback.format_exception(raised.value))
        assert TOKEN not in printed and TOKEN not in repr(raised.value)
        assert "\n" not in str(raised.value)
    assert "bad credentials" in str(bad_credentials.value).lower()
    assert files_holding(tmp_path, TOKEN) == []


# --- the token goes to one origin ------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    """Another origin (127.0.0.1, another port): records every request, answers ``[]``."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        Recorder.seen.append({"path": self.path, **dict(self.headers.items())})
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def elsewhere() -> Iterator[str]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class Divert(httpx.AsyncBaseTransport):
    """Forwards to the simulator; a ``needle`` request gets ``answer(elsewhere)`` instead."""

    def __init__(self, needle: str, status: int, elsewhere: str) -> None:
        self.needle, self.status, self.elsewhere = needle, status, elsewhere
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.needle not in request.url.path:
            return response
        body = await response.aread()
        target = f"{self.elsewhere}/diverted/pulls?page=2"
        if self.status in (301, 302, 307, 308):
            return httpx.Response(self.status, headers={"location": target})
        return httpx.Response(200, content=body, headers={"link": f'<{target}>; rel="next"'})

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("status", [302, 307, 301])
def test_a_redirect_to_another_origin_is_never_requested(
    status: int, tmp_path: Path, elsewhere: str, start_simulator: Any
) -> None:
    """Not even without the token: another origin's data is not the repo's (unit skipped)."""
    sim = start_simulator()
    transport = Divert(f"/{HUNDRED}/pulls", status, elsewhere)
    result = collect(
        library_config(tmp_path, sim.url), TOKEN, RunOptions(export=False), transport=transport
    )
    assert Recorder.seen == []
    assert any("not followed" in f["error"] for f in result.failures)


def test_a_link_to_another_origin_is_never_requested(
    tmp_path: Path, elsewhere: str, start_simulator: Any
) -> None:
    sim = start_simulator()
    transport = Divert(f"/{HUNDRED}/pulls", 200, elsewhere)
    result = collect(library_config(tmp_path, sim.url), TOKEN, transport=transport)
    assert Recorder.seen == []
    assert any("not followed" in f["error"] for f in result.failures)


# --- names from the server -------------------------------------------------------------------

EVIL = "evil-org"
HOSTILE_NAMES = [
    "..",
    ".",
    "../../../escape",
    "a/b",
    "/absolute",
    "nul\x00byte",
    "x" * 300,
    "..%2F..%2Fpct",
    "back\\slash",
    "ok-repo",
]


def _item(ident: int, number: int) -> dict[str, Any]:
    when = "2025-06-01T00:00:00Z"
    return {"id": ident, "number": number, "title": "t", "state": "open", "user": None,
            "created_at": when, "updated_at": when}  # fmt: skip


def hostile_api(request: httpx.Request) -> httpx.Response:
    """An org whose repos carry hostile names; every repo has one pull and one issue."""
    path = request.url.path
    if path == f"/orgs/{EVIL}/repos":
        repos = [
            {
                "id": 1000 + i,
                "name": name,
                "full_name": f"{EVIL}/{name}",
                "fork": False,
                "archived": False,
            }
            for i, name in enumerate(HOSTILE_NAMES)
        ]
        return httpx.Response(200, json=repos)
    if path.endswith(("/pulls", "/issues")):
        ident = int(hashlib.sha256(request.url.raw_path).hexdigest()[:8], 16)
        return httpx.Response(200, json=[_item(ident, 1)])
    return httpx.Response(404, json={"message": "Not Found"})


def test_hostile_repo_names_never_leave_the_dataset_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = outside / "root"
    config = library_config(root, "http://api.test", org=EVIL)
    result = collect(config, TOKEN, transport=httpx.MockTransport(hostile_api))
    assert result.exit_code in (0, 1)
    created = [p for p in outside.rglob("*")]
    data = root / "data"
    assert all(p.resolve().is_relative_to(data.resolve()) for p in created if p != root)
    paths = DatasetPaths(data, YEAR, EVIL)
    raw_files = [p for p in data.rglob("*.jsonl") if p.parent != paths.raw_dir]
    assert raw_files and all(p.parent.parent == paths.raw_dir for p in raw_files)
    assert all(len(p.name.encode()) <= 255 for p in created)
    repos_with_data = {json.loads(p.read_text())["repo"] for p in raw_files if p.stat().st_size}
    assert f"{EVIL}/ok-repo" in repos_with_data


# --- permissions -----------------------------------------------------------------------------


@pytest.fixture
def umask_027() -> Iterator[int]:
    previous = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(previous)


def test_files_get_the_users_umask_and_nothing_is_world_writable(
    tmp_path: Path, start_simulator: Any, umask_027: int
) -> None:
    sim = start_simulator()
    collect(library_config(tmp_path, sim.url), TOKEN)
    entries = [p for p in (tmp_path / "data").rglob("*")]
    assert any(p.name == "checkpoint.json" for p in entries)
    wrong = {}
    for path in entries:
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = (0o777 if path.is_dir() else 0o666) & ~umask_027
        if path.name.endswith(".lock"):
            expected &= 0o644  # the holder file (lock.py), narrowed by the umask
        if mode != expected or mode & stat.S_IWOTH:
            wrong[str(path.relative_to(tmp_path))] = oct(mode)
    assert wrong == {}


# --- a GitHub App's key, JWTs and installation tokens ---------------------------------------


class Recording(httpx.AsyncBaseTransport):
    """Forwards to the network (127.0.0.1) and writes down every credential sent."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.add(request.headers.get("authorization", "").removeprefix("Bearer "))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def app_key_pem() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


def app_config(tmp_path: Path, api_url: str, key_file: Path) -> Config:
    app = {"client_id": "Iv23liSecurity", "private_key_path": str(key_file)}
    return Config.model_validate(
        {
            "target": {"org": ORG},
            "year": YEAR,
            "github": {"api_url": api_url, "timeout_s": 5, "auth": {"app": app}},
            "checkpoint": {"every_pages": 1},
            "output": {"root": str(tmp_path / "data")},
        }
    )


def test_the_apps_key_jwts_and_installation_tokens_are_in_no_file_log_error_or_status(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from gh_collect.github.credentials import resolve_credentials
    from gh_collect.report.progress import LogReporter
    from gh_collect.simulator.server.config import SimulatedApp

    caplog.set_level(logging.DEBUG)
    private, public = app_key_pem()
    keys = tmp_path / "keys"
    keys.mkdir()
    key_file = keys / "app.pem"
    key_file.write_text(private)
    key_lines = [line for line in private.splitlines() if "-----" not in line]
    app = SimulatedApp(public_key=public, client_id="Iv23liSecurity", token_ttl_s=2)
    sim_cfg = SimulatorConfig(seed=7, repos=8, org=ORG, app=app, faults=FAULTS,
                              secondary_retry_after=0, latency_ms=20)  # fmt: skip
    with Simulator(sim_cfg) as sim:
        config = app_config(tmp_path, sim.url, key_file)
        transport = Recording()
        reporter = LogReporter(fmt="json")
        collect(config, resolve_credentials(config, {}), reporter=reporter, transport=transport)
        assert sim.app_stats()["mints"] >= 1
        other_private, _ = app_key_pem()
        (tmp_path / "wrong").mkdir()
        wrong_key = tmp_path / "wrong" / "other.pem"
        wrong_key.write_text(other_private)
        wrong = app_config(tmp_path / "wrong", sim.url, wrong_key)
        with pytest.raises(GhCollectError) as refused:
            collect(wrong, resolve_credentials(wrong, {}), transport=transport)
    secrets = {value for value in transport.sent if value}
    assert any(value.startswith("ghs_") for value in secrets), "no installation token seen"
    assert sum(value.count(".") == 2 for value in secrets) >= 3, "no JWTs seen"
    status = CliRunner().invoke(cli, ["status", "-c", str(_written(tmp_path, config)), "--json"])
    assert status.exit_code == 0 and '"exists": true' in status.output
    printed = capsys.readouterr()
    error_text = "".join(traceback.format_exception(refused.value)) + repr(refused.value)
    texts = [printed.out, printed.err, caplog.text, status.output, error_text]
    for secret in [*secrets, *key_lines]:
        assert all(secret not in text for text in texts)
        held = [p for p in files_holding(tmp_path, secret) if p.parent != keys and p != wrong_key]
        assert held == []


def _written(tmp_path: Path, config: Config) -> Path:
    """``config`` as a YAML file (``status -c`` reads one)."""
    import yaml

    path = tmp_path / "app-config.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_unset=True)))
    return path
