"""The ``OrgModel``: the whole synthetic org, its lookups and its mutations.

Lookups answer what the server's repo routes need (by current name, by id, by the renamed
repo's old name, aliases). Mutations are what refresh and hostile tests script: edit objects,
add a repo, a pull or an alias; ``churn`` is one edit of a running torture. ``now`` is the
simulated clock (``clock.SimClock``): scripted edits tick it so they are strictly newer than
anything served before.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gh_collect.simulator.model.clock import SimClock
from gh_collect.simulator.model.generation import _Generator
from gh_collect.simulator.model.records import (
    DEFAULT_ENDPOINTS,
    RENAMED_TO,
    Item,
    RepoData,
    _created_key,
    iso,
    parse_time,
)
from gh_collect.simulator.model.reviews import ManyReviews
from gh_collect.simulator.model.truth import ground_truth

_REPO_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


@dataclass
class OrgModel:
    """The whole synthetic org; build it with ``OrgModel.generate``."""

    org: str
    org_id: int
    clock: SimClock
    repos: tuple[RepoData, ...]
    org_object: tuple[bytes, ...]
    generator: _Generator | None = field(default=None, repr=False)
    edits: int = 0
    aliases: tuple[RepoData, ...] = ()
    many_reviews: dict[int, ManyReviews] = field(default_factory=dict)
    """Pull id -> its many-reviews scenario (``reviews.ManyReviews``); set by the server."""
    _by_name: dict[str, RepoData] = field(default_factory=dict, repr=False)
    _by_id: dict[int, RepoData] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for repo in self.repos:
            self._by_name[repo.current_name.lower()] = repo
            self._by_id[repo.id] = repo

    @classmethod
    def generate(
        cls,
        seed: int,
        n_repos: int,
        org: str = "sample-org",
        now: str = "2026-07-01T00:00:00Z",
        sizes: Sequence[int] | None = None,
        scenarios: bool = True,
        history_years: float = 10.0,
        touched_share: float = 0.03,
    ) -> OrgModel:
        """Same arguments, byte-identical objects: all randomness flows from ``seed``.
        ``scenarios=False`` leaves out the special repos (empty, renamed, vanished, ...):
        benchmarks want an org of ordinary repos only. Ordinary repos hold ``history_years``
        of history before the report year (the year before ``now``); of their items created
        before that year, a share ``touched_share`` is updated in it."""
        history = (history_years, touched_share)
        generator = _Generator(seed, org, parse_time(now), sizes, scenarios, history)
        repos, org_object = generator.build(n_repos)
        return cls(org, generator.org_id, SimClock(generator.now), repos, org_object, generator)

    @property
    def now(self) -> str:
        """The simulated present (``SimClock``), as GitHub writes timestamps."""
        return iso(self.clock.now())

    def repo_by_name(self, name: str) -> RepoData | None:
        """By CURRENT name, case-insensitively as GitHub does; the renamed repo's old name is
        not here (see ``renamed_from``)."""
        return self._by_name.get(name.lower())

    def renamed_from(self, name: str) -> RepoData | None:
        """The repo that used to be called ``name``, if it was renamed."""
        repo = self._by_name.get(RENAMED_TO)
        return repo if repo is not None and repo.name.lower() == name.lower() else None

    def repo_by_id(self, repo_id: int) -> RepoData | None:
        return self._by_id.get(repo_id)

    # -- mutation: what "cron refresh" tests need --------------------------------------------

    def mutate(
        self, update: int = 0, repos: Sequence[str] | None = None, seed: int = 0
    ) -> dict[str, dict[str, list[int]]]:
        """Edit ``update`` existing entries of the issues list (a pull's entry edits the pull
        too: GitHub keeps the twins in sync), chosen by ``seed`` among ``repos`` (default:
        every repo a default harvest collects). Each edit gets a new title suffix and
        ``updated_at`` = the advanced ``now``, one second later than the previous edit, so
        edits are strictly newer than anything served before (the clock ticks one second
        per edit). ``created_at`` never changes,
        so created-ordered pages without an edited item keep their bytes.

        Returns endpoint -> discovered repo name -> ids changed, as the dataset sees them:
        pull ids under ``pulls``; issue ids under ``issues`` only for real issues (the
        edited twin of a pull is served, but the issues dataset drops pull requests).
        """
        if update < 0:
            raise ValueError(f"update must be >= 0, got {update}")
        pool = [(repo, i) for repo in self._mutable(repos) for i in range(len(repo.issues))]
        if update > len(pool):
            raise ValueError(f"cannot edit {update} objects: the chosen repos hold {len(pool)}")
        picked = random.Random(f"gh-simulator:mutate:{seed}").sample(pool, update)
        changed: dict[str, dict[str, list[int]]] = {"pulls": {}, "issues": {}}
        if not picked:
            self.clock.tick()
        for repo, index in picked:
            self._edit(repo, index, changed, iso(self.clock.tick()))
        return changed

    def churn(self, rng: random.Random) -> dict[str, dict[str, list[int]]]:
        """One edit of a running torture: a random entry of the issues list of a repo a
        default harvest collects (old items included, so items enter the window), stamped
        with the clock as it reads (no tick: churn runs every few ms, and a stamp equal to
        the ``Date`` of this second is still never earlier than one served).

        The edit is activity too, drawn from a stream of its own (``rng`` draws exactly
        what it drew before activity existed): often a new conversation comment on the
        item (its ``comments`` count grows) or an edit of one of its comments, for a pull
        sometimes a new review comment, now and then a push to the repo's default branch or
        a new release, all at the same stamp (``RepoActivity``). Returns what ``mutate``
        returns (pulls and issues only)."""
        repos = [repo for repo in self._mutable(None) if repo.issues]
        changed: dict[str, dict[str, list[int]]] = {"pulls": {}, "issues": {}}
        if repos:
            repo = rng.choices(repos, weights=[len(repo.issues) for repo in repos])[0]
            index, stamp = rng.randrange(len(repo.issues)), self.now
            plan = _ActivityPlan.draw(
                random.Random(f"gh-simulator:churn-activity:{self.org_id}:{self.edits + 1}"),
                repo.issues[index].is_pull,
            )
            self._edit(repo, index, changed, stamp, int(plan.new_comment))
            plan.apply(repo, repo.issues[index], stamp)
        return changed

    def add_repo(self, name: str, items: int = 20, seed: int = 0) -> RepoData:
        """A repo joins the org (created, transferred in or made visible): listed from now
        on, with ``items`` pulls and issues timed like the generated ones (a good share in
        the report year, which is what makes a refresh have to harvest it)."""
        if self.generator is None:
            raise RuntimeError("this model was not built by OrgModel.generate: cannot add repos")
        if not _REPO_NAME.match(name) or name.strip(".") == "":
            raise ValueError(f"invalid repo name {name!r}")
        if self.repo_by_name(name) is not None or self.renamed_from(name) is not None:
            raise ValueError(f"a repo named {name!r} already exists")
        if items < 0:
            raise ValueError(f"items must be >= 0, got {items}")
        repo = self.generator.extra_repo(name, items, seed, index=len(self.repos))
        self.repos = tuple(sorted([*self.repos, repo], key=_created_key, reverse=True))
        self._by_name[repo.current_name.lower()] = repo
        self._by_id[repo.id] = repo
        self.org_object = self.generator.org_object(len(self.repos))
        return repo

    def add_pull(self, name: str, created_at: str) -> int:
        """A pull (and its issues-list twin) appears in repo ``name``, created at
        ``created_at``: e.g. one created after every other, so that it lands on a new page
        behind a full last page. Cloned from the repo's newest pull; returns its id."""
        repo = self.repo_by_name(name)
        if repo is None or not repo.pulls or self.generator is None:
            raise ValueError(f"no generated repo named {name!r} with pulls to clone")
        gen, stamp = self.generator, created_at
        number = max(item.number for item in repo.issues) + 1
        model_pull = max(repo.pulls, key=lambda item: item.number)
        twin = next(i for i in repo.issues if i.is_pull and i.number == model_pull.number)
        pull = _clone(model_pull, gen.next_pull_id, number, stamp)
        entry = _clone(twin, gen.next_issue_id, number, stamp)
        gen.next_pull_id, gen.next_issue_id = gen.next_pull_id + 1, gen.next_issue_id + 1
        repo.pulls, repo.issues = (*repo.pulls, pull), (*repo.issues, entry)
        repo._orders.clear()
        return pull.id

    def add_alias(self, owner: str, name: str, of: str) -> RepoData:
        """List one more repo, ``owner/name`` with its own id, serving the pulls and issues
        of repo ``of``: two listed repos with the same ``name`` (another owner) or names
        that differ only in case, as a hostile or odd server may send. Requests for
        ``/repos/{owner}/{name}`` match it exactly (case-sensitively)."""
        target = self.repo_by_name(of)
        if target is None:
            raise ValueError(f"no repo named {of!r} in the simulated org")
        repo_id = max(repo.id for repo in (*self.repos, *self.aliases)) + 1
        listing = json.loads(b"".join(target.listing))
        listing.update(id=repo_id, name=name, full_name=f"{owner}/{name}")
        raw = json.dumps(listing, ensure_ascii=False, separators=(",", ":")).encode()
        alias = replace(
            target, id=repo_id, owner=owner, name=name, current_name=name, role=None,
            listing=(raw,), current=(raw,), _orders={},
        )  # fmt: skip
        self.aliases = (*self.aliases, alias)
        self._by_id[repo_id] = alias
        return alias

    def alias_for(self, owner: str, name: str) -> RepoData | None:
        return next((r for r in self.aliases if (r.owner, r.name) == (owner, name)), None)

    def _mutable(self, names: Sequence[str] | None) -> list[RepoData]:
        if names is None:
            return [repo for repo in self.repos if not repo.vanished and not repo.fork]
        chosen: list[RepoData] = []
        for name in names:
            short = name.rsplit("/", 1)[-1]
            repo = self.repo_by_name(short) or self.renamed_from(short)
            if repo is None:
                raise ValueError(f"no repo named {name!r} in the simulated org")
            chosen.append(repo)
        return chosen

    def _edit(
        self,
        repo: RepoData,
        index: int,
        changed: dict[str, dict[str, list[int]]],
        stamp: str,
        new_comments: int = 0,
    ) -> None:
        """One object (and its twin) edited at ``stamp``, with ``new_comments`` more."""
        self.edits += 1
        suffix = f" (edit {self.edits})"
        entry = _revise(repo.issues[index], stamp, suffix, new_comments)
        repo.replace_item("issues", index, entry)
        if entry.is_pull:
            at = next(i for i, pull in enumerate(repo.pulls) if pull.number == entry.number)
            pull = _revise(repo.pulls[at], stamp, suffix, new_comments)
            repo.replace_item("pulls", at, pull)
            changed["pulls"].setdefault(repo.name, []).append(pull.id)
        else:
            changed["issues"].setdefault(repo.name, []).append(entry.id)

    def ground_truth(
        self,
        base_url: str,
        year: int,
        endpoints: Iterable[str] = DEFAULT_ENDPOINTS,
        repos: Iterable[str] = (),
        exclude: Iterable[str] = (),
        include_forks: bool = False,
        include_archived: bool = True,
    ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """What a correct harvest of ``year`` must hold, per endpoint and discovered name.

        ``endpoints``: any of ``ENDPOINTS`` (default: pulls and issues). Each keeps what
        SPEC's endpoint table says a harvest of ``year`` keeps: pulls, issues (pull requests
        dropped), issue comments and review comments created before the year's end and
        updated at or after its start; commits of the default branch with their committer
        date in the year; releases created in the year (drafts are never served). Repos are
        filtered like gh_collect's target settings. The vanished repo is left out (it cannot
        be harvested); the renamed repo appears under its discovered (old) name; the empty
        repo has no commits (its list answers 409). Objects are as served at ``base_url``,
        newest first: created desc then id desc; commits by committer date desc, then
        history order desc, as the commits list serves them.
        """
        return ground_truth(
            self.repos, base_url, year, endpoints, repos, exclude, include_forks, include_archived
        )


def _revise(item: Item, updated_at: str, suffix: str, new_comments: int = 0) -> Item:
    """The item edited: title suffixed, ``updated_at`` moved, its ``comments`` count grown
    by ``new_comments`` (an issues-list object has one; a pull-request-simple has none);
    every other byte as before."""
    obj = json.loads(b"".join(item.fragments))
    obj["title"] = f"{obj['title']}{suffix}"
    obj["updated_at"] = updated_at
    if new_comments and "comments" in obj:
        obj["comments"] += new_comments
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    comments = item.comments + new_comments
    return replace(item, updated_at=updated_at, comments=comments, encoded=(raw,), render=None)


@dataclass(frozen=True)
class _ActivityPlan:
    """What one churn edit does to its repo's activity, drawn from its own stream."""

    new_comment: bool
    edit_comment: bool
    review_comment: bool
    commit: bool
    release: bool
    pick: float

    @classmethod
    def draw(cls, rng: random.Random, is_pull: bool) -> _ActivityPlan:
        roll = rng.random()
        review, commit, release = rng.random() < 0.25, rng.random() < 0.05, rng.random() < 0.01
        pick = rng.random()
        return cls(roll < 0.45, 0.45 <= roll < 0.6, is_pull and review, commit, release, pick)

    def apply(self, repo: RepoData, entry: Item, stamp: str) -> None:
        """The changes, on ``entry`` (the edited issues-list entry) and its repo."""
        activity, number, is_pull = repo.activity, entry.number, entry.is_pull
        if activity is None:
            return
        if self.new_comment:
            activity.add_comment("issue_comments", number, is_pull, stamp)
        if self.edit_comment:
            activity.edit_comment("issue_comments", number, stamp, self.pick)
        if self.review_comment:
            activity.add_comment("review_comments", number, True, stamp)
        if self.commit:
            activity.add_commit(stamp)
        if self.release:
            activity.add_release(stamp)


def _clone(item: Item, new_id: int, number: int, created_at: str) -> Item:
    """A copy of ``item`` as a new object: its own id and number, created and updated at
    ``created_at``, open."""
    obj = json.loads(b"".join(item.fragments))
    obj.update(id=new_id, number=number, created_at=created_at, updated_at=created_at)
    obj.update(state="open", closed_at=None)
    if "merged_at" in obj:
        obj["merged_at"] = None
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return replace(
        item, id=new_id, number=number, state="open", created_at=created_at,
        updated_at=created_at, encoded=(raw,), render=None,
    )  # fmt: skip
