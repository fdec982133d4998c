"""GitHub's JSON shapes, field for field, as the recorded responses have them.

The generator decides (with its random stream) what each object holds; the functions and
the ``_Shapes`` mixin here turn those decisions into minimal-repository, full repository,
organization, simple-user, label, milestone, pull-request-simple and issue-items objects.
Nothing here draws random numbers, so shapes can change without moving any seeded value.

Shared sub-objects go through ``_Encoder``: serialised once, referenced by every embedder.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote

from gh_collect.simulator.model.records import API_PLACEHOLDER, WEB, iso
from gh_collect.simulator.model.words import LABELS

_MARK = re.compile(rb'"\\u0000S(\d+)\\u0000"')


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


class _Shapes:
    """The object builders that need the generator's state (org, ids, users, the encoder)
    but no randomness; ``_Generator`` inherits them."""

    org: str
    org_id: int
    now: int
    logins: list[str]
    enc: _Encoder

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

    def _labels(self, info: _RepoInfo) -> list[str]:
        return [
            self.enc.share(f"label:{info.id}:{i}", partial(self._label, info, i))
            for i in range(len(LABELS))
        ]

    def _label(self, info: _RepoInfo, index: int) -> dict[str, Any]:
        name, color, description = LABELS[index]
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
