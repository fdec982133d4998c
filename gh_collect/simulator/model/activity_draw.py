"""Drawing a repo's activity: which comments, commits and releases it has, and when.

Two steps, as for pulls and issues. ``draw_base`` draws, once per repo and from streams of
its own, what ordering and filtering need: when each entry was made and last updated, and
what it is on. ``RENDER`` draws the rest of one object, from a stream seeded by its id,
when it is first served. Both read generation's item cores, never generation's stream, so
drawing activity, whenever it happens, moves no byte of the pulls, issues or repos.

What makes it realistic: an item's conversation comments fall between its creation and its
last update, and the touch that brought an old item into the year is often a comment; a
pull's review comments likewise, in threads of replies; the default branch gets a commit
for most merged pulls (a squash by GitHub, or a merge commit with two parents after the
pull's head commit), for some issues' fixes and direct pushes, and an initial commit, so
its yearly volume follows the repo's activity; releases come a few a year over the repo's
history, with release candidates before some versions.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

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
from gh_collect.simulator.model.entries import (
    ActivityKit,
    ActivitySource,
    Entry,
    ItemCore,
    Renderer,
)
from gh_collect.simulator.model.records import YEAR_SECONDS, iso, parse_time
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

DAY = 86_400
ID_BLOCK = 1_000_000
"""Ids per repo and kind: a repo's comments and releases get ids in creation order, in a
block of their own (GitHub's ids grow with time; only one repo's order is visible in its
lists)."""
_ID_BASES = {
    "issue_comments": 1_000_000_000,
    "review_comments": 500_000_000,
    "releases": 100_000_000,
}
_EDITED = 0.08  # share of comments edited after they were made
WEB_FLOW = "web-flow"  # the user GitHub's own commits (web merges) are committed by
_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:-rc\.(\d+))?$")


class Lookup(Protocol):
    """What rendering one object needs from the rest of its repo."""

    def pull_id(self, number: int) -> int | None: ...
    def sha(self, seq: int) -> str: ...


def first_id(kind: str, index: int) -> int:
    """The first id of repo ``index``'s block for ``kind``."""
    return _ID_BASES[kind] + index * ID_BLOCK


def stream(source: ActivitySource, *parts: object) -> random.Random:
    """A random stream of the repo's own: never the generator's."""
    return random.Random(":".join(map(str, ("gh-simulator", source.seed, source.repo_id, *parts))))


def touched_paths(sha: str) -> frozenset[str]:
    """The files a default-branch commit changed (what ``/commits?path=`` filters on): one
    or two of ``PATHS``, read off its sha. The list objects do not show them."""
    return frozenset(PATHS[int(sha[i : i + 2], 16) % len(PATHS)] for i in (0, 2))


def pull_counts(pull_id: int) -> dict[str, int]:
    """A pull's reviews and commits, as the per-pull detail routes serve them (its review
    comments are in its repo's activity)."""
    rng = random.Random(f"detail:counts:{pull_id}")
    return {
        "reviews": rng.choice((0, 1, 1, 2, 3)),
        "review_comments": rng.choice((0, 0, 0, 1, 2)),
        "commits": rng.randint(1, 5),
    }


# -- the base: what ordering and filtering need ---------------------------------------------


def draw_base(
    source: ActivitySource, now: int, renders: Mapping[str, Renderer]
) -> dict[str, tuple[Entry, ...]]:
    """The repo's four lists, each ascending by (``created_at``, ``id``)."""
    return {
        "issue_comments": _issue_comments(source, renders["issue_comments"]),
        "review_comments": _review_comments(source, renders["review_comments"]),
        "commits": _commits(source, renders["commits"]),
        "releases": _releases(source, now, renders["releases"]),
    }


Drawn = tuple[int, int, int, int, int]  # (created, number, k, updated, link)


def _issue_comments(source: ActivitySource, render: Renderer) -> tuple[Entry, ...]:
    """As many comments as each item's ``comments`` count, between its creation and its
    last update; most often the last one is that update (the touch was a comment)."""
    rng = stream(source, "issue_comments")
    draw = rng.random
    drawn: list[Drawn] = []
    for core in source.cores:
        count, low, high = core.comments, core.created, core.updated
        if not count:
            continue
        last_is_update = draw() < 0.6
        for k in range(count):
            at = high if last_is_update and k == count - 1 else low + int(draw() * (high - low))
            drawn.append((at, core.number, k, _updated(draw, at, high), int(core.is_pull)))
    return _entries(source, "issue_comments", drawn, render)


def _review_comments(source: ActivitySource, render: Renderer) -> tuple[Entry, ...]:
    """Review comments on about half the pulls, several each, some replying to the one
    before (``in_reply_to_id``)."""
    rng = stream(source, "review_comments")
    draw = rng.random
    drawn: list[Drawn] = []
    for core in source.cores:
        if not core.is_pull or draw() >= 0.45:
            continue
        low, high = core.created, core.updated
        count = min(1 + int(rng.expovariate(0.5)), 40)
        times = sorted(low + int(draw() * (high - low)) for _ in range(count))
        for k, at in enumerate(times):
            reply = int(k > 0 and draw() < 0.35)
            drawn.append((at, core.number, k, _updated(draw, at, high), reply))

    def reply_to(row: Drawn, ids: dict[tuple[int, int], int]) -> int:
        return ids[(row[1], row[2] - 1)] if row[4] else 0

    return _entries(source, "review_comments", drawn, render, reply_to)


def _updated(draw: Callable[[], float], created: int, high: int) -> int:
    """A comment's ``updated_at``: its creation, or a later edit (not after its item's)."""
    return created if draw() >= _EDITED else created + int(draw() * (high - created))


def _entries(
    source: ActivitySource,
    kind: str,
    drawn: list[Drawn],
    render: Renderer,
    link: Callable[[Drawn, dict[tuple[int, int], int]], int] | None = None,
) -> tuple[Entry, ...]:
    """Drawn comments as entries, ids given in creation order; ``link`` maps a drawn row
    (and the ids by (number, k)) to the entry's ``link``, else the row's own."""
    if len(drawn) >= ID_BLOCK:
        raise ValueError(f"repo {source.name!r} has more {kind} than the simulator's id block")
    drawn.sort()
    first = first_id(kind, source.index)
    ids = {(row[1], row[2]): first + i for i, row in enumerate(drawn)} if link else {}
    out: list[Entry] = []
    for i, row in enumerate(drawn):
        created = iso(row[0])
        updated = created if row[3] == row[0] else iso(row[3])
        tie = link(row, ids) if link else row[4]
        out.append(Entry(first + i, row[1], created, updated, "", "", tie, None, render))
    return tuple(out)


Event = tuple[int, int, str, int, int]  # (committed, order, note, number, head order or -1)


def _commits(source: ActivitySource, render: Renderer) -> tuple[Entry, ...]:
    """The default branch, oldest first; an entry's id is its place (``seq``)."""
    if source.role == "empty":
        return ()
    rng = stream(source, "commits")
    draw = rng.random
    first = min(source.created, source.cores[0].created if source.cores else source.created)
    events: list[Event] = [(first - int(draw() * 30 * DAY), 0, "initial", 0, -1)]
    for core in source.cores:
        if core.is_pull:
            if core.closed and draw() < 0.7:
                _merged(events, core, draw)
        elif draw() < 0.25:
            at = core.created + int(draw() * (core.updated - core.created))
            events.append((at, len(events), "fix", core.number, -1))
        if draw() < 0.25:
            at = core.created + int(draw() * (core.updated - core.created))
            events.append((at, len(events), "push", 0, -1))
    events += [(at, len(events) + k, "push", 0, -1) for k, at in enumerate(source.edges)]
    events.sort()
    seq_of = {event[1]: seq for seq, event in enumerate(events)}
    out: list[Entry] = []
    for seq, (at, _order, note, number, head) in enumerate(events):
        sha = f"{rng.getrandbits(160):040x}"
        link = seq_of[head] + 1 if head >= 0 else 0
        stamp = iso(at)
        out.append(Entry(seq, number, stamp, stamp, sha, note, link, render=render))
    return tuple(out)


def _merged(events: list[Event], core: ItemCore, draw: Callable[[], float]) -> None:
    """A merged pull's commits on the default branch, at its last update: a squash commit,
    or the pull's head commit and a merge commit whose second parent it is."""
    merged_at = core.updated
    if draw() < 0.3:
        head = len(events)
        head_at = max(core.created, merged_at - int(draw() * 2 * DAY))
        events.append((head_at, head, "head", core.number, -1))
        events.append((merged_at, head + 1, "merge", core.number, head))
    else:
        events.append((merged_at, len(events), "squash", core.number, -1))


def _releases(source: ActivitySource, now: int, render: Renderer) -> tuple[Entry, ...]:
    """A few releases a year from the repo's first activity, in a quarter of the repos none.
    ``link`` holds the seconds from creation (the tagged commit) to publication; ``note``
    ``pre`` marks a prerelease, ``noupd`` a release served without ``updated_at``."""
    rng = stream(source, "releases")
    draw = rng.random
    if source.role == "empty" or draw() < 0.25:
        return ()
    start = min(source.created, source.cores[0].created if source.cores else source.created)
    span = max(0, now - 2 - start)
    count = int(span / YEAR_SECONDS * rng.choice((1, 2, 3, 4, 6, 8, 12)) * (0.5 + draw()))
    times = sorted(start + int(draw() * span) for _ in range(min(count, ID_BLOCK - 1)))
    first, tag = first_id("releases", source.index), None
    out: list[Entry] = []
    for i, created in enumerate(times):
        pre = draw() < 0.12
        tag = next_tag(tag, pre, draw())
        delay = int(draw() * 600) if draw() < 0.5 else int(draw() * 2 * DAY)
        published = min(created + delay, now - 1)
        roll, note = draw(), "pre" if pre else ""
        updated = published
        if roll < 0.1:
            note = f"{note},noupd"
        elif roll < 0.2:
            updated = min(published + int(draw() * 30 * DAY), now - 1)
        link = published - created
        out.append(Entry(first + i, 0, iso(created), iso(updated), tag, note, link, render=render))
    return tuple(out)


def next_tag(last: str | None, pre: bool, roll: float) -> str:
    """The tag after ``last``: mostly a patch, sometimes a minor, rarely a major version;
    a prerelease is the next release candidate of the coming minor version."""
    if last is None:
        return "v0.1.0-rc.1" if pre else "v0.1.0"
    found = _TAG.match(last)
    parts = [int(part or 0) for part in found.groups()] if found else [0, 1, 0, 0]
    major, minor, patch, rc = parts
    if rc:  # after a candidate: another one, or the release it was for
        return f"v{major}.{minor}.{patch}-rc.{rc + 1}" if pre else f"v{major}.{minor}.{patch}"
    if pre:
        return f"v{major}.{minor + 1}.0-rc.1"
    if roll < 0.03:
        return f"v{major + 1}.0.0"
    if roll < 0.25:
        return f"v{major}.{minor + 1}.0"
    return f"v{major}.{minor}.{patch + 1}"


# -- rendering: the rest of one object ------------------------------------------------------


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
