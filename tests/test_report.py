"""The year report from hand-made curated tables whose every figure is known by hand."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from gh_collect import build_report, write_report
from gh_collect.cli import cli
from gh_collect.config import load_config
from gh_collect.durable.paths import DatasetPaths
from gh_collect.errors import ReportRefused
from gh_collect.report.page import FIGURES_ID
from gh_collect.report.svg import Series, bar_chart, line_chart
from tests.report_tables import figures_of, write_table

YEAR = 2025


def t(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


PULLS = [
    {"repo": "acme/a", "number": 1, "user_login": "alice", "created_at": t(2025, 1, 10),
     "merged_at": t(2025, 1, 12)},
    {"repo": "acme/a", "number": 2, "user_login": "alice", "created_at": t(2025, 1, 20)},
    {"repo": "acme/b", "number": 1, "user_login": "bob", "created_at": t(2024, 12, 1),
     "merged_at": t(2025, 2, 1)},
    {"repo": "acme/b", "number": 2, "user_login": "dependabot[bot]", "created_at": t(2025, 2, 5),
     "merged_at": t(2025, 2, 5, 6)},
    {"repo": "acme/b", "number": 3, "user_login": None, "created_at": t(2025, 3, 1)},
    {"repo": "acme/a", "number": 3, "user_login": "carol", "created_at": t(2025, 12, 31, 23),
     "merged_at": t(2026, 1, 2)},
]  # fmt: skip
ISSUES = [
    {
        "repo": "acme/a",
        "user_login": "x",
        "created_at": t(2024, 11, 1),
        "closed_at": t(2025, 1, 15),
    },
    {"repo": "acme/a", "user_login": "x", "created_at": t(2025, 1, 5), "closed_at": None},
    {"repo": "acme/b", "user_login": "y", "created_at": t(2025, 3, 10), "closed_at": t(2025, 6, 1)},
]
REVIEWS = [
    {"repo": "acme/a", "pull_number": 1, "user_login": "alice", "state": "COMMENTED",
     "submitted_at": t(2025, 1, 10, 1)},
    {"repo": "acme/a", "pull_number": 1, "user_login": "bob", "state": "APPROVED",
     "submitted_at": t(2025, 1, 10, 5)},
    {"repo": "acme/a", "pull_number": 1, "user_login": "carol", "state": "APPROVED",
     "submitted_at": t(2025, 1, 11)},
    {"repo": "acme/a", "pull_number": 2, "user_login": "dependabot[bot]", "state": "PENDING",
     "submitted_at": None},
    {"repo": "acme/a", "pull_number": 2, "user_login": "renovate[bot]", "state": "COMMENTED",
     "submitted_at": t(2025, 1, 20, 10)},
    {"repo": "acme/b", "pull_number": 1, "user_login": "carol", "state": "APPROVED",
     "submitted_at": t(2025, 1, 5)},
]  # fmt: skip
ISSUE_COMMENTS = [
    {"repo": "acme/a", "user_login": "alice", "created_at": t(2025, 3, 1)},
    {"repo": "acme/a", "user_login": "alice", "created_at": t(2025, 4, 1)},
    {"repo": "acme/a", "user_login": "bob", "created_at": t(2024, 12, 31)},
    {"repo": "acme/b", "user_login": "github-actions[bot]", "created_at": t(2025, 5, 1)},
]
REVIEW_COMMENTS = [{"repo": "acme/b", "user_login": "bob", "created_at": t(2025, 6, 1)}]
RELEASES = [
    {"repo": "acme/a", "tag_name": "v1", "name": "One", "author_login": "alice",
     "created_at": t(2025, 2, 28), "published_at": t(2025, 3, 1), "prerelease": False},
    {"repo": "acme/a", "tag_name": "v2-rc", "name": None, "author_login": "alice",
     "created_at": t(2025, 4, 30), "published_at": t(2025, 5, 1), "prerelease": True},
    {"repo": "acme/b", "tag_name": "draft", "name": "Draft", "author_login": "bob",
     "created_at": t(2025, 6, 1), "published_at": None, "prerelease": False},
    {"repo": "acme/b", "tag_name": "v0", "name": "Zero", "author_login": "bob",
     "created_at": t(2024, 12, 30), "published_at": t(2024, 12, 31), "prerelease": False},
]  # fmt: skip


def dataset(root: Path, org: str = "acme", **tables: list[dict[str, Any]]) -> DatasetPaths:
    paths = DatasetPaths(root, YEAR, org)
    for endpoint, rows in tables.items():
        write_table(paths, endpoint, rows)
    return paths


def base(root: Path, org: str = "acme") -> DatasetPaths:
    repos = [{"repo": f"{org}/{name}"} for name in "abc"]
    return dataset(root, org, repos=repos, pulls=PULLS, issues=ISSUES)


def full(root: Path) -> DatasetPaths:
    later = {"reviews": REVIEWS, "issue_comments": ISSUE_COMMENTS, "releases": RELEASES}
    dataset(root, **later, review_comments=REVIEW_COMMENTS)
    return base(root)


def month(**values: int) -> list[int]:
    names = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    return [values.get(name, 0) for name in names]


def org_of(paths: DatasetPaths, harvested: tuple[str, ...] = ("pulls", "issues")) -> Any:
    return build_report([paths], year=YEAR, harvested=harvested).figures["orgs"][0]


def test_pull_request_figures(tmp_path: Path) -> None:
    org = org_of(base(tmp_path))
    assert org["pulls_per_month"] == {"opened": month(jan=2, feb=1, mar=1, dec=1),
                                      "merged": month(jan=1, feb=2)}  # fmt: skip
    merge = org["time_to_merge"]
    assert merge["median_hours"][:3] == [48.0, 747.0, None]
    assert merge["p90_hours"][:2] == [48.0, 1339.8]
    assert (merge["year_median_hours"], merge["year_p90_hours"]) == (48.0, 1200.0)
    assert org["contributors"] == {
        "people": 2,
        "top": [{"login": "alice", "prs_opened": 2, "prs_merged": 1},
                {"login": "carol", "prs_opened": 1, "prs_merged": 0}],
        "bots": [{"login": "dependabot[bot]", "prs_opened": 1}],
    }  # fmt: skip


def test_issue_and_repo_figures(tmp_path: Path) -> None:
    org = org_of(base(tmp_path))
    issues = org["issues_per_month"]
    assert issues["opened"] == month(jan=1, mar=1)
    assert issues["closed"] == month(jan=1, jun=1)
    assert issues["backlog"] == [1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]
    assert org["busiest_repos"]["top"] == [
        {"repo": "acme/a", "prs_opened": 3, "prs_merged": 1, "issues_opened": 1,
         "issues_closed": 1},
        {"repo": "acme/b", "prs_opened": 2, "prs_merged": 2, "issues_opened": 1,
         "issues_closed": 1},
    ]  # fmt: skip
    head = org["headline"]
    assert (head["repos"], head["active_repos"], head["open_issues_at_year_end"]) == (3, 2, 1)
    assert (head["prs_opened"], head["prs_merged"], head["contributors"]) == (5, 3, 2)


def test_sections_light_up_when_the_later_endpoints_appear(tmp_path: Path) -> None:
    org = org_of(full(tmp_path))
    review = org["time_to_first_review"]
    assert review["median_hours"][0] == 7.5 and review["p90_hours"][0] == 9.5
    assert review["count"] == month(jan=2) and review["opened"] == 5
    assert org["reviewers"] == {
        "reviews": 5,
        "people": 3,
        "top": [{"login": "carol", "reviews": 2, "prs_reviewed": 2},
                {"login": "alice", "reviews": 1, "prs_reviewed": 1},
                {"login": "bob", "reviews": 1, "prs_reviewed": 1}],
        "bots": [{"login": "renovate[bot]", "reviews": 1}],
    }  # fmt: skip
    commenters = org["commenters"]
    assert commenters["sources"] == ["issue_comments", "review_comments"]
    assert commenters["comments"] == 4
    assert commenters["top"] == [{"login": "alice", "comments": 2}, {"login": "bob", "comments": 1}]
    releases = org["releases"]
    assert (releases["published"], releases["prereleases"], releases["repos"]) == (2, 1, 1)
    assert releases["per_month"] == month(mar=1, may=1)
    assert [r["tag_name"] for r in releases["latest"]] == ["v2-rc", "v1"]
    assert org["completeness"]["missing_endpoints"] == []


def test_missing_endpoints_are_named_on_the_page(tmp_path: Path) -> None:
    report = build_report([base(tmp_path)], year=YEAR, harvested=("pulls", "issues"))
    org = report.figures["orgs"][0]
    needs = {"time_to_first_review": "reviews", "reviewers": "reviews"}
    needs |= {"commenters": "issue_comments", "releases": "releases"}
    for section, endpoint in needs.items():
        assert org[section]["needs"] == endpoint
        assert f'data-needs="{endpoint}"' in report.html
    assert (
        "needs the <code>reviews</code> endpoint: add it to <code>endpoints:</code>" in report.html
    )
    missing = ["reviews", "issue_comments", "review_comments", "releases"]
    assert org["completeness"]["missing_endpoints"] == missing


def test_a_table_without_a_planned_column_says_what_it_lacks(tmp_path: Path) -> None:
    paths = base(tmp_path)
    write_table(paths, "reviews", [{"repo": "acme/a", "pull_number": 1, "user_login": "b"}])
    org = org_of(paths)
    assert org["reviewers"]["needs"] == "reviews"
    assert "lacks state, submitted_at" in org["reviewers"]["why"]


def test_a_harvested_endpoint_without_rows_counts_zero(tmp_path: Path) -> None:
    paths = dataset(tmp_path, pulls=PULLS)
    report = build_report([paths], year=YEAR, harvested=("pulls", "issues"))
    issues = report.figures["orgs"][0]["issues_per_month"]
    assert issues == {"opened": month(), "closed": month(), "backlog": month()}
    assert 'id="chart-acme-issues" data-marks="0"' in report.html
    assert "none in the year" in report.html


def test_the_page_embeds_its_figures_and_shows_the_same_numbers(tmp_path: Path) -> None:
    report = build_report([full(tmp_path)], year=YEAR, harvested=("pulls", "issues"))
    assert figures_of(report.html) == report.figures
    shown = dict(re.findall(r'data-figure="(\w+)">([^<]+)<', report.html))
    head = report.figures["orgs"][0]["headline"]
    assert shown["prs_opened"] == "5" and shown["releases"] == "2" and shown["reviews"] == "5"
    assert (
        shown["median_hours_to_merge"] == "2.0 d" == f"{head['median_hours_to_merge'] / 24:.1f} d"
    )
    assert shown["median_hours_to_first_review"] == "7.5 h"
    assert "<script>" not in report.html and "http" not in report.html.split(FIGURES_ID)[0]


def test_names_from_the_server_cannot_break_out_of_the_page(tmp_path: Path) -> None:
    hostile = "</script><script>alert(1)</script><!--"
    rows = [{**PULLS[0], "user_login": hostile, "repo": f"acme/{hostile}"}]
    report = build_report([dataset(tmp_path, pulls=rows)], year=YEAR, harvested=("pulls",))
    assert "<script>alert" not in report.html and "<!--" not in report.html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in report.html  # shown, as text
    org = figures_of(report.html)["orgs"][0]
    assert org["contributors"]["top"][0]["login"] == hostile


def test_several_orgs_share_one_page(tmp_path: Path) -> None:
    first, second = base(tmp_path, "acme"), base(tmp_path, "other")
    absent = DatasetPaths(tmp_path, YEAR, "absent")
    report = build_report([first, second, absent], year=YEAR, harvested=("pulls", "issues"))
    orgs = report.figures["orgs"]
    assert [o["org"] for o in orgs] == ["acme", "other", "absent"]
    assert orgs[1]["headline"]["prs_opened"] == 5
    assert "collect" in orgs[2]["unavailable"]
    assert '<a href="#org-other">other</a>' in report.html


def test_failures_and_the_harvest_time_come_from_the_manifest(tmp_path: Path) -> None:
    paths = base(tmp_path)
    paths.raw_dir.mkdir(parents=True)
    failure = {"repo": "acme/gone", "endpoint": "pulls", "error": "404 not found"}
    manifest = {"format_version": 1, "status": "failed", "started_at": "2026-01-02T03:00:00+00:00",
                "finished_at": "2026-01-02T04:00:00+00:00", "failures": [failure],
                "counts": {"pulls": {}, "issues": {}},
                "export": {"untyped": {"pulls": {"title": 2}}, "dropped": {"issues": 1}},
                }  # fmt: skip
    paths.manifest.write_text(json.dumps(manifest))
    report = build_report([paths], year=YEAR)
    facts = report.figures["orgs"][0]["completeness"]
    assert facts["failed"] == [failure]
    assert facts["harvest"]["finished_at"] == "2026-01-02T04:00:00+00:00"
    assert facts["tables"] == {"repos": 3, "pulls": 6, "issues": 3}
    assert any("title 2" in note for note in facts["notes"])
    assert "acme/gone" in report.html and "2026-01-02T04:00:00" in report.html


def test_without_manifest_or_checkpoint_the_page_says_so(tmp_path: Path) -> None:
    facts = org_of(base(tmp_path))["completeness"]
    assert "no manifest.json and no checkpoint" in facts["harvest"]["summary"]


# --- the command --------------------------------------------------------------------------


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    data = {"target": {"org": "acme"}, "year": YEAR, "output": {"root": str(tmp_path / "data")}}
    path.write_text(yaml.safe_dump(data))
    return path


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["report", *args])


def test_report_command_writes_the_default_path(tmp_path: Path) -> None:
    base(tmp_path / "data")
    result = run("-c", str(config_file(tmp_path)))
    assert result.exit_code == 0, result.output
    written = tmp_path / "data" / f"report-{YEAR}.html"
    assert result.output.strip() == f"report written to {written}"
    assert "acme: the year 2025 at a glance" in written.read_text()


def test_write_report_takes_an_out_path(tmp_path: Path) -> None:
    base(tmp_path / "data")
    out = write_report(load_config(config_file(tmp_path)), tmp_path / "new" / "r.html")
    assert out.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("prepare", "code", "says"),
    [
        (lambda root: None, 2, "no dataset at"),
        (lambda root: DatasetPaths(root, YEAR, "acme").raw_dir.mkdir(parents=True), 2,
         "run `gh-collect export -c CONFIG`"),
        (lambda root: (base(root).curated_endpoint_dir("pulls") / "part-00000.parquet")
         .write_bytes(b"not parquet"), 2, "cannot read the curated `pulls` table"),
    ],
)  # fmt: skip
def test_bad_datasets_are_one_line_errors(
    tmp_path: Path, prepare: Any, code: int, says: str
) -> None:
    prepare(tmp_path / "data")
    result = run("-c", str(config_file(tmp_path)))
    assert result.exit_code == code
    assert says in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_an_out_path_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    base(tmp_path / "data")
    (tmp_path / "a-file").write_text("")
    result = run("-c", str(config_file(tmp_path)), "--out", str(tmp_path / "a-file" / "r.html"))
    assert result.exit_code == 1 and "cannot write the report" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_report_refused_is_exit_2() -> None:
    assert ReportRefused("x").exit_code == 2


# --- charts -------------------------------------------------------------------------------


def test_a_bar_chart_draws_one_mark_per_nonzero_value() -> None:
    svg = bar_chart("x", "X", [Series("a", month(jan=3, feb=0, mar=1)), Series("b", month(mar=2))])
    assert svg.count('class="mark') == 3 and 'data-marks="3"' in svg
    assert "a, Jan: 3" in svg


def test_a_line_chart_breaks_where_a_month_has_no_value() -> None:
    values: list[float | None] = [1.0, 2.0, None, 4.0, 5.0, *([None] * 7)]
    svg = line_chart("y", "Y", [Series("median", values)], " h")
    assert svg.count("<circle") == 4
    path = re.search(r' d="([^"]+)"', svg)
    assert path is not None and path.group(1).count("M") == 2


def test_a_chart_with_nothing_says_so() -> None:
    svg = bar_chart("z", "Z", [Series("a", month())])
    assert 'data-marks="0"' in svg and "none in the year" in svg


def test_the_benchmark_script_renders_a_small_synthetic_dataset(tmp_path: Path) -> None:
    """scripts/bench_report.py stays runnable: its dataset reports, every section computed."""
    script = Path(__file__).parent.parent / "scripts" / "bench_report.py"
    command = [sys.executable, str(script), "--objects", "3000", "--repos", "20"]
    proc = subprocess.run(
        [*command, "--keep", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"report: wall [\d.]+s, CPU [\d.]+s, peak RSS \d+ MiB \(exit 0\)", proc.stdout)
    org = figures_of((tmp_path / "data" / f"report-{YEAR}.html").read_text())["orgs"][0]
    assert org["completeness"]["tables"]["pulls"] == 1200
    assert all("needs" not in section for section in org.values() if isinstance(section, dict))


def test_an_empty_dataset_is_a_page_of_zeros(tmp_path: Path) -> None:
    """A harvest that found nothing (an org without repos) still gets a page that says so."""
    paths = DatasetPaths(tmp_path, YEAR, "acme")
    paths.curated_dir.mkdir(parents=True)
    report = build_report([paths], year=YEAR, harvested=("pulls", "issues"))
    org = report.figures["orgs"][0]
    assert org["headline"]["prs_opened"] == 0 and org["busiest_repos"]["top"] == []
    assert org["completeness"]["tables"] == {}
    assert report.html.count("none in the year") == 3  # pulls, merge times, issues
    assert 'id="chart-acme-backlog" data-marks="12"' in report.html  # a backlog of 0, drawn
    assert "Curated tables: none." in report.html
