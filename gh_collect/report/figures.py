"""The year's figures for one dataset, computed from its curated tables with pyarrow.compute.

Every figure is a plain JSON value, so the same dict is embedded in the page (for programs
and tests) and drawn (for people). The definitions, stated on the page too:

* "in the year": a timestamp in ``[Jan 1, next Jan 1)`` UTC;
* PRs opened / merged per month: by ``created_at`` / ``merged_at`` month;
* time to merge: ``merged_at - created_at`` of the PRs merged in the year, by month merged;
* time to first review: from a PR's ``created_at`` to the first review submitted by someone
  other than its author, for the PRs opened in the year, by month opened (a dataset holds
  only the year's reviews, so only PRs opened in the year have their first one);
* medians and p90s interpolate linearly (DuckDB's ``quantile_cont``), in hours;
* bots (logins ending in ``[bot]``) are counted apart from people; null logins (deleted
  accounts) are left out of the rankings;
* the open backlog at a month's end: issues created before it and not closed by then.

A section whose endpoint is not in the dataset is ``{"needs": endpoint, "why": ...}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from gh_collect.report.tables import (
    NEEDED,
    Tables,
    YearWindow,
    bots,
    combined,
    counts,
    hours_between,
    humans,
    monthly_quantiles,
    per_month,
    quantiles,
    top,
)

TOP = 10
LATEST_RELEASES = 15
Figures = dict[str, Any]


class Sources:
    """The tables of one dataset, with the reason a missing one is missing."""

    def __init__(self, tables: Tables, harvested: Sequence[str]) -> None:
        self.tables = tables
        self.harvested = set(harvested)

    def get(self, endpoint: str) -> pa.Table | None:
        table = self.tables.get(endpoint)
        if table is None and endpoint in self.harvested and not self.tables.files(endpoint):
            return _empty(endpoint)  # harvested, no rows in the year: zeros, not a gap
        return table

    def needs(self, endpoint: str) -> Figures:
        """What a section says when ``endpoint``'s table is not usable."""
        if self.tables.files(endpoint):
            lacking = ", ".join(self.tables.lacking(endpoint))
            why = f"the `{endpoint}` table lacks {lacking}: rebuild it with `gh-collect export`"
        else:
            why = f"needs the `{endpoint}` endpoint: add it to `endpoints:` and collect"
        return {"needs": endpoint, "why": why}


def _empty(endpoint: str) -> pa.Table | None:
    """A zero-row table of the needed columns, typed from the endpoint's declaration."""
    from gh_collect.curated.schemas import schema_for

    try:
        schema = schema_for(endpoint).arrow_schema
    except KeyError:
        return None
    if any(name not in schema.names for name in NEEDED[endpoint]):
        return None
    return schema.empty_table().select(list(NEEDED[endpoint]))


def org_figures(tables: Tables, window: YearWindow, harvested: Sequence[str]) -> Figures:
    """Every section of one org's year; see the module docstring for the definitions."""
    sources = Sources(tables, harvested)
    pulls, issues = sources.get("pulls"), sources.get("issues")
    no_pulls, no_issues = pulls is None, issues is None
    sections: Figures = {
        "pulls_per_month": sources.needs("pulls") if no_pulls else _per_month(pulls, window),
        "time_to_merge": sources.needs("pulls") if no_pulls else _time_to_merge(pulls, window),
        "time_to_first_review": _first_review(sources, window),
        "contributors": sources.needs("pulls") if no_pulls else _contributors(pulls, window),
        "reviewers": _reviewers(sources, window),
        "commenters": _commenters(sources, window),
        "busiest_repos": _busiest(pulls, issues, window),
        "issues_per_month": sources.needs("issues") if no_issues else _issues(issues, window),
        "releases": _releases(sources, window),
    }
    sections["headline"] = _headline(sources, sections)
    return sections


# --- pull requests ------------------------------------------------------------------------


def _opened(pulls: pa.Table, window: YearWindow) -> pa.Table:
    return pulls.filter(window.contains(pulls["created_at"]))


def _merged(pulls: pa.Table, window: YearWindow) -> pa.Table:
    return pulls.filter(window.contains(pulls["merged_at"]))


def _per_month(pulls: pa.Table, window: YearWindow) -> Figures:
    return {
        "opened": per_month(pulls["created_at"], window),
        "merged": per_month(pulls["merged_at"], window),
    }


def _time_to_merge(pulls: pa.Table, window: YearWindow) -> Figures:
    merged = _merged(pulls, window)
    hours = hours_between(merged["created_at"], merged["merged_at"])
    return _durations(hours, pc.month(merged["merged_at"]))


def _durations(hours: pa.Array, months: pa.Array) -> Figures:
    """Median and p90 of ``hours`` per month (by ``months``) and over the year."""
    medians, p90s, sizes = monthly_quantiles(hours, months)
    median, p90 = quantiles(hours)
    return {
        "median_hours": medians,
        "p90_hours": p90s,
        "count": sizes,
        "year_median_hours": median,
        "year_p90_hours": p90,
    }


def _first_review(sources: Sources, window: YearWindow) -> Figures:
    pulls, reviews = sources.get("pulls"), sources.get("reviews")
    if pulls is None:
        return sources.needs("pulls")
    if reviews is None:
        return sources.needs("reviews")
    opened = _opened(pulls, window).select(["repo", "number", "user_login", "created_at"])
    submitted = reviews.filter(
        pc.and_(pc.is_valid(reviews["submitted_at"]), _not_pending(reviews["state"]))
    )
    submitted = submitted.select(["repo", "pull_number", "user_login", "submitted_at"])
    submitted = submitted.rename_columns(["repo", "number", "reviewer", "submitted_at"])
    joined = opened.join(submitted, keys=["repo", "number"], join_type="inner")
    by_other = pc.fill_null(pc.not_equal(joined["reviewer"], joined["user_login"]), True)
    first = (
        joined.filter(by_other)
        .group_by(["repo", "number"])
        .aggregate([("created_at", "min"), ("submitted_at", "min")])
    )
    hours = hours_between(first["created_at_min"], first["submitted_at_min"])
    return {**_durations(hours, pc.month(first["created_at_min"])), "opened": opened.num_rows}


def _not_pending(states: pa.ChunkedArray) -> pa.Array:
    return pc.fill_null(pc.not_equal(states, "PENDING"), True)


def _contributors(pulls: pa.Table, window: YearWindow) -> Figures:
    """People by PRs opened in the year (and how many of those merged in it); bots apart."""
    opened = _opened(pulls, window)
    merged = window.contains(opened["merged_at"])
    logins = opened["user_login"]
    tally = counts(pc.filter(logins, humans(logins)))
    merged_tally = counts(pc.filter(logins, pc.and_(humans(logins), merged)))
    return {
        "people": len(tally),
        "top": [
            {"login": login, "prs_opened": n, "prs_merged": merged_tally.get(login, 0)}
            for login, n in top(tally, TOP)
        ],
        "bots": [
            {"login": login, "prs_opened": n}
            for login, n in top(counts(pc.filter(logins, bots(logins))), TOP)
        ],
    }


def _reviewers(sources: Sources, window: YearWindow) -> Figures:
    reviews = sources.get("reviews")
    if reviews is None:
        return sources.needs("reviews")
    reviews = reviews.filter(window.contains(reviews["submitted_at"]))
    logins = reviews["user_login"]
    people = reviews.filter(humans(logins))
    pull_keys = pc.binary_join_element_wise(
        people["repo"], pc.cast(people["pull_number"], pa.string()), "#"
    )
    per_person = (
        pa.table({"login": people["user_login"], "pull": pull_keys})
        .group_by("login")
        .aggregate([("pull", "count", pc.CountOptions(mode="all")), ("pull", "count_distinct")])
    )
    names = per_person["login"].to_pylist()
    tally = dict(zip(names, per_person["pull_count"].to_pylist(), strict=True))
    distinct = dict(zip(names, per_person["pull_count_distinct"].to_pylist(), strict=True))
    return {
        "reviews": reviews.num_rows,
        "people": len(tally),
        "top": [
            {"login": login, "reviews": n, "prs_reviewed": distinct[login]}
            for login, n in top(tally, TOP)
        ],
        "bots": [
            {"login": login, "reviews": n}
            for login, n in top(counts(pc.filter(logins, bots(logins))), TOP)
        ],
    }


def _commenters(sources: Sources, window: YearWindow) -> Figures:
    """Issue and PR conversation comments, plus review comments when the dataset has them."""
    used = {e: sources.get(e) for e in ("issue_comments", "review_comments")}
    if used["issue_comments"] is None:
        return sources.needs("issue_comments")
    tables = [t.filter(window.contains(t["created_at"])) for t in used.values() if t is not None]
    logins = combined(tables, "user_login")
    assert logins is not None  # issue_comments is there
    tally = counts(pc.filter(logins, humans(logins)))
    return {
        "sources": [e for e, t in used.items() if t is not None],
        "comments": len(logins),
        "people": len(tally),
        "top": [{"login": login, "comments": n} for login, n in top(tally, TOP)],
        "bots": [
            {"login": login, "comments": n}
            for login, n in top(counts(pc.filter(logins, bots(logins))), TOP)
        ],
    }


# --- repos, issues, releases --------------------------------------------------------------


def _busiest(pulls: pa.Table | None, issues: pa.Table | None, window: YearWindow) -> Figures:
    """Repos by PRs + issues opened in the year, with what was merged and closed."""
    if pulls is None and issues is None:
        return {"needs": "pulls", "why": "needs the `pulls` or `issues` endpoint"}
    columns = {
        "prs_opened": (pulls, "created_at"),
        "prs_merged": (pulls, "merged_at"),
        "issues_opened": (issues, "created_at"),
        "issues_closed": (issues, "closed_at"),
    }
    tallies = {
        name: counts(table.filter(window.contains(table[ts]))["repo"]) if table is not None else {}
        for name, (table, ts) in columns.items()
    }
    activity: dict[str, int] = {}
    for name in ("prs_opened", "issues_opened"):
        for repo, n in tallies[name].items():
            activity[repo] = activity.get(repo, 0) + n
    return {
        "active_repos": len(activity),
        "top": [
            {"repo": repo, **{name: tallies[name].get(repo, 0) for name in columns}}
            for repo, _n in top(activity, TOP)
        ],
    }


def _issues(issues: pa.Table, window: YearWindow) -> Figures:
    created, closed = issues["created_at"], issues["closed_at"]
    backlog = []
    for end in window.month_ends():
        still_open = pc.or_kleene(pc.is_null(closed), pc.greater_equal(closed, end))
        is_open = pc.and_kleene(pc.less(created, end), still_open)
        backlog.append(pc.sum(pc.fill_null(is_open, False)).as_py() or 0)
    return {
        "opened": per_month(created, window),
        "closed": per_month(closed, window),
        "backlog": backlog,
    }


def _releases(sources: Sources, window: YearWindow) -> Figures:
    """Releases published in the year (drafts have no ``published_at``: not counted)."""
    releases = sources.get("releases")
    if releases is None:
        return sources.needs("releases")
    published = releases.filter(window.contains(releases["published_at"]))
    latest = published.sort_by([("published_at", "descending"), ("repo", "ascending")])
    rows = latest.slice(0, LATEST_RELEASES).to_pylist()
    return {
        "published": published.num_rows,
        "prereleases": pc.sum(pc.fill_null(published["prerelease"], False)).as_py() or 0,
        "per_month": per_month(published["published_at"], window),
        "repos": len(counts(published["repo"])),
        "latest": [
            {
                "repo": row["repo"],
                "tag_name": row["tag_name"],
                "name": row["name"],
                "author_login": row["author_login"],
                "published_at": row["published_at"].isoformat(timespec="seconds"),
                "prerelease": bool(row["prerelease"]),
            }
            for row in rows
        ],
    }


def _headline(sources: Sources, sections: Figures) -> Figures:
    """The numbers at the top; None where the dataset cannot tell."""
    pulls, issues = sections["pulls_per_month"], sections["issues_per_month"]
    merge, review = sections["time_to_merge"], sections["time_to_first_review"]
    repos = sources.get("repos")
    return {
        "repos": repos.num_rows if repos is not None else None,
        "active_repos": sections["busiest_repos"].get("active_repos"),
        "prs_opened": _total(pulls, "opened"),
        "prs_merged": _total(pulls, "merged"),
        "contributors": sections["contributors"].get("people"),
        "median_hours_to_merge": merge.get("year_median_hours"),
        "median_hours_to_first_review": review.get("year_median_hours"),
        "issues_opened": _total(issues, "opened"),
        "issues_closed": _total(issues, "closed"),
        "open_issues_at_year_end": issues["backlog"][-1] if "backlog" in issues else None,
        "reviews": sections["reviewers"].get("reviews"),
        "comments": sections["commenters"].get("comments"),
        "releases": sections["releases"].get("published"),
    }


def _total(section: Figures, key: str) -> int | None:
    return sum(section[key]) if key in section else None
