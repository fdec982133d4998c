"""The public API: what ``gh_collect`` exports is what a library user (and the CLI) needs."""

from __future__ import annotations

import subprocess
import sys

import gh_collect


def test_every_exported_name_resolves_and_nothing_else_is_exported() -> None:
    namespace: dict[str, object] = {}
    exec("from gh_collect import *", namespace)
    exported = {name for name in namespace if not name.startswith("__")} | {"__version__"}
    assert exported == set(gh_collect.__all__)
    for name in gh_collect.__all__:
        assert getattr(gh_collect, name) is not None, name


def test_the_exports_are_the_library_the_cli_runs_on() -> None:
    from gh_collect import cli
    from gh_collect.harvest import run

    assert gh_collect.collect is run.collect is cli.collect
    assert gh_collect.load_config is cli.load_config
    assert issubclass(gh_collect.ApiError, gh_collect.GhCollectError)


def test_importing_the_package_does_not_import_pyarrow() -> None:
    """A harvest never needs the exporter's 0.2 s of imports; ``export_dataset`` loads it."""
    probe = (
        "import sys, gh_collect; before = 'pyarrow' in sys.modules; "
        "gh_collect.export_dataset; print(before, 'pyarrow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    try:
        gh_collect.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")
