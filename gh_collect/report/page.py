"""The report as one self-contained HTML page: inline CSS, inline SVG, no script, no network.

The figures are embedded as JSON (``<script type="application/json" id="gh-collect-figures">``,
never executed) so programs and tests read exactly what the page shows; every headline
number is also an element with ``data-figure`` naming its key. A section whose endpoint is
missing is kept, saying what it needs, so a reader knows what the page cannot tell.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from gh_collect.report.svg import Series, bar_chart, line_chart

FIGURES_ID = "gh-collect-figures"
HEADLINES = (
    ("repos", "repos in the dataset"),
    ("active_repos", "repos with PRs or issues opened"),
    ("prs_opened", "PRs opened"),
    ("prs_merged", "PRs merged"),
    ("contributors", "people who opened PRs"),
    ("median_hours_to_merge", "median time to merge"),
    ("median_hours_to_first_review", "median time to first review"),
    ("issues_opened", "issues opened"),
    ("issues_closed", "issues closed"),
    ("open_issues_at_year_end", "issues open at year end"),
    ("reviews", "reviews"),
    ("comments", "comments"),
    ("releases", "releases published"),
)
CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;
background:#f6f8fa}
main{max-width:780px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:21px;margin:32px 0 8px;border-bottom:1px solid #d0d7de}
h3{font-size:16px;margin:22px 0 6px}.sub{color:#59636e;margin:0 0 12px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:8px 10px}
.card .figure{display:block;font-size:22px;font-weight:600}
.card .label{color:#59636e;font-size:13px}
.chart{display:block;background:#fff;border:1px solid #d0d7de;border-radius:6px;max-width:100%;
height:auto}
.chart .grid{stroke:#eaeef2}.chart text{font-size:11px;fill:#59636e}
.chart .legend{font-size:12px;fill:#1f2328}.chart .empty{font-size:14px}
.s0{fill:#2f6feb;stroke:#2f6feb}.s1{fill:#2da44e;stroke:#2da44e}.s2{fill:#bf8700;stroke:#bf8700}
path.line{fill:none;stroke-width:2}
table{border-collapse:collapse;background:#fff;width:100%;font-size:14px}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}td.n,th.n{text-align:right}
.needs{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:8px 10px}
code{font-size:13px;background:#eaeef2;padding:0 3px;border-radius:3px}
nav a{margin-right:12px}.note{color:#59636e;font-size:13px}
"""


def render_page(report: Mapping[str, Any]) -> str:
    """The whole page for ``report`` (``yearly.build_report``'s figures)."""
    orgs = report["orgs"]
    names = ", ".join(org["org"] for org in orgs)
    title = f"{names}: the year {report['year']} at a glance"
    nav = _nav(orgs) if len(orgs) > 1 else ""
    body = "".join(_org(org) for org in orgs)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{escape(title)}</h1><p class='sub'>{_generated(report)}</p>{nav}{body}"
        f"{_definitions()}</main>{_figures_block(report)}</body></html>\n"
    )


def _generated(report: Mapping[str, Any]) -> str:
    return escape(
        f"Generated {report['generated_at']} by gh-collect {report['version']} from the "
        "curated Parquet dataset; all times UTC."
    )


def _nav(orgs: Sequence[Mapping[str, Any]]) -> str:
    links = "".join(f'<a href="#org-{escape(o["slug"])}">{escape(o["org"])}</a>' for o in orgs)
    return f"<nav>{links}</nav>"


def _figures_block(report: Mapping[str, Any]) -> str:
    """The figures as JSON, inert inside a script element: every ``<`` is escaped, so no
    name the server sent (``</script>``, ``<!--``) can end the element or change its parsing."""
    text = json.dumps(report, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c")
    return f'<script type="application/json" id="{FIGURES_ID}">{text}</script>'


def _org(org: Mapping[str, Any]) -> str:
    head = f'<section class="org" id="org-{escape(org["slug"])}"><h2>{escape(org["org"])}</h2>'
    if "unavailable" in org:
        facts = _completeness(org["completeness"])
        return f'{head}<p class="needs">{_code(org["unavailable"])}</p>{facts}</section>'
    sections = [
        head,
        _headline(org["headline"]),
        "<h3>Pull requests opened and merged</h3>",
        _chart(org["pulls_per_month"], lambda s: _pulls_chart(s, org["slug"])),
        "<h3>Time to merge (PRs merged in the month)</h3>",
        _chart(org["time_to_merge"], lambda s: _time_chart(s, f"{org['slug']}-merge")),
        "<h3>Time to first review (PRs opened in the month)</h3>",
        _chart(org["time_to_first_review"], lambda s: _time_chart(s, f"{org['slug']}-review")),
        "<h3>Issues opened and closed</h3>",
        _chart(org["issues_per_month"], lambda s: _issues_chart(s, org["slug"])),
        "<h3>Open issue backlog at each month's end</h3>",
        _chart(org["issues_per_month"], lambda s: _backlog_chart(s, org["slug"])),
        "<h3>Top contributors (PRs opened)</h3>",
        _chart(org["contributors"], lambda s: _people(s, ("prs_opened", "prs_merged"))),
        "<h3>Top reviewers</h3>",
        _chart(org["reviewers"], lambda s: _people(s, ("reviews", "prs_reviewed"))),
        "<h3>Top commenters</h3>",
        _chart(org["commenters"], lambda s: _people(s, ("comments",))),
        "<h3>Busiest repos</h3>",
        _chart(org["busiest_repos"], _repos),
        "<h3>Releases</h3>",
        _chart(org["releases"], lambda s: _releases(s, org["slug"])),
        "<h3>About this data</h3>",
        _completeness(org["completeness"]),
        "</section>",
    ]
    return "".join(sections)


def _chart(section: Mapping[str, Any], draw: Callable[[Mapping[str, Any]], str]) -> str:
    """The section drawn, or what it needs when its endpoint is not in the dataset."""
    if "needs" in section:
        why = _code(section["why"])
        return f'<p class="needs" data-needs="{escape(section["needs"])}">{why}</p>'
    return draw(section)


def _code(text: str) -> str:
    """Escaped ``text`` with each `quoted` part in <code>."""
    parts = escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _headline(headline: Mapping[str, Any]) -> str:
    cards = []
    for key, label in HEADLINES:
        value = headline.get(key)
        if value is None:
            continue
        shown = duration(value) if key.startswith("median_hours") else f"{value:,}"
        cards.append(
            f'<div class="card"><span class="figure" data-figure="{key}">{shown}</span>'
            f'<span class="label">{escape(label)}</span></div>'
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def duration(hours: float) -> str:
    """Hours as people read them: minutes, hours or days."""
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} d"


def _pulls_chart(section: Mapping[str, Any], slug: str) -> str:
    series = [Series("opened", section["opened"]), Series("merged", section["merged"])]
    return bar_chart(f"{slug}-pulls", "Pull requests opened and merged per month", series)


def _issues_chart(section: Mapping[str, Any], slug: str) -> str:
    series = [Series("opened", section["opened"]), Series("closed", section["closed"])]
    return bar_chart(f"{slug}-issues", "Issues opened and closed per month", series)


def _backlog_chart(section: Mapping[str, Any], slug: str) -> str:
    series = [Series("open at month end", section["backlog"])]
    return line_chart(f"{slug}-backlog", "Open issues at each month's end", series)


def _time_chart(section: Mapping[str, Any], chart_id: str) -> str:
    """Median and p90 per month, in hours or, when they run long, days."""
    largest = max([v for v in section["p90_hours"] if v is not None], default=0.0)
    scale, unit = (24.0, " d") if largest >= 72 else (1.0, " h")
    series = [
        Series(name, [None if v is None else v / scale for v in section[key]])
        for name, key in (("median", "median_hours"), ("p90", "p90_hours"))
    ]
    chart = line_chart(chart_id, "Median and p90 per month", series, unit)
    year = section["year_median_hours"]
    summary = (
        f"Over the year: median {duration(year)}, p90 {duration(section['year_p90_hours'])}, "
        f"{sum(section['count']):,} PRs."
        if year is not None
        else "No PRs in the year."
    )
    return f"{chart}<p class='note'>{escape(summary)}</p>"


def _people(section: Mapping[str, Any], columns: Sequence[str]) -> str:
    rows = [[p["login"], *(p[c] for c in columns)] for p in section["top"]]
    table = _table(["login", *(c.replace("_", " ") for c in columns)], rows)
    bots = ", ".join(
        f"{b['login']} {next(v for k, v in b.items() if k != 'login'):,}" for b in section["bots"]
    )
    people = f"{section['people']:,} people in all."
    sources = section.get("sources")
    from_ = f" From {', '.join(sources)}." if sources else ""
    note = f"{people}{from_} Bots, apart: {bots}." if bots else f"{people}{from_} No bots."
    return f"{table}<p class='note'>{escape(note)}</p>"


def _repos(section: Mapping[str, Any]) -> str:
    columns = ("prs_opened", "prs_merged", "issues_opened", "issues_closed")
    rows = [[r["repo"], *(r[c] for c in columns)] for r in section["top"]]
    return _table(["repo", *(c.replace("_", " ") for c in columns)], rows)


def _releases(section: Mapping[str, Any], slug: str) -> str:
    chart = bar_chart(
        f"{slug}-releases",
        "Releases published per month",
        [Series("published", section["per_month"])],
    )
    summary = (
        f"{section['published']:,} releases in {section['repos']:,} repos, "
        f"{section['prereleases']:,} of them pre-releases. Latest:"
    )
    rows = [
        [r["published_at"][:10], r["repo"], r["tag_name"], r["name"] or "", r["author_login"] or ""]
        for r in section["latest"]
    ]
    table = _table(["published", "repo", "tag", "name", "author"], rows)
    return f"{chart}<p class='note'>{escape(summary)}</p>{table}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return "<p class='note'>None in the year.</p>"
    head = "".join(f"<th{_num(rows[0][i])}>{escape(h)}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f"<td{_num(v)}>{escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(value: Any) -> str:
    return ' class="n"' if isinstance(value, int) and not isinstance(value, bool) else ""


def _cell(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _completeness(facts: Mapping[str, Any]) -> str:
    harvest = facts["harvest"]
    lines = [f"Harvest: {harvest['summary']}"]
    tables = ", ".join(f"{name} {rows:,} rows" for name, rows in facts["tables"].items())
    lines.append(f"Curated tables: {tables or 'none'}.")
    if facts["missing_endpoints"]:
        missing = ", ".join(f"`{e}`" for e in facts["missing_endpoints"])
        lines.append(f"Endpoints missing from the dataset: {missing} (add them to `endpoints:`).")
    lines += facts["notes"]
    items = "".join(f"<li>{_code(line)}</li>" for line in lines)
    failed = facts["failed"]
    table = (
        "<p>Failed, so missing from every figure:</p>"
        + _table(
            ["repo", "endpoint", "error"], [[f["repo"], f["endpoint"], f["error"]] for f in failed]
        )
        if failed
        else "<p>No repo or endpoint failed.</p>"
    )
    return f'<ul class="completeness">{items}</ul>{table}'


def _definitions() -> str:
    return (
        "<h2>How the figures are counted</h2><p class='note'>In the year: a timestamp from "
        "January 1 up to the next January 1, UTC. Opened, merged, closed: by the month of "
        "that event. Time to merge: from opening to merge, for the PRs merged in the month. "
        "Time to first review: from opening to the first review by someone other than the "
        "author, for the PRs opened in the month. Medians and p90s interpolate linearly. "
        "Bots (logins ending in [bot]) are listed apart; deleted accounts are left out of "
        "rankings. The backlog counts the issues in the dataset: an issue left untouched "
        "through the whole year is not in it.</p>"
    )
