"""Bad input of every kind: a clear one-line error, the SPEC exit code, nothing overwritten.

Why: a cron job meets broken configs, revoked tokens, corrupt files, full disks and servers
that answer nonsense. Each must end in one line that says what to do and an exit code a
scheduler can act on (2: a human must fix something; 1: finished with failures or a storage
problem), never a traceback, and never at the cost of data already collected.

The CLI runs in-process through click's CliRunner (a traceback would show up as
``result.exception``); server misbehaviour is injected with an httpx transport in front of
the simulator, which ``gh_collect.harvest.run.collect`` accepts.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from gh_collect.cli import cli
from gh_collect.config import Config
from gh_collect.durable.checkpoint import read_checkpoint
from gh_collect.durable.paths import DatasetPaths
from gh_collect.durable.storage import JsonlSink
from gh_collect.harvest.run import RunOptions, collect
from gh_collect.simulator import SCENARIO_REPOS, Simulator, SimulatorConfig

from .conftest import (
    ORG,
    TOKEN,
    YEAR,
    assert_exactly_truth,
    dataset,
    harvested_ids,
    truth_ids,
    write_config,
)

TOKEN_ENV = "GH_E2E_TOKEN"
HUNDRED = SCENARIO_REPOS["hundred"]


# --- helpers -----------------------------------------------------------------------------------


def run(*args: str, token: str | None = TOKEN) -> Result:
    """The CLI in-process; ``token=None`` leaves the variable unset."""
    return CliRunner(env={TOKEN_ENV: token}).invoke(cli, list(args))


def assert_one_line_error(result: Result, code: int, *needles: str) -> str:
    """Exit ``code``, no traceback, and one ``gh-collect: error:`` line ending stderr (log
    warnings of the run, e.g. the vanished repo's 404, may come before it)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"traceback: {result.exception!r}"
    )
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("gh-collect: error: ")]
    assert errors and errors == lines[-1:], result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert TOKEN not in result.output
    return errors[0]


def data_files(root: Path) -> dict[str, str]:
    """Hash of every file under ``root`` except the lock (it holds the last holder's pid)."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.endswith(".lock")
    }


def progress(path: Path) -> dict[str, Any]:
    """What the checkpoint says about each unit, without save bookkeeping."""
    state = read_checkpoint(path)
    return {
        f"{name} {endpoint}": (str(p.status), p.pages_collected, p.byte_offset, p.resume_token)
        for name, repo in state.repos.items()
        for endpoint, p in repo.units.items()
    }


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(seed=7, repos=8, org=ORG)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def finished(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished dataset (the vanished repo failed), copied by the tests that need one."""
    folder = tmp_path_factory.mktemp("finished")
    config = write_config(folder, sim.url)
    assert run("collect", "-c", str(config), "--quiet").exit_code == 1
    return folder


def copy_of(finished: Path, tmp_path: Path, sim: Simulator, **sections: Any) -> Path:
    shutil.copytree(finished / "data", tmp_path / "data")
    return write_config(tmp_path, sim.url, **sections)


def library_config(tmp_path: Path, api_url: str, **github: Any) -> Config:
    settings = {"api_url": api_url, "timeout_s": 5, "retries": 2, "retry_initial_s": 0.01}
    return Config.model_validate(
        {
            "target": {"org": ORG},
            "year": YEAR,
            "github": {**settings, **github},
            "checkpoint": {"every_pages": 2},
            "output": {"root": str(tmp_path / "data")},
        }
    )


def assert_truth_except(tmp_path: Path, sim: Simulator, skipped: str = "") -> None:
    """Every repo but ``skipped`` holds exactly the truth; nothing is doubled anywhere."""
    truth = sim.ground_truth(year=YEAR, endpoints=("pulls", "issues"))
    for endpoint in ("pulls", "issues"):
        kept = {name: objs for name, objs in truth[endpoint].items() if name != skipped}
        expected = truth_ids({endpoint: kept}, endpoint)
        got = harvested_ids(dataset(tmp_path), endpoint)
        assert max(got.values()) == 1, f"{endpoint}: a record written twice"
        assert expected <= got, f"{endpoint}: {len(expected - got)} records missing"


# --- configuration -----------------------------------------------------------------------------


CONFIG_CASES = {
    "yaml-syntax": ("target: [unclosed\nyear: 2025\n", "invalid YAML at line"),
    "unknown-key": (
        yaml.safe_dump({"target": {"org": ORG}, "year": YEAR, "colour": "blue"}),
        "unknown setting 'colour'",
    ),
    "mistyped-key": (
        yaml.safe_dump({"target": {"org": ORG}, "year": YEAR, "github": {"concurency": 4}}),
        "unknown setting 'github.concurency'",
    ),
    "wrong-type": (yaml.safe_dump({"target": {"org": ORG}, "year": "soon"}), "setting 'year'"),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_bad_config_is_one_line_exit_2(case: str, tmp_path: Path) -> None:
    text, needle = CONFIG_CASES[case]
    config = tmp_path / "config.yaml"
    config.write_text(text)
    for command in ("collect", "validate", "status", "export"):
        assert_one_line_error(run(command, "-c", str(config)), 2, needle, str(config))
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("token", "needle"), [(None, "is not set"), ("  ", "is empty")])
def test_missing_or_empty_token_is_exit_2_before_anything_is_written(
    token: str | None, needle: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")  # never contacted
    result = run("collect", "-c", str(config), token=token)
    assert_one_line_error(result, 2, TOKEN_ENV, needle)
    assert not (tmp_path / "data").exists()


def test_output_root_under_a_regular_file_is_exit_2(tmp_path: Path, sim: Simulator) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be\n")
    config = write_config(tmp_path, sim.url, output={"root": str(blocker / "data")})
    before = sim.stats()["requests"]
    assert_one_line_error(run("collect", "-c", str(config)), 2, "output", str(blocker))
    assert blocker.read_text() == "a file where a folder should be\n"
    assert sim.stats()["requests"] == before


# --- the server says no ------------------------------------------------------------------------


def test_401_is_exit_2_before_any_data(tmp_path: Path) -> None:
    with Simulator(SimulatorConfig(seed=7, repos=8, org=ORG, token="the-right-one")) as strict:
        config = write_config(tmp_path, strict.url)
        result = run("collect", "-c", str(config))
        assert_one_line_error(result, 2, "bad credentials", TOKEN_ENV)
        assert strict.stats()["requests"] == 1  # stopped at once, no retries
    assert not list(dataset(tmp_path).raw_dir.glob("endpoint=*/*.jsonl"))


def test_401_on_a_finished_dataset_overwrites_nothing(
    finished: Path, tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = copy_of(finished, tmp_path, sim)
    before = {k: v for k, v in data_files(tmp_path / "data").items() if "checkpoint" not in k}

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"message": "Bad credentials"}, request=request)

    monkeypatch.setattr(
        "gh_collect.harvest.run.GitHubClient.__init__", _with_transport(httpx.MockTransport(refuse))
    )
    result = run("collect", "-c", str(config))
    assert_one_line_error(result, 2, "bad credentials", TOKEN_ENV)
    after = {k: v for k, v in data_files(tmp_path / "data").items() if "checkpoint" not in k}
    assert after == before
    read_checkpoint(dataset(tmp_path).checkpoint)  # still loads


def _with_transport(transport: httpx.AsyncBaseTransport) -> Callable[..., None]:
    """GitHubClient.__init__ with ``transport`` forced: the CLI has no transport option."""
    from gh_collect.github.client import GitHubClient

    real = GitHubClient.__init__

    def init(self: GitHubClient, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **{**kwargs, "transport": transport})

    return init


def test_unknown_org_is_exit_2(tmp_path: Path, sim: Simulator) -> None:
    config = write_config(tmp_path, sim.url, target={"org": "no-such-org-anywhere"})
    result = run("collect", "-c", str(config), "--quiet")
    assert_one_line_error(result, 2, "no organization or user named 'no-such-org-anywhere'")
    paths = DatasetPaths(tmp_path / "data", YEAR, "no-such-org-anywhere")
    assert not paths.repos_file.exists() and not list(paths.raw_dir.glob("endpoint=*"))


# --- checkpoints that must not be trusted ------------------------------------------------------


def _truncate(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def _future(raw: bytes) -> bytes:
    return json.dumps({**json.loads(raw), "format_version": 99}).encode()


CHECKPOINT_CASES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (_truncate, "not valid JSON"),
    "not-json": (lambda _raw: b"\x00\xffgarbage", "corrupt"),
    "future-version": (_future, "format version 99"),
}


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_unusable_checkpoint_is_exit_2_and_left_byte_for_byte(
    case: str, finished: Path, tmp_path: Path, sim: Simulator
) -> None:
    config = copy_of(finished, tmp_path, sim)
    paths = dataset(tmp_path)
    damage, needle = CHECKPOINT_CASES[case]
    paths.checkpoint.write_bytes(damage(paths.checkpoint.read_bytes()))
    before, requests = data_files(tmp_path / "data"), sim.stats()["requests"]
    for command in ("collect", "status"):
        result = run(command, "-c", str(config))
        assert_one_line_error(result, 2, needle, str(paths.checkpoint), "--force")
    assert data_files(tmp_path / "data") == before
    assert sim.stats()["requests"] == requests


def test_checkpoint_of_another_config_is_exit_2_naming_the_change(
    finished: Path, tmp_path: Path, sim: Simulator
) -> None:
    copy_of(finished, tmp_path, sim)
    changed = write_config(tmp_path, sim.url, target={"exclude": ["fork-*"]})
    before = data_files(tmp_path / "data")
    result = run("collect", "-c", str(changed))
    assert_one_line_error(result, 2, "changed: target.exclude", "--force")
    assert data_files(tmp_path / "data") == before


def test_unknown_from_repo_is_exit_2_with_close_matches(tmp_path: Path, sim: Simulator) -> None:
    config = write_config(tmp_path, sim.url)
    assert run("collect", "-c", str(config), "--only", "pulls", "--quiet").exit_code == 1
    paths = dataset(tmp_path)
    before, saved = data_files(tmp_path / "data"), progress(paths.checkpoint)
    before = {k: v for k, v in before.items() if "checkpoint" not in k}
    result = run("collect", "-c", str(config), "--from-repo", f"{ORG}/{HUNDRED[:-1]}")
    assert_one_line_error(result, 2, "--from-repo", f"did you mean {ORG}/{HUNDRED}")
    after = {k: v for k, v in data_files(tmp_path / "data").items() if "checkpoint" not in k}
    assert after == before
    assert progress(paths.checkpoint) == saved


# --- a full disk -------------------------------------------------------------------------------


class _FullDisk:
    """A file whose writes put half their bytes down and then fail with ENOSPC."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def write(self, data: bytes) -> int:
        self._file.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def test_disk_full_while_appending_stops_cleanly_and_resumes_exactly(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, sim.url, checkpoint={"every_pages": 2})
    real_write, calls = JsonlSink._write, {"n": 0}

    def write(self: JsonlSink, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] < 6:
            return real_write(self, data)
        file, self._file = self._file, _FullDisk(self._file)
        try:
            return real_write(self, data)
        finally:
            self._file = file

    monkeypatch.setattr(JsonlSink, "_write", write)
    result = run("collect", "-c", str(config), "--quiet")
    assert_one_line_error(result, 1, "No space left on device", "free some space")
    monkeypatch.undo()  # space freed
    paths = dataset(tmp_path)
    state = read_checkpoint(paths.checkpoint)
    assert state.last_save_reason == "stopped: StorageError"
    for repo in state.repos.values():  # the half-written line was cut back off
        for endpoint, unit in repo.units.items():
            file = paths.endpoint_file(endpoint, repo.name)
            assert (file.stat().st_size if file.exists() else 0) == unit.byte_offset
    assert run("collect", "-c", str(config), "--quiet").exit_code == 1
    assert_exactly_truth(paths, sim)


def test_disk_full_while_saving_the_checkpoint_keeps_the_previous_one(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gh_collect.durable import atomic as checkpoint_module

    config = write_config(tmp_path, sim.url, checkpoint={"every_pages": 1})
    real, calls = checkpoint_module._write_temp, {"n": 0}

    def write_temp(fd: int, data: bytes) -> None:
        calls["n"] += b'"config_digest"' in data  # count checkpoint saves only
        if calls["n"] >= 4:  # this save and every later one: the disk stays full
            real(fd, data[:100])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(checkpoint_module, "_write_temp", write_temp)
    result = run("collect", "-c", str(config), "--quiet")
    assert_one_line_error(result, 1, "cannot save checkpoint", "free disk space")
    monkeypatch.undo()
    paths = dataset(tmp_path)
    assert read_checkpoint(paths.checkpoint).save_count == 3  # the last good one
    assert not list(paths.raw_dir.glob(".checkpoint.json.*.tmp"))
    assert run("collect", "-c", str(config), "--quiet").exit_code == 1
    assert_exactly_truth(paths, sim)


# --- a server answering nonsense ---------------------------------------------------------------


class Tamper(httpx.AsyncBaseTransport):
    """Forwards to the simulator, but answers ``respond(request)`` for paths with ``needle``."""

    def __init__(self, needle: str, respond: Callable[[httpx.Request], httpx.Response]):
        self.needle, self.respond = needle, respond
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.needle in request.url.path:
            return self.respond(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _html(request: httpx.Request) -> httpx.Response:
    page = b"<!DOCTYPE html><html><body><h1>Unicorn!</h1></body></html>"
    return httpx.Response(200, content=page, headers={"content-type": "text/html"})


def _empty(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"", headers={"content-type": "application/json"})


def _object(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"message": "a JSON object, not the list of pulls"})


ANSWERS = {
    "html": (_html, "not JSON"),
    "empty-body": (_empty, "not JSON"),
    "object-not-list": (_object, "not a list"),
}


@pytest.mark.parametrize("answer", ANSWERS)
def test_nonsense_answer_fails_that_repo_clearly_and_the_run_goes_on(
    answer: str, tmp_path: Path, sim: Simulator
) -> None:
    respond, needle = ANSWERS[answer]
    config = library_config(tmp_path, sim.url)
    result = collect(config, TOKEN, transport=Tamper(f"/{HUNDRED}/pulls", respond))
    assert result.exit_code == 1
    failures = {(f["repo"].split("/")[-1], f["endpoint"]): f for f in result.failures}
    failure = failures[(HUNDRED, "pulls")]
    assert needle in failure["error"] and "\n" not in failure["error"]
    assert failure["retryable"] is True  # GitHub hiccups: --retry-failed later
    assert_truth_except(tmp_path, sim, skipped=HUNDRED)
    retried = collect(config, TOKEN, RunOptions(retry_failed=True))
    assert {f["repo"].split("/")[-1] for f in retried.failures} == {SCENARIO_REPOS["vanished"]}
    assert_exactly_truth(dataset(tmp_path), sim)


class Relink(httpx.AsyncBaseTransport):
    """Forwards to the simulator; ``needle`` pages get a next Link to ``elsewhere``."""

    def __init__(self, needle: str, elsewhere: str) -> None:
        self.needle, self.elsewhere = needle, elsewhere
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.needle not in request.url.path:
            return response
        body = await response.aread()
        headers = {**response.headers, "link": f'<{self.elsewhere}>; rel="next"'}
        return httpx.Response(response.status_code, content=body, headers=headers)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_link_to_another_host_is_not_followed(tmp_path: Path, sim: Simulator) -> None:
    with Simulator(SimulatorConfig(seed=7, repos=8, org=ORG)) as elsewhere:
        target = f"{elsewhere.url}/repos/{ORG}/{HUNDRED}/pulls?page=2"
        config = library_config(tmp_path, sim.url)
        result = collect(config, TOKEN, transport=Relink(f"/{HUNDRED}/pulls", target))
        assert elsewhere.stats()["requests"] == 0  # never contacted, token or not
    assert result.exit_code == 1
    failure = next(f for f in result.failures if f["repo"].endswith(f"/{HUNDRED}"))
    assert "not followed" in failure["error"] and target in failure["error"]
    assert "\n" not in failure["error"]
    assert_truth_except(tmp_path, sim, skipped=HUNDRED)


@pytest.mark.parametrize("target", ["http://[::1/broken?page=2", "/repos/x/y/pulls?\x7f=2"])
def test_link_that_is_not_a_url_fails_that_repo_not_the_run(
    target: str, tmp_path: Path, sim: Simulator
) -> None:
    config = library_config(tmp_path, sim.url)
    result = collect(config, TOKEN, transport=Relink(f"/{HUNDRED}/pulls", target))
    assert result.exit_code == 1
    failure = next(f for f in result.failures if f["repo"].endswith(f"/{HUNDRED}"))
    assert "not a valid URL" in failure["error"]
    assert_truth_except(tmp_path, sim, skipped=HUNDRED)
