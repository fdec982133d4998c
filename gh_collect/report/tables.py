"""The curated tables a year report reads: only the columns it needs, never ``raw``.

Each endpoint the report can use is listed once in ``NEEDED`` with the columns its figures
read. A table that is absent (the endpoint is not in the dataset yet) or that lacks one of
those columns (exported by an older release) is not an error: the report's sections that
need it say so on the page. A table that exists but cannot be read (a damaged file) is
``ReportRefused``: a page built on part of a table would state wrong figures.

Only the named columns are read, so a report's cost is a few typed columns per row however
large the ``raw`` JSON column is; every figure is then aggregated by pyarrow.compute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import ReportRefused

# endpoint -> the columns the report reads from its curated table (the planned ones for the
# endpoints that come later: SPEC "Growing the dataset").
NEEDED: Mapping[str, tuple[str, ...]] = {
    "repos": ("repo",),
    "pulls": ("repo", "number", "user_login", "created_at", "merged_at"),
    "issues": ("repo", "user_login", "created_at", "closed_at"),
    "reviews": ("repo", "pull_number", "user_login", "state", "submitted_at"),
    "issue_comments": ("repo", "user_login", "created_at"),
    "review_comments": ("repo", "user_login", "created_at"),
    "releases": (
        "repo",
        "tag_name",
        "name",
        "author_login",
        "created_at",
        "published_at",
        "prerelease",
    ),
}
BOT_SUFFIX = "[bot]"  # a GitHub App's account: dependabot[bot], github-actions[bot], ...


@dataclass(frozen=True)
class YearWindow:
    """The year as UTC instants ``[start, end)``: what "in the year" means on the page."""

    year: int

    @property
    def start(self) -> datetime:
        return datetime(self.year, 1, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime(self.year + 1, 1, 1, tzinfo=UTC)

    def month_ends(self) -> list[datetime]:
        """The instant each month of the year ends (the next month's first instant)."""
        return [datetime(self.year, m + 1, 1, tzinfo=UTC) for m in range(1, 12)] + [self.end]

    def contains(self, times: pa.Array | pa.ChunkedArray) -> pa.Array:
        """True where a timestamp is in the year; null timestamps are not."""
        inside = pc.and_(pc.greater_equal(times, self.start), pc.less(times, self.end))
        return pc.fill_null(inside, False)


@dataclass
class Tables:
    """One dataset's curated tables, each read at most once, narrowed to ``NEEDED``."""

    paths: DatasetPaths
    _cache: dict[str, pa.Table | None] = field(default_factory=dict)

    def files(self, endpoint: str) -> list[Path]:
        folder = self.paths.curated_endpoint_dir(endpoint)
        return sorted(folder.glob("*.parquet")) if folder.is_dir() else []

    def present(self) -> list[str]:
        """The endpoints with a curated table, in ``NEEDED`` order."""
        return [endpoint for endpoint in NEEDED if self.files(endpoint)]

    def lacking(self, endpoint: str) -> list[str]:
        """The needed columns a present table does not have ([] when it has them all)."""
        names = set(self._dataset(endpoint).schema.names)
        return [column for column in NEEDED[endpoint] if column not in names]

    def rows(self, endpoint: str) -> int:
        """Row count from the Parquet footers alone."""
        return int(self._dataset(endpoint).count_rows()) if self.files(endpoint) else 0

    def get(self, endpoint: str) -> pa.Table | None:
        """The needed columns of ``endpoint``, or None when the table or a column is absent."""
        if endpoint not in self._cache:
            usable = bool(self.files(endpoint)) and not self.lacking(endpoint)
            self._cache[endpoint] = self._read(endpoint) if usable else None
        return self._cache[endpoint]

    def _dataset(self, endpoint: str) -> ds.Dataset:
        try:
            return ds.dataset(self.files(endpoint), format="parquet")
        except (pa.ArrowException, OSError) as exc:
            raise self._unreadable(endpoint, exc) from None

    def _read(self, endpoint: str) -> pa.Table:
        try:
            return self._dataset(endpoint).to_table(columns=list(NEEDED[endpoint]))
        except (pa.ArrowException, OSError) as exc:
            raise self._unreadable(endpoint, exc) from None

    def _unreadable(self, endpoint: str, exc: Exception) -> ReportRefused:
        folder = self.paths.curated_endpoint_dir(endpoint)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return ReportRefused(
            f"cannot read the curated `{endpoint}` table in {folder}: {reason}; "
            "rebuild it with `gh-collect export -c CONFIG`"
        )


def humans(logins: pa.Array | pa.ChunkedArray) -> pa.Array:
    """True for a known person: a login that is not null and not a bot's."""
    return pc.fill_null(pc.invert(pc.ends_with(logins, BOT_SUFFIX)), False)


def bots(logins: pa.Array | pa.ChunkedArray) -> pa.Array:
    return pc.fill_null(pc.ends_with(logins, BOT_SUFFIX), False)


def counts(values: pa.Array | pa.ChunkedArray) -> dict[Any, int]:
    """value -> occurrences, nulls left out."""
    tallies = pc.value_counts(pc.drop_null(values))
    return dict(
        zip(tallies.field("values").to_pylist(), tallies.field("counts").to_pylist(), strict=True)
    )


def top(tally: Mapping[str, int], n: int) -> list[tuple[str, int]]:
    """The ``n`` largest, ties by name so the page is the same on every run."""
    return sorted(tally.items(), key=lambda item: (-item[1], item[0]))[:n]


def per_month(times: pa.Array | pa.ChunkedArray, window: YearWindow) -> list[int]:
    """How many of ``times`` fall in each month of the year (12 numbers)."""
    inside = pc.filter(times, window.contains(times))
    tally = counts(pc.month(inside))
    return [tally.get(month, 0) for month in range(1, 13)]


def hours_between(start: pa.ChunkedArray, end: pa.ChunkedArray) -> pa.Array:
    """``end - start`` in hours, as doubles."""
    micros = pc.cast(pc.subtract(end, start), pa.int64())
    return pc.divide(pc.cast(micros, pa.float64()), 3_600_000_000.0)


def quantiles(hours: pa.Array | pa.ChunkedArray) -> tuple[float | None, float | None]:
    """Median and 90th percentile, linearly interpolated (DuckDB's ``quantile_cont``)."""
    if len(hours) == 0:
        return None, None
    median, p90 = pc.quantile(hours, q=[0.5, 0.9]).to_pylist()
    return _round(median), _round(p90)


def monthly_quantiles(
    hours: pa.Array, months: pa.Array
) -> tuple[list[float | None], list[float | None], list[int]]:
    """Median, p90 and count of ``hours`` for each month (``months``: 1-12 per value)."""
    medians, p90s, sizes = [], [], []
    for month in range(1, 13):
        chosen = pc.filter(hours, pc.equal(months, month))
        median, p90 = quantiles(chosen)
        medians.append(median)
        p90s.append(p90)
        sizes.append(len(chosen))
    return medians, p90s, sizes


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def combined(tables: Sequence[pa.Table | None], column: str) -> pa.ChunkedArray | None:
    """One column across several tables (comments of two endpoints), or None if none has it."""
    chunks = [chunk for t in tables if t is not None for chunk in t[column].chunks]
    if not any(t is not None for t in tables):
        return None
    return pa.chunked_array(chunks, type=pa.string() if not chunks else chunks[0].type)
