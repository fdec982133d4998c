"""Where credentials come from (``github.auth``, the fallbacks, ``gh``) and the config shapes.

Why: a pool or a cron job must run as the identity configured, a laptop user with ``gh``
logged in should need nothing else, and every mistake is a one-line exit 2 that names the
variable, file or command to fix, and never shows a secret.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gh_collect.config import Config, load_config
from gh_collect.errors import ConfigError
from gh_collect.github.credentials import (
    AppSource,
    Credentials,
    Secret,
    TokenSource,
    gh_hostname,
    resolve_credentials,
)

from .conftest import ORG, YEAR

TOKEN_A, TOKEN_B = "ghp_tokenAAAAsecret", "ghp_tokenBBBBsecret"


def config(github: dict[str, Any] | None = None) -> Config:
    return Config.model_validate({"target": {"org": ORG}, "year": YEAR, "github": github or {}})


def private_key_pem(key: Any = None) -> str:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def fake_gh(folder: Path, script: str) -> dict[str, str]:
    """A ``gh`` on a PATH of its own: what it does is ``script`` (sh)."""
    folder.mkdir(parents=True, exist_ok=True)
    gh = folder / "gh"
    gh.write_text(f"#!/bin/sh\n{script}\n")
    gh.chmod(gh.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{folder}{os.pathsep}/usr/bin:/bin"}


def test_a_secret_shows_as_stars_everywhere_but_reveal() -> None:
    secret = Secret(TOKEN_A)
    source = TokenSource("$A", "A", secret)
    shown = f"{secret} {secret!r} {source!r} {Credentials((source,))!r}"
    assert TOKEN_A not in shown and "***" in shown
    assert secret.reveal() == TOKEN_A


def test_token_env_stays_valid_and_reads_its_variable() -> None:
    credentials = resolve_credentials(config({"token_env": "MY_TOKEN"}), {"MY_TOKEN": " t \n"})
    (source,) = credentials.sources
    assert isinstance(source, TokenSource)
    assert (source.label, source.variable, source.secret.reveal()) == ("$MY_TOKEN", "MY_TOKEN", "t")
    assert credentials.describe() == "credentials: $MY_TOKEN"


def test_a_named_variable_that_is_unset_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    """Configured explicitly: no silent switch to another identity (not even gh's)."""
    env = {"GH_TOKEN": TOKEN_B, **fake_gh(tmp_path, f"echo {TOKEN_A}")}
    with pytest.raises(ConfigError, match="environment variable MY_TOKEN is not set") as info:
        resolve_credentials(config({"token_env": "MY_TOKEN"}), env)
    assert info.value.exit_code == 2


def test_the_default_variable_falls_back_to_gh_token_then_gh(tmp_path: Path) -> None:
    both = resolve_credentials(config(), {"GITHUB_TOKEN": TOKEN_A, "GH_TOKEN": TOKEN_B})
    assert both.sources[0].secret.reveal() == TOKEN_A  # type: ignore[union-attr]
    gh_token = resolve_credentials(config(), {"GH_TOKEN": TOKEN_B})
    assert gh_token.origin == "$GH_TOKEN"
    assert gh_token.sources[0].secret.reveal() == TOKEN_B  # type: ignore[union-attr]


def test_gh_auth_token_is_the_last_source(tmp_path: Path) -> None:
    """No credential configured, none in GH_TOKEN/GITHUB_TOKEN: ``gh auth token --hostname``
    of the API's host, from a fake ``gh`` on PATH; the log line names gh, not the token."""
    calls = tmp_path / "calls"
    env = fake_gh(tmp_path / "bin", f'echo "$@" >> {calls}; echo {TOKEN_A}')
    api = {"api_url": "https://api.github.com"}
    credentials = resolve_credentials(config(api), env)
    (source,) = credentials.sources
    assert isinstance(source, TokenSource) and source.secret.reveal() == TOKEN_A
    assert calls.read_text() == "auth token --hostname github.com\n"
    assert credentials.origin == "gh" and "gh auth token --hostname github.com" in (
        credentials.describe()
    )
    assert TOKEN_A not in credentials.describe()


def test_gh_not_logged_in_says_what_to_run_and_shows_nothing_it_printed(tmp_path: Path) -> None:
    env = fake_gh(tmp_path, f"echo {TOKEN_A} >&2; echo leaked-{TOKEN_B}; exit 1")
    with pytest.raises(ConfigError) as info:
        resolve_credentials(config(), env)
    message = str(info.value)
    assert "gh auth login --hostname github.com" in message
    assert TOKEN_A not in message and TOKEN_B not in message and "\n" not in message


def test_no_source_at_all_lists_every_way_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_credentials(config(), {"PATH": str(tmp_path)})  # no gh there
    message = str(info.value)
    for hint in ("GITHUB_TOKEN", "GH_TOKEN", "gh auth login", "github.auth"):
        assert hint in message


def test_a_gh_that_hangs_or_cannot_run_is_an_error(tmp_path: Path) -> None:
    env = fake_gh(tmp_path, "sleep 60")

    def timeout(command: Any) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(command, 15)

    with pytest.raises(ConfigError, match="failed"):
        resolve_credentials(config(), env, run=timeout)


@pytest.mark.parametrize(
    ("api_url", "host"),
    [
        ("https://api.github.com", "github.com"),
        ("https://api.octo.ghe.com", "octo.ghe.com"),
        ("https://ghe.example.com/api/v3", "ghe.example.com"),
        ("http://127.0.0.1:8000", "127.0.0.1"),
    ],
)
def test_gh_hostname(api_url: str, host: str) -> None:
    assert gh_hostname(api_url) == host


def test_a_pool_of_tokens_and_an_app(tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    key.write_text(private_key_pem())
    auth = {
        "tokens_env": ["A", "B"],
        "app": {"client_id": "Iv23liX", "private_key_path": str(key), "installation_id": 42},
    }
    credentials = resolve_credentials(config({"auth": auth}), {"A": TOKEN_A, "B": TOKEN_B})
    labels = [source.label for source in credentials.sources]
    assert labels == ["$A", "$B", "GitHub App Iv23liX"]
    app = credentials.sources[2]
    assert isinstance(app, AppSource) and app.installation_id == 42 and app.key_from == str(key)


def test_the_app_key_may_come_from_a_variable() -> None:
    auth = {"app": {"app_id": 123, "private_key_env": "APP_KEY"}}
    credentials = resolve_credentials(config({"auth": auth}), {"APP_KEY": private_key_pem()})
    (app,) = credentials.sources
    assert isinstance(app, AppSource) and app.issuer == "123" and app.key_from == "$APP_KEY"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "does not exist"),
        ("not a key at all", "is not a PEM RSA private key"),
        ("EC", "is not a PEM RSA private key"),
        (b"\xff\xfe binary", "not text"),
    ],
)
def test_a_bad_app_key_is_one_line_naming_the_file_never_its_content(
    content: str | bytes | None, needle: str, tmp_path: Path
) -> None:
    key = tmp_path / "app.pem"
    if content == "EC":
        content = private_key_pem(ec.generate_private_key(ec.SECP256R1()))
    if isinstance(content, str):
        key.write_text(content)
    elif isinstance(content, bytes):
        key.write_bytes(content)
    auth = {"app": {"client_id": "Iv23liX", "private_key_path": str(key)}}
    with pytest.raises(ConfigError) as info:
        resolve_credentials(config({"auth": auth}), {})
    message = str(info.value)
    assert needle in message and str(key) in message and "\n" not in message
    assert "PRIVATE KEY-----" not in message and "not a key at all" not in message


@pytest.mark.parametrize(
    ("github", "needle"),
    [
        ({"token_env": "A", "auth": {"token_env": "B"}}, "either github.token_env or github.auth"),
        ({"auth": {}}, "name at least one credential"),
        ({"auth": {"tokens_env": ["A", "A"]}}, "named once"),
        ({"auth": {"app": {"private_key_env": "K"}}}, "exactly one of client_id and app_id"),
        ({"auth": {"app": {"client_id": "x"}}}, "private_key_path and private_key_env"),
        ({"auth": {"app": {"client_id": "x", "private_key_env": "K", "x": 1}}}, "unknown"),
    ],
)
def test_bad_auth_shapes_are_config_errors(
    github: dict[str, Any], needle: str, tmp_path: Path
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"target": {"org": ORG}, "year": YEAR, "github": github}))
    with pytest.raises(ConfigError, match=needle):
        load_config(path, environ={})


def test_credential_variables_are_never_read_as_overrides(tmp_path: Path) -> None:
    """A key or token variable named like an override is the secret, not a setting."""
    path = tmp_path / "c.yaml"
    path.write_text(
        f"target: {{org: {ORG}}}\nyear: {YEAR}\ngithub:\n  auth:\n"
        "    tokens_env: [GH_COLLECT_POOL__A]\n"
        "    app: {app_id: 1, private_key_env: GH_COLLECT_APP__KEY}\n"
    )
    environ = {"GH_COLLECT_POOL__A": "t", "GH_COLLECT_APP__KEY": "-----BEGIN..."}
    loaded = load_config(path, environ=environ)
    assert loaded.github.auth is not None and loaded.github.auth.tokens_env == [
        "GH_COLLECT_POOL__A"
    ]


def test_target_orgs_shapes_and_digests() -> None:
    """Each org's digest is the one a config naming it alone has: adding an org to
    ``target.orgs`` never invalidates another's checkpoint."""
    several = Config.model_validate({"target": {"orgs": ["a", "b"]}, "year": YEAR})
    alone = Config.model_validate({"target": {"org": "b"}, "year": YEAR})
    assert several.orgs == ["a", "b"] and alone.orgs == ["b"]
    assert several.for_org("b").digest == alone.digest
    assert several.for_org("a").digest != alone.digest
    for target, needle in [
        ({"org": "a", "orgs": ["b"]}, "not both"),
        ({"orgs": []}, "at least one"),
        ({"orgs": ["a", "A"]}, "twice"),
        ({}, "target.org"),
    ]:
        with pytest.raises(ValueError, match=needle):
            Config.model_validate({"target": target, "year": YEAR})
