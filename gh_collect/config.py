"""Configuration: read once at the edge into pydantic models, then passed down.

The digest covers only what changes WHAT is collected (target, year, endpoints, api_url), so
tuning concurrency, cadence or output never invalidates a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gh_collect.errors import ConfigError

ENV_PREFIX = "GH_COLLECT_"
EndpointName = Literal["pulls", "issues"]


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
    timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=6, ge=1, le=20)  # attempts per request on 5xx/timeouts/resets
    retry_initial_s: float = Field(default=1.0, gt=0, le=60)  # first backoff; doubles, max 60 s
    # GitHub's documented secondary limits; lower them to be gentler, never raise them.
    max_requests_per_minute: int = Field(default=900, ge=1, le=900)
    max_busy_seconds_per_minute: float = Field(default=90.0, gt=0, le=90.0)

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
    endpoints: list[EndpointName] = ["pulls", "issues"]
    rate_limit: RateLimitSettings = RateLimitSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    output: OutputSettings = OutputSettings()

    @field_validator("endpoints")
    @classmethod
    def _unique_endpoints(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one endpoint: pulls, issues")
        if len(set(value)) != len(value):
            raise ValueError("each endpoint may appear once")
        return value

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
    return token.strip()


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found: pass -c with an existing file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ConfigError(f"{path}: invalid YAML{at}: fix the syntax and retry") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings (target:, year:, ...)")
    return data


def _apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """``GH_COLLECT_GITHUB__API_URL=...`` sets ``github.api_url``; values are YAML scalars."""
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
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


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "config"
    if error["type"] == "extra_forbidden":
        return f"unknown setting '{where}': remove it or check its spelling"
    if error["type"] == "missing":
        return f"missing setting '{where}': add it (see config/example.yaml)"
    return f"setting '{where}': {error['msg']}"
