"""What a query costs, the way GitHub documents it, measured before anything is executed.

GitHub (docs: "Rate limits and query limits for the GraphQL API"):

- every connection needs ``first`` or ``last``, 1 to 100 (a connection read only for its
  ``totalCount`` needs neither: ``stargazers { totalCount }`` is fine);
- *nodes*: each connection may return ``first`` items for every item of the connections
  around it; their sum may not exceed 500,000
  (``pullRequests(first: 100) { nodes { reviews(first: 100) } }`` = 100 + 100 x 100 = 10,100);
- *cost*: one request fulfils a connection once; add up the requests every connection needs
  (one per item around it), divide by 100, round, at least 1 point (the same query: 1 + 100
  = 101 requests = 1 point).

A connection read only for its ``totalCount`` is counted as a request too (it still has to
be fulfilled) and as no nodes; ``nodes(ids:)`` multiplies what lies under it by its ids.
The measure also lists every connection with what it asks (``ConnectionUse``), which is how
the simulator decides that a query is too heavy to answer in time (``slow_queries``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_argument_values,
    get_named_type,
    is_interface_type,
    is_object_type,
)
from graphql.execution.values import VariableValues

from gh_collect.simulator.graphql.errors import GitHubError, location_of

__all__ = ["MAX_NODES", "MAX_PAGE", "ConnectionUse", "Measure", "QueryRefused", "measure"]

MAX_PAGE = 100  # first/last: 1 to 100
MAX_NODES = 500_000
_ITEM_FIELDS = frozenset({"nodes", "edges"})


@dataclass(frozen=True)
class ConnectionUse:
    """One connection of a query: ``path`` (response keys from the root), the page size it
    asks (0 when it reads no items), how many times it is fulfilled, and the repository
    (``repository(name:)``) it lies under, if any."""

    field: str
    path: tuple[str, ...]
    size: int
    instances: int
    repository: str | None

    def encloses(self, other: ConnectionUse) -> bool:
        """Whether ``other`` lies under this connection's items."""
        depth = len(self.path)
        return other.path[:depth] == self.path and other.path[depth : depth + 1] in (
            ("nodes",),
            ("edges",),
        )


@dataclass(frozen=True)
class Measure:
    """Requests and possible nodes of one query, and its cost in points."""

    requests: int
    nodes: int
    connections: tuple[ConnectionUse, ...]

    @property
    def cost(self) -> int:
        """requests / 100, rounded half up (as GitHub's 150 -> 2), at least 1."""
        return max(1, (self.requests + 50) // 100)


class QueryRefused(Exception):
    """The query breaks a limit: ``errors`` are GitHub's answer (HTTP 200, no data)."""

    def __init__(self, errors: list[GitHubError]) -> None:
        super().__init__(errors[0]["message"] if errors else "refused")
        self.errors = errors


def measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: VariableValues,
) -> Measure:
    """The measure of a validated ``operation``; raises ``QueryRefused`` for a connection
    without ``first``/``last`` or outside 1..100, or more than 500,000 possible nodes."""
    walker = _Walker(schema, document, variables)
    root = schema.query_type
    if root is None or operation.operation.value != "query":
        return Measure(1, 0, ())  # mutations and subscriptions are not simulated
    walker.walk(operation.selection_set, root, _Scope(1, 1, (), None))
    if walker.problems:
        raise QueryRefused(walker.problems)
    nodes = sum(use.size * use.instances for use in walker.uses)
    if nodes > MAX_NODES:
        message = (
            f"This query requests up to {nodes:,} possible nodes which exceeds the maximum "
            f"limit of {MAX_NODES:,}."
        )
        raise QueryRefused([{"type": "MAX_NODE_LIMIT_EXCEEDED", "message": message}])
    requests = sum(use.instances for use in walker.uses)
    return Measure(requests, nodes, tuple(walker.uses))


@dataclass(frozen=True)
class _Scope:
    """Where the walk is: how many parent objects there are (``instances``), how many items
    a connection parent yields (``items``), the response path and the repository."""

    instances: int
    items: int
    path: tuple[str, ...]
    repository: str | None


@dataclass
class _Walker:
    schema: GraphQLSchema
    document: DocumentNode
    variables: VariableValues
    uses: list[ConnectionUse] = field(default_factory=list)
    problems: list[GitHubError] = field(default_factory=list)

    def walk(self, selections: SelectionSetNode, parent: GraphQLNamedType, scope: _Scope) -> None:
        for node, owner in self._fields(selections, parent):
            definition = _field_of(owner, node.name.value)
            if definition is not None:
                self._visit(node, definition, owner, scope)

    def _visit(
        self, node: FieldNode, definition: GraphQLField, owner: GraphQLNamedType, scope: _Scope
    ) -> None:
        args = self._arguments(definition, node)
        key = node.alias.value if node.alias else node.name.value
        path = (*scope.path, key)
        instances = scope.instances
        if _is_connection(owner) and node.name.value in _ITEM_FIELDS:
            instances = scope.items
        if isinstance(args.get("ids"), list):
            instances *= len(args["ids"])
        repository = scope.repository
        if node.name.value == "repository" and isinstance(args.get("name"), str):
            repository = args["name"]
        named = get_named_type(definition.type)
        items = instances
        if _is_connection(named):
            size = self._page_size(node, args, path, named)
            self.uses.append(ConnectionUse(node.name.value, path, size, instances, repository))
            items = instances * size
        if node.selection_set is not None:
            self.walk(node.selection_set, named, _Scope(instances, items, path, repository))

    def _page_size(
        self, node: FieldNode, args: Mapping[str, Any], path: tuple[str, ...], named: Any
    ) -> int:
        """``first`` or ``last``, checked as GitHub checks them; 0 for a count-only read."""
        name = node.name.value
        first, last = args.get("first"), args.get("last")
        if first is None and last is None:
            if self._reads_items(node, named):
                self._refuse(
                    node,
                    path,
                    f"You must provide a `first` or `last` value to properly paginate the "
                    f"`{name}` connection.",
                    "MISSING_PAGINATION_BOUNDARIES",
                )
            return 0
        if first is not None and last is not None:
            self._refuse(
                node,
                path,
                f"Passing both `first` and `last` to paginate the `{name}` connection is not "
                "supported.",
            )
        for argument, value in (("first", first), ("last", last)):
            if value is not None and value < 0:
                message = f"`{argument}` on the `{name}` connection cannot be less than zero."
                self._refuse(node, path, message)
            elif value is not None and value > MAX_PAGE:
                message = (
                    f"Requesting {value} records on the `{name}` connection exceeds the "
                    f"`{argument}` limit of {MAX_PAGE} records."
                )
                self._refuse(node, path, message, "EXCESSIVE_PAGINATION")
        size = first if first is not None else last
        return max(0, min(int(size or 0), MAX_PAGE))

    def _refuse(
        self, node: FieldNode, path: tuple[str, ...], message: str, kind: str | None = None
    ) -> None:
        problem: GitHubError = {"path": list(path), "locations": [location_of(node)]}
        if kind is not None:
            problem = {"type": kind, **problem}
        self.problems.append({**problem, "message": message})

    def _reads_items(self, node: FieldNode, named: GraphQLNamedType) -> bool:
        if node.selection_set is None:
            return False
        return any(n.name.value in _ITEM_FIELDS for n, _ in self._fields(node.selection_set, named))

    def _arguments(self, definition: GraphQLField, node: FieldNode) -> dict[str, Any]:
        try:
            return get_argument_values(definition, node, self.variables)
        except GraphQLError:
            return {}  # validation has already refused what cannot be coerced

    def _fields(
        self, selections: SelectionSetNode, parent: GraphQLNamedType
    ) -> Iterator[tuple[FieldNode, GraphQLNamedType]]:
        """The fields of a selection set with the type each is asked on, fragments flattened
        (an inline fragment or spread narrows the type: ``... on PullRequest``)."""
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                yield selection, parent
            elif isinstance(selection, InlineFragmentNode):
                narrowed = self._narrowed(selection.type_condition, parent)
                yield from self._fields(selection.selection_set, narrowed)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self._fragment(selection.name.value)
                if fragment is not None:
                    narrowed = self._narrowed(fragment.type_condition, parent)
                    yield from self._fields(fragment.selection_set, narrowed)

    def _narrowed(self, condition: Any, parent: GraphQLNamedType) -> GraphQLNamedType:
        if condition is None:
            return parent
        named = self.schema.get_type(condition.name.value)
        return named if named is not None else parent

    def _fragment(self, name: str) -> FragmentDefinitionNode | None:
        for definition in self.document.definitions:
            if isinstance(definition, FragmentDefinitionNode) and definition.name.value == name:
                return definition
        return None


def _field_of(owner: GraphQLNamedType, name: str) -> GraphQLField | None:
    if is_object_type(owner) or is_interface_type(owner):
        fields: dict[str, GraphQLField] = owner.fields
        return fields.get(name)
    return None


def _is_connection(named: GraphQLNamedType) -> bool:
    """GitHub's connections: object types with ``pageInfo`` and ``nodes`` or ``edges``."""
    if not is_object_type(named):
        return False
    fields = named.fields
    return "pageInfo" in fields and bool(_ITEM_FIELDS & fields.keys())
