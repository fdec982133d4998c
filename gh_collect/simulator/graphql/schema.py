"""GitHub's published GraphQL schema, built once per process.

``schema.graphql`` beside this module is GitHub's public schema as octokit/graphql-schema
publishes it (commit 82ff2d4, 2026-07-22; MIT, ``LICENSE-graphql-schema.md``). Queries are
validated against the real thing so that the simulator refuses exactly what GitHub refuses
(an unknown field, ``pullRequests(since:)``), not what our client happens to avoid.

Building it takes about a second, so it is built lazily, once, on first use, and shared by
every simulator and test in the process. ``assume_valid_sdl``: upstream declares one field
(``EnterpriseOwnerInfo.repositoryDeployKeySetting``) twice, which strict SDL validation
refuses; ``assume_valid``: the schema is GitHub's, checking its consistency again on every
``validate``/``execute`` would only cost time.
"""

from __future__ import annotations

import threading
from importlib import resources

from graphql import GraphQLSchema, build_schema

__all__ = ["SCHEMA_FILE", "github_schema"]

SCHEMA_FILE = "schema.graphql"

_lock = threading.Lock()
_built: GraphQLSchema | None = None


def github_schema() -> GraphQLSchema:
    """The schema, built on the first call (thread-safe: simulators serve from threads)."""
    global _built
    if _built is None:
        with _lock:
            if _built is None:
                _built = _build()
    return _built


def _build() -> GraphQLSchema:
    source = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return build_schema(source, assume_valid=True, assume_valid_sdl=True)
