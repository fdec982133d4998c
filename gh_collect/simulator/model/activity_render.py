"""Rendering one activity object: the rest of it, drawn when it is first served.

``activity_draw`` decided when an entry was made and what it is on; here a stream seeded by
the entry's id decides the rest (who, what they wrote, where in the diff, which parents,
which assets), and ``activity_shapes`` lays it out as GitHub does. Like an item's, an
object's bytes are the same whenever and on whichever thread it is first served.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

from gh_collect.simulator.model.activity_draw import DAY, pull_counts
from gh_collect.simulator.model.activity_shapes import (
    AssetSpec,
    CommentSpec,
    CommitSpec,
    DiffSpot,
    Person,
    ReleaseSpec,
    RepoUrls,
    commit_object,
    github_actions_app,
    issue_comment_object,
    release_object,
    review_comment_object,
)
from gh_collect.simulator.model.entries import ActivityKit, Entry
from gh_collect.simulator.model.records import iso, parse_time
from gh_collect.simulator.model.words import (
    ASSOCIATIONS,
    BOTS,
    COMMENTS,
    NOUNS,
    PATHS,
    REVIEW_NOTES,
    THINGS,
    UNLINKED,
    VERBS,
)

WEB_FLOW = "web-flow"  # the user GitHub's own commits (web merges) are committed by


class Lookup(Protocol):
    """What rendering one object needs from the rest of its repo."""

    def pull_id(self, number: int) -> int | None: ...
    def sha(self, seq: int) -> str: ...


Render = Callable[[ActivityKit, RepoUrls, Lookup, random.Random, Entry], dict[str, Any]]


def _someone(kit: ActivityKit, rng: random.Random) -> tuple[str | None, str, str | None]:
    """A (user marker, author_association, login); None for a deleted ("ghost") account.
    As generation's ``_author``, from the activity's own stream."""
    roll = rng.random()
    if roll < 0.04:
        return None, "NONE", None
    if roll < 0.14:
        login = rng.choice(BOTS)
        return kit._user(login), "CONTRIBUTOR", login
    index = min(int(rng.expovariate(0.25)), len(kit.logins) - 1)
    login = kit.logins[index]
    return kit._user(login), ASSOCIATIONS[index % len(ASSOCIATIONS)], login


def _reaction_counts(rng: random.Random) -> list[int]:
    """Eight reaction counts, mostly none."""
    return [int(rng.expovariate(3.0)) for _ in range(8)]


def render_issue_comment(
    kit: ActivityKit, urls: RepoUrls, _lookup: Lookup, rng: random.Random, entry: Entry
) -> dict[str, Any]:
    user, association, login = _someone(kit, rng)
    roll = rng.random()
    if roll < 0.3:
        body = rng.choice(COMMENTS)
    else:
        body = rng.choice(kit.long_bodies if roll > 0.95 else kit.short_bodies)
    spec = CommentSpec(
        entry.id, entry.number, entry.created_at, entry.updated_at, user, association, body,
        _reaction_counts(rng),
    )  # fmt: skip
    app = None
    if login == "github-actions[bot]":
        app = github_actions_app(kit._user_object("github", "Organization"))
    return issue_comment_object(urls, spec, bool(entry.link), app)


def render_review_comment(
    kit: ActivityKit, urls: RepoUrls, lookup: Lookup, rng: random.Random, entry: Entry
) -> dict[str, Any]:
    user, association, _login = _someone(kit, rng)
    spec = CommentSpec(
        entry.id, entry.number, entry.created_at, entry.updated_at, user, association,
        rng.choice(REVIEW_NOTES), _reaction_counts(rng),
    )  # fmt: skip
    pull_id = lookup.pull_id(entry.number)
    reviews = pull_counts(pull_id)["reviews"] if pull_id is not None else 0
    review_id = pull_id * 10 + rng.randrange(reviews) if pull_id is not None and reviews else None
    return review_comment_object(urls, spec, _diff_spot(rng), review_id, entry.link or None)


def _diff_spot(rng: random.Random) -> DiffSpot:
    """A line of a pull's diff; some comments span lines, some are on an older commit."""
    line = rng.randint(3, 400)
    start = line - rng.randint(1, 2) if rng.random() < 0.15 else None
    moved = rng.random() < 0.2
    position = rng.randint(1, 60)
    commit = f"{rng.getrandbits(160):040x}"
    context = rng.choice(("def main():", "class Client:", "async def fetch(url):", ""))
    hunk = f"@@ -{line - 2},6 +{line - 2},7 @@ {context}\n     value = compute()\n+    return value"
    return DiffSpot(
        path=rng.choice(PATHS),
        line=line,
        start_line=start,
        original_line=line + rng.randint(-20, 20) if moved else line,
        position=position,
        original_position=rng.randint(1, 60) if moved else position,
        commit_id=commit,
        original_commit_id=f"{rng.getrandbits(160):040x}" if moved else commit,
        diff_hunk=hunk,
    )


def render_commit(
    kit: ActivityKit, urls: RepoUrls, lookup: Lookup, rng: random.Random, entry: Entry
) -> dict[str, Any]:
    """Squash and merge commits are GitHub's (committer web-flow, signed and verified);
    a rebased commit's author date is before its committer date."""
    at, n, note = entry.created_at, entry.number, entry.note
    title = f"{rng.choice(VERBS)} {rng.choice(THINGS)}"
    maintainer = kit.logins[rng.randrange(4)]
    if note == "merge":
        author = _person(kit, rng, maintainer, at)
        branch = f"{kit.org}/feature/{n}-{rng.choice(NOUNS)}"
        message = f"Merge pull request #{n} from {branch}\n\n{title}"
    elif note == "initial":
        author = _person(kit, rng, maintainer, at)
        message = "Initial commit"
    else:
        author = _person(kit, rng, _contributor(kit, rng), _earlier(rng, at, 0.3))
        message = _message(rng, note, n, title)
    committer = _committer(kit, rng, note, author, maintainer, at)
    spec = CommitSpec(
        sha=entry.key,
        tree=f"{rng.getrandbits(160):040x}",
        message=message,
        author=author,
        committer=committer,
        parents=_parents(lookup, entry),
        signed=committer.name == "GitHub",
    )
    return commit_object(urls, spec)


def _message(rng: random.Random, note: str, number: int, title: str) -> str:
    if note == "squash":
        lines = "\n".join(f"* {rng.choice(VERBS)} {rng.choice(THINGS)}" for _ in range(3))
        return f"{title} (#{number})\n\n{lines}"
    if note == "fix":
        return f"{title}\n\nFixes #{number}"
    if note == "push":
        return f"Update {rng.choice(PATHS)}"
    return title


def _committer(
    kit: ActivityKit, rng: random.Random, note: str, author: Person, maintainer: str, at: str
) -> Person:
    """GitHub for web merges; else the author, or (rebased) a maintainer."""
    if note in ("merge", "squash"):
        return Person("GitHub", "noreply@github.com", at, kit._user(WEB_FLOW))
    if note != "initial" and rng.random() < 0.2:
        return _person(kit, rng, maintainer, at)
    return Person(author.name, author.email, at, author.user)


def _contributor(kit: ActivityKit, rng: random.Random) -> str:
    if rng.random() < 0.1:
        return rng.choice(BOTS)
    return kit.logins[min(int(rng.expovariate(0.25)), len(kit.logins) - 1)]


def _person(kit: ActivityKit, rng: random.Random, login: str, date: str) -> Person:
    """A git identity: the user's noreply address, or (sometimes) an email no GitHub user
    is linked to, which leaves the commit's ``author`` null."""
    if rng.random() < 0.06:
        name, email = rng.choice(UNLINKED)
        return Person(name, email, date, None)
    uid = kit._user_object(login)["id"]
    name = login.removesuffix("[bot]").replace("-", " ").title()
    return Person(name, f"{uid}+{login}@users.noreply.github.com", date, kit._user(login))


def _earlier(rng: random.Random, date: str, share: float) -> str:
    """An author date: the committer date, or (rebased) up to three days before it."""
    if rng.random() >= share:
        return date
    return iso(parse_time(date) - int(rng.random() * 3 * DAY))


def _parents(lookup: Lookup, entry: Entry) -> list[str]:
    """The commit before it on the branch; a merge also its pull's head commit (the first
    parent then skips that head, which was branched from the commit before it)."""
    seq, head = entry.id, entry.link - 1
    if seq == 0:
        return []
    first = seq - 2 if head == seq - 1 else seq - 1
    parents = [lookup.sha(first)] if first >= 0 else []
    if head >= 0:
        parents.append(lookup.sha(head))
    return parents


def render_release(
    kit: ActivityKit, urls: RepoUrls, _lookup: Lookup, rng: random.Random, entry: Entry
) -> dict[str, Any]:
    flags = entry.note.split(",")
    author = kit._user(kit.logins[rng.randrange(4)] if rng.random() < 0.75 else BOTS[1])
    tag = entry.key
    roll = rng.random()
    name = (
        tag if roll < 0.4 else f"{tag}: {rng.choice(THINGS)}" if roll < 0.8
        else f"Release {tag[1:]}" if roll < 0.95 else None
    )  # fmt: skip
    body, mentions = _release_notes(kit, urls, rng, tag)
    published = iso(parse_time(entry.created_at) + entry.link)
    spec = ReleaseSpec(
        id=entry.id,
        tag=tag,
        name=name,
        body=body,
        prerelease="pre" in flags,
        created=entry.created_at,
        published=published,
        updated=None if "noupd" in flags else entry.updated_at,
        author=author,
        assets=_assets(urls, rng, entry, tag, published, author),
        reactions=_reaction_counts(rng) if rng.random() < 0.25 else None,
        mentions=mentions,
    )
    return release_object(urls, spec)


def _release_notes(
    kit: ActivityKit, urls: RepoUrls, rng: random.Random, tag: str
) -> tuple[str | None, int]:
    """GitHub's generated notes ("What's Changed"), or none; and how many users they name."""
    if rng.random() < 0.05:
        return None, 0
    logins = {rng.choice(kit.logins) for _ in range(rng.randint(1, 5))}
    lines = [
        f"* {rng.choice(VERBS)} {rng.choice(THINGS)} by @{login} in "
        f"{urls.html}/pull/{rng.randint(1, 500)}"
        for login in sorted(logins)
    ]
    changelog = f"**Full Changelog**: {urls.html}/commits/{tag}"
    return "\n".join(["## What's Changed", *lines, "", changelog]), len(logins)


def _assets(
    urls: RepoUrls, rng: random.Random, entry: Entry, tag: str, published: str, uploader: str
) -> list[AssetSpec]:
    if rng.random() >= 0.3:
        return []
    names = (
        (f"{urls.name}-{tag}.tar.gz", "application/gzip"),
        (f"{urls.name}-{tag}-linux-amd64.zip", "application/zip"),
        ("checksums.txt", "text/plain"),
    )
    return [
        AssetSpec(
            id=entry.id * 10 + k,
            name=name,
            content_type=content_type,
            size=rng.randint(200, 40_000_000),
            digest=f"sha256:{rng.getrandbits(256):064x}" if rng.random() < 0.8 else None,
            downloads=int(rng.expovariate(1 / 300)),
            created=published,
            uploader=uploader,
        )
        for k, (name, content_type) in enumerate(names[: rng.randint(1, 3)])
    ]


RENDER: dict[str, Render] = {
    "issue_comments": render_issue_comment,
    "review_comments": render_review_comment,
    "commits": render_commit,
    "releases": render_release,
}
