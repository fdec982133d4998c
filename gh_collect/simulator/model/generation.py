"""Generation: one seeded pass that builds every repo, pull and issue of an org.

All randomness flows from the seed through one ``random.Random``, in a fixed order, so the
same arguments give byte-identical objects. Repos added later (``extra_repo``) draw from
their own stream so that adding one leaves every existing object as it was. An item's JSON
is drawn from a stream of its own when it is first served (``render``), so it is the same
whenever that happens. What each object looks like is in ``shapes``; this module only
decides what goes in it. A repo's comments, commits and releases (``RepoActivity``) are
drawn later still, on first use, from the item cores made here and streams of their own.
"""

from __future__ import annotations

import contextlib
import gc
import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from gh_collect.simulator.model.activity import RepoActivity
from gh_collect.simulator.model.entries import ActivitySource
from gh_collect.simulator.model.records import (
    MIN_REPOS_FOR_SCENARIOS,
    RENAMED_TO,
    SCENARIO_REPOS,
    YEAR_SECONDS,
    Item,
    RepoData,
    _created_key,
    iso,
    parse_time,
    year_start,
)
from gh_collect.simulator.model.shapes import (
    _Encoder,
    _issue_object,
    _issue_type,
    _ItemSpec,
    _pull_object,
    _RepoContext,
    _RepoInfo,
    _Shapes,
)
from gh_collect.simulator.model.words import (
    ADJECTIVES,
    ASSOCIATIONS,
    BOTS,
    LOGINS,
    NOUNS,
    THINGS,
    UNICODE,
    VERBS,
    WORDS,
)


@dataclass
class _Plan:
    """What one repo will be before its objects are rendered."""

    index: int
    name: str
    role: str | None
    n_items: int
    pull_share: float
    in_window_only: bool
    years: float  # of history before the report year


class _Core(NamedTuple):
    """What an item's place in lists depends on, drawn at generation; the rest of its
    object is drawn when it is first served. (A tuple: hundreds of thousands are made.)"""

    number: int
    created: int
    updated: int
    closed: bool
    comments: int
    is_pull: bool
    pull_id: int | None
    issue_id: int


class _Lazy:
    """A pull and its issue-list twin, rendered together on first use: they share a title,
    a body, an author and a state."""

    __slots__ = ("_core", "_ctx", "_done", "_gen")

    def __init__(self, gen: _Generator, ctx: _RepoContext, core: _Core) -> None:
        self._gen, self._ctx, self._core = gen, ctx, core
        self._done: tuple[tuple[bytes, ...] | None, tuple[bytes, ...]] | None = None

    def pull(self) -> tuple[bytes, ...]:
        pull = self._pair()[0]
        if pull is None:
            raise ValueError(f"item {self._core.number} is not a pull")
        return pull

    def issue(self) -> tuple[bytes, ...]:
        return self._pair()[1]

    def _pair(self) -> tuple[tuple[bytes, ...] | None, tuple[bytes, ...]]:
        """Rendered once, whichever threads ask: the server's renderers cache fragments by
        identity, so an item must never be handed two different (if equal) tuples."""
        if self._done is None:
            with self._gen.lock:
                if self._done is None:
                    self._done = self._gen.render(self._ctx, self._core)
        return self._done


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The cyclic collector paused while an org is built: generation makes no cycles, and
    re-scanning millions of fresh objects on every collection doubled a big org's time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Generator(_Shapes):
    """Builds an OrgModel; one instance, one seed, one pass."""

    def __init__(
        self,
        seed: int,
        org: str,
        now: int,
        sizes: Sequence[int] | None,
        scenarios: bool = True,
        history: tuple[float, float] = (10.0, 0.03),
    ) -> None:
        """``history``: (years of history before the report year, share of the items
        created before it that are touched in it)."""
        self.seed, self.org, self.now, self.scenarios = seed, org, now, scenarios
        self.history_years, self.touched_share = history
        self.lock = threading.RLock()
        self.rng = random.Random(f"gh-simulator:{seed}")
        self.enc = _Encoder()
        self.sizes = tuple(sizes) if sizes else None
        self.org_id = 9_000_000 + seed % 100_000
        self.next_pull_id = 1_500_000_000 + (seed % 1000) * 1_000_000
        self.next_issue_id = 2_500_000_000 + (seed % 1000) * 1_000_000
        self.year = datetime.fromtimestamp(now, UTC).year - 1
        self.window = (year_start(self.year), year_start(self.year + 1))
        self.logins = self._user_pool()
        self.short_bodies, self.long_bodies = self._body_pools()

    def build(self, n_repos: int) -> tuple[tuple[RepoData, ...], tuple[bytes, ...]]:
        """The org's repos, newest first, and its organization object (``OrgModel.generate``
        wraps them)."""
        with _no_cyclic_gc():
            repos = [self._repo(plan) for plan in self._plans(n_repos)]
        repos.sort(key=_created_key, reverse=True)
        return tuple(repos), self._org_object(len(repos))

    def extra_repo(self, name: str, n_items: int, seed: int, index: int) -> RepoData:
        """A repo added after generation: its own seeded stream, so adding it leaves every
        existing object as it was, and ids continue where generation stopped. A repo that
        joins is young: one year of history before the report year."""
        with self.lock:
            self.rng = random.Random(f"gh-simulator:{self.seed}:add:{seed}:{name}")
            return self._repo(_Plan(index, name, None, n_items, 0.45, False, 1.0))

    def org_object(self, n_repos: int) -> tuple[bytes, ...]:
        return self._org_object(n_repos)

    def user_object(self, login: str) -> dict[str, Any]:
        """The simple user object (API URLs as ``API_PLACEHOLDER``), for detail routes."""
        return self._user_object(login)

    @staticmethod
    def known_logins() -> frozenset[str]:
        """Every login the org's objects can mention."""
        return frozenset((*LOGINS, *BOTS))

    # -- plans -------------------------------------------------------------------------------

    def _plans(self, n_repos: int) -> list[_Plan]:
        plans: list[_Plan] = []
        if self.scenarios and n_repos >= MIN_REPOS_FOR_SCENARIOS:
            plans = [self._scenario_plan(i, role) for i, role in enumerate(SCENARIO_REPOS)]
        names = self._generic_names(n_repos - len(plans))
        for k, name in enumerate(names):
            size = self.sizes[k % len(self.sizes)] if self.sizes else self._random_size()
            plans.append(_Plan(len(plans), name, None, size, 0.45, False, self.history_years))
        return plans

    def _scenario_plan(self, index: int, role: str) -> _Plan:
        name = SCENARIO_REPOS[role]
        if role == "empty":
            return _Plan(index, name, role, 0, 0.0, False, 0.0)
        if role in ("hundred", "two_hundred"):
            count = 100 if role == "hundred" else 200
            return _Plan(index, name, role, 2 * count, 0.5, True, 0.0)
        size = self.rng.randint(12, 60)
        return _Plan(index, name, role, size, 0.45, False, self.history_years)

    def _generic_names(self, count: int) -> list[str]:
        names: list[str] = []
        while len(names) < count:
            base = f"{self.rng.choice(ADJECTIVES)}-{self.rng.choice(NOUNS)}"
            name = base if base not in names else f"{base}-{len(names)}"
            names.append(name)
        return names

    def _random_size(self) -> int:
        roll = self.rng.random()
        if roll < 0.6:
            return self.rng.randint(0, 30)
        if roll < 0.9:
            return self.rng.randint(30, 120)
        return self.rng.randint(120, 400)

    # -- users -------------------------------------------------------------------------------

    def _user_pool(self) -> list[str]:
        logins = list(LOGINS)
        self.rng.shuffle(logins)
        return logins

    def _author(self) -> tuple[str | None, str]:
        """A (user marker, author_association); None is a deleted ("ghost") account."""
        roll = self.rng.random()
        if roll < 0.04:
            return None, "NONE"
        if roll < 0.14:
            return self._user(self.rng.choice(BOTS)), "CONTRIBUTOR"
        index = min(int(self.rng.expovariate(0.25)), len(self.logins) - 1)
        login = self.logins[index]
        return self._user(login), ASSOCIATIONS[index % len(ASSOCIATIONS)]

    def _repo(self, plan: _Plan) -> RepoData:
        repo_id = 600_000_000 + (self.seed % 1000) * 10_000 + plan.index * 7 + 1
        current_name = RENAMED_TO if plan.role == "renamed" else plan.name
        created = self.rng.randint(year_start(2015), year_start(2022))
        info = _RepoInfo(repo_id, current_name, plan.role, created)
        repo_marker = self.enc.share(f"repo:{repo_id}", lambda: self._repo_object(info))
        pulls, issues, cores = self._items(plan, info, repo_marker)
        newest = max((item.updated_at for item in issues), default=None)
        updated = max(created, parse_time(newest)) if newest else created
        info.updated = info.pushed = updated
        info.open_issues = sum(1 for item in issues if item.state == "open")
        listing_info = _RepoInfo(repo_id, plan.name, plan.role, created)
        listing_info.updated = listing_info.pushed = updated
        listing_info.open_issues = info.open_issues
        return RepoData(
            index=plan.index,
            id=repo_id,
            owner=self.org,
            name=plan.name,
            current_name=current_name,
            role=plan.role,
            fork=plan.role == "fork",
            archived=plan.role == "archived",
            private=False,
            created_at=iso(created),
            updated_at=iso(updated),
            pushed_at=None if plan.role == "empty" else iso(updated),
            default_branch="main",
            listing=self.enc.encode(self._repo_object(listing_info)),
            current=self.enc.encode(self._full_repo_object(info)),
            pulls=tuple(pulls),
            issues=tuple(issues),
            activity=RepoActivity(self, self._activity_source(plan, repo_id, created, cores)),
        )

    def _activity_source(
        self, plan: _Plan, repo_id: int, created: int, cores: list[_Core]
    ) -> ActivitySource:
        """What the repo's activity is drawn from. The two-hundred scenario repo gets pushes
        at exactly the report year's bounds: the commits list's ``since`` and ``until`` are
        both inclusive, and a harvest must keep the first and drop the second."""
        low, high = self.window
        edges = (low, high) if plan.role == "two_hundred" and high < self.now else ()
        return ActivitySource(
            self.seed, repo_id, plan.index, RENAMED_TO if plan.role == "renamed" else plan.name,
            plan.role, created, tuple(cores), edges,
        )  # fmt: skip

    # -- items -------------------------------------------------------------------------------

    def _items(
        self, plan: _Plan, info: _RepoInfo, repo_marker: str
    ) -> tuple[list[Item], list[Item], list[_Core]]:
        """Pulls and the issues list (pulls included), numbered in creation order, and
        their cores (what the repo's activity is drawn from). Only what sorting and
        filtering need is drawn here; each object's JSON is drawn from its own seeded stream
        when first served (``render``)."""
        times = sorted(self._times(plan) for _ in range(plan.n_items))
        kinds = self._kinds(plan)
        ctx = _RepoContext(info, repo_marker, self._labels(info), self._milestones(info))
        pulls: list[Item] = []
        issues: list[Item] = []
        cores: list[_Core] = []
        for number, ((created, updated), is_pull) in enumerate(zip(times, kinds, strict=True), 1):
            core = self._core(number, created, updated, is_pull)
            cores.append(core)
            lazy = _Lazy(self, ctx, core)
            state, stamps = "closed" if core.closed else "open", (iso(created), iso(updated))
            if core.pull_id is not None:
                pulls.append(Item(core.pull_id, number, state, *stamps, core.comments, True,
                                  render=lazy.pull))  # fmt: skip
            issues.append(Item(core.issue_id, number, state, *stamps, core.comments, is_pull,
                               render=lazy.issue))  # fmt: skip
        return pulls, issues, cores

    def _kinds(self, plan: _Plan) -> list[bool]:
        if plan.in_window_only:
            kinds = [True] * (plan.n_items // 2) + [False] * (plan.n_items - plan.n_items // 2)
            self.rng.shuffle(kinds)
            return kinds
        return [self.rng.random() < plan.pull_share for _ in range(plan.n_items)]

    def _times(self, plan: _Plan) -> tuple[int, int]:
        """(created, updated). Created evenly over the repo's history (``plan.years`` before
        the report year, up to now); an item created before the year is touched in it with
        probability ``touched_share`` and otherwise last updated before it, so most of a long
        history lies outside the window, as on a real ten-year-old repo."""
        low, high = self.window
        draw = self.rng.random  # uniform draws as random() * span: randint costs 10x more
        if plan.in_window_only:
            created = low + int(draw() * (high - 7200 - low))
            return created, min(created + int(draw() * 30 * 86_400), high - 1)
        first = low - int(plan.years * YEAR_SECONDS)
        created = first + int(draw() * (self.now - first))
        if created >= low:
            return created, min(created + self._age(), self.now - 1)
        if draw() < self.touched_share:
            return created, low + int(draw() * (min(high, self.now) - low))
        return created, min(created + self._age(), low - 1)

    def _age(self) -> int:
        roll = self.rng.random()
        if roll < 0.25:
            return int(self.rng.random() * 3600)
        mean_days = 20 if roll < 0.7 else 300
        return int(self.rng.expovariate(1 / (mean_days * 86_400)))

    def _core(self, number: int, created: int, updated: int, is_pull: bool) -> _Core:
        """What an item's place in sorted and filtered lists depends on, and its ids."""
        closed = self.rng.random() < (0.75 if self.now - created > 60 * 86_400 else 0.4)
        comments = int(self.rng.expovariate(1 / 3))
        pull_id = None
        if is_pull:
            pull_id, self.next_pull_id = self.next_pull_id, self.next_pull_id + 1
        issue_id, self.next_issue_id = self.next_issue_id, self.next_issue_id + 1
        return _Core(number, created, updated, closed, comments, is_pull, pull_id, issue_id)

    def render(
        self, ctx: _RepoContext, core: _Core
    ) -> tuple[tuple[bytes, ...] | None, tuple[bytes, ...]]:
        """A pull's fragments (None for an issue) and its issue-list entry's, drawn from the
        item's own seeded stream: the same bytes whenever, in whatever order, and on
        whichever thread objects are first served (the lock keeps the encoder and the stream
        swap to one renderer at a time)."""
        with self.lock:
            saved = self.rng
            self.rng = random.Random(f"gh-simulator:{self.seed}:item:{ctx.info.id}:{core.number}")
            try:
                spec = self._item_spec(ctx, core)
                pull = self._pull(ctx, spec, core.pull_id) if core.pull_id is not None else None
                return pull, self._issue(ctx, spec, core.issue_id)
            finally:
                self.rng = saved

    def _item_spec(self, ctx: _RepoContext, core: _Core) -> _ItemSpec:
        created, updated, is_pull = core.created, core.updated, core.is_pull
        closed_at = None
        if core.closed:
            closed_at = updated if self.rng.random() < 0.6 else self.rng.randint(created, updated)
        user, association = self._author()
        assignees = [self._user(self.rng.choice(self.logins)) for _ in range(self._small(0.3))]
        return _ItemSpec(
            number=core.number,
            created=created,
            updated=updated,
            closed_at=closed_at,
            merged=is_pull and core.closed and self.rng.random() < 0.7,
            draft=is_pull and not core.closed and self.rng.random() < 0.1,
            user=user,
            association=association,
            title=self._title(),
            body=self._body(),
            labels=self.rng.sample(ctx.labels, self._small(0.5, len(ctx.labels))),
            assignees=list(dict.fromkeys(assignees)),
            milestone=self.rng.choice(ctx.milestones) if self.rng.random() < 0.2 else None,
            comments=core.comments,
            is_pull=is_pull,
        )

    def _small(self, p: float, cap: int = 3) -> int:
        """0..cap, geometric: most objects have none or one label/assignee."""
        count = 0
        while count < cap and self.rng.random() < p:
            count += 1
        return count

    def _title(self) -> str:
        title = f"{self.rng.choice(VERBS)} {self.rng.choice(THINGS)}"
        if self.rng.random() < 0.15:
            title += f" — {self.rng.choice(UNICODE)}"
        return title

    def _body(self) -> str | None:
        roll = self.rng.random()
        if roll < 0.15:
            return None
        if roll < 0.2:
            return ""
        pool = self.short_bodies if roll < 0.88 else self.long_bodies
        return self.rng.choice(pool)

    def _body_pools(self) -> tuple[list[str], list[str]]:
        """Bodies are drawn from pools built once: rendering thousands of long markdown
        bodies one by one made big orgs slow to generate, and variety beyond a few hundred
        distinct bodies tests nothing more."""
        short = [
            " ".join(self.rng.choices(WORDS, k=self.rng.randint(5, 40))) + "." for _ in range(200)
        ]
        short += [
            "\r\n".join(self.rng.choices(UNICODE, k=self.rng.randint(2, 6))) for _ in range(50)
        ]
        return short, [self._long_body() for _ in range(40)]

    def _long_body(self) -> str:
        lines = ["## Description", "", "Steps to reproduce:", ""]
        for step in range(1, self.rng.randint(20, 120)):
            words = " ".join(self.rng.choices(WORDS, k=self.rng.randint(8, 20)))
            lines.append(f"{step}. {words}")
        lines += ["", "```python", "raise RuntimeError('boom')", "```", self.rng.choice(UNICODE)]
        return "\n".join(lines)

    def _sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def _pull(self, ctx: _RepoContext, spec: _ItemSpec, pull_id: int) -> tuple[bytes, ...]:
        return self.enc.encode(
            _pull_object(self.org, ctx, spec, pull_id, self._pull_extras(ctx, spec))
        )

    def _pull_extras(self, ctx: _RepoContext, spec: _ItemSpec) -> dict[str, Any]:
        """The pull-only parts that need randomness: refs, shas, reviewers."""
        ref = f"feature/{spec.number}-{self.rng.choice(NOUNS)}"
        head_repo: str | None = ctx.repo_marker if self.rng.random() > 0.03 else None
        reviewers = [self._user(self.rng.choice(self.logins)) for _ in range(self._small(0.3))]
        return {
            "merge_commit_sha": self._sha() if spec.merged or spec.state == "open" else None,
            "requested_reviewers": list(dict.fromkeys(reviewers)) if spec.is_open else [],
            "head": {
                "label": f"{self.org}:{ref}",
                "ref": ref,
                "sha": self._sha(),
                "user": spec.user or self._org_user(),
                "repo": head_repo,
            },
            "base": {
                "label": f"{self.org}:main",
                "ref": "main",
                "sha": self._sha(),
                "user": self._org_user(),
                "repo": ctx.repo_marker,
            },
        }

    def _issue(self, ctx: _RepoContext, spec: _ItemSpec, issue_id: int) -> tuple[bytes, ...]:
        reactions = [int(self.rng.expovariate(1.5)) for _ in range(8)]
        issue_type = None
        if not spec.is_pull and self.rng.random() < 0.1:
            issue_type = _issue_type(self.org_id)
        obj = _issue_object(self.org, ctx, spec, issue_id, reactions, issue_type)
        obj.update(self._issue_state(spec))
        return self.enc.encode(obj)

    def _issue_state(self, spec: _ItemSpec) -> dict[str, Any]:
        reason: str | None
        if spec.state == "closed":
            reason = "completed" if spec.merged or self.rng.random() < 0.8 else "not_planned"
        else:
            reason = "reopened" if self.rng.random() < 0.05 else None
        return {"state_reason": reason}
