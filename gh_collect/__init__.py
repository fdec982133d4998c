"""gh-collect: a GitHub organization's year as a checkpointed, exactly-once dataset.

The library behind the ``gh-collect`` command; the CLI is a thin layer over these names::

    import gh_collect

    config = gh_collect.load_config(Path("my-org.yaml"))
    result = gh_collect.collect(config, gh_collect.resolve_credentials(config))
    print(result.exit_code, result.records)

Where things live (``docs/ARCHITECTURE.md`` says more): ``endpoints`` (what each endpoint
is), ``github`` (the HTTP transport), ``harvest`` (discovery, the page walk, phases, the
run, the dry-run plan), ``durable`` (raw files, envelope, validators, the checkpoint),
``curated`` (schemas, the Parquet export), ``report`` (progress, status, manifest, the
year's HTML report) and
``simulator`` (a GitHub API on 127.0.0.1 for demos and tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from gh_collect.config import Config, load_config, resolve_token
from gh_collect.durable.checkpoint import CheckpointState, read_checkpoint
from gh_collect.durable.paths import DatasetPaths
from gh_collect.endpoints import Endpoint, Window, register
from gh_collect.errors import ApiError, GhCollectError
from gh_collect.github.credentials import Credentials, resolve_credentials
from gh_collect.harvest.orgs import OrgOutcome, OrgsResult, collect_orgs
from gh_collect.harvest.plan import Plan, estimate_sync
from gh_collect.harvest.run import RunOptions, RunResult, collect
from gh_collect.report.status import read_status

if TYPE_CHECKING:
    from gh_collect.curated.export import ExportResult, export_dataset
    from gh_collect.report.yearly import YearReport, build_report, write_report

__all__ = [
    "ApiError",
    "CheckpointState",
    "Config",
    "Credentials",
    "DatasetPaths",
    "Endpoint",
    "ExportResult",
    "GhCollectError",
    "OrgOutcome",
    "OrgsResult",
    "Plan",
    "RunOptions",
    "RunResult",
    "Window",
    "YearReport",
    "__version__",
    "build_report",
    "collect",
    "collect_orgs",
    "estimate_sync",
    "export_dataset",
    "load_config",
    "read_checkpoint",
    "read_status",
    "register",
    "resolve_credentials",
    "resolve_token",
    "write_report",
]

_LAZY = {"export_dataset", "ExportResult"}  # pyarrow: 0.2 s of imports a harvest never needs
_LAZY_REPORT = {"build_report", "write_report", "YearReport"}  # pyarrow too


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from gh_collect.curated import export

        return getattr(export, name)
    if name in _LAZY_REPORT:
        from gh_collect.report import yearly

        return getattr(yearly, name)
    raise AttributeError(f"module 'gh_collect' has no attribute {name!r}")
