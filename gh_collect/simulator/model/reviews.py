"""Pull request reviews: their shape, who may see a pending one, and the many-reviews scenario.

A review list is generated on request from the pull's id (``details.Details.reviews``), for
the REST route and the GraphQL ``reviews`` connection alike, so both serve the same reviews
with the same ids. Two things the ordinary pulls never show are here:

- PENDING reviews. GitHub shows a review that is still being written only to its author, in
  REST and GraphQL alike, and it has no ``submitted_at``. ``visible_reviews`` applies that
  rule for the token's user (``GET /user``'s login).
- A pull with many reviews (``ManyReviews``): more than one batch of a GraphQL walk holds,
  so the reviews that overflow must be read by follow-up queries. It is the newest pull of
  the ``hundred`` scenario repo (``many_reviews_pull``): adding it changes no byte of any
  repo, pull or issue, only that pull's review list, whose ids live in a range of their own
  (pull id x 1000 + k; the ordinary few use pull id x 10 + k). Its reviews come in
  submission order, and after them one PENDING review by ``ManyReviews.pending_by``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gh_collect.simulator.model.records import (
    API_PLACEHOLDER,
    SCENARIO_REPOS,
    WEB,
    Item,
    RepoData,
    iso,
    parse_time,
)

__all__ = [
    "MANY_REVIEWS_LIMIT",
    "MANY_REVIEWS_REPO",
    "PENDING",
    "REVIEW_BODIES",
    "REVIEW_STATES",
    "ManyReviews",
    "many_reviews_pull",
    "review_object",
    "scenario_reviews",
    "visible_reviews",
]

JsonObject = dict[str, Any]
UserObject = Callable[[str], JsonObject | None]

PENDING = "PENDING"
REVIEW_STATES = ("APPROVED", "COMMENTED", "CHANGES_REQUESTED", "COMMENTED")
REVIEW_BODIES = ("", "LGTM", "A few nits inline.", "Needs a test.")
MANY_REVIEWS_REPO = SCENARIO_REPOS["hundred"]
MANY_REVIEWS_LIMIT = 999  # ids are pull id x 1000 + k: one more would reach the next pull's


@dataclass(frozen=True)
class ManyReviews:
    """One pull's scenario: ``count`` submitted reviews, then a PENDING one by ``pending_by``
    (None: no pending review)."""

    count: int
    pending_by: str | None = None


def many_reviews_pull(repos: Sequence[RepoData]) -> Item | None:
    """The pull that gets many reviews: the newest of the ``hundred`` scenario repo (all its
    items lie in the report year), or None when the org has no scenario repos."""
    repo = next((r for r in repos if r.name == MANY_REVIEWS_REPO and r.role == "hundred"), None)
    if repo is None or not repo.pulls:
        return None
    return max(repo.pulls, key=lambda item: item.number)


def review_object(
    repo: RepoData,
    number: int,
    review_id: int,
    *,
    user: JsonObject | None,
    body: str,
    state: str,
    submitted_at: str | None,
    commit_id: str,
) -> JsonObject:
    """A review as ``GET /repos/{o}/{r}/pulls/{n}/reviews`` lists it (API URLs still as
    ``API_PLACEHOLDER``). A PENDING review has no ``submitted_at``, as on GitHub."""
    html = f"{WEB}/{repo.owner}/{repo.name}/pull/{number}#pullrequestreview-{review_id}"
    api = f"{API_PLACEHOLDER}/repos/{repo.owner}/{repo.current_name}"
    review: JsonObject = {
        "id": review_id,
        "node_id": f"PRR_{review_id}",
        "user": user,
        "body": body,
        "state": state,
        "html_url": html,
        "pull_request_url": f"{api}/pulls/{number}",
        "author_association": "MEMBER",
        "_links": {
            "html": {"href": html},
            "pull_request": {"href": f"{api}/pulls/{number}"},
        },
        "submitted_at": submitted_at,
        "commit_id": commit_id,
    }
    if submitted_at is None:
        del review["submitted_at"]
    return review


def scenario_reviews(
    repo: RepoData, item: Item, scenario: ManyReviews, user: UserObject, logins: Sequence[str]
) -> list[JsonObject]:
    """The many reviews of ``item``, from a stream of its own: submitted in id order over
    the pull's life, then the pending one, written last and not yet submitted."""
    rng = random.Random(f"detail:many-reviews:{item.id}")
    low, high = parse_time(item.created_at), parse_time(item.updated_at)
    times = sorted(rng.randint(low, max(low, high)) for _ in range(scenario.count))
    reviews = [
        review_object(
            repo,
            item.number,
            item.id * 1000 + k,
            user=user(rng.choice(logins)),
            body=rng.choice(REVIEW_BODIES),
            state=rng.choice(REVIEW_STATES),
            submitted_at=iso(when),
            commit_id=f"{rng.getrandbits(160):040x}",
        )
        for k, when in enumerate(times)
    ]
    if scenario.pending_by is not None:
        pending = review_object(
            repo,
            item.number,
            item.id * 1000 + scenario.count,
            user=user(scenario.pending_by),
            body="",
            state=PENDING,
            submitted_at=None,
            commit_id=f"{rng.getrandbits(160):040x}",
        )
        reviews.append(pending)
    return reviews


def visible_reviews(reviews: Sequence[JsonObject], viewer: str) -> list[JsonObject]:
    """The reviews ``viewer`` (a login) may see: all submitted ones, and PENDING ones only
    if ``viewer`` wrote them."""
    return [r for r in reviews if r["state"] != PENDING or _login(r) == viewer]


def _login(review: JsonObject) -> str | None:
    user = review.get("user")
    return user.get("login") if isinstance(user, dict) else None
