"""Endpoint declarations and the registry the rest of gh-collect reads them from.

``HARVESTED`` holds the endpoints a config may list (``endpoints:``), each a phase after
discovery; ``REPOS`` is discovery's listing. ``register`` adds one: its declaration is all
the harvest, checkpoint, plan and export need. An endpoint kept outside gh-collect lives in
a module that calls ``register``, named in ``GH_COLLECT_PLUGINS`` (comma-separated module
paths); it is imported on first use of the registry, in every process (export workers too).
"""

from __future__ import annotations

import importlib
import os

from gh_collect.endpoints.activity import COMMITS, ISSUE_COMMENTS, RELEASES, REVIEW_COMMENTS
from gh_collect.endpoints.base import (
    NEWEST_UPDATED_FIRST,
    OLDEST_CREATED_FIRST,
    Endpoint,
    JsonObject,
    Order,
    Window,
    WindowRule,
    path_segment,
)
from gh_collect.endpoints.graphql import PULL_STATS, REVIEWS
from gh_collect.endpoints.rest import ISSUES, PULLS, REPOS
from gh_collect.errors import ConfigError

__all__ = [
    "HARVESTED",
    "NEWEST_UPDATED_FIRST",
    "OLDEST_CREATED_FIRST",
    "PLUGINS_ENV",
    "REPOS",
    "Endpoint",
    "JsonObject",
    "Order",
    "Window",
    "WindowRule",
    "declared",
    "get",
    "names",
    "path_segment",
    "register",
    "unregister",
]

HARVESTED: dict[str, Endpoint] = {
    endpoint.name: endpoint
    for endpoint in (
        PULLS,
        ISSUES,
        ISSUE_COMMENTS,
        REVIEW_COMMENTS,
        COMMITS,
        RELEASES,
        REVIEWS,
        PULL_STATS,
    )
}
PLUGINS_ENV = "GH_COLLECT_PLUGINS"
_plugins_loaded = False


def get(name: str) -> Endpoint:
    """The declaration of a harvested endpoint (``repos`` included); KeyError names the known."""
    _load_plugins()
    endpoint = REPOS if name == REPOS.name else HARVESTED.get(name)
    if endpoint is None:
        raise KeyError(f"no endpoint named {name!r}: known {', '.join(names())}")
    return endpoint


def names() -> list[str]:
    """The endpoints a config may list, in declaration order."""
    _load_plugins()
    return list(HARVESTED)


def declared() -> list[Endpoint]:
    """Every declaration with curated columns: discovery's repos, then the harvested ones."""
    _load_plugins()
    return [REPOS, *HARVESTED.values()]


def register(endpoint: Endpoint) -> None:
    """Add an endpoint; a name already declared is refused (one declaration per endpoint)."""
    if endpoint.name in HARVESTED or endpoint.name == REPOS.name:
        raise ValueError(f"endpoint {endpoint.name!r} is already declared")
    if not endpoint.name.replace("_", "").isalnum() or not endpoint.name.isascii():
        raise ValueError(f"endpoint name {endpoint.name!r}: use letters, digits and '_'")
    HARVESTED[endpoint.name] = endpoint


def unregister(name: str) -> None:
    HARVESTED.pop(name, None)


def _load_plugins() -> None:
    """Import the modules ``GH_COLLECT_PLUGINS`` names, once; each registers its endpoints."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except Exception as exc:
            _plugins_loaded = False
            raise ConfigError(
                f"{PLUGINS_ENV} names {module!r}, which cannot be imported "
                f"({type(exc).__name__}: {exc}); fix the module path or unset {PLUGINS_ENV}"
            ) from None
