"""Where credentials come from: read once, at the edge, into objects that never show them.

``resolve_credentials`` turns ``github.auth`` (or 0.1.0's ``github.token_env``) into
``Credentials``: the tokens, and a GitHub App's private key, each wrapped in a ``Secret``
whose ``repr`` and ``str`` are stars, so no log line, exception or ``status`` output can
carry one by accident. Only the request loop's ``Authorization`` header ever reveals them.

Where a token comes from, in order:

1. ``github.auth``: ``token_env`` (one), ``tokens_env`` (a pool), ``app`` (an installation);
   any mix makes a pool;
2. else ``github.token_env`` (default ``GITHUB_TOKEN``);
3. when that is the default ``GITHUB_TOKEN`` and it is not set: ``GH_TOKEN``, then
   ``gh auth token --hostname HOST`` if the ``gh`` command is installed (what people who try
   gh-collect on a laptop already have). ``Credentials.origin`` says which, for the log.

A variable named explicitly and missing is an error naming it: a pool or a cron job should
not silently run with another identity than the one configured.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from gh_collect.config import AppSettings, Config, check_token
from gh_collect.errors import ConfigError

__all__ = [
    "DEFAULT_VARIABLE",
    "GH_VARIABLE",
    "AppSource",
    "Credentials",
    "Secret",
    "TokenSource",
    "gh_hostname",
    "resolve_credentials",
]

DEFAULT_VARIABLE = "GITHUB_TOKEN"  # 0.1.0's default, and what Actions and most tools set
GH_VARIABLE = "GH_TOKEN"  # the GitHub CLI's own variable
GH_TIMEOUT_S = 15.0  # `gh auth token` reads a file or the keyring: seconds at most
MAX_KEY_BYTES = 64 * 1024  # a PEM RSA key is ~1.7-3.3 KB; anything far bigger is not one

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class Secret:
    """A secret string that shows as ``***`` everywhere but ``reveal()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value, for the one place that must send it (a header, a signature)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


@dataclass(frozen=True)
class TokenSource:
    """A token: ``label`` names it in logs and messages (``$GH_TOKEN_A``, ``gh auth token``);
    ``variable`` is the environment variable it came from (None for ``gh``)."""

    label: str
    variable: str | None
    secret: Secret = field(repr=False)


@dataclass(frozen=True)
class AppSource:
    """A GitHub App: its JWT issuer (client ID or app ID), its private key, where the key
    came from (a path or ``$VARIABLE``, for messages), and the installation if configured."""

    issuer: str
    key: Secret = field(repr=False)
    key_from: str = ""
    installation_id: int | None = None

    @property
    def label(self) -> str:
        return f"GitHub App {self.issuer}"


Source = TokenSource | AppSource


@dataclass(frozen=True)
class Credentials:
    """Every credential a run may spend, in the pool's order, and how they were found."""

    sources: tuple[Source, ...]
    origin: str = "config"  # "config", or which fallback: "$GITHUB_TOKEN", "$GH_TOKEN", "gh"

    @classmethod
    def token(cls, token: str, variable: str = DEFAULT_VARIABLE) -> Credentials:
        """One token held by ``variable`` (checked like a configured one)."""
        secret = Secret(check_token(token, variable))
        return cls((TokenSource(f"${variable}", variable, secret),))

    def describe(self) -> str:
        """One line for the log: which sources, never a value."""
        names = ", ".join(source.label for source in self.sources)
        if self.origin == "gh":
            return (
                f"credentials: {names} (no credential configured and GH_TOKEN/GITHUB_TOKEN unset)"
            )
        return f"credentials: {names}"


def resolve_credentials(
    config: Config,
    environ: Mapping[str, str] | None = None,
    *,
    run: Runner | None = None,
) -> Credentials:
    """The credentials ``config`` names, read from ``environ`` (default ``os.environ``);
    ``run`` runs ``gh`` (a test's fake). Every failure is a ConfigError (exit 2) that names
    the variable, file or command to fix and shows no secret."""
    env = os.environ if environ is None else environ
    auth = config.github.auth
    if auth is None:
        github = config.github
        return _single_variable(github.token_env, github.api_url, env, run, "github.token_env")
    if auth.token_env is not None and not auth.tokens_env and auth.app is None:
        api_url = config.github.api_url
        return _single_variable(auth.token_env, api_url, env, run, "github.auth.token_env")
    sources: list[Source] = [
        _from_variable(name, env, "github.auth.tokens_env") for name in auth.variables
    ]
    if auth.app is not None:
        sources.append(_app(auth.app, env))
    return Credentials(tuple(sources))


def _single_variable(
    name: str, api_url: str, env: Mapping[str, str], run: Runner | None, setting: str
) -> Credentials:
    """One variable; the default one, unset, falls back to ``GH_TOKEN`` and then ``gh``."""
    if name in env or name != DEFAULT_VARIABLE:
        return Credentials((_from_variable(name, env, setting),))
    if GH_VARIABLE in env:
        source = _from_variable(GH_VARIABLE, env, "the fallback after GITHUB_TOKEN")
        return Credentials((source,), origin=f"${GH_VARIABLE}")
    host = gh_hostname(api_url)
    token = _gh_token(host, env, run)
    if token is None:
        raise ConfigError(
            f"no GitHub credential: environment variable {DEFAULT_VARIABLE} is not set, nor "
            f"{GH_VARIABLE}, and the gh command is not installed: export "
            f"{DEFAULT_VARIABLE}=<a GitHub token>, log in with `gh auth login`, or configure "
            "github.auth (see config/example.yaml)"
        )
    label = f"gh auth token --hostname {host}"
    return Credentials((TokenSource(label, None, Secret(token)),), origin="gh")


def _from_variable(name: str, env: Mapping[str, str], setting: str) -> TokenSource:
    token = env.get(name)
    if token is None:
        raise ConfigError(
            f"environment variable {name} is not set: export {name}=<a GitHub token> "
            f"({setting} names the variable)"
        )
    if not token.strip():
        raise ConfigError(f"environment variable {name} is empty: set it to a GitHub token")
    return TokenSource(f"${name}", name, Secret(check_token(token.strip(), name)))


def gh_hostname(api_url: str) -> str:
    """The host ``gh`` knows a GitHub by: ``github.com`` for ``api.github.com``,
    ``SUBDOMAIN.ghe.com`` for ``api.SUBDOMAIN.ghe.com``, else the API's host (GHES)."""
    host = (urlsplit(api_url).hostname or "").lower()
    if host == "api.github.com":
        return "github.com"
    if host.startswith("api.") and host.endswith(".ghe.com"):
        return host.removeprefix("api.")
    return host


def _gh_token(host: str, env: Mapping[str, str], run: Runner | None) -> str | None:
    """``gh auth token --hostname HOST``'s output; None when ``gh`` is not installed. Its
    output is a secret: no message quotes it, nor gh's stderr (which may echo config)."""
    gh = shutil.which("gh", path=env.get("PATH", os.defpath))
    if gh is None:
        return None
    command = [gh, "auth", "token", "--hostname", host]
    try:
        done = (run or _run)(command)
    except (OSError, subprocess.SubprocessError):
        done = None
    if done is None or done.returncode != 0:
        raise ConfigError(
            f"no GitHub credential: {DEFAULT_VARIABLE} and {GH_VARIABLE} are not set and "
            f"`gh auth token --hostname {host}` failed (not logged in?): run "
            f"`gh auth login --hostname {host}`, or export {DEFAULT_VARIABLE}=<a GitHub token>"
        )
    token = done.stdout.strip()
    if not token or "\n" in token:
        raise ConfigError(
            f"`gh auth token --hostname {host}` printed no single token: run "
            f"`gh auth login --hostname {host}`, or export {DEFAULT_VARIABLE}=<a GitHub token>"
        )
    try:
        return check_token(token, GH_VARIABLE)
    except ConfigError:
        raise ConfigError(
            f"`gh auth token --hostname {host}` printed characters a header cannot hold: "
            f"run `gh auth login --hostname {host}` again"
        ) from None


def _run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        timeout=GH_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _app(app: AppSettings, env: Mapping[str, str]) -> AppSource:
    """The app's private key, read now and checked to be an RSA key (messages name where it
    is, never what is in it)."""
    if app.private_key_path is not None:
        where = str(app.private_key_path)
        pem = _read_key_file(app.private_key_path)
    else:
        assert app.private_key_env is not None
        where = f"${app.private_key_env}"
        value = env.get(app.private_key_env)
        if not value or not value.strip():
            raise ConfigError(
                f"environment variable {app.private_key_env} is not set or empty: set it to "
                "the GitHub App's private key (the PEM text), or use private_key_path"
            )
        pem = value
    from gh_collect.github.app_auth import check_private_key  # cryptography: only for apps

    check_private_key(pem, where)
    return AppSource(app.issuer, Secret(pem), where, app.installation_id)


def _read_key_file(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"the GitHub App's private key {path} does not exist: set "
            "github.auth.app.private_key_path to the .pem file GitHub gave you"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the GitHub App's private key {path}: {exc.strerror}"
        ) from None
    if len(data) > MAX_KEY_BYTES:
        raise ConfigError(f"{path} is too large to be a private key: check private_key_path")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not a PEM private key (not text): use the .pem file GitHub gave you"
        ) from None
