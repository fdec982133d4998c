"""The README's promises: its two first commands, and a documented, helpful CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gh_collect import endpoints
from gh_collect.cli import cli

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S)


def test_readme_starts_with_the_demo_and_the_test_command() -> None:
    first, second = (block.strip() for block in code_blocks(README)[:2])
    assert first.startswith("python3 -m venv .venv")
    assert first.endswith(".venv/bin/gh-collect demo")
    assert second == ".venv/bin/python -m pytest -q"
    assert second in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_an_example_and_is_in_the_readme(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert f"gh-collect {name}" in README


def test_demo_runs_and_verifies_against_the_ground_truth(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gh_collect", "demo", "--out", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "verified: the dataset equals the simulator's ground truth" in proc.stdout
    assert list((tmp_path / "demo" / "data" / "curated").rglob("*.parquet"))


def test_validate_prints_the_digest() -> None:
    result = CliRunner().invoke(cli, ["validate", "-c", str(ROOT / "config" / "example.yaml")])
    assert result.exit_code == 0
    assert re.search(r"digest: [0-9a-f]{64}", result.output)


def test_usage_error_exits_2_without_traceback() -> None:
    result = CliRunner().invoke(cli, ["collect"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def demo_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A harvested, exported simulated org, laid out as ``data/`` under a working folder."""
    out = tmp_path_factory.mktemp("demo")
    subprocess.run(
        [sys.executable, "-m", "gh_collect", "demo", "--out", str(out)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return out


# What each README query prints when it finds rows (in README order).
QUERY_NEEDLES = ("sample-org/", "sample-org/", "sample-org/", "issues", "comments", "sample-org/")
QUERY_NEEDLES += ("sample-org/",)


@pytest.mark.parametrize("index", range(len(QUERY_NEEDLES)))
def test_readme_query_examples_run_on_a_harvested_dataset(demo_dataset: Path, index: int) -> None:
    blocks = python_blocks(README)
    assert len(blocks) == len(QUERY_NEEDLES)
    proc = subprocess.run(
        [sys.executable, "-c", blocks[index]],
        cwd=demo_dataset,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert QUERY_NEEDLES[index] in proc.stdout
    assert "0 rows" not in proc.stdout and "shape: (0," not in proc.stdout  # found something


def test_the_readme_lists_each_endpoints_curated_columns() -> None:
    """The README's table of typed columns is the declarations', column for column."""
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (`.*`) \|$", README, flags=re.M))
    for endpoint in endpoints.declared():
        listed = re.findall(r"`([a-z_]+)`", rows[endpoint.name])
        declared = [c.name for c in endpoint.columns if c.name not in ("repo", "fetched_at")]
        assert listed == declared, endpoint.name


def test_the_architecture_doc_names_only_files_that_exist() -> None:
    """docs/ARCHITECTURE.md says where each rule lives: every place it names must exist."""
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    named = set(re.findall(r"`((?:[a-z_]+/)+(?:[a-z_]+\.py)?|[a-z_]+\.py)", doc))
    assert len(named) > 20
    missing = [
        name
        for name in sorted(named)
        if not any((ROOT / base / name).exists() for base in ("gh_collect", "."))
    ]
    assert not missing, f"docs/ARCHITECTURE.md names what does not exist: {missing}"
    assert "docs/ARCHITECTURE.md" in README
