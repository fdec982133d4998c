"""The GraphQL queries gh_collect sends, as text, with the variables each takes.

A test validates every query here against GitHub's published schema and measures its cost
as GitHub does (tests/test_graphql_queries.py), so a typo or a field GitHub removed fails
there, not in a user's run.

- ``PULLS_WITH_REVIEWS``: one page of a repo's pull requests, newest-updated first (the
  REST walk's ``sort=updated&direction=desc``), each with its stats and its first reviews,
  plus ``rateLimit``. 50 pull requests with 10 reviews each: 1 + 50 + 50 requests
  (pullRequests, reviews and commits' count per pull) = 1 point, 550 nodes.
- ``PULL_REVIEWS``: the reviews of one pull request after a cursor, by its node ``id``: the
  follow-up for a pull whose reviews overflow the batch (``reviews.pageInfo.hasNextPage``).
- ``PULL_REVIEWS_BY_NUMBER``: the same by repository and number.

Ids: ``fullDatabaseId`` (a BigInt, as a string) is the REST ``id``; ``databaseId`` (Int)
is deprecated by GitHub and fails beyond 2^31, which review ids pass, so it is not asked.
A bot's ``login`` comes without REST's ``[bot]`` suffix. PENDING reviews (the token
user's own, unsubmitted) come with ``submittedAt: null``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PULLS_PER_QUERY",
    "PULLS_WITH_REVIEWS",
    "PULL_REVIEWS",
    "PULL_REVIEWS_BY_NUMBER",
    "QUERIES",
    "REVIEWS_PER_PULL",
    "REVIEWS_PER_QUERY",
    "pull_reviews_by_number_variables",
    "pull_reviews_variables",
    "pulls_with_reviews_variables",
]

PULLS_PER_QUERY = 50  # github-api.md: 25-50 pull requests a page is what big repos bear
REVIEWS_PER_PULL = 10  # most pulls have fewer; the rest come by PULL_REVIEWS
REVIEWS_PER_QUERY = 100  # a follow-up reads one pull's reviews: the most GitHub gives

_REVIEW_FIELDS = """
fragment ReviewFields on PullRequestReview {
  id
  fullDatabaseId
  author { login }
  authorAssociation
  state
  submittedAt
  body
  commit { oid }
  url
}
"""

_REVIEW_PAGE = """
  reviews(first: $reviews{after}) {{
    totalCount
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ ...ReviewFields }}
  }}
"""
_FIRST_REVIEWS = _REVIEW_PAGE.format(after="")
_REVIEWS_AFTER = _REVIEW_PAGE.format(after=", after: $reviewsAfter")

PULLS_WITH_REVIEWS = (
    """
query PullsWithReviews(
  $owner: String!, $name: String!, $first: Int!, $after: String, $reviews: Int!
) {
  rateLimit { cost limit remaining used resetAt nodeCount }
  repository(owner: $owner, name: $name) {
    pullRequests(first: $first, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        id
        fullDatabaseId
        number
        url
        state
        createdAt
        updatedAt
        mergedAt
        additions
        deletions
        changedFiles
        commits { totalCount }
        mergedBy { login }
        reviewDecision
"""
    + _FIRST_REVIEWS
    + """
      }
    }
  }
}
"""
    + _REVIEW_FIELDS
)

PULL_REVIEWS = (
    """
query PullReviews($id: ID!, $reviews: Int!, $reviewsAfter: String) {
  rateLimit { cost limit remaining used resetAt nodeCount }
  node(id: $id) {
    ... on PullRequest {
      id
      fullDatabaseId
      number
"""
    + _REVIEWS_AFTER
    + """
    }
  }
}
"""
    + _REVIEW_FIELDS
)

PULL_REVIEWS_BY_NUMBER = (
    """
query PullReviewsByNumber(
  $owner: String!, $name: String!, $number: Int!, $reviews: Int!, $reviewsAfter: String
) {
  rateLimit { cost limit remaining used resetAt nodeCount }
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      id
      fullDatabaseId
      number
"""
    + _REVIEWS_AFTER
    + """
    }
  }
}
"""
    + _REVIEW_FIELDS
)

QUERIES = {
    "PullsWithReviews": PULLS_WITH_REVIEWS,
    "PullReviews": PULL_REVIEWS,
    "PullReviewsByNumber": PULL_REVIEWS_BY_NUMBER,
}
"""Every query gh_collect sends, by operation name."""


def pulls_with_reviews_variables(
    owner: str,
    name: str,
    *,
    first: int = PULLS_PER_QUERY,
    after: str | None = None,
    reviews: int = REVIEWS_PER_PULL,
) -> dict[str, Any]:
    """``PULLS_WITH_REVIEWS``'s variables: the page of ``first`` pulls after ``after``."""
    return {"owner": owner, "name": name, "first": first, "after": after, "reviews": reviews}


def pull_reviews_variables(
    pull_id: str, *, after: str | None, reviews: int = REVIEWS_PER_QUERY
) -> dict[str, Any]:
    """``PULL_REVIEWS``'s variables: the reviews of pull ``pull_id`` (its node id) after
    the cursor ``after`` (the batch's ``reviews.pageInfo.endCursor``)."""
    return {"id": pull_id, "reviews": reviews, "reviewsAfter": after}


def pull_reviews_by_number_variables(
    owner: str, name: str, number: int, *, after: str | None, reviews: int = REVIEWS_PER_QUERY
) -> dict[str, Any]:
    """``PULL_REVIEWS_BY_NUMBER``'s variables."""
    return {"owner": owner, "name": name, "number": number, "reviews": reviews,
            "reviewsAfter": after}  # fmt: skip
