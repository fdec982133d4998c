"""Who owns the repos and who may see them: the simulator's audit options.

github-api.md ("Repos and errors") lists what a real GitHub does that a default simulated
org never shows: a user target, whose private repos only ``/user/repos?affiliation=owner``
lists, and only to that user's own token; an org enforcing SAML SSO, which refuses a token
not authorised for it with a 403 and ``X-GitHub-SSO``; repos with issues turned off
(``has_issues: false``), whose issues list answers 410. Each is a ``SimulatorConfig``
option, off by default, so the default org's data and answers stay byte for byte as they are.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gh_collect.simulator.model import OrgModel, RepoData
from gh_collect.simulator.server.config import DOCS, SimulatorConfig
from gh_collect.simulator.server.rendering import _Answer, _error, _Reply
from gh_collect.simulator.server.routes import _Call, bearer

__all__ = [
    "INTEGRATION_MESSAGE",
    "ISSUES_DISABLED_MESSAGE",
    "OTHER_USER",
    "OWN_REPOS",
    "PRIVATE_REPO",
    "SAML_MESSAGE",
    "apply_options",
    "check_issues",
    "check_visible",
    "is_owner",
    "listed_repos",
    "me",
    "org_hidden",
    "saml_refusal",
    "truth_without_disabled",
    "viewer_login",
]

SAML_MESSAGE = (
    "Resource protected by organization SAML enforcement. You must grant your Personal "
    "Access token access to this organization."
)
ISSUES_DISABLED_MESSAGE = "Issues are disabled for this repo"
PRIVATE_REPO = "private-repo"  # a user target's one private repo, listed only to its owner
INTEGRATION_MESSAGE = "Resource not accessible by integration"
# Who ``GET /user`` says a token is that is neither the target user's nor a named user's
# (``SimulatorConfig.users``): every such token answers as this one login.
OTHER_USER = "someone-else"
OWN_REPOS = "/user/repos"
_ORG_PATHS = ("/orgs", "/organizations", "/repos", "/repositories")


def apply_options(cfg: SimulatorConfig, model: OrgModel) -> None:
    """Shape a generated model as the options say, once, before anything is served."""
    if cfg.owner_type == "user" and model.repo_by_name(PRIVATE_REPO) is None:
        repo = model.add_repo(PRIVATE_REPO, items=20, seed=0)
        _rewrite(repo, private=True, visibility="private")
        repo.private = True
    for name in cfg.issues_disabled:
        disabled = model.repo_by_name(name)
        if disabled is None:
            raise ValueError(f"SimulatorConfig.issues_disabled: no repo named {name!r}")
        _rewrite(disabled, has_issues=False)


def _rewrite(repo: RepoData, **fields: Any) -> None:
    """The repo's listed and served objects with ``fields`` changed, every other byte kept."""
    for attr in ("listing", "current"):
        obj = json.loads(b"".join(getattr(repo, attr)))
        obj.update(fields)
        raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        setattr(repo, attr, (raw,))


def is_owner(cfg: SimulatorConfig, call: _Call) -> bool:
    """Whether the call's token is the target user's own (``owner_token``; None: any)."""
    if cfg.owner_type != "user":
        return False
    return cfg.owner_token is None or bearer(call.request.headers.get("Authorization", "")) == (
        cfg.owner_token
    )


def viewer_login(cfg: SimulatorConfig, call: _Call) -> str:
    """The login of the call's token: the target user's for the owner's token, a named
    user's for theirs (``users``), else ``OTHER_USER`` (whose PENDING reviews it sees)."""
    if is_owner(cfg, call):
        return cfg.org
    named = call.client.login if call.client is not None else ""
    return named or OTHER_USER


def me(cfg: SimulatorConfig, model: OrgModel, call: _Call) -> dict[str, Any]:
    """``GET /user``: the token's user (``viewer_login``); an installation token has no
    user (403, as GitHub answers an integration)."""
    assert model.generator is not None
    if call.client is not None and call.client.integration and not is_owner(cfg, call):
        raise _Answer(_error(403, INTEGRATION_MESSAGE, f"{DOCS}/users/users"))
    return model.generator.user_object(viewer_login(cfg, call))


def org_hidden(cfg: SimulatorConfig, call: _Call) -> bool:
    """A user target has no ``/orgs/{name}`` resources: GitHub answers 404."""
    return cfg.owner_type == "user" and call.route.endpoint.startswith("/orgs")


def listed_repos(cfg: SimulatorConfig, model: OrgModel, call: _Call) -> list[RepoData]:
    """The repos a listing shows this token: ``/user/repos`` only the owner's own (all of
    them, private too); a user's public listing no private repo."""
    repos = [*model.repos, *model.aliases]
    if call.route.endpoint == OWN_REPOS:
        if "type" in call.query and "affiliation" in call.query:
            raise _Answer(_error(422, "Validation Failed", f"{DOCS}/repos/repos"))
        return repos if is_owner(cfg, call) else []
    if cfg.owner_type == "user":
        return [repo for repo in repos if not repo.private]
    return repos


def check_visible(cfg: SimulatorConfig, call: _Call, repo: RepoData) -> None:
    """A private repo is 404 to anyone but its owner, as GitHub hides what you cannot see."""
    if repo.private and not is_owner(cfg, call):
        raise _Answer(_error(404, "Not Found"))


def check_issues(cfg: SimulatorConfig, repo: RepoData) -> None:
    """410 for the issues (and the issue comments) of a repo with issues turned off."""
    if repo.name in cfg.issues_disabled or repo.current_name in cfg.issues_disabled:
        docs = f"{DOCS}/issues/issues#list-repository-issues"
        raise _Answer(_error(410, ISSUES_DISABLED_MESSAGE, docs))


def saml_refusal(cfg: SimulatorConfig, call: _Call, *, authorised: bool = False) -> _Reply | None:
    """The 403 an org enforcing SAML SSO sends for its resources to an unauthorised token
    (``authorised``: one a member authorised for the org, or an installation's)."""
    if not cfg.saml_sso or authorised or not call.route.endpoint.startswith(_ORG_PATHS):
        return None
    reply = _error(403, SAML_MESSAGE, f"{DOCS}/overview/authenticating-to-the-rest-api")
    request = hashlib.sha1(f"{cfg.org}:{cfg.seed}".encode(), usedforsecurity=False).hexdigest()
    url = f"https://github.com/orgs/{cfg.org}/sso?authorization_request={request}"
    reply.headers["X-GitHub-SSO"] = f"required; url={url}"
    return reply


def truth_without_disabled(
    cfg: SimulatorConfig, truth: dict[str, dict[str, list[dict[str, Any]]]]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """A repo with issues turned off has no issues and no issue comments to harvest (both
    lists answer 410), whatever its model holds."""
    for endpoint in ("issues", "issue_comments"):
        by_repo = truth.get(endpoint, {})
        for name in cfg.issues_disabled:
            if name in by_repo:
                by_repo[name] = []
    return truth
