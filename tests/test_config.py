from __future__ import annotations

from pathlib import Path

import pytest

from gh_collect.config import Config, describe_changes, load_config, resolve_token
from gh_collect.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "config" / "example.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_example_config_loads_with_documented_defaults() -> None:
    config = load_config(EXAMPLE, environ={})
    assert config.target.org == "sample-org"
    assert config.year == 2025
    assert config.endpoints == ["pulls", "issues"]
    assert config.github.api_url == "https://api.github.com"
    assert config.rate_limit.save_below == 0.20
    assert config.checkpoint.every_pages == 10


def test_unknown_key_names_the_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "target: {org: x}\nyear: 2025\ngithub: {concurrencyy: 3}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "github.concurrencyy" in str(info.value)
    assert str(path) in str(info.value)
    assert info.value.exit_code == 2


def test_yaml_syntax_error_gives_line(tmp_path: Path) -> None:
    path = write(tmp_path, "target:\n  org: [unclosed\nyear: 2025\n")
    with pytest.raises(ConfigError, match="invalid YAML at line"):
        load_config(path, environ={})


def test_wrong_type_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "target: {org: x}\nyear: twenty\n")
    with pytest.raises(ConfigError, match="'year'"):
        load_config(path, environ={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_env_overrides_nested_values_with_yaml_types(tmp_path: Path) -> None:
    environ = {
        "GH_COLLECT_GITHUB__API_URL": "http://127.0.0.1:9999/",
        "GH_COLLECT_GITHUB__CONCURRENCY": "3",
        "GH_COLLECT_TARGET__INCLUDE_FORKS": "true",
        "GH_COLLECT_ENDPOINTS": "[issues]",
    }
    config = load_config(EXAMPLE, environ=environ)
    assert config.github.api_url == "http://127.0.0.1:9999"
    assert config.github.concurrency == 3
    assert config.target.include_forks is True
    assert config.endpoints == ["issues"]


def test_env_override_of_unknown_section_is_an_error() -> None:
    with pytest.raises(ConfigError, match="GH_COLLECT_NOPE__X"):
        load_config(EXAMPLE, environ={"GH_COLLECT_NOPE__X": "1"})


def test_digest_ignores_tuning_but_not_what_is_collected() -> None:
    base = load_config(EXAMPLE, environ={})
    tuned = load_config(
        EXAMPLE,
        environ={
            "GH_COLLECT_GITHUB__CONCURRENCY": "2",
            "GH_COLLECT_OUTPUT__ROOT": "/elsewhere",
            "GH_COLLECT_CHECKPOINT__EVERY_PAGES": "1",
            "GH_COLLECT_GITHUB__AUTH__TOKEN_ENV": "OTHER",
        },
    )
    assert tuned.digest == base.digest
    other_year = load_config(EXAMPLE, environ={"GH_COLLECT_YEAR": "2024"})
    assert other_year.digest != base.digest
    assert describe_changes(base.digest_inputs(), other_year.digest_inputs()) == ["year"]


def test_describe_changes_names_nested_settings() -> None:
    old = {"target": {"org": "a", "exclude": []}, "year": 1}
    new = {"target": {"org": "a", "exclude": ["x*"]}, "year": 1}
    assert describe_changes(old, new) == ["target.exclude"]


def test_token_is_read_from_the_named_variable() -> None:
    config = load_config(EXAMPLE, environ={})
    assert resolve_token(config, {"GITHUB_TOKEN": " abc \n"}) == "abc"


def test_missing_token_variable_names_the_variable_not_a_value() -> None:
    config = load_config(EXAMPLE, environ={})
    with pytest.raises(ConfigError, match="GITHUB_TOKEN is not set") as info:
        resolve_token(config, {})
    assert info.value.exit_code == 2


def test_empty_token_is_an_error() -> None:
    config = load_config(EXAMPLE, environ={})
    with pytest.raises(ConfigError, match="is empty"):
        resolve_token(config, {"GITHUB_TOKEN": "  "})


def test_window_bounds() -> None:
    config = Config.model_validate({"target": {"org": "x"}, "year": 2025})
    assert config.window_start.isoformat() == "2025-01-01T00:00:00+00:00"
    assert config.window_end.isoformat() == "2026-01-01T00:00:00+00:00"


def test_api_url_must_be_http(tmp_path: Path) -> None:
    path = write(tmp_path, "target: {org: x}\nyear: 2025\ngithub: {api_url: ftp://x}\n")
    with pytest.raises(ConfigError, match=r"github\.api_url"):
        load_config(path, environ={})


# -- hostile input: tokens, duplicate keys, the env-override namespace ----------------------

SECRET = "ghp_SECRETline1value0123456789"


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (f"{SECRET}\nsecond-line-of-the-file", "a newline"),
        (f"{SECRET}\r\nmore", "a newline"),
        (f"{SECRET}\x00", "a control character"),
        (f"{SECRET}é", "a non-ASCII character"),
    ],
)
def test_token_a_header_cannot_hold_is_exit_2_and_never_shown(raw: str, what: str) -> None:
    config = load_config(EXAMPLE, environ={})
    with pytest.raises(ConfigError) as info:
        resolve_token(config, {"GITHUB_TOKEN": raw})
    message = str(info.value)
    assert info.value.exit_code == 2
    assert "the token in $GITHUB_TOKEN contains characters a header cannot hold" in message
    assert what in message and "\n" not in message
    assert SECRET not in message and SECRET[:8] not in message
    assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("target: {org: x}\nyear: 2025\nyear: 2024\n", "year", 3),
        ("target:\n  org: a\n  org: b\nyear: 2025\n", "org", 3),
        ("target: {org: x}\nyear: 2025\ngithub:\n  timeout_s: 5\n  timeout_s: 6\n", "timeout_s", 5),
    ],
)
def test_duplicate_key_is_an_error_naming_key_and_line(
    tmp_path: Path, text: str, key: str, line: int
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    message = str(info.value)
    assert f"duplicate key '{key}'" in message and f"line {line}" in message
    assert "remove one" in message and str(path) in message
    assert info.value.exit_code == 2


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "base: &b {org: x, include_forks: true}\n"
        "target:\n  <<: *b\n  include_forks: false\nyear: 2025\n",
    )
    with pytest.raises(ConfigError, match="unknown setting 'base'"):  # merged fine, then strict
        load_config(path, environ={})


def test_a_token_variable_with_the_prefix_is_not_an_override(tmp_path: Path) -> None:
    path = write(
        tmp_path, "target: {org: x}\nyear: 2025\ngithub: {token_env: GH_COLLECT_DEMO_TOKEN}\n"
    )
    environ = {"GH_COLLECT_DEMO_TOKEN": "abc", "GH_COLLECT_SOMETHING_ELSE": "1"}
    config = load_config(path, environ=environ)
    assert config.github.token_env == "GH_COLLECT_DEMO_TOKEN"
    assert resolve_token(config, environ) == "abc"


def test_a_token_variable_named_like_an_override_is_never_one(tmp_path: Path) -> None:
    """Even a token variable of the override form is the token, not a setting."""
    path = write(
        tmp_path, "target: {org: x}\nyear: 2025\ngithub: {token_env: GH_COLLECT_AUTH__TOKEN}\n"
    )
    config = load_config(path, environ={"GH_COLLECT_AUTH__TOKEN": "abc"})
    assert resolve_token(config, {"GH_COLLECT_AUTH__TOKEN": "abc"}) == "abc"
    moved = {"GH_COLLECT_GITHUB__TOKEN_ENV": "GH_COLLECT_MY__TOKEN", "GH_COLLECT_MY__TOKEN": "t"}
    assert load_config(path, environ=moved).github.token_env == "GH_COLLECT_MY__TOKEN"
    in_auth = {"GH_COLLECT_GITHUB__AUTH__TOKEN_ENV": "GH_COLLECT_MY__TOKEN", **moved}
    del in_auth["GH_COLLECT_GITHUB__TOKEN_ENV"]
    auth = load_config(EXAMPLE, environ=in_auth).github.auth
    assert auth is not None and auth.token_env == "GH_COLLECT_MY__TOKEN"


def test_top_level_overrides_still_work_and_typos_in_sections_still_fail() -> None:
    assert load_config(EXAMPLE, environ={"GH_COLLECT_YEAR": "2024"}).year == 2024
    with pytest.raises(ConfigError, match=r"github\.concurency"):
        load_config(EXAMPLE, environ={"GH_COLLECT_GITHUB__CONCURENCY": "2"})


def test_request_deadline_defaults_to_a_multiple_of_the_read_timeout() -> None:
    config = Config.model_validate(
        {"target": {"org": "x"}, "year": 2025, "github": {"timeout_s": 5}}
    )
    assert config.github.deadline_s == 20
    tuned = Config.model_validate(
        {"target": {"org": "x"}, "year": 2025, "github": {"request_deadline_s": 7}}
    )
    assert tuned.github.deadline_s == 7
    assert tuned.digest == Config.model_validate({"target": {"org": "x"}, "year": 2025}).digest


def test_the_demo_config_loads_with_its_token_variable_set(tmp_path: Path) -> None:
    """The demo prints `status -c demo.yaml`: it must run while the demo's variable is set."""
    from gh_collect.demo import DEMO_TOKEN, _write_config, demo_config

    path = tmp_path / "demo.yaml"
    _write_config(demo_config("http://127.0.0.1:9", tmp_path), path)
    name = load_config(path, environ={}).github.token_env
    assert not name.startswith("GH_COLLECT_")
    config = load_config(path, environ={name: DEMO_TOKEN})
    assert resolve_token(config, {name: DEMO_TOKEN}) == DEMO_TOKEN
