"""Per-item detail routes: what harvesters that fan out per item ask for.

gh_collect reads lists only, but peers such as Perceval fetch, for every pull request, its
full object, reviews, review comments, commits and requested reviewers, and for every issue
its comments and reactions, plus each user they meet. To benchmark them on the same
simulated org, these answers are generated on request (never stored: a big org would not
fit), deterministically from the item's id, small, and consistent with the counts the list
objects already carry (``comments``, ``reactions.total_count``). An item's comments and a
pull's review comments are its share of the repo-wide lists (``RepoActivity``): the same
objects, by the same ids.
"""

from __future__ import annotations

import random
from typing import Any

from gh_collect.simulator.model.activity_draw import pull_counts
from gh_collect.simulator.model.entries import Entry
from gh_collect.simulator.model.org import OrgModel
from gh_collect.simulator.model.records import API_PLACEHOLDER, WEB, Item, RepoData, iso, parse_time
from gh_collect.simulator.model.reviews import (
    REVIEW_BODIES,
    REVIEW_STATES,
    review_object,
    scenario_reviews,
)
from gh_collect.simulator.model.shapes import org_simple

JsonObject = dict[str, Any]
_REACTIONS = ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes")
_CONTENT = {"+1": "+1", "-1": "-1"}


class Details:
    """Detail answers for one model; each method returns the JSON payload (with API URLs
    still as ``API_PLACEHOLDER``) or None when the item or user does not exist."""

    def __init__(self, model: OrgModel) -> None:
        self.model = model

    # -- items -----------------------------------------------------------------------------

    def pull(self, repo: RepoData, number: int) -> JsonObject | None:
        """pull-request (the full object): the list's pull-request-simple plus counts."""
        item = _find(repo.pulls, number)
        if item is None:
            return None
        obj = item.to_json(API_PLACEHOLDER)
        counts = pull_counts(item.id)
        merged = obj["merged_at"] is not None
        rng = _rng("merge", item)
        obj.update(
            {
                "merged": merged,
                "mergeable": None if obj["state"] == "closed" else True,
                "rebaseable": None if obj["state"] == "closed" else True,
                "mergeable_state": "unknown" if obj["state"] == "closed" else "clean",
                "merged_by": self._user(rng.choice(self._logins())) if merged else None,
                "comments": item.comments,
                "review_comments": len(_on(repo, "review_comments", number)),
                "maintainer_can_modify": False,
                "commits": counts["commits"],
                "additions": rng.randint(1, 800),
                "deletions": rng.randint(0, 300),
                "changed_files": rng.randint(1, 30),
            }
        )
        return obj

    def requested_reviewers(self, repo: RepoData, number: int) -> JsonObject | None:
        pull = self.pull(repo, number)
        if pull is None:
            return None
        return {"users": pull["requested_reviewers"], "teams": []}

    def reviews(self, repo: RepoData, number: int) -> list[JsonObject] | None:
        """Every review, PENDING ones included: who may see those is the server's business
        (``reviews.visible_reviews``). A scenario pull (``OrgModel.many_reviews``) has many."""
        item = _find(repo.pulls, number)
        if item is None:
            return None
        scenario = self.model.many_reviews.get(item.id)
        if scenario is not None:
            return scenario_reviews(repo, item, scenario, self._user, self._logins())
        rng = _rng("reviews", item)
        out: list[JsonObject] = []
        for k in range(pull_counts(item.id)["reviews"]):
            user = self._user(rng.choice(self._logins()))  # drawn in this order: same bytes
            body = rng.choice(REVIEW_BODIES)
            state = rng.choice(REVIEW_STATES)
            submitted_at = _between(rng, item)
            commit_id = f"{rng.getrandbits(160):040x}"
            review_id = item.id * 10 + k
            out.append(
                review_object(
                    repo,
                    number,
                    review_id,
                    user=user,
                    body=body,
                    state=state,
                    submitted_at=submitted_at,
                    commit_id=commit_id,
                )
            )
        return out

    def review_comments(self, repo: RepoData, number: int) -> list[JsonObject] | None:
        """The pull's share of the repo's review comments (``/pulls/comments``)."""
        if _find(repo.pulls, number) is None:
            return None
        return [entry.to_json(API_PLACEHOLDER) for entry in _on(repo, "review_comments", number)]

    def commits(self, repo: RepoData, number: int) -> list[JsonObject] | None:
        item = _find(repo.pulls, number)
        if item is None:
            return None
        rng, api = _rng("commits", item), _api(repo)
        out: list[JsonObject] = []
        for _ in range(pull_counts(item.id)["commits"]):
            sha = f"{rng.getrandbits(160):040x}"
            login = rng.choice(self._logins())
            when = _between(rng, item)
            person = {"name": login, "email": f"{login}@users.noreply.github.com", "date": when}
            out.append(
                {
                    "sha": sha,
                    "node_id": f"C_{sha[:20]}",
                    "commit": {
                        "author": person,
                        "committer": person,
                        "message": "Apply review suggestions",
                        "tree": {"sha": sha[::-1], "url": f"{api}/git/trees/{sha[::-1]}"},
                        "url": f"{api}/git/commits/{sha}",
                        "comment_count": 0,
                        "verification": {
                            "verified": False,
                            "reason": "unsigned",
                            "signature": None,
                            "payload": None,
                            "verified_at": None,
                        },
                    },
                    "url": f"{api}/commits/{sha}",
                    "html_url": f"{WEB}/{repo.owner}/{repo.name}/commit/{sha}",
                    "comments_url": f"{api}/commits/{sha}/comments",
                    "author": self._user(login),
                    "committer": self._user(login),
                    "parents": [],
                }
            )
        return out

    def issue_comments(self, repo: RepoData, number: int) -> list[JsonObject] | None:
        """The item's share of the repo's issue comments (``/issues/comments``): as many as
        its ``comments`` count says."""
        if _find(repo.issues, number) is None:
            return None
        return [entry.to_json(API_PLACEHOLDER) for entry in _on(repo, "issue_comments", number)]

    def issue_reactions(self, repo: RepoData, number: int) -> list[JsonObject] | None:
        """One reaction object per count in the issue's ``reactions`` summary."""
        item = _find(repo.issues, number)
        if item is None:
            return None
        summary = item.to_json(API_PLACEHOLDER)["reactions"]
        rng = _rng("reactions", item)
        out: list[JsonObject] = []
        for name in _REACTIONS:
            for _ in range(int(summary.get(name, 0))):
                out.append(self._reaction(rng, item.id * 1000 + len(out), name, item))
        return out

    def comment_reactions(self, repo: RepoData, comment_id: int) -> list[JsonObject] | None:
        """Reactions of one of the repo's issue comments, as many as its summary counts."""
        comment = repo.activity.find("issue_comments", comment_id) if repo.activity else None
        item = _find(repo.issues, comment.number) if comment is not None else None
        if comment is None or item is None:
            return None
        total = int(comment.to_json(API_PLACEHOLDER)["reactions"]["total_count"])
        rng = _rng(f"comment-reactions:{comment_id}", item)
        return [self._reaction(rng, comment_id * 10 + k, "+1", item) for k in range(total)]

    # -- users -----------------------------------------------------------------------------

    def user(self, login: str) -> JsonObject | None:
        """The full (public) user object, for the logins the org's objects mention."""
        generator = self.model.generator
        if generator is None or login not in generator.known_logins():
            return None
        obj = generator.user_object(login)
        rng = random.Random(f"user:{login}")
        created = parse_time("2012-01-01T00:00:00Z") + rng.randint(0, 10 * 365 * 86_400)
        obj.update(
            {
                "name": login.replace("-", " ").title(),
                "company": rng.choice((None, "@" + self.model.org, "Acme")),
                "blog": "",
                "location": rng.choice((None, "Berlin", "Lagos", "Lima", "Osaka")),
                "email": None,
                "hireable": None,
                "bio": None,
                "twitter_username": None,
                "public_repos": rng.randint(0, 80),
                "public_gists": rng.randint(0, 10),
                "followers": rng.randint(0, 500),
                "following": rng.randint(0, 50),
                "created_at": iso(created),
                "updated_at": iso(created + rng.randint(0, 3 * 365 * 86_400)),
            }
        )
        return obj

    def user_orgs(self, login: str) -> list[JsonObject] | None:
        generator = self.model.generator
        if generator is None or login not in generator.known_logins():
            return None
        if login.endswith("[bot]") or random.Random(f"orgs:{login}").random() < 0.5:
            return []
        return [org_simple(self.model.org, self.model.org_id)]

    # -- helpers ---------------------------------------------------------------------------

    def _logins(self) -> list[str]:
        generator = self.model.generator
        return generator.logins if generator is not None else ["octocat"]

    def _user(self, login: str) -> JsonObject | None:
        generator = self.model.generator
        return generator.user_object(login) if generator is not None else None

    def _reaction(self, rng: random.Random, reaction_id: int, name: str, item: Item) -> JsonObject:
        return {
            "id": reaction_id,
            "node_id": f"REA_{reaction_id}",
            "user": self._user(rng.choice(self._logins())),
            "content": _CONTENT.get(name, name),
            "created_at": _between(rng, item),
        }


def _find(items: tuple[Item, ...], number: int) -> Item | None:
    """Items are stored in number order (number = position + 1 for the issues list)."""
    if 0 < number <= len(items) and items[number - 1].number == number:
        return items[number - 1]
    return next((item for item in items if item.number == number), None)


def _rng(kind: str, item: Item) -> random.Random:
    return random.Random(f"detail:{kind}:{item.id}")


def _on(repo: RepoData, kind: str, number: int) -> list[Entry]:
    return repo.activity.on(kind, number) if repo.activity is not None else []


def _between(rng: random.Random, item: Item) -> str:
    """A time between the item's creation and its last update: activity on it."""
    low, high = parse_time(item.created_at), parse_time(item.updated_at)
    return iso(rng.randint(low, max(low, high)))


def _api(repo: RepoData) -> str:
    return f"{API_PLACEHOLDER}/repos/{repo.owner}/{repo.current_name}"
