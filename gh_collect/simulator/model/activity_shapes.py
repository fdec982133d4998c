"""GitHub's JSON shapes for a repo's activity: Issue Comment, Pull Request Review Comment,
Commit and Release, field for field and in GitHub's order (the OpenAPI description's
schemas; ``tests/test_simulator_schemas.py`` validates every served object against them).

As in ``shapes``, nothing here draws random numbers: ``activity_draw`` decides what each
object holds and hands it over as a spec. Users are encoder markers (``_Shapes._user``) or
None for a deleted ("ghost") account; URLs use ``API_PLACEHOLDER``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from gh_collect.simulator.model.records import API_PLACEHOLDER, WEB
from gh_collect.simulator.model.shapes import _node_id, _reactions

UPLOADS = "https://uploads.github.com"
_PGP_BEGIN = "-----BEGIN PGP SIGNATURE-----"


@dataclass(frozen=True)
class RepoUrls:
    """A repo's API root and web page, as every activity object links them."""

    org: str
    name: str
    repo_id: int

    @property
    def api(self) -> str:
        return f"{API_PLACEHOLDER}/repos/{self.org}/{self.name}"

    @property
    def html(self) -> str:
        return f"{WEB}/{self.org}/{self.name}"


@dataclass(frozen=True)
class CommentSpec:
    """What an issue comment or a review comment says, decided by ``activity_draw``."""

    id: int
    number: int
    created: str
    updated: str
    user: str | None
    association: str
    body: str
    reactions: list[int]


def issue_comment_object(
    urls: RepoUrls, spec: CommentSpec, on_pull: bool, app: dict[str, Any] | None
) -> dict[str, Any]:
    """Issue Comment: a conversation comment on an issue or a pull request (whose
    ``issue_url`` is its issue form too)."""
    api, n = urls.api, spec.number
    page = "pull" if on_pull else "issues"
    return {
        "url": f"{api}/issues/comments/{spec.id}",
        "html_url": f"{urls.html}/{page}/{n}#issuecomment-{spec.id}",
        "issue_url": f"{api}/issues/{n}",
        "id": spec.id,
        "node_id": _node_id("IssueComment", spec.id),
        "user": spec.user,
        "created_at": spec.created,
        "updated_at": spec.updated,
        "author_association": spec.association,
        "body": spec.body,
        "reactions": _reactions(f"{api}/issues/comments/{spec.id}/reactions", spec.reactions),
        "performed_via_github_app": app,
    }


@dataclass(frozen=True)
class DiffSpot:
    """Where in a pull's diff a review comment sits."""

    path: str
    line: int
    start_line: int | None
    original_line: int
    position: int
    original_position: int
    commit_id: str
    original_commit_id: str
    diff_hunk: str


def review_comment_object(
    urls: RepoUrls,
    spec: CommentSpec,
    spot: DiffSpot,
    review_id: int | None,
    in_reply_to: int | None,
) -> dict[str, Any]:
    """Pull Request Review Comment; ``in_reply_to_id`` only on replies, as GitHub sends."""
    api, n = urls.api, spec.number
    html = f"{urls.html}/pull/{n}#discussion_r{spec.id}"
    obj: dict[str, Any] = {
        "url": f"{api}/pulls/comments/{spec.id}",
        "pull_request_review_id": review_id,
        "id": spec.id,
        "node_id": _node_id("PullRequestReviewComment", spec.id),
        "diff_hunk": spot.diff_hunk,
        "path": spot.path,
        "commit_id": spot.commit_id,
        "original_commit_id": spot.original_commit_id,
        "user": spec.user,
        "body": spec.body,
        "created_at": spec.created,
        "updated_at": spec.updated,
        "html_url": html,
        "pull_request_url": f"{api}/pulls/{n}",
        "author_association": spec.association,
        "_links": {
            "self": {"href": f"{api}/pulls/comments/{spec.id}"},
            "html": {"href": html},
            "pull_request": {"href": f"{api}/pulls/{n}"},
        },
        "reactions": _reactions(f"{api}/pulls/comments/{spec.id}/reactions", spec.reactions),
        "start_line": spot.start_line,
        "original_start_line": spot.start_line,
        "start_side": None if spot.start_line is None else "RIGHT",
        "line": spot.line,
        "original_line": spot.original_line,
        "side": "RIGHT",
    }
    if in_reply_to is not None:
        obj["in_reply_to_id"] = in_reply_to
    obj.update(
        original_position=spot.original_position, position=spot.position, subject_type="line"
    )
    return obj


@dataclass(frozen=True)
class Person:
    """A git identity, and the GitHub user its email is linked to (None: unlinked)."""

    name: str
    email: str
    date: str
    user: str | None


@dataclass(frozen=True)
class CommitSpec:
    sha: str
    tree: str
    message: str
    author: Person
    committer: Person
    parents: list[str]
    signed: bool


def commit_object(urls: RepoUrls, spec: CommitSpec) -> dict[str, Any]:
    """Commit, as the commits list serves it (no ``stats`` or ``files``)."""
    api, sha = urls.api, spec.sha
    return {
        "sha": sha,
        "node_id": base64.b64encode(f"06:Commit{urls.repo_id}:{sha}".encode()).decode(),
        "commit": {
            "author": _git_person(spec.author),
            "committer": _git_person(spec.committer),
            "message": spec.message,
            "tree": {"sha": spec.tree, "url": f"{api}/git/trees/{spec.tree}"},
            "url": f"{api}/git/commits/{sha}",
            "comment_count": 0,
            "verification": _verification(spec),
        },
        "url": f"{api}/commits/{sha}",
        "html_url": f"{urls.html}/commit/{sha}",
        "comments_url": f"{api}/commits/{sha}/comments",
        "author": spec.author.user,
        "committer": spec.committer.user,
        "parents": [
            {"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{urls.html}/commit/{p}"}
            for p in spec.parents
        ],
    }


def _git_person(person: Person) -> dict[str, str]:
    return {"name": person.name, "email": person.email, "date": person.date}


def _verification(spec: CommitSpec) -> dict[str, Any]:
    """Web merges are signed by GitHub's key and verified; the rest are unsigned."""
    if not spec.signed:
        return {
            "verified": False,
            "reason": "unsigned",
            "signature": None,
            "payload": None,
            "verified_at": None,
        }
    stamp, author, committer = spec.committer.date, spec.author, spec.committer
    payload = "\n".join(
        [
            f"tree {spec.tree}",
            *(f"parent {p}" for p in spec.parents),
            f"author {author.name} <{author.email}> {author.date}",
            f"committer {committer.name} <{committer.email}> {stamp}",
            "",
            spec.message,
        ]
    )
    body = base64.b64encode(spec.sha.encode() * 6).decode()
    signature = (
        f"-----BEGIN PGP SIGNATURE-----\n\nwsBcBAABCAAQBQJ{body}\n-----END PGP SIGNATURE-----"
    )
    return {
        "verified": True,
        "reason": "valid",
        "signature": signature,
        "payload": payload,
        "verified_at": stamp,
    }


@dataclass(frozen=True)
class AssetSpec:
    id: int
    name: str
    content_type: str
    size: int
    digest: str | None
    downloads: int
    created: str
    uploader: str


@dataclass(frozen=True)
class ReleaseSpec:
    id: int
    tag: str
    name: str | None
    body: str | None
    prerelease: bool
    created: str
    published: str
    updated: str | None  # None: the object has no ``updated_at`` (older releases)
    author: str
    assets: list[AssetSpec]
    reactions: list[int] | None  # None: no ``reactions`` key (nobody reacted)
    mentions: int


def release_object(urls: RepoUrls, spec: ReleaseSpec) -> dict[str, Any]:
    """Release (never a draft: drafts are not listed to read-only tokens)."""
    api, rid = urls.api, spec.id
    upload = f"{UPLOADS}/repos/{urls.org}/{urls.name}/releases/{rid}/assets{{?name,label}}"
    obj: dict[str, Any] = {
        "url": f"{api}/releases/{rid}",
        "assets_url": f"{api}/releases/{rid}/assets",
        "upload_url": upload,
        "html_url": f"{urls.html}/releases/tag/{spec.tag}",
        "id": rid,
        "author": spec.author,
        "node_id": _node_id("Release", rid),
        "tag_name": spec.tag,
        "target_commitish": "main",
        "name": spec.name,
        "draft": False,
        "immutable": False,
        "prerelease": spec.prerelease,
        "created_at": spec.created,
    }
    if spec.updated is not None:
        obj["updated_at"] = spec.updated
    obj.update(
        {
            "published_at": spec.published,
            "assets": [_asset_object(urls, spec, asset) for asset in spec.assets],
            "tarball_url": f"{api}/tarball/{spec.tag}",
            "zipball_url": f"{api}/zipball/{spec.tag}",
            "body": spec.body,
        }
    )
    if spec.reactions is not None:
        obj["reactions"] = _reactions(f"{api}/releases/{rid}/reactions", spec.reactions)
    if spec.mentions:
        obj["mentions_count"] = spec.mentions
    return obj


def _asset_object(urls: RepoUrls, release: ReleaseSpec, asset: AssetSpec) -> dict[str, Any]:
    return {
        "url": f"{urls.api}/releases/assets/{asset.id}",
        "id": asset.id,
        "node_id": _node_id("ReleaseAsset", asset.id),
        "name": asset.name,
        "label": None,
        "uploader": asset.uploader,
        "content_type": asset.content_type,
        "state": "uploaded",
        "size": asset.size,
        "digest": asset.digest,
        "download_count": asset.downloads,
        "created_at": asset.created,
        "updated_at": asset.created,
        "browser_download_url": f"{urls.html}/releases/download/{release.tag}/{asset.name}",
    }


def github_actions_app(owner: dict[str, Any]) -> dict[str, Any]:
    """The GitHub App a github-actions[bot] comment is performed via."""
    return {
        "id": 15368,
        "slug": "github-actions",
        "client_id": "Iv1.05c79e9ad1f6bdfa",
        "node_id": "MDM6QXBwMTUzNjg=",
        "owner": owner,
        "name": "GitHub Actions",
        "description": "Automate your workflow from idea to production",
        "external_url": "https://help.github.com/en/actions",
        "html_url": f"{WEB}/apps/github-actions",
        "created_at": "2018-07-30T09:30:17Z",
        "updated_at": "2024-04-10T20:33:16Z",
        "permissions": {"actions": "write", "contents": "write", "issues": "write"},
        "events": ["check_run", "issue_comment", "pull_request", "push", "release"],
    }
