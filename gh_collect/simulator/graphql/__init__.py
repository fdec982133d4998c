"""GitHub's GraphQL API, simulated: ``POST /graphql`` (``/api/graphql`` as GHES serves it).

Queries are parsed and validated against GitHub's real published schema (``schema``),
measured and refused as GitHub documents (``cost``: ``first``/``last`` 1..100, 500,000
nodes, points = requests / 100), charged on a ``graphql`` budget apart from REST's, and
answered from the same model as the REST routes (``resolvers``), with GitHub's error
shapes (``errors``) and opaque cursors (``connections``). ``endpoint`` is the pipeline.
"""

from __future__ import annotations

from gh_collect.simulator.graphql.cost import MAX_NODES, MAX_PAGE, Measure, measure
from gh_collect.simulator.graphql.endpoint import GraphQLEndpoint
from gh_collect.simulator.graphql.schema import github_schema

__all__ = ["MAX_NODES", "MAX_PAGE", "GraphQLEndpoint", "Measure", "github_schema", "measure"]
