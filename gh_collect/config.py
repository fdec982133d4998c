"""Configuration: read once at the edge into pydantic models, then passed down.

The digest covers only what changes WHAT is collected (target, year, endpoints, api_url), so
tuning concurrency, cadence or output never invalidates a checkpoint.

What the edge refuses, so nothing deeper has to: a key given twice in one YAML mapping (YAML
says keys are unique; silently keeping the last hides a mistake), and a token an HTTP header
cannot carry (``$(cat file)`` of a two-line file), named by its variable, never shown.
Environment overrides are exactly ``GH_COLLECT_<SECTION>__<KEY>`` and ``GH_COLLECT_<SETTING>``
for a top-level setting; the variable ``github.token_env`` names is never one, whatever its name.
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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gh_collect import endpoints
from gh_collect.errors import ConfigError

ENV_PREFIX = "GH_COLLECT_"
DEADLINE_TIMEOUTS = 4  # default total deadline of one request, in read timeouts (timeout_s)
_MERGE_TAG = "tag:yaml.org,2002:merge"
# What h11/httpx can send in a header value: visible ASCII, spaces and tabs, nothing else.
_HEADER_SAFE = re.compile(r"[\x20-\x7e\t]*")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetSettings(_Strict):
    org: str = Field(min_length=1)
    repos: list[str] = []
    exclude: list[str] = []
    include_forks: bool = False
    include_archived: bool = True


class GitHubSettings(_Strict):
    api_url: str = "https://api.github.com"
    token_env: str = Field(default="GITHUB_TOKEN", min_length=1)
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
    root: Path = Path("data")


class Config(_Strict):
    target: TargetSettings
    year: int = Field(ge=2008, le=2100)
    github: GitHubSettings = GitHubSettings()
    endpoints: list[str] = ["pulls", "issues"]
    rate_limit: RateLimitSettings = RateLimitSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    output: OutputSettings = OutputSettings()

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
        """Endpoints read only through GraphQL need ``github.graphql``."""
        if not self.github.graphql:
            needing = [n for n in self.endpoints if endpoints.get(n).transport == "graphql"]
            if needing:
                raise ValueError(
                    f"endpoints {', '.join(needing)} are read through GitHub's GraphQL API, "
                    "which github.graphql: false turns off; set it to true or drop them"
                )
        return self

    @property
    def window_start(self) -> datetime:
        return datetime(self.year, 1, 1, tzinfo=UTC)

    @property
    def window_end(self) -> datetime:
        return datetime(self.year + 1, 1, 1, tzinfo=UTC)

    def digest_inputs(self) -> dict[str, Any]:
        """The settings that decide WHAT is collected: the ones a checkpoint is bound to."""
        return {
            "target": self.target.model_dump(mode="json"),
            "year": self.year,
            "endpoints": list(self.endpoints),
            "api_url": self.github.api_url,
        }

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
    token_env = _token_env(raw, environ)
    for name, value in sorted(environ.items()):
        if not _is_override(name, token_env):
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


def _is_override(name: str, token_env: str) -> bool:
    """Ours: ``GH_COLLECT_<SECTION>__<KEY>`` or ``GH_COLLECT_<SETTING>`` (e.g. ``_YEAR``).

    Any other ``GH_COLLECT_*`` name (a token variable such as ``GH_COLLECT_DEMO_TOKEN``) is
    someone else's, and so is the token variable itself, even in the override form.
    """
    if not name.startswith(ENV_PREFIX) or name == token_env:
        return False
    rest = name[len(ENV_PREFIX) :]
    return "__" in rest or rest.lower() in Config.model_fields


def _token_env(raw: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """The name ``github.token_env`` will have once overrides apply (the override wins)."""
    override = environ.get(f"{ENV_PREFIX}GITHUB__TOKEN_ENV")
    if override:
        return override
    github = raw.get("github")
    named = github.get("token_env") if isinstance(github, dict) else None
    return named if isinstance(named, str) else GitHubSettings().token_env


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "config"
    if error["type"] == "extra_forbidden":
        return f"unknown setting '{where}': remove it or check its spelling"
    if error["type"] == "missing":
        return f"missing setting '{where}': add it (see config/example.yaml)"
    return f"setting '{where}': {error['msg']}"
