"""Drawing a repo's activity: which comments, commits and releases it has, and when.

Two steps, as for pulls and issues. ``draw_base`` (here) draws, once per repo and from
streams of its own, what ordering and filtering need: when each entry was made and last
updated, and what it is on. ``activity_render`` draws the rest of one object, from a stream
seeded by its id, when it is first served. Both read generation's item cores, never
generation's stream, so drawing activity, whenever it happens, moves no byte of the pulls,
issues or repos.

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

from gh_collect.simulator.model.entries import ActivitySource, Entry, ItemCore, Renderer
from gh_collect.simulator.model.records import YEAR_SECONDS, iso
from gh_collect.simulator.model.words import PATHS

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
_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:-rc\.(\d+))?$")


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
