"""The demo's report in a real headless browser, and its figures against DuckDB.

The demo runs as a user runs it (a subprocess against the simulator on 127.0.0.1) and writes
its report; Debian's ``chromium`` opens it (``tests/browser.py``): no console error, nothing
fetched, every chart laid out with every mark it declares, a screenshot taken. The same page
is then checked figure by figure against DuckDB SQL over the same Parquet: the JSON the page
embeds and the numbers it shows. The demo's dataset plus hand-made tables of the endpoints
to come (``tests/report_tables.py``) is checked the same way, so the sections they light up
are proven too. Without chromium the browser tests skip, except in CI (``CI`` set).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from gh_collect.durable.paths import DatasetPaths
from gh_collect.report.page import duration
from tests import browser
from tests.report_tables import add_later_endpoints, figures_of

pytestmark = pytest.mark.e2e
YEAR, ORG = 2025, "sample-org"
START, END = "TIMESTAMPTZ '2025-01-01 00:00:00+00'", "TIMESTAMPTZ '2026-01-01 00:00:00+00'"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``gh-collect demo``'s folder, its report written and its path printed."""
    out = tmp_path_factory.mktemp("report-demo")
    proc = subprocess.run(
        [sys.executable, "-m", "gh_collect", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert str(out / "report.html") in proc.stdout
    return out


@pytest.fixture(scope="module")
def enriched(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's dataset plus reviews, comments and releases, reported by the CLI."""
    out = tmp_path_factory.mktemp("report-enriched")
    shutil.copytree(demo / "data", out / "data")
    add_later_endpoints(DatasetPaths(out / "data", YEAR, ORG))
    config = (demo / "demo.yaml").read_text().replace(str(demo), str(out))
    (out / "demo.yaml").write_text(config)
    env = {**os.environ, "GH_DEMO_TOKEN": "unused"}
    command = ["report", "-c", str(out / "demo.yaml"), "--out", str(out / "report.html")]
    proc = subprocess.run(
        [sys.executable, "-m", "gh_collect", *command], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def chromium() -> Iterator[None]:
    if not browser.available():
        if os.environ.get("CI"):
            pytest.fail("CI is set but /usr/bin/chromium is missing: .ci/run installs it")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium); CI always runs this")
    yield


# --- in the browser -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "charts"),
    [
        ("demo", {"pulls", "merge", "issues", "backlog", "releases"}),
        ("enriched", {"pulls", "merge", "review", "issues", "backlog", "releases"}),
    ],
)
def test_every_chart_is_drawn_without_errors(
    chromium: None, request: pytest.FixtureRequest, folder: str, charts: set[str], tmp_path: Path
) -> None:
    page = request.getfixturevalue(folder) / "report.html"
    seen = browser.inspect_page(page)
    assert browser.problems(seen) == []
    drawn = {c["id"].removeprefix(f"chart-{ORG}-"): c["drawn"] for c in seen.charts}
    assert set(drawn) == charts
    assert all(count > 0 for count in drawn.values()), drawn
    png = tmp_path / "report.png"
    browser.screenshot(page, png, height=1600)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_the_probe_catches_a_broken_page(chromium: None, tmp_path: Path) -> None:
    """The checks above can fail: an undrawn mark, a script error and a fetch are all caught."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
        '<svg class="chart" id="chart-x" data-marks="2" viewBox="0 0 100 50" width="100" '
        'height="50"><rect class="mark" x="1" y="1" width="10" height="10"/>'
        '<rect class="mark" x="20" y="1" width="0" height="10"/></svg>'
        '<svg class="chart" id="chart-y" data-marks="0" width="100" height="50"></svg>'
        "<img src='http://127.0.0.1:9/missing.png'><script>null.boom</script></body></html>"
    )
    found = browser.problems(browser.inspect_page(page))
    assert any("chart-x: 1 of 2 marks drawn" in p for p in found), found
    assert any("chart-y: no marks" in p for p in found), found
    assert any("boom" in p for p in found), found
    assert any("missing.png" in p for p in found), found


# --- against DuckDB -----------------------------------------------------------------------


class Sql:
    """DuckDB over one dataset's curated tables, one view per endpoint, in UTC."""

    def __init__(self, root: Path) -> None:
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        curated = DatasetPaths(root / "data", YEAR, ORG).curated_dir
        for folder in sorted(curated.glob("endpoint=*")):
            name = folder.name.removeprefix("endpoint=")
            glob = f"{folder}/*.parquet"
            self.con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{glob}')")
        self.present = {f.name.removeprefix("endpoint=") for f in curated.glob("endpoint=*")}

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def one(self, sql: str) -> Any:
        return self.rows(sql)[0][0]

    def monthly(self, table: str, column: str, where: str = "true") -> list[int]:
        got = dict(
            self.rows(
                f"SELECT month({column}), count(*) FROM {table} WHERE {inyear(column)} "
                f"AND {where} GROUP BY 1"
            )
        )
        return [got.get(m, 0) for m in range(1, 13)]


def inyear(column: str) -> str:
    """True when ``column`` is in the year, false otherwise (a null timestamp too)."""
    return f"coalesce({column} >= {START} AND {column} < {END}, false)"


PEOPLE = "user_login IS NOT NULL AND NOT ends_with(user_login, '[bot]')"


def quantile_months(sql: Sql, query: str) -> dict[str, list[Any]]:
    """``query`` yields (month, hours): median, p90 and count per month."""
    got = {
        m: (q[0], q[1], n)
        for m, q, n in sql.rows(
            f"SELECT m, quantile_cont(h, [0.5, 0.9]), count(*) FROM ({query}) GROUP BY m"
        )
    }
    empty = (None, None, 0)
    return {
        key: [got.get(m, empty)[i] for m in range(1, 13)]
        for i, key in enumerate(("median_hours", "p90_hours", "count"))
    }


def tuples(rows: list[dict[str, Any]], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(row[key] for key in keys) for row in rows]


def assert_close(page: list[Any], sql: list[Any]) -> None:
    assert [v is None for v in page] == [v is None for v in sql]
    assert all(abs(a - b) <= 0.006 for a, b in zip(page, sql, strict=True) if a is not None)


HOURS = "(epoch({end}) - epoch({start})) / 3600"


def check_pulls(org: dict[str, Any], sql: Sql) -> None:
    assert org["pulls_per_month"] == {
        "opened": sql.monthly("pulls", "created_at"),
        "merged": sql.monthly("pulls", "merged_at"),
    }
    merge = quantile_months(
        sql,
        f"SELECT month(merged_at) m, {HOURS.format(start='created_at', end='merged_at')} h "
        f"FROM pulls WHERE {inyear('merged_at')}",
    )
    for key in ("median_hours", "p90_hours"):
        assert_close(org["time_to_merge"][key], merge[key])
    assert org["time_to_merge"]["count"] == merge["count"]
    top = sql.rows(
        f"SELECT user_login, count(*) n, count(*) FILTER ({inyear('merged_at')}) FROM pulls "
        f"WHERE {inyear('created_at')} AND {PEOPLE} GROUP BY 1 ORDER BY n DESC, 1 LIMIT 10"
    )
    assert tuples(org["contributors"]["top"], "login", "prs_opened", "prs_merged") == top


def check_issues_and_repos(org: dict[str, Any], sql: Sql) -> None:
    issues = org["issues_per_month"]
    assert issues["opened"] == sql.monthly("issues", "created_at")
    assert issues["closed"] == sql.monthly("issues", "closed_at")
    backlog = [
        sql.one(
            f"SELECT count(*) FROM issues WHERE created_at < TIMESTAMPTZ '{end}' "
            f"AND (closed_at IS NULL OR closed_at >= TIMESTAMPTZ '{end}')"
        )
        for end in [f"2025-{m:02d}-01 00:00:00+00" for m in range(2, 13)]
        + ["2026-01-01 00:00:00+00"]
    ]
    assert issues["backlog"] == backlog
    busiest = sql.rows(
        "SELECT repo, sum(po) + sum(io) a, sum(po), sum(pm), sum(io), sum(ic) FROM ("
        f"SELECT repo, {inyear('created_at')}::int po, {inyear('merged_at')}::int pm, "
        "0 io, 0 ic FROM pulls UNION ALL "
        f"SELECT repo, 0, 0, {inyear('created_at')}::int, {inyear('closed_at')}::int FROM issues"
        ") GROUP BY repo HAVING a > 0 ORDER BY a DESC, repo LIMIT 10"
    )
    page = [
        (r["repo"], *(r[k] for k in ("prs_opened", "prs_merged", "issues_opened", "issues_closed")))
        for r in org["busiest_repos"]["top"]
    ]
    assert page == [(r[0], *r[2:]) for r in busiest]


def check_later_endpoints(org: dict[str, Any], sql: Sql) -> None:
    first = quantile_months(
        sql,
        "SELECT month(min(p.created_at)) m, "
        f"{HOURS.format(start='min(p.created_at)', end='min(r.submitted_at)')} h "
        "FROM pulls p JOIN reviews r ON r.repo = p.repo AND r.pull_number = p.number "
        f"WHERE {inyear('p.created_at')} AND r.submitted_at IS NOT NULL "
        "AND coalesce(r.state <> 'PENDING', true) "
        "AND coalesce(r.user_login <> p.user_login, true) GROUP BY p.repo, p.number",
    )
    for key in ("median_hours", "p90_hours"):
        assert_close(org["time_to_first_review"][key], first[key])
    reviewers = sql.rows(
        "SELECT user_login, count(*) n, count(DISTINCT (repo, pull_number)) FROM reviews "
        f"WHERE {inyear('submitted_at')} AND {PEOPLE} GROUP BY 1 ORDER BY n DESC, 1 LIMIT 10"
    )
    assert tuples(org["reviewers"]["top"], "login", "reviews", "prs_reviewed") == reviewers
    comments = " UNION ALL ".join(
        f"SELECT user_login, created_at FROM {name}"
        for name in ("issue_comments", "review_comments")
        if name in sql.present
    )
    commenters = sql.rows(
        f"SELECT user_login, count(*) n FROM ({comments}) WHERE {inyear('created_at')} "
        f"AND {PEOPLE} GROUP BY 1 ORDER BY n DESC, 1 LIMIT 10"
    )
    assert tuples(org["commenters"]["top"], "login", "comments") == commenters
    releases = org["releases"]
    assert releases["per_month"] == sql.monthly("releases", "published_at")
    assert releases["prereleases"] == sql.one(
        f"SELECT count(*) FROM releases WHERE prerelease AND {inyear('published_at')}"
    )


def check_headline(org: dict[str, Any], sql: Sql, html: str) -> None:
    """The cards at the top: the same numbers as DuckDB's, as the page prints them."""
    expected = {
        "repos": sql.one("SELECT count(*) FROM repos"),
        "prs_opened": sql.one(f"SELECT count(*) FROM pulls WHERE {inyear('created_at')}"),
        "prs_merged": sql.one(f"SELECT count(*) FROM pulls WHERE {inyear('merged_at')}"),
        "contributors": sql.one(
            "SELECT count(DISTINCT user_login) FROM pulls "
            f"WHERE {inyear('created_at')} AND {PEOPLE}"
        ),
        "issues_opened": sql.one(f"SELECT count(*) FROM issues WHERE {inyear('created_at')}"),
        "issues_closed": sql.one(f"SELECT count(*) FROM issues WHERE {inyear('closed_at')}"),
    }
    median = sql.one(
        f"SELECT median({HOURS.format(start='created_at', end='merged_at')}) FROM pulls "
        f"WHERE {inyear('merged_at')}"
    )
    shown = dict(re.findall(r'data-figure="(\w+)">([^<]+)<', html))
    for key, value in expected.items():
        assert org["headline"][key] == value, key
        assert shown[key] == f"{value:,}", key
    assert abs(org["headline"]["median_hours_to_merge"] - median) <= 0.006
    assert shown["median_hours_to_merge"] == duration(median)
    for person in org["contributors"]["top"]:
        assert f'<td>{person["login"]}</td><td class="n">{person["prs_opened"]:,}</td>' in html


@pytest.mark.parametrize("folder", ["demo", "enriched"])
def test_the_page_figures_match_duckdb(request: pytest.FixtureRequest, folder: str) -> None:
    root = request.getfixturevalue(folder)
    html = (root / "report.html").read_text()
    org = figures_of(html)["orgs"][0]
    sql = Sql(root)
    check_pulls(org, sql)
    check_issues_and_repos(org, sql)
    check_headline(org, sql, html)
    if folder == "enriched":
        check_later_endpoints(org, sql)
    else:
        assert org["reviewers"]["needs"] == "reviews"
