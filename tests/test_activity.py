"""The year's activity endpoints, client side: requests, window rules, keys, curated columns."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gh_collect import endpoints
from gh_collect.curated.export import ExportLimits, export_dataset
from gh_collect.curated.schemas import schema_for
from gh_collect.durable.paths import DatasetPaths
from gh_collect.durable.validators import KnownVersions
from gh_collect.endpoints import Window
from tests.test_export import TINY, curated_rows, write_raw

WINDOW = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
API = "https://api.github.com/repos/o/r"


def issue_comment(ident: int, number: int, *, pull: bool = False, **fields: Any) -> dict[str, Any]:
    page = "pull" if pull else "issues"
    return {
        "id": ident,
        "node_id": f"IC_{ident}",
        "url": f"{API}/issues/comments/{ident}",
        "html_url": f"https://github.com/o/r/{page}/{number}#issuecomment-{ident}",
        "issue_url": f"{API}/issues/{number}",
        "body": "Looks good",
        "user": {"login": "octocat", "id": 1},
        "created_at": "2025-03-01T10:00:00Z",
        "updated_at": "2025-03-02T10:00:00Z",
        "author_association": "MEMBER",
        "reactions": {"total_count": 3, "+1": 3},
        **fields,
    }


def review_comment(ident: int, number: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "node_id": f"PRRC_{ident}",
        "pull_request_review_id": 900 + ident,
        "pull_request_url": f"{API}/pulls/{number}",
        "path": "src/app.py",
        "line": 42,
        "in_reply_to_id": None,
        "commit_id": "a" * 40,
        "user": {"login": "hubot", "id": 2},
        "body": "nit",
        "created_at": "2025-04-01T10:00:00Z",
        "updated_at": "2025-04-01T10:00:00Z",
        "author_association": "CONTRIBUTOR",
        "html_url": f"https://github.com/o/r/pull/{number}#discussion_r{ident}",
        **fields,
    }


def commit(sha: str, committed: str, *, authored: str | None = None, parents: int = 1) -> dict:
    person = {"name": "Mona", "email": "mona@example.com"}
    return {
        "sha": sha,
        "node_id": f"C_{sha[:8]}",
        "commit": {
            "author": {**person, "date": authored or committed},
            "committer": {"name": "GitHub", "email": "noreply@github.com", "date": committed},
            "message": f"Change {sha[:7]}",
        },
        "author": {"login": "mona", "id": 3},
        "committer": None,  # an email no account claims
        "parents": [{"sha": "0" * 40}] * parents,
        "html_url": f"https://github.com/o/r/commit/{sha}",
    }


def release(ident: int, created: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "node_id": f"RE_{ident}",
        "tag_name": f"v1.{ident}",
        "name": f"Release 1.{ident}",
        "author": {"login": "release-bot[bot]", "id": 4},
        "target_commitish": "main",
        "draft": False,
        "prerelease": ident % 2 == 0,
        "created_at": created,
        "published_at": created,
        "updated_at": created,
        "body": "notes",
        "html_url": f"https://github.com/o/r/releases/tag/v1.{ident}",
        **fields,
    }


def params(name: str) -> dict[str, Any]:
    request = endpoints.get(name).first_request("o/r", WINDOW)
    return {"path": request.url, **dict(request.params or {})}


# --- requests ------------------------------------------------------------------------------


def test_comments_are_read_repo_wide_oldest_first_since_the_year() -> None:
    for name, path in (("issue_comments", "issues"), ("review_comments", "pulls")):
        assert params(name) == {
            "path": f"/repos/o/r/{path}/comments",
            "sort": "created",
            "direction": "asc",
            "per_page": 100,
            "since": "2025-01-01T00:00:00Z",
        }


def test_commits_ask_the_year_with_since_and_until_and_releases_ask_everything() -> None:
    assert params("commits") == {
        "path": "/repos/o/r/commits",
        "per_page": 100,
        "since": "2025-01-01T00:00:00Z",
        "until": "2026-01-01T00:00:00Z",
    }
    assert params("releases") == {"path": "/repos/o/r/releases", "per_page": 100}


def test_the_config_lists_the_endpoints_in_the_specs_order() -> None:
    assert endpoints.names() == [
        "pulls", "issues", "issue_comments", "review_comments", "commits", "releases",
    ]  # fmt: skip


# --- which records the year keeps -----------------------------------------------------------


def test_a_commit_exactly_at_the_years_end_is_dropped_since_until_is_inclusive() -> None:
    spec = endpoints.get("commits")
    page = [
        commit("e" * 40, "2026-01-01T00:00:00Z"),  # served: until is inclusive
        commit("d" * 40, "2025-12-31T23:59:59Z"),
        commit("c" * 40, "2025-01-01T00:00:00Z", authored="2019-01-01T00:00:00Z"),
    ]
    kept, stop = spec.select(page, WINDOW)
    assert [c["sha"][0] for c in kept] == ["d", "c"]  # the committer date decides
    assert stop is False  # the server narrowed the list: every page is read
    assert spec.empty_statuses == frozenset({409})


def test_releases_keep_those_created_in_the_year_and_stop_below_it() -> None:
    spec = endpoints.get("releases")
    page = [
        release(3, "2026-01-05T00:00:00Z"),
        release(2, "2025-06-01T00:00:00Z", updated_at="2026-02-01T00:00:00Z"),
        release(1, "2024-12-31T23:59:59Z", updated_at="2025-03-01T00:00:00Z"),  # edited only
    ]
    kept, stop = spec.select(page, WINDOW)
    assert [r["id"] for r in kept] == [2] and stop is True
    _, stop = spec.select(page[:2], WINDOW)
    assert stop is False
    assert not spec.order.moves_on_update  # an edit stays in place: refreshes read the year


def test_comments_keep_created_before_the_end_and_updated_in_the_year() -> None:
    spec = endpoints.get("issue_comments")
    late = issue_comment(2, 1, created_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:00:00Z")
    kept, stop = spec.select([issue_comment(1, 1), late], WINDOW)
    assert [c["id"] for c in kept] == [1] and stop is True


def test_known_versions_key_commits_by_sha_and_never_write_one_twice(tmp_path: Path) -> None:
    path = tmp_path / "commits.jsonl"
    known = KnownVersions(path, 0, "sha", None)
    first = [commit("a" * 40, "2025-02-01T00:00:00Z"), commit("b" * 40, "2025-02-01T00:00:00Z")]
    assert known.changed(first) == first
    again = [commit("b" * 40, "2025-02-01T00:00:00Z"), commit("c" * 40, "2025-02-02T00:00:00Z")]
    assert [c["sha"][0] for c in known.changed(again)] == ["c"]
    keyless = [{"commit": {"message": "a"}}, {"commit": {"message": "b"}}]
    assert known.changed(keyless) == keyless  # kept (the export counts them as dropped)
    assert known.changed([{"commit": {"message": "a"}}]) == []  # read again: not twice


# --- curated tables --------------------------------------------------------------------------


def row(name: str, data: dict[str, Any]) -> dict[str, Any]:
    schema = schema_for(name)
    line = json.dumps({"endpoint": name, "repo": "o/r", "data": data}).encode()
    extracted = schema.extract(line)
    assert extracted is not None
    return dict(zip([c.name for c in schema.columns], extracted, strict=False))


def test_issue_comment_columns_name_the_issue_and_whether_it_is_a_pull() -> None:
    on_issue, on_pull = (
        row("issue_comments", issue_comment(7, 12)),
        row("issue_comments", issue_comment(8, 13, pull=True)),
    )
    assert (on_issue["issue_number"], on_issue["is_pull_request"]) == (12, False)
    assert (on_pull["issue_number"], on_pull["is_pull_request"]) == (13, True)
    assert on_issue["user_login"] == "octocat" and on_issue["reactions_total"] == 3
    assert on_issue["author_association"] == "MEMBER" and on_issue["body"] == "Looks good"


def test_review_comment_columns() -> None:
    values = row("review_comments", review_comment(5, 77, in_reply_to_id=4))
    assert values["pull_number"] == 77 and values["review_id"] == 905
    assert (values["path"], values["line"], values["in_reply_to_id"]) == ("src/app.py", 42, 4)
    assert values["user_login"] == "hubot"


def test_commit_columns_read_two_levels_deep_and_count_parents() -> None:
    made = commit("f" * 40, "2025-05-02T00:00:00Z", authored="2025-04-30T08:00:00Z", parents=2)
    values = row("commits", made)
    assert values["sha"] == "f" * 40 and values["author_login"] == "mona"
    assert values["author_email"] == "mona@example.com"
    assert values["authored_at"] == "2025-04-30T08:00:00Z"
    assert values["committed_at"] == "2025-05-02T00:00:00Z"
    assert values["committer_login"] is None and values["committer_name"] == "GitHub"
    assert values["parent_count"] == 2 and values["message"].startswith("Change")


def test_release_columns() -> None:
    values = row("releases", release(4, "2025-07-01T00:00:00Z"))
    assert (values["tag_name"], values["author_login"], values["prerelease"]) == (
        "v1.4",
        "release-bot[bot]",
        True,
    )


# --- export with a text key -------------------------------------------------------------------


@pytest.mark.parametrize("limits", [None, TINY], ids=["default", "tiny-limits"])
def test_commits_export_one_row_per_sha(tmp_path: Path, limits: ExportLimits | None) -> None:
    paths = DatasetPaths(tmp_path / "data", 2025, "o")
    shas = [f"{n:040x}" for n in range(60)]
    write_raw(paths, "commits", "a", [commit(s, "2025-03-01T00:00:00Z") for s in shas])
    write_raw(paths, "commits", "b", [commit(s, "2025-03-01T00:00:00Z") for s in shas[:10]])
    write_raw(paths, "commits", "b", [{"commit": {}}])  # no sha: dropped from the table, counted

    result = export_dataset(paths, ["commits"], limits=limits)

    rows = curated_rows(paths, "commits")
    assert sorted(r["sha"] for r in rows) == shas
    assert result.endpoints["commits"].duplicates_dropped == 10
    assert result.endpoints["commits"].unkeyed == 1
