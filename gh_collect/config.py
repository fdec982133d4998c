"""Configuration: read once at the edge into pydantic models, then passed down.

The digest covers only what changes WHAT is collected (target, year, endpoints, api_url), so
tuning concurrency, cadence or output never invalidates a checkpoint.

What the edge refuses, so nothing deeper has to: a key given twice in one YAML mapping (YAML
says keys are unique; silently keeping the last hides a mistake), and a token an HTTP header
cannot carry (``$(cat file)`` of a two-line file), named by its variable, never shown.
Environment overrides are exactly ``GH_COLLECT_<SECTION>__<KEY>`` and ``GH_COLLECT_<SETTING>``
for a top-level setting; a variable the config names as holding a secret (``github.token_env``,
``github.auth``'s ``token_env``, ``tokens_env`` and ``app.private_key_env``) is never one.

Credentials (``github.auth``) are named here, never held: which variables or key file hold
them. ``gh_collect.github.credentials`` reads them, once, at the edge.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gh_collect import endpoints
from gh_collect.endpoints import Endpoint
from gh_collect.errors import ConfigError

ENV_PREFIX = "GH_COLLECT_"
DEADLINE_TIMEOUTS = 4  # default total deadline of one request, in read timeouts (timeout_s)
_MERGE_TAG = "tag:yaml.org,2002:merge"
# What h11/httpx can send in a header value: visible ASCII, spaces and tabs, nothing else.
_HEADER_SAFE = re.compile(r"[\x20-\x7e\t]*")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetSettings(_Strict):
    """``org``, or ``orgs`` for several (each its own dataset, lock, checkpoint, digest)."""

    org: str = ""
    orgs: list[str] | None = None
    repos: list[str] = []
    exclude: list[str] = []
    include_forks: bool = False
    include_archived: bool = True

    @model_validator(mode="after")
    def _one_org_setting(self) -> TargetSettings:
        if self.orgs is None:
            if not self.org:
                raise ValueError("missing setting 'target.org' (or 'target.orgs' for several)")
            return self
        if self.org:
            raise ValueError("set either target.org or target.orgs, not both")
        if not self.orgs or not all(self.orgs):
            raise ValueError("target.orgs must list at least one organization name")
        lowered = [name.lower() for name in self.orgs]
        if len(set(lowered)) != len(lowered):
            raise ValueError("target.orgs names an organization twice")
        return self

    @property
    def names(self) -> list[str]:
        """Every organization (or user) the config harvests, in order."""
        return list(self.orgs) if self.orgs is not None else [self.org]


class AppSettings(_Strict):
    """A GitHub App installation: who the app is, where its private key is, which installation.

    The key is read from a file (``private_key_path``) or a variable (``private_key_env``,
    the PEM text); ``installation_id: null`` finds it with ``GET /orgs/{org}/installation``.
    """

    client_id: str | None = Field(default=None, min_length=1)
    app_id: int | None = Field(default=None, ge=1)
    private_key_path: Path | None = None
    private_key_env: str | None = Field(default=None, min_length=1)
    installation_id: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_of_each(self) -> AppSettings:
        if (self.client_id is None) == (self.app_id is None):
            raise ValueError("set exactly one of client_id and app_id")
        if (self.private_key_path is None) == (self.private_key_env is None):
            raise ValueError("set exactly one of private_key_path and private_key_env")
        return self

    @property
    def issuer(self) -> str:
        """The JWT's ``iss``: the client ID, or the app ID (GitHub accepts either)."""
        return self.client_id if self.client_id is not None else str(self.app_id)


class AuthSettings(_Strict):
    """Where the credentials are: one token, a pool of tokens, an app, or any mix (a pool)."""

    token_env: str | None = Field(default=None, min_length=1)
    tokens_env: list[str] = []
    app: AppSettings | None = None

    @model_validator(mode="after")
    def _something(self) -> AuthSettings:
        if self.token_env is None and not self.tokens_env and self.app is None:
            raise ValueError("name at least one credential: token_env, tokens_env or app")
        names = self.variables
        if len(set(names)) != len(names) or not all(names):
            raise ValueError("each credential variable may be named once")
        return self

    @property
    def variables(self) -> list[str]:
        """The token variables, in the pool's order."""
        return [*([self.token_env] if self.token_env else []), *self.tokens_env]


class GitHubSettings(_Strict):
    api_url: str = "https://api.github.com"
    token_env: str = Field(default="GITHUB_TOKEN", min_length=1)  # 0.1.0's one token
    auth: AuthSettings | None = None  # replaces token_env: tokens, a pool, an app
    concurrency: int = Field(default=8, ge=1, le=100)
    timeout_s: float = Field(default=30.0, gt=0)  # each connect/read/write
    # The whole request, redirects and body included (a drip of one byte a second never trips
    # timeout_s); None: DEADLINE_TIMEOUTS x timeout_s. Past it the attempt is retried.
    request_deadline_s: float | None = Field(default=None, gt=0)
    retries: int = Field(default=6, ge=1, le=20)  # attempts per request on 5xx/timeouts/resets
    retry_initial_s: float = Field(default=1.0, gt=0, le=60)  # first backoff; doubles, max 60 s
    # GitHub's documented secondary limits; lower them to be gentler, never raise them.
    max_requests_per_minute: int = Field(default=900, ge=1, le=900)
    max_busy_seconds_per_minute: float = Field(default=90.0, gt=0, le=90.0)
    # GitHub's GraphQL API (``reviews``, ``pull_stats``); false for a GHES without it.
    graphql: bool = True

    @model_validator(mode="after")
    def _one_credential_setting(self) -> GitHubSettings:
        if self.auth is not None and "token_env" in self.model_fields_set:
            raise ValueError(
                "set either github.token_env or github.auth, not both "
                "(github.auth.token_env names one token)"
            )
        return self

    @property
    def secret_variables(self) -> list[str]:
        """Every variable named as holding a secret (never read as a config override)."""
        if self.auth is None:
            return [self.token_env]
        app_key = self.auth.app.private_key_env if self.auth.app else None
        return [*self.auth.variables, *([app_key] if app_key else [])]

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://api.github.com")
        return value.rstrip("/")

    @property
    def api_host(self) -> str:
        return urlsplit(self.api_url).netloc

    @property
    def deadline_s(self) -> float:
        """The total deadline of one request (``request_deadline_s`` or its default)."""
        if self.request_deadline_s is not None:
            return self.request_deadline_s
        return DEADLINE_TIMEOUTS * self.timeout_s


class RateLimitSettings(_Strict):
    save_below: float = Field(default=0.20, ge=0, le=1)
    pause_below: int = Field(default=50, ge=0)
    # Share of the budget left at the start of a run that the run may spend (cron politeness).
    budget_fraction: float = Field(default=1.0, gt=0, le=1)


class CheckpointSettings(_Strict):
    every_pages: int = Field(default=10, ge=1)
    every_records: int = Field(default=100, ge=1)
    every_seconds: float = Field(default=60.0, gt=0)


class OutputSettings(_Strict):
    # A folder; with ``--queue`` also ``s3://bucket/prefix`` (``Path`` folds its ``//``:
    # ``fleet.store.store_uri`` restores it).
    root: Path = Path("data")


class FleetSettings(_Strict):
    """``--queue`` runs: how long a worker's lease on a unit lasts without renewal (a dead
    worker's units are taken over after it), and how often a unit may be taken without
    progress before it is parked as failed."""

    lease_s: float = Field(default=30.0, gt=0, le=3600)
    max_stalls: int = Field(default=5, ge=1, le=1000)


class Config(_Strict):
    target: TargetSettings
    year: int = Field(ge=2008, le=2100)
    github: GitHubSettings = GitHubSettings()
    endpoints: list[str] = ["pulls", "issues"]
    rate_limit: RateLimitSettings = RateLimitSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    output: OutputSettings = OutputSettings()
    fleet: FleetSettings = FleetSettings()

    @field_validator("endpoints")
    @classmethod
    def _declared_endpoints(cls, value: list[str]) -> list[str]:
        """Names from the declarations (``gh_collect.endpoints``), each once."""
        known = endpoints.names()
        if not value:
            raise ValueError(f"list at least one endpoint: {', '.join(known)}")
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown endpoint {unknown[0]!r}: choose from {', '.join(known)}")
        if len(set(value)) != len(value):
            raise ValueError("each endpoint may appear once")
        return value

    @model_validator(mode="after")
    def _graphql_available(self) -> Config:
        """Without ``github.graphql``, an endpoint read only through GraphQL is refused; one
        with a REST fallback (``reviews``, per pull request) needs ``pulls`` before it."""
        if self.github.graphql:
            return self
        declared = [endpoints.get(n) for n in self.endpoints]
        needing = [e.name for e in declared if e.via(graphql=False).transport == "graphql"]
        if needing:
            raise ValueError(
                f"endpoints {', '.join(needing)} are read only through GitHub's GraphQL API, "
                "which github.graphql: false turns off; set it to true or drop them"
            )
        for endpoint in declared:
            parent = endpoint.via(graphql=False).parent
            listed = list(self.endpoints)
            if parent is not None and parent not in listed[: listed.index(endpoint.name)]:
                raise ValueError(
                    f"with github.graphql: false, {endpoint.name} are read per item of "
                    f"{parent}: list {parent} before {endpoint.name} in endpoints"
                )
        return self

    def endpoint(self, name: str) -> Endpoint:
        """The declaration this config reads ``name`` through (REST fallback without GraphQL)."""
        return endpoints.get(name).via(graphql=self.github.graphql)

    @property
    def orgs(self) -> list[str]:
        """The organizations (or users) harvested: ``target.orgs``, or ``[target.org]``."""
        return self.target.names

    def for_org(self, org: str) -> Config:
        """This config as the one-org config of ``org``: its dataset, digest and run are
        those of a config naming only ``target.org: org`` (so listing an org in
        ``target.orgs`` never invalidates a checkpoint it made alone, and back)."""
        target = self.target.model_copy(update={"org": org, "orgs": None})
        return self.model_copy(update={"target": target})

    @property
    def window_start(self) -> datetime:
        return datetime(self.year, 1, 1, tzinfo=UTC)

    @property
    def window_end(self) -> datetime:
        return datetime(self.year + 1, 1, 1, tzinfo=UTC)

    def digest_inputs(self) -> dict[str, Any]:
        """The settings that decide WHAT is collected: the ones a checkpoint is bound to."""
        return {
            "target": self.target.model_dump(mode="json", exclude={"orgs"}),
            "year": self.year,
            "endpoints": list(self.endpoints),
            "api_url": self.github.api_url,
            # a REST fallback walks other units than GraphQL: a switch is a new dataset
            **({"graphql": False} if self._falls_back() else {}),
        }

    def _falls_back(self) -> bool:
        return any(self.endpoint(n) is not endpoints.get(n) for n in self.endpoints)

    @property
    def digest(self) -> str:
        return config_digest(self.digest_inputs())


def config_digest(inputs: Mapping[str, Any]) -> str:
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Names of the digest settings that differ, e.g. ``['year', 'target.exclude']``."""
    changed: list[str] = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            changed += [f"{key}.{sub}" for sub in describe_changes(before, after)]
        elif before != after:
            changed.append(key)
    return changed


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, and validate; every failure is a ConfigError."""
    raw = _read_yaml(path)
    _apply_env_overrides(raw, os.environ if environ is None else environ)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_problem(exc)}") from None


def resolve_token(config: Config, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    name = config.github.token_env
    token = env.get(name)
    if token is None:
        raise ConfigError(
            f"environment variable {name} is not set: export {name}=<a GitHub token> "
            "(github.token_env names the variable)"
        )
    if not token.strip():
        raise ConfigError(f"environment variable {name} is empty: set it to a GitHub token")
    return check_token(token.strip(), name)


def check_token(token: str, name: str) -> str:
    """``token`` if an HTTP header can carry it; else a ConfigError that never shows it.

    httpx would refuse it later with ``Illegal header value b'Bearer <the token>'``.
    """
    if _HEADER_SAFE.fullmatch(token):
        return token
    raise ConfigError(
        f"the token in ${name} contains characters a header cannot hold "
        f"({_unsafe_kind(token)}): export only the token itself, e.g. "
        f"{name}=$(head -n 1 FILE), then run again"
    )


def _unsafe_kind(token: str) -> str:
    """What is wrong with a token, in words that reveal none of it."""
    if "\n" in token or "\r" in token:
        return "a newline?"
    if any(ord(char) > 0x7E for char in token if ord(char) != 0x7F):
        return "a non-ASCII character"
    return "a control character"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found: pass -c with an existing file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except DuplicateKeyError as exc:
        raise ConfigError(
            f"{path}: duplicate key '{exc.key}' at line {exc.line} (first at line "
            f"{exc.first_line}): remove one"
        ) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ConfigError(f"{path}: invalid YAML{at}: fix the syntax and retry") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings (target:, year:, ...)")
    return data


class DuplicateKeyError(yaml.YAMLError):
    """A key given twice in one mapping: ``key`` at ``line``, first given at ``first_line``."""

    def __init__(self, key: object, line: int, first_line: int) -> None:
        super().__init__(f"duplicate key {key!r} at line {line}")
        self.key, self.line, self.first_line = key, line, first_line


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key twice in one mapping instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _value in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue  # merge keys (<<) may be overridden; complex keys fail in super()
            key, line = self.construct_object(key_node), key_node.start_mark.line + 1
            if key in first:
                raise DuplicateKeyError(key, line, first[key])
            first[key] = line
        return super().construct_mapping(node, deep=deep)


def _apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """``GH_COLLECT_GITHUB__API_URL=...`` sets ``github.api_url``; values are YAML scalars."""
    secrets = _secret_variables(raw, environ)
    for name, value in sorted(environ.items()):
        if not _is_override(name, secrets):
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if not keys or keys[0] not in Config.model_fields:
            raise ConfigError(
                f"environment variable {name} names no setting: use GH_COLLECT_<SECTION>__<KEY>"
            )
        node = raw
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment variable {name}: {key} is not a section")
            node = child
        try:
            node[keys[-1]] = yaml.safe_load(value) if value else value
        except yaml.YAMLError:
            node[keys[-1]] = value


def _is_override(name: str, secrets: frozenset[str]) -> bool:
    """Ours: ``GH_COLLECT_<SECTION>__<KEY>`` or ``GH_COLLECT_<SETTING>`` (e.g. ``_YEAR``).

    Any other ``GH_COLLECT_*`` name (a token variable such as ``GH_COLLECT_DEMO_TOKEN``) is
    someone else's, and so is a variable named as holding a secret, even in the override form.
    """
    if not name.startswith(ENV_PREFIX) or name in secrets:
        return False
    rest = name[len(ENV_PREFIX) :]
    return "__" in rest or rest.lower() in Config.model_fields


def _secret_variables(raw: Mapping[str, Any], environ: Mapping[str, str]) -> frozenset[str]:
    """The variables named as holding secrets once overrides apply (an override of
    ``github.token_env`` wins): ``github.token_env``, and ``github.auth``'s token variables
    and key variable. Read leniently: validation comes after, and reports what is wrong."""
    github = raw.get("github")
    github = github if isinstance(github, dict) else {}
    override = environ.get(f"{ENV_PREFIX}GITHUB__TOKEN_ENV")
    named = override or github.get("token_env")
    names: list[object] = [named if isinstance(named, str) else GitHubSettings().token_env]
    names.append(environ.get(f"{ENV_PREFIX}GITHUB__AUTH__TOKEN_ENV"))
    auth = github.get("auth")
    if isinstance(auth, dict):
        tokens = auth.get("tokens_env")
        app = auth.get("app")
        names += [auth.get("token_env"), *(tokens if isinstance(tokens, list) else [])]
        names.append(app.get("private_key_env") if isinstance(app, dict) else None)
    return frozenset(name for name in names if isinstance(name, str))


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "config"
    if error["type"] == "extra_forbidden":
        return f"unknown setting '{where}': remove it or check its spelling"
    if error["type"] == "missing":
        return f"missing setting '{where}': add it (see config/example.yaml)"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"setting '{where}': {message}"
