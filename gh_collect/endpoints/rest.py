"""The REST endpoints gh-collect reads, one declaration each: a new endpoint is one entry here.

``issues`` narrows server-side with ``since`` and is read oldest-created first; ``pulls`` has no
``since`` (github-api.md), so it is read newest-updated first and the walk stops at the first
pull updated before the year, then catches up on what moved during the walk. The issues list
also serves pull requests (objects with a ``pull_request`` key): they are dropped from
``issues``, since ``pulls`` holds them.
``repos`` is the org listing discovery reads; it is declared for its curated columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gh_collect.curated.columns import AUTHOR, FETCHED_AT, ID, LABELS, NODE_ID, REPO, TIMES, col
from gh_collect.endpoints.base import (
    NEWEST_UPDATED_FIRST,
    OLDEST_CREATED_FIRST,
    Endpoint,
    WindowRule,
)

__all__ = ["ISSUES", "PULLS", "REPOS"]


def is_pull_request(item: Mapping[str, Any]) -> bool:
    return "pull_request" in item


# What a pull and an issue share, first and last, in this order (the curated column order).
_ITEM_HEAD = (ID, NODE_ID, REPO, col("number", "int"), col("title", "str"), col("state", "str"))
_ITEM_TAIL = (col("body", "str"), col("html_url", "str"), FETCHED_AT)

PULLS = Endpoint(
    name="pulls",
    path="/repos/{full_name}/pulls",
    params={"state": "all"},
    order=NEWEST_UPDATED_FIRST,
    legacy_orders=(OLDEST_CREATED_FIRST,),  # 0.1.0 walked pulls oldest-created first
    columns=(
        *_ITEM_HEAD,
        *AUTHOR,
        LABELS,
        col("draft", "bool"),
        col("locked", "bool"),
        *TIMES,
        col("closed_at", "timestamp"),
        col("merged_at", "timestamp"),
        col("base_ref", "str", "base.ref"),
        col("base_sha", "str", "base.sha"),
        col("head_ref", "str", "head.ref"),
        col("head_sha", "str", "head.sha"),
        col("merge_commit_sha", "str"),
        *_ITEM_TAIL,
    ),
)

ISSUES = Endpoint(
    name="issues",
    path="/repos/{full_name}/issues",
    params={"state": "all"},
    window=WindowRule(since_param="since"),
    skip=is_pull_request,
    columns=(
        *_ITEM_HEAD,
        col("state_reason", "str"),
        *AUTHOR,
        LABELS,
        col("comments", "int"),
        col("locked", "bool"),
        *TIMES,
        col("closed_at", "timestamp"),
        *_ITEM_TAIL,
    ),
)

REPOS = Endpoint(
    name="repos",
    path="/orgs/{org}/repos",
    columns=(
        ID,
        NODE_ID,
        REPO,
        col("name", "str"),
        col("full_name", "str"),
        col("fork", "bool"),
        col("archived", "bool"),
        col("private", "bool"),
        col("default_branch", "str"),
        col("language", "str"),
        col("stargazers_count", "int"),
        *TIMES,
        col("pushed_at", "timestamp"),
        col("html_url", "str"),
        FETCHED_AT,
    ),
)
