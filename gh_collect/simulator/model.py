"""The simulated organization: deterministic repos, pull requests and issues from a seed.

Everything here is generated once, up front, so that serving a page is slicing a precomputed
list and joining precomputed JSON bytes. Objects follow the shapes of GitHub's recorded
responses (minimal-repository, pull-request-simple, issue-items) because the harvester must be
tested against what GitHub really sends, including ghost users (``user: null``), long unicode
bodies and pull requests inside the issues list.

Two tricks keep big orgs cheap:

* Shared sub-objects (users, repos embedded in ``head``/``base``, labels, milestones) are
  serialised once and referenced by every object that embeds them (``_Encoder``).
* API URLs inside objects are written with ``API_PLACEHOLDER``; the server swaps in the base
  URL the request used, so objects point at the simulator (never at the real GitHub) whatever
  port it got.
"""

from __future__ import annotations

import base64
import bisect
import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from functools import partial
from typing import Any
from urllib.parse import quote

API_PLACEHOLDER = "http://api.gh-simulator.invalid"
API_PLACEHOLDER_BYTES = API_PLACEHOLDER.encode()
WEB = "https://github.com"
DATA_START = "2022-01-01T00:00:00Z"

SCENARIO_REPOS: dict[str, str] = {
    "empty": "empty-repo",
    "renamed": "renamed-repo",
    "vanished": "vanished-repo",
    "hundred": "hundred-repo",
    "two_hundred": "two-hundred-repo",
    "fork": "fork-repo",
    "archived": "archived-repo",
}
RENAMED_TO = "renamed-repo-moved"
"""The renamed repo's current name: served by ``/repositories/{id}`` and ``/repos/{org}/<this>``."""

MIN_REPOS_FOR_SCENARIOS = 8
ENDPOINTS = ("pulls", "issues")
_REPO_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")

SortKey = tuple[str | int, int]

# ---------------------------------------------------------------------------------------------
# time helpers


def parse_time(text: str) -> int:
    """ISO 8601 (``Z`` or offset, date-only allowed) to UTC epoch seconds; ValueError if bad."""
    value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def iso(ts: int) -> str:
    """GitHub's timestamp format: second precision, UTC, ``Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def year_start(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp())


# ---------------------------------------------------------------------------------------------
# the data


@dataclass(frozen=True, slots=True)
class Item:
    """One pull, or one entry of the issues list, with what sorting and filtering need."""

    id: int
    number: int
    state: str
    created_at: str
    updated_at: str
    comments: int
    is_pull: bool
    fragments: tuple[bytes, ...]

    @property
    def long_running(self) -> int:
        return parse_time(self.updated_at) - parse_time(self.created_at)

    def to_bytes(self, base_url: str) -> bytes:
        """The object as served to a request whose API base is ``base_url``."""
        return b"".join(self.fragments).replace(API_PLACEHOLDER_BYTES, base_url.encode())

    def to_json(self, base_url: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.to_bytes(base_url))
        return loaded


@dataclass(frozen=True)
class Selection:
    """Items matching one list query, ascending by (sort key, id); keys for cursor bisects."""

    items: tuple[Item, ...]
    keys: tuple[SortKey, ...]

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class RepoData:
    """A repo: its discovery listing (old name if renamed) and its current, served form."""

    index: int
    id: int
    owner: str
    name: str
    current_name: str
    role: str | None
    fork: bool
    archived: bool
    private: bool
    created_at: str
    updated_at: str
    pushed_at: str | None
    default_branch: str
    listing: tuple[bytes, ...]
    current: tuple[bytes, ...]
    pulls: tuple[Item, ...]
    issues: tuple[Item, ...]
    _orders: dict[tuple[str, str], tuple[Item, ...]] = field(default_factory=dict, repr=False)

    @property
    def full_name(self) -> str:
        """As discovery lists it (the old name, for the renamed repo)."""
        return f"{self.owner}/{self.name}"

    @property
    def vanished(self) -> bool:
        return self.role == "vanished"

    @property
    def renamed(self) -> bool:
        return self.role == "renamed"

    def select(self, kind: str, state: str, sort: str, since: str | None) -> Selection:
        """Items of ``kind`` matching ``state``/``since``, ascending by ``sort`` then id."""
        ordered = self._ordered(kind, sort)
        key = SORT_KEYS[sort]
        chosen = tuple(
            item
            for item in ordered
            if (state == "all" or item.state == state)
            and (since is None or item.updated_at >= since)
        )
        return Selection(chosen, tuple((key(item), item.id) for item in chosen))

    def _ordered(self, kind: str, sort: str) -> tuple[Item, ...]:
        """Sorted once per (kind, sort): later queries only filter, never sort."""
        cached = self._orders.get((kind, sort))
        if cached is None:
            key = SORT_KEYS[sort]
            source = self.pulls if kind == "pulls" else self.issues
            cached = tuple(sorted(source, key=lambda item: (key(item), item.id)))
            self._orders[(kind, sort)] = cached
        return cached


SORT_KEYS: dict[str, Callable[[Item], str | int]] = {
    "created": lambda item: item.created_at,
    "updated": lambda item: item.updated_at,
    "popularity": lambda item: item.comments,
    "comments": lambda item: item.comments,
    "long-running": lambda item: item.long_running,
}


@dataclass
class OrgModel:
    """The whole synthetic org; build it with ``OrgModel.generate``."""

    org: str
    org_id: int
    now: str
    repos: tuple[RepoData, ...]
    org_object: tuple[bytes, ...]
    generator: _Generator | None = field(default=None, repr=False)
    edits: int = 0
    aliases: tuple[RepoData, ...] = ()
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
    ) -> OrgModel:
        """Same arguments, byte-identical objects: all randomness flows from ``seed``.
        ``scenarios=False`` leaves out the special repos (empty, renamed, vanished, ...):
        benchmarks want an org of ordinary repos only."""
        return _Generator(seed, org, parse_time(now), sizes, scenarios).build(n_repos)

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
        edits are strictly newer than anything served before. ``created_at`` never changes,
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
            self._tick()
        for repo, index in picked:
            self._edit(repo, index, changed)
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

    def _tick(self) -> str:
        self.now = iso(parse_time(self.now) + 1)
        return self.now

    def _edit(self, repo: RepoData, index: int, changed: dict[str, dict[str, list[int]]]) -> None:
        """One object (and its twin) edited; the repo's cached orderings are dropped."""
        self.edits += 1
        stamp, suffix = self._tick(), f" (edit {self.edits})"
        entry = _revise(repo.issues[index], stamp, suffix)
        repo.issues = (*repo.issues[:index], entry, *repo.issues[index + 1 :])
        if entry.is_pull:
            at = next(i for i, pull in enumerate(repo.pulls) if pull.number == entry.number)
            pull = _revise(repo.pulls[at], stamp, suffix)
            repo.pulls = (*repo.pulls[:at], pull, *repo.pulls[at + 1 :])
            changed["pulls"].setdefault(repo.name, []).append(pull.id)
        else:
            changed["issues"].setdefault(repo.name, []).append(entry.id)
        repo._orders.clear()

    def ground_truth(
        self,
        base_url: str,
        year: int,
        endpoints: Iterable[str] = ENDPOINTS,
        repos: Iterable[str] = (),
        exclude: Iterable[str] = (),
        include_forks: bool = False,
        include_archived: bool = True,
    ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """What a correct harvest of ``year`` must hold, per endpoint and discovered name.

        Repos are filtered like gh_collect's target settings. The vanished repo is left out
        (it cannot be harvested); the renamed repo appears under its discovered (old) name.
        Objects come in the default list order (created desc, then id desc).
        """
        selected = select_repos(self.repos, repos, exclude, include_forks, include_archived)
        low, high = iso(year_start(year)), iso(year_start(year + 1))
        truth: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for endpoint in endpoints:
            if endpoint not in ENDPOINTS:
                raise ValueError(f"unknown endpoint {endpoint!r}: use one of {ENDPOINTS}")
            truth[endpoint] = {
                repo.name: [
                    item.to_json(base_url) for item in _window_items(repo, endpoint, low, high)
                ]
                for repo in selected
                if not repo.vanished
            }
        return truth


def select_repos(
    repos: Iterable[RepoData],
    names: Iterable[str],
    exclude: Iterable[str],
    include_forks: bool,
    include_archived: bool,
) -> list[RepoData]:
    """The target filter, as gh_collect applies it: allowlist by name or owner/name
    (case-insensitive, as GitHub names are), exclude globs on the name, forks, archived."""
    allow, globs = {name.lower() for name in names}, list(exclude)
    return [
        repo
        for repo in repos
        if (not allow or repo.name.lower() in allow or repo.full_name.lower() in allow)
        and not any(fnmatchcase(repo.name, pattern) for pattern in globs)
        and (include_forks or not repo.fork)
        and (include_archived or not repo.archived)
    ]


def _created_key(repo: RepoData) -> tuple[str, int]:
    """The model keeps repos newest first by this key, as ``generate`` builds them."""
    return (repo.created_at, repo.id)


def _revise(item: Item, updated_at: str, suffix: str) -> Item:
    """The item edited: title suffixed, ``updated_at`` moved; every other byte as before."""
    obj = json.loads(b"".join(item.fragments))
    obj["title"] = f"{obj['title']}{suffix}"
    obj["updated_at"] = updated_at
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return replace(item, updated_at=updated_at, fragments=(raw,))


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
        updated_at=created_at, fragments=(raw,),
    )  # fmt: skip


def _window_items(repo: RepoData, endpoint: str, low: str, high: str) -> list[Item]:
    source = repo.pulls if endpoint == "pulls" else [i for i in repo.issues if not i.is_pull]
    chosen = [item for item in source if item.created_at < high and item.updated_at >= low]
    return sorted(chosen, key=lambda item: (item.created_at, item.id), reverse=True)


# ---------------------------------------------------------------------------------------------
# cursors


def encode_cursor(key: SortKey) -> str:
    """Opaque like GitHub's: the last item's sort key, never an offset."""
    raw = json.dumps(["cursor:v2", key[0], key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> SortKey:
    """ValueError for anything this simulator did not issue."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        tag, value, item_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc
    if tag != "cursor:v2" or not isinstance(value, str | int) or not isinstance(item_id, int):
        raise ValueError(f"invalid cursor {cursor!r}")
    return (value, item_id)


def position_after(keys: Sequence[SortKey], cursor: SortKey, descending: bool) -> int:
    """Where items strictly after ``cursor`` start, counted in traversal order (ascending
    ``keys`` walked backwards when ``descending``); a cursor is a key, so the position stays
    right when items are inserted elsewhere."""
    _check_cursor(keys, cursor)
    if descending:
        return len(keys) - bisect.bisect_left(keys, cursor)
    return bisect.bisect_right(keys, cursor)


def position_before(keys: Sequence[SortKey], cursor: SortKey, descending: bool) -> int:
    """Where items strictly before ``cursor`` end, in traversal order."""
    _check_cursor(keys, cursor)
    if descending:
        return len(keys) - bisect.bisect_right(keys, cursor)
    return bisect.bisect_left(keys, cursor)


def _check_cursor(keys: Sequence[SortKey], cursor: SortKey) -> None:
    """A cursor from another sort (string key vs integer key) cannot be compared."""
    if keys and type(keys[0][0]) is not type(cursor[0]):
        raise ValueError("cursor does not belong to this sort order")


# ---------------------------------------------------------------------------------------------
# generation

_MARK = re.compile(rb'"\\u0000S(\d+)\\u0000"')

_ADJECTIVES = (
    "amber", "brisk", "cobalt", "dusty", "eager", "fuzzy", "gentle", "hollow", "icy", "jolly",
    "keen", "lunar", "mellow", "nimble", "olive", "proud", "quiet", "rapid", "silent", "tidy",
)  # fmt: skip
_NOUNS = (
    "api", "bridge", "cache", "daemon", "engine", "forge", "gateway", "hub", "index", "jobs",
    "kernel", "ledger", "mesh", "notebook", "orbit", "parser", "queue", "router", "sdk", "toolkit",
)  # fmt: skip
_LOGINS = (
    "octocat", "hubot", "monalisa", "mona-dev", "defunkt", "pjhyett", "mojombo", "tpope",
    "amelia-ng", "bjorn-k", "chen-wei", "dario99", "esra-yilmaz", "farah-q", "goran-s",
    "hiro-t", "ines-m", "jules", "kwame-a", "lena-v", "mateus", "nadia-r", "oskar", "priya-d",
)  # fmt: skip
_BOTS = ("dependabot[bot]", "github-actions[bot]", "renovate[bot]")
_ASSOCIATIONS = ("OWNER", "MEMBER", "MEMBER", "COLLABORATOR", "CONTRIBUTOR", "NONE")
_LABELS = (
    ("bug", "d73a4a", "Something isn't working"),
    ("enhancement", "a2eeef", "New feature or request"),
    ("documentation", "0075ca", "Improvements or additions to documentation"),
    ("good first issue", "7057ff", "Good for newcomers"),
    ("help wanted", "008672", "Extra attention is needed"),
    ("question", "d876e3", "Further information is requested"),
    ("dependencies", "0366d6", "Pull requests that update a dependency file"),
    ("needs: triage 🔍", "ededed", None),
)
_VERBS = ("Fix", "Add", "Remove", "Refactor", "Document", "Speed up", "Handle", "Support")
_THINGS = (
    "pagination", "rate limits", "retry logic", "the parser", "unicode titles", "timeouts",
    "the CLI", "config loading", "error messages", "Windows paths", "the cache", "logging",
)  # fmt: skip
_UNICODE = (
    "Ünïcödé façade naïve café",
    "日本語のテキストと絵文字 🎌",
    "Привет, мир — «кавычки»",
    "مرحبا بالعالم (RTL)",
    "🚀✨🐛🔥 👍🏽 👨‍👩‍👧 🏳️‍🌈",
    "quotes \"double\" 'single' \\ backslash </script> \t tab",
    "zero\u200bwidth and line\u2028separator",
    "e\u0301 combining accents",
)
_WORDS = (
    "the", "request", "fails", "when", "page", "limit", "is", "reached", "and", "we", "should",
    "retry", "after", "reset", "header", "with", "backoff", "cursor", "token", "harvest", "org",
)  # fmt: skip


class _Encoder:
    """JSON encoding with shared sub-objects stored once and referenced by every embedder."""

    def __init__(self) -> None:
        self._shared: list[bytes] = []
        self._by_key: dict[str, str] = {}

    def share(self, key: str, build: Callable[[], object]) -> str:
        """A marker standing for the object; ``build`` runs once per key."""
        marker = self._by_key.get(key)
        if marker is None:
            self._shared.append(b"".join(self.encode(build())))
            marker = f"\x00S{len(self._shared) - 1}\x00"
            self._by_key[key] = marker
        return marker

    def encode(self, value: object) -> tuple[bytes, ...]:
        raw = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        parts = _MARK.split(raw)
        out = [self._shared[int(part)] if i % 2 else part for i, part in enumerate(parts)]
        return tuple(part for part in out if part)


def org_simple(org: str, org_id: int) -> dict[str, Any]:
    """GitHub's organization-simple object (lists such as /users/{user}/orgs); the full
    organization object (GET /orgs/{org}) extends it."""
    api = f"{API_PLACEHOLDER}/orgs/{org}"
    return {
        "login": org,
        "id": org_id,
        "node_id": _node_id("Organization", org_id),
        "url": api,
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events",
        "hooks_url": f"{api}/hooks",
        "issues_url": f"{api}/issues",
        "members_url": f"{api}/members{{/member}}",
        "public_members_url": f"{api}/public_members{{/member}}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{org_id}?v=4",
        "description": "A simulated organization for gh_collect",
    }


def _node_id(kind: str, ident: int) -> str:
    """Legacy global node ids: base64 of ``0<len>:<Type><id>``, as older objects carry."""
    return base64.b64encode(f"0{len(kind)}:{kind}{ident}".encode()).decode()


@dataclass
class _Plan:
    """What one repo will be before its objects are rendered."""

    index: int
    name: str
    role: str | None
    n_items: int
    pull_share: float
    in_window_only: bool


class _Generator:
    """Builds an OrgModel; one instance, one seed, one pass."""

    def __init__(
        self, seed: int, org: str, now: int, sizes: Sequence[int] | None, scenarios: bool = True
    ) -> None:
        self.seed, self.org, self.now, self.scenarios = seed, org, now, scenarios
        self.rng = random.Random(f"gh-simulator:{seed}")
        self.enc = _Encoder()
        self.sizes = tuple(sizes) if sizes else None
        self.org_id = 9_000_000 + seed % 100_000
        self.next_pull_id = 1_500_000_000 + (seed % 1000) * 1_000_000
        self.next_issue_id = 2_500_000_000 + (seed % 1000) * 1_000_000
        self.year = datetime.fromtimestamp(now, UTC).year - 1
        self.logins = self._user_pool()
        self.short_bodies, self.long_bodies = self._body_pools()

    def build(self, n_repos: int) -> OrgModel:
        repos = [self._repo(plan) for plan in self._plans(n_repos)]
        repos.sort(key=_created_key, reverse=True)
        org_object = self._org_object(len(repos))
        return OrgModel(self.org, self.org_id, iso(self.now), tuple(repos), org_object, self)

    def extra_repo(self, name: str, n_items: int, seed: int, index: int) -> RepoData:
        """A repo added after generation: its own seeded stream, so adding it leaves every
        existing object as it was, and ids continue where generation stopped."""
        self.rng = random.Random(f"gh-simulator:{self.seed}:add:{seed}:{name}")
        return self._repo(_Plan(index, name, None, n_items, 0.45, False))

    def org_object(self, n_repos: int) -> tuple[bytes, ...]:
        return self._org_object(n_repos)

    def user_object(self, login: str) -> dict[str, Any]:
        """The simple user object (API URLs as ``API_PLACEHOLDER``), for detail routes."""
        return self._user_object(login)

    @staticmethod
    def known_logins() -> frozenset[str]:
        """Every login the org's objects can mention."""
        return frozenset((*_LOGINS, *_BOTS))

    # -- plans -------------------------------------------------------------------------------

    def _plans(self, n_repos: int) -> list[_Plan]:
        plans: list[_Plan] = []
        if self.scenarios and n_repos >= MIN_REPOS_FOR_SCENARIOS:
            plans = [self._scenario_plan(i, role) for i, role in enumerate(SCENARIO_REPOS)]
        names = self._generic_names(n_repos - len(plans))
        for k, name in enumerate(names):
            size = self.sizes[k % len(self.sizes)] if self.sizes else self._random_size()
            plans.append(_Plan(len(plans), name, None, size, 0.45, False))
        return plans

    def _scenario_plan(self, index: int, role: str) -> _Plan:
        name = SCENARIO_REPOS[role]
        if role == "empty":
            return _Plan(index, name, role, 0, 0.0, False)
        if role in ("hundred", "two_hundred"):
            count = 100 if role == "hundred" else 200
            return _Plan(index, name, role, 2 * count, 0.5, True)
        return _Plan(index, name, role, self.rng.randint(12, 60), 0.45, False)

    def _generic_names(self, count: int) -> list[str]:
        names: list[str] = []
        while len(names) < count:
            base = f"{self.rng.choice(_ADJECTIVES)}-{self.rng.choice(_NOUNS)}"
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
        logins = list(_LOGINS)
        self.rng.shuffle(logins)
        return logins

    def _user(self, login: str) -> str:
        return self.enc.share(f"user:{login}", lambda: self._user_object(login))

    def _user_object(self, login: str, kind: str | None = None) -> dict[str, Any]:
        uid = 1_000_000 + sum(ord(c) * 31**i for i, c in enumerate(login)) % 90_000_000
        kind = kind or ("Bot" if login.endswith("[bot]") else "User")
        api = f"{API_PLACEHOLDER}/users/{login}"
        return {
            "login": login,
            "id": uid,
            "node_id": _node_id(kind, uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": f"{WEB}/{login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": kind,
            "user_view_type": "public",
            "site_admin": False,
        }

    def _org_user(self) -> str:
        return self.enc.share("org-user", lambda: self._org_user_object())

    def _org_user_object(self) -> dict[str, Any]:
        user = self._user_object(self.org, "Organization")
        user["id"] = self.org_id
        user["node_id"] = _node_id("Organization", self.org_id)
        user["avatar_url"] = f"https://avatars.githubusercontent.com/u/{self.org_id}?v=4"
        return user

    def _author(self) -> tuple[str | None, str]:
        """A (user marker, author_association); None is a deleted ("ghost") account."""
        roll = self.rng.random()
        if roll < 0.04:
            return None, "NONE"
        if roll < 0.14:
            return self._user(self.rng.choice(_BOTS)), "CONTRIBUTOR"
        index = min(int(self.rng.expovariate(0.25)), len(self.logins) - 1)
        login = self.logins[index]
        return self._user(login), _ASSOCIATIONS[index % len(_ASSOCIATIONS)]

    # -- org and repos -----------------------------------------------------------------------

    def _org_object(self, n_repos: int) -> tuple[bytes, ...]:
        return self.enc.encode(
            {
                **org_simple(self.org, self.org_id),
                "name": self.org,
                "is_verified": False,
                "has_organization_projects": True,
                "has_repository_projects": True,
                "public_repos": n_repos,
                "public_gists": 0,
                "followers": 0,
                "following": 0,
                "html_url": f"{WEB}/{self.org}",
                "created_at": "2015-03-01T12:00:00Z",
                "updated_at": iso(self.now - 86_400),
                "archived_at": None,
                "type": "Organization",
            }
        )

    def _repo(self, plan: _Plan) -> RepoData:
        repo_id = 600_000_000 + (self.seed % 1000) * 10_000 + plan.index * 7 + 1
        current_name = RENAMED_TO if plan.role == "renamed" else plan.name
        created = self.rng.randint(year_start(2015), year_start(2022))
        info = _RepoInfo(repo_id, current_name, plan.role, created)
        repo_marker = self.enc.share(f"repo:{repo_id}", lambda: self._repo_object(info))
        pulls, issues = self._items(plan, info, repo_marker)
        updated = max([created, *(parse_time(i.updated_at) for i in issues)])
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
        )

    def _repo_object(self, info: _RepoInfo) -> dict[str, Any]:
        full = f"{self.org}/{info.name}"
        api = f"{API_PLACEHOLDER}/repos/{full}"
        updated = iso(info.updated)
        obj: dict[str, Any] = {
            "id": info.id,
            "node_id": _node_id("Repository", info.id),
            "name": info.name,
            "full_name": full,
            "private": False,
            "owner": self._org_user(),
            "html_url": f"{WEB}/{full}",
            "description": f"Simulated repository {info.name}",
            "fork": info.role == "fork",
            "url": api,
        }
        obj.update(_repo_urls(api, full))
        obj.update(
            {
                "created_at": iso(info.created),
                "updated_at": updated,
                "pushed_at": None if info.role == "empty" else iso(info.pushed),
                "homepage": None,
                "size": 0 if info.role == "empty" else 100 + info.id % 5000,
                "stargazers_count": info.id % 97,
                "watchers_count": info.id % 97,
                "language": "Python",
                "has_issues": info.role != "fork",
                "has_projects": True,
                "has_downloads": True,
                "has_wiki": True,
                "has_pages": False,
                "has_discussions": False,
                "forks_count": info.id % 13,
                "mirror_url": None,
                "archived": info.role == "archived",
                "disabled": False,
                "open_issues_count": info.open_issues,
                "license": None,
                "allow_forking": True,
                "is_template": False,
                "web_commit_signoff_required": False,
                "topics": ["simulated", "gh-collect"],
                "visibility": "public",
                "forks": info.id % 13,
                "open_issues": info.open_issues,
                "watchers": info.id % 97,
                "default_branch": "main",
                "permissions": {
                    "admin": False,
                    "maintain": False,
                    "push": True,
                    "triage": True,
                    "pull": True,
                },
            }
        )
        return obj

    def _full_repo_object(self, info: _RepoInfo) -> dict[str, Any]:
        obj = self._repo_object(info)
        obj["organization"] = self._org_user()
        obj["network_count"] = info.id % 13
        obj["subscribers_count"] = info.id % 11
        return obj

    # -- items -------------------------------------------------------------------------------

    def _items(
        self, plan: _Plan, info: _RepoInfo, repo_marker: str
    ) -> tuple[list[Item], list[Item]]:
        """Pulls and the issues list (pulls included), numbered in creation order."""
        times = sorted(self._times(plan.in_window_only) for _ in range(plan.n_items))
        kinds = self._kinds(plan)
        ctx = _RepoContext(info, repo_marker, self._labels(info), self._milestones(info))
        pulls: list[Item] = []
        issues: list[Item] = []
        for number, ((created, updated), is_pull) in enumerate(zip(times, kinds, strict=True), 1):
            spec = self._item_spec(ctx, number, created, updated, is_pull)
            if is_pull:
                pulls.append(self._pull(ctx, spec))
            issues.append(self._issue(ctx, spec))
        return pulls, issues

    def _kinds(self, plan: _Plan) -> list[bool]:
        if plan.in_window_only:
            kinds = [True] * (plan.n_items // 2) + [False] * (plan.n_items - plan.n_items // 2)
            self.rng.shuffle(kinds)
            return kinds
        return [self.rng.random() < plan.pull_share for _ in range(plan.n_items)]

    def _times(self, in_window_only: bool) -> tuple[int, int]:
        """(created, updated): a good share in the report year, plenty before and after, and
        old items touched in the year, so the window filter really matters."""
        low, high = year_start(self.year), year_start(self.year + 1)
        if in_window_only:
            created = self.rng.randint(low, high - 7200)
            return created, min(created + self.rng.randint(0, 30 * 86_400), high - 1)
        roll = self.rng.random()
        if roll < 0.35:
            created = self.rng.randint(low, high - 1)
        elif roll < 0.75 or high >= self.now:
            created = self.rng.randint(parse_time(DATA_START), low - 1)
        else:
            created = self.rng.randint(high, self.now - 1)
        created = min(created, self.now - 1)
        return created, min(created + self._age(), self.now - 1)

    def _age(self) -> int:
        roll = self.rng.random()
        if roll < 0.25:
            return self.rng.randint(0, 3600)
        mean_days = 20 if roll < 0.7 else 300
        return int(self.rng.expovariate(1 / (mean_days * 86_400)))

    def _item_spec(
        self, ctx: _RepoContext, number: int, created: int, updated: int, is_pull: bool
    ) -> _ItemSpec:
        closed = self.rng.random() < (0.75 if self.now - created > 60 * 86_400 else 0.4)
        closed_at = None
        if closed:
            closed_at = updated if self.rng.random() < 0.6 else self.rng.randint(created, updated)
        user, association = self._author()
        assignees = [self._user(self.rng.choice(self.logins)) for _ in range(self._small(0.3))]
        return _ItemSpec(
            number=number,
            created=created,
            updated=updated,
            closed_at=closed_at,
            merged=is_pull and closed and self.rng.random() < 0.7,
            draft=is_pull and not closed and self.rng.random() < 0.1,
            user=user,
            association=association,
            title=self._title(),
            body=self._body(),
            labels=self.rng.sample(ctx.labels, self._small(0.5, len(ctx.labels))),
            assignees=list(dict.fromkeys(assignees)),
            milestone=self.rng.choice(ctx.milestones) if self.rng.random() < 0.2 else None,
            comments=int(self.rng.expovariate(1 / 3)),
            is_pull=is_pull,
        )

    def _small(self, p: float, cap: int = 3) -> int:
        """0..cap, geometric: most objects have none or one label/assignee."""
        count = 0
        while count < cap and self.rng.random() < p:
            count += 1
        return count

    def _title(self) -> str:
        title = f"{self.rng.choice(_VERBS)} {self.rng.choice(_THINGS)}"
        if self.rng.random() < 0.15:
            title += f" — {self.rng.choice(_UNICODE)}"
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
            " ".join(self.rng.choices(_WORDS, k=self.rng.randint(5, 40))) + "." for _ in range(200)
        ]
        short += [
            "\r\n".join(self.rng.choices(_UNICODE, k=self.rng.randint(2, 6))) for _ in range(50)
        ]
        return short, [self._long_body() for _ in range(40)]

    def _long_body(self) -> str:
        lines = ["## Description", "", "Steps to reproduce:", ""]
        for step in range(1, self.rng.randint(20, 120)):
            words = " ".join(self.rng.choices(_WORDS, k=self.rng.randint(8, 20)))
            lines.append(f"{step}. {words}")
        lines += ["", "```python", "raise RuntimeError('boom')", "```", self.rng.choice(_UNICODE)]
        return "\n".join(lines)

    def _sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def _labels(self, info: _RepoInfo) -> list[str]:
        return [
            self.enc.share(f"label:{info.id}:{i}", partial(self._label, info, i))
            for i in range(len(_LABELS))
        ]

    def _label(self, info: _RepoInfo, index: int) -> dict[str, Any]:
        name, color, description = _LABELS[index]
        label_id = info.id * 10 + index
        return {
            "id": label_id,
            "node_id": _node_id("Label", label_id),
            "url": f"{API_PLACEHOLDER}/repos/{self.org}/{info.name}/labels/{quote(name)}",
            "name": name,
            "color": color,
            "default": index < 7,
            "description": description,
        }

    def _milestones(self, info: _RepoInfo) -> list[str]:
        return [
            self.enc.share(f"milestone:{info.id}:{n}", partial(self._milestone, info, n))
            for n in (1, 2, 3)
        ]

    def _milestone(self, info: _RepoInfo, number: int) -> dict[str, Any]:
        api = f"{API_PLACEHOLDER}/repos/{self.org}/{info.name}/milestones/{number}"
        ms_id = info.id * 10 + number
        created = info.created + number * 86_400
        return {
            "url": api,
            "html_url": f"{WEB}/{self.org}/{info.name}/milestone/{number}",
            "labels_url": f"{api}/labels",
            "id": ms_id,
            "node_id": _node_id("Milestone", ms_id),
            "number": number,
            "title": f"v{number}.0",
            "description": f"Release {number}.0",
            "creator": self._user(self.logins[0]),
            "open_issues": number * 3,
            "closed_issues": number * 7,
            "state": "open" if number == 3 else "closed",
            "created_at": iso(created),
            "updated_at": iso(created + 3600),
            "due_on": None,
            "closed_at": None if number == 3 else iso(created + 7200),
        }

    def _pull(self, ctx: _RepoContext, spec: _ItemSpec) -> Item:
        pull_id = self.next_pull_id
        self.next_pull_id += 1
        obj = _pull_object(self.org, ctx, spec, pull_id, self._pull_extras(ctx, spec))
        return Item(
            id=pull_id,
            number=spec.number,
            state=spec.state,
            created_at=iso(spec.created),
            updated_at=iso(spec.updated),
            comments=spec.comments,
            is_pull=True,
            fragments=self.enc.encode(obj),
        )

    def _pull_extras(self, ctx: _RepoContext, spec: _ItemSpec) -> dict[str, Any]:
        """The pull-only parts that need randomness: refs, shas, reviewers."""
        ref = f"feature/{spec.number}-{self.rng.choice(_NOUNS)}"
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

    def _issue(self, ctx: _RepoContext, spec: _ItemSpec) -> Item:
        issue_id = self.next_issue_id
        self.next_issue_id += 1
        reactions = [int(self.rng.expovariate(1.5)) for _ in range(8)]
        issue_type = None
        if not spec.is_pull and self.rng.random() < 0.1:
            issue_type = _issue_type(self.org_id)
        obj = _issue_object(self.org, ctx, spec, issue_id, reactions, issue_type)
        obj.update(self._issue_state(spec))
        return Item(
            id=issue_id,
            number=spec.number,
            state=spec.state,
            created_at=iso(spec.created),
            updated_at=iso(spec.updated),
            comments=spec.comments,
            is_pull=spec.is_pull,
            fragments=self.enc.encode(obj),
        )

    def _issue_state(self, spec: _ItemSpec) -> dict[str, Any]:
        reason: str | None
        if spec.state == "closed":
            reason = "completed" if spec.merged or self.rng.random() < 0.8 else "not_planned"
        else:
            reason = "reopened" if self.rng.random() < 0.05 else None
        return {"state_reason": reason}


@dataclass
class _RepoInfo:
    id: int
    name: str
    role: str | None
    created: int
    updated: int = 0
    pushed: int = 0
    open_issues: int = 0


@dataclass
class _RepoContext:
    info: _RepoInfo
    repo_marker: str
    labels: list[str]
    milestones: list[str]


@dataclass
class _ItemSpec:
    """The fields a pull and its issue-list entry share."""

    number: int
    created: int
    updated: int
    closed_at: int | None
    merged: bool
    user: str | None
    association: str
    title: str
    body: str | None
    labels: list[str]
    assignees: list[str]
    milestone: str | None
    comments: int
    is_pull: bool
    draft: bool

    @property
    def state(self) -> str:
        return "open" if self.closed_at is None else "closed"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


def _repo_urls(api: str, full: str) -> dict[str, str]:
    """The URL templates every repository object carries, in GitHub's order."""
    names = (
        ("forks_url", "/forks"), ("keys_url", "/keys{/key_id}"),
        ("collaborators_url", "/collaborators{/collaborator}"), ("teams_url", "/teams"),
        ("hooks_url", "/hooks"), ("issue_events_url", "/issues/events{/number}"),
        ("events_url", "/events"), ("assignees_url", "/assignees{/user}"),
        ("branches_url", "/branches{/branch}"), ("tags_url", "/tags"),
        ("blobs_url", "/git/blobs{/sha}"), ("git_tags_url", "/git/tags{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"), ("trees_url", "/git/trees{/sha}"),
        ("statuses_url", "/statuses/{sha}"), ("languages_url", "/languages"),
        ("stargazers_url", "/stargazers"), ("contributors_url", "/contributors"),
        ("subscribers_url", "/subscribers"), ("subscription_url", "/subscription"),
        ("commits_url", "/commits{/sha}"), ("git_commits_url", "/git/commits{/sha}"),
        ("comments_url", "/comments{/number}"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("contents_url", "/contents/{+path}"), ("compare_url", "/compare/{base}...{head}"),
        ("merges_url", "/merges"), ("archive_url", "/{archive_format}{/ref}"),
        ("downloads_url", "/downloads"), ("issues_url", "/issues{/number}"),
        ("pulls_url", "/pulls{/number}"), ("milestones_url", "/milestones{/number}"),
        ("notifications_url", "/notifications{?since,all,participating}"),
        ("labels_url", "/labels{/name}"), ("releases_url", "/releases{/id}"),
        ("deployments_url", "/deployments"),
    )  # fmt: skip
    urls = {key: f"{api}{suffix}" for key, suffix in names}
    urls.update(
        {
            "git_url": f"git://github.com/{full}.git",
            "ssh_url": f"git@github.com:{full}.git",
            "clone_url": f"{WEB}/{full}.git",
            "svn_url": f"{WEB}/{full}",
        }
    )
    return urls


def _issue_type(org_id: int) -> dict[str, Any]:
    type_id = org_id * 10 + 1
    return {
        "id": type_id,
        "node_id": _node_id("IssueType", type_id),
        "name": "Bug",
        "description": "An unexpected problem or behavior",
        "color": "red",
        "created_at": "2024-10-01T00:00:00Z",
        "updated_at": "2024-10-01T00:00:00Z",
        "is_enabled": True,
    }


def _pull_object(
    org: str, ctx: _RepoContext, spec: _ItemSpec, pull_id: int, extras: dict[str, Any]
) -> dict[str, Any]:
    """pull-request-simple, field for field."""
    name, n = ctx.info.name, spec.number
    api = f"{API_PLACEHOLDER}/repos/{org}/{name}"
    html = f"{WEB}/{org}/{name}/pull/{n}"
    head_sha = extras["head"]["sha"]
    return {
        "url": f"{api}/pulls/{n}",
        "id": pull_id,
        "node_id": _node_id("PullRequest", pull_id),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": f"{api}/issues/{n}",
        "commits_url": f"{api}/pulls/{n}/commits",
        "review_comments_url": f"{api}/pulls/{n}/comments",
        "review_comment_url": f"{api}/pulls/comments{{/number}}",
        "comments_url": f"{api}/issues/{n}/comments",
        "statuses_url": f"{api}/statuses/{head_sha}",
        "number": n,
        "state": spec.state,
        "locked": False,
        "title": spec.title,
        "user": spec.user,
        "body": spec.body,
        "labels": spec.labels,
        "milestone": spec.milestone,
        "active_lock_reason": None,
        "created_at": iso(spec.created),
        "updated_at": iso(spec.updated),
        "closed_at": None if spec.closed_at is None else iso(spec.closed_at),
        "merged_at": iso(spec.closed_at) if spec.merged and spec.closed_at else None,
        "merge_commit_sha": extras["merge_commit_sha"],
        "assignee": spec.assignees[0] if spec.assignees else None,
        "assignees": spec.assignees,
        "requested_reviewers": extras["requested_reviewers"],
        "requested_teams": [],
        "head": extras["head"],
        "base": extras["base"],
        "_links": {
            "self": {"href": f"{api}/pulls/{n}"},
            "html": {"href": html},
            "issue": {"href": f"{api}/issues/{n}"},
            "comments": {"href": f"{api}/issues/{n}/comments"},
            "review_comments": {"href": f"{api}/pulls/{n}/comments"},
            "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
            "commits": {"href": f"{api}/pulls/{n}/commits"},
            "statuses": {"href": f"{api}/statuses/{head_sha}"},
        },
        "author_association": spec.association,
        "auto_merge": None,
        "draft": spec.draft,
    }


def _issue_object(
    org: str,
    ctx: _RepoContext,
    spec: _ItemSpec,
    issue_id: int,
    reactions: list[int],
    issue_type: dict[str, Any] | None,
) -> dict[str, Any]:
    """issue-items, field for field; pulls get ``pull_request`` and ``draft``."""
    name, n = ctx.info.name, spec.number
    api = f"{API_PLACEHOLDER}/repos/{org}/{name}"
    kind = "pull" if spec.is_pull else "issues"
    obj: dict[str, Any] = {
        "url": f"{api}/issues/{n}",
        "repository_url": api,
        "labels_url": f"{api}/issues/{n}/labels{{/name}}",
        "comments_url": f"{api}/issues/{n}/comments",
        "events_url": f"{api}/issues/{n}/events",
        "html_url": f"{WEB}/{org}/{name}/{kind}/{n}",
        "id": issue_id,
        "node_id": _node_id("Issue", issue_id),
        "number": n,
        "title": spec.title,
        "user": spec.user,
        "labels": spec.labels,
        "state": spec.state,
        "locked": False,
        "assignee": spec.assignees[0] if spec.assignees else None,
        "assignees": spec.assignees,
        "milestone": spec.milestone,
        "comments": spec.comments,
        "created_at": iso(spec.created),
        "updated_at": iso(spec.updated),
        "closed_at": None if spec.closed_at is None else iso(spec.closed_at),
        "author_association": spec.association,
        "type": issue_type,
        "active_lock_reason": None,
        "sub_issues_summary": {"total": 0, "completed": 0, "percent_completed": 0},
        "body": spec.body,
        "closed_by": None,
        "reactions": _reactions(f"{api}/issues/{n}/reactions", reactions),
        "timeline_url": f"{api}/issues/{n}/timeline",
        "performed_via_github_app": None,
        "state_reason": None,
    }
    if spec.is_pull:
        html = f"{WEB}/{org}/{name}/pull/{n}"
        obj["draft"] = spec.draft
        obj["pull_request"] = {
            "url": f"{api}/pulls/{n}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "merged_at": iso(spec.closed_at) if spec.merged and spec.closed_at else None,
        }
    return obj


def _reactions(url: str, counts: list[int]) -> dict[str, Any]:
    names = ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes")
    out: dict[str, Any] = {"url": url, "total_count": sum(counts)}
    out.update(zip(names, counts, strict=True))
    return out
