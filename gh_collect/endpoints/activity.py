"""The year's activity around pulls and issues: comments, commits and releases (REST).

Each is read repo-wide, so a year of it costs a few pages per repo instead of a request per
item (the per-item routes peers walk: ``/issues/{n}/comments``, ``/pulls/{n}/comments``):

* ``issue_comments``: ``/issues/comments?since=``, oldest created first, like ``issues``;
  conversation comments on pull requests are in it too (their ``html_url`` says ``/pull/``).
* ``review_comments``: ``/pulls/comments?since=``, the same way.
* ``commits``: ``/commits?since=&until=``, the default branch only (the list's default),
  newest first, every page (the server narrows it to the year). ``until`` is inclusive, so
  a commit made exactly at the year's end is served and dropped by the window. A commit has
  no integer id and never changes: its key is the ``sha``, with no version. An empty
  repository answers 409 "Git Repository is empty.": no commits.
* ``releases``: ``/releases``, newest created first with no server filter, read down to the
  first release created before the year; kept if created in the year. Drafts are listed
  only to tokens that can push, so a read-only token never sees them.
"""

from __future__ import annotations

from gh_collect.curated.columns import (
    AUTHOR,
    FETCHED_AT,
    ID,
    NODE_ID,
    REPO,
    TIMES,
    UNTYPED,
    col,
    derived,
)
from gh_collect.endpoints.base import (
    IN_YEAR_CREATED,
    NEWEST_CREATED_FIRST,
    OLDEST_CREATED_FIRST,
    SERVER_FILTERED,
    Endpoint,
    WindowRule,
)

__all__ = ["COMMITS", "ISSUE_COMMENTS", "RELEASES", "REVIEW_COMMENTS"]

_SINCE = WindowRule(since_param="since")


def _number_at_end(url: object) -> object:
    """The item number an API URL ends with (``.../issues/42`` -> 42)."""
    if not isinstance(url, str):
        return UNTYPED
    last = url.rstrip("/").rsplit("/", 1)[-1]
    return int(last) if last.isascii() and last.isdigit() else UNTYPED


def _on_pull_request(html_url: object) -> object:
    """Whether a conversation comment's page is a pull request's (``/pull/42#issuecomment-``)."""
    return "/pull/" in html_url if isinstance(html_url, str) else UNTYPED


def _length(value: object) -> object:
    return len(value) if isinstance(value, list) else UNTYPED


_BODY_AND_PAGE = (col("body", "str"), col("html_url", "str"), FETCHED_AT)

ISSUE_COMMENTS = Endpoint(
    name="issue_comments",
    path="/repos/{full_name}/issues/comments",
    order=OLDEST_CREATED_FIRST,
    window=_SINCE,
    empty_statuses=frozenset({410}),  # issues turned off: "Issues are disabled for this repo"
    columns=(
        ID,
        NODE_ID,
        REPO,
        derived("issue_number", "int", "issue_url", _number_at_end),
        derived("is_pull_request", "bool", "html_url", _on_pull_request),
        *AUTHOR,
        *TIMES,
        col("reactions_total", "int", "reactions.total_count"),
        *_BODY_AND_PAGE,
    ),
)

REVIEW_COMMENTS = Endpoint(
    name="review_comments",
    path="/repos/{full_name}/pulls/comments",
    order=OLDEST_CREATED_FIRST,
    window=_SINCE,
    columns=(
        ID,
        NODE_ID,
        REPO,
        derived("pull_number", "int", "pull_request_url", _number_at_end),
        col("review_id", "int", "pull_request_review_id"),
        *AUTHOR,
        col("path", "str"),
        col("line", "int"),
        col("in_reply_to_id", "int"),
        col("commit_id", "str"),
        *TIMES,
        col("reactions_total", "int", "reactions.total_count"),
        *_BODY_AND_PAGE,
    ),
)

COMMITS = Endpoint(
    name="commits",
    path="/repos/{full_name}/commits",
    order=SERVER_FILTERED,
    window=WindowRule(
        created="commit.committer.date",
        updated="commit.committer.date",
        since_param="since",
        until_param="until",
        since_tracks_arrival=False,
    ),
    key="sha",
    version=None,
    empty_statuses=frozenset({409}),  # "Git Repository is empty."
    columns=(
        col("sha", "str"),
        NODE_ID,
        REPO,
        col("author_login", "str", "author.login"),
        col("author_name", "str", "commit.author.name"),
        col("author_email", "str", "commit.author.email"),
        col("authored_at", "timestamp", "commit.author.date"),
        col("committer_login", "str", "committer.login"),
        col("committer_name", "str", "commit.committer.name"),
        col("committer_email", "str", "commit.committer.email"),
        col("committed_at", "timestamp", "commit.committer.date"),
        col("message", "str", "commit.message"),
        derived("parent_count", "int", "parents", _length),
        col("html_url", "str"),
        FETCHED_AT,
    ),
)

RELEASES = Endpoint(
    name="releases",
    path="/repos/{full_name}/releases",
    order=NEWEST_CREATED_FIRST,
    window=IN_YEAR_CREATED,
    columns=(
        ID,
        NODE_ID,
        REPO,
        col("tag_name", "str"),
        col("name", "str"),
        col("author_login", "str", "author.login"),
        col("target_commitish", "str"),
        col("draft", "bool"),
        col("prerelease", "bool"),
        *TIMES,
        col("published_at", "timestamp"),
        *_BODY_AND_PAGE,
    ),
)
