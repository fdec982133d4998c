"""GraphQL walks' tokens: which query a walk pages through and where it resumes.

Kept apart from the paginator (``graphql_pagination``) so that endpoint declarations can
write a token (a fan-out's first) without importing the client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gh_collect.errors import RetriableApiError
from gh_collect.github.graphql_queries import (
    PULL_REVIEWS,
    PULLS_PER_QUERY,
    PULLS_WITH_REVIEWS,
    REVIEWS_PER_PULL,
    REVIEWS_PER_QUERY,
)

__all__ = ["PULLS_LIST", "PULL_REVIEWS_LIST", "QUERIES", "CursorToken", "ListQuery"]


@dataclass(frozen=True)
class ListQuery:
    """One paginated GraphQL query: its text, where its connection sits in ``data``, the
    variable names of its size and cursor, and its largest size."""

    name: str
    text: str
    path: tuple[str, ...]
    first_var: str
    after_var: str
    largest: int
    fixed: Mapping[str, Any]  # variables every request of the walk sends as they are


PULLS_LIST = ListQuery(
    "PullsWithReviews", PULLS_WITH_REVIEWS, ("repository", "pullRequests"), "first", "after",
    PULLS_PER_QUERY, {"reviews": REVIEWS_PER_PULL},
)  # fmt: skip
PULL_REVIEWS_LIST = ListQuery(
    "PullReviews", PULL_REVIEWS, ("node", "reviews"), "reviews", "reviewsAfter",
    REVIEWS_PER_QUERY, {},
)  # fmt: skip
QUERIES = {query.name: query for query in (PULLS_LIST, PULL_REVIEWS_LIST)}


@dataclass(frozen=True)
class CursorToken:
    """Where a GraphQL walk resumes: the query, its subject's variables, cursor and size."""

    query: str
    subject: Mapping[str, Any]
    after: str | None
    first: int

    def dumps(self) -> str:
        body = {"query": self.query, "subject": dict(self.subject), "after": self.after,
                "first": self.first}  # fmt: skip
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def loads(cls, token: str) -> CursorToken:
        """A saved token; one this code did not write is a retriable one-line error."""
        try:
            body = json.loads(token)
            query, subject, after, first = (body[k] for k in ("query", "subject", "after", "first"))
        except (ValueError, KeyError, TypeError):
            raise RetriableApiError(f"unreadable GraphQL resume token {token[:80]!r}") from None
        good = (
            query in QUERIES
            and isinstance(subject, dict)
            and (after is None or isinstance(after, str))
            and isinstance(first, int)
            and 1 <= first <= QUERIES[query].largest
        )
        if not good:
            raise RetriableApiError(f"unreadable GraphQL resume token {token[:80]!r}")
        return cls(query, subject, after, first)
