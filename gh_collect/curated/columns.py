"""Curated columns, declared with their endpoint: each knows its name, type and JSON path.

An endpoint's declaration (``gh_collect.endpoints``) lists its columns; ``curated.schemas``
turns them into the Parquet layout and extracts rows. Nothing here needs pyarrow, so a
harvest that never exports never imports it.

A getter returns the value as the server sent it, or ``UNTYPED`` when its shape is wrong (a
nested object that is not an object, labels that are not a list): the exporter nulls and
counts those, the raw column keeps them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "AUTHOR",
    "FETCHED_AT",
    "ID",
    "LABELS",
    "NODE_ID",
    "REPO",
    "TIMES",
    "UNTYPED",
    "Column",
    "Getter",
    "Kind",
    "by_source",
    "col",
    "derived",
]

Kind = Literal["int", "str", "bool", "timestamp", "labels"]
Getter = Callable[[Mapping[str, Any], Mapping[str, Any]], object]


class _Untyped:
    """The marker a getter returns for a value of the wrong shape (``to_batch`` nulls it)."""

    def __repr__(self) -> str:
        return "UNTYPED"


UNTYPED = _Untyped()


@dataclass(frozen=True)
class Column:
    """One typed column: its name, its kind, and where the value comes from (``source``)."""

    name: str
    kind: Kind
    source: str
    get: Getter


# --- getters: small closures so each column states its own JSON path -----------------------


def _field(key: str) -> Getter:
    def get(data: Mapping[str, Any], envelope: Mapping[str, Any]) -> object:
        return data.get(key)

    return get


def _envelope(key: str) -> Getter:
    def get(data: Mapping[str, Any], envelope: Mapping[str, Any]) -> object:
        return envelope.get(key)

    return get


def _nested(path: tuple[str, ...]) -> Getter:
    """``data[a][b]...``; a null or missing object on the way gives null, a non-object
    ``UNTYPED``."""

    def get(data: Mapping[str, Any], envelope: Mapping[str, Any]) -> object:
        value: object = data
        for key in path:
            if value is None:
                return None
            if not isinstance(value, dict):
                return UNTYPED
            value = value.get(key)
        return value

    return get


def _labels(data: Mapping[str, Any], envelope: Mapping[str, Any]) -> object:
    """Label names; GitHub serves label objects, but plain names are accepted too.

    Anything else (not a list, a name that is not text) makes the whole column ``UNTYPED``.
    """
    labels = data.get("labels")
    if labels is None:
        return None
    if not isinstance(labels, list):
        return UNTYPED
    names: list[str | None] = []
    for label in labels:
        name = label.get("name") if isinstance(label, dict) else label
        if name is not None and not isinstance(name, str):
            return UNTYPED
        names.append(name)
    return names


def col(name: str, kind: Kind, source: str | None = None) -> Column:
    """A column read from the API object; ``source`` 'user.login' reads a nested field
    (any depth: 'commit.author.date')."""
    source = source or name
    path = tuple(source.split("."))
    return Column(name, kind, source, _nested(path) if len(path) > 1 else _field(source))


def derived(name: str, kind: Kind, source: str, compute: Callable[[object], object]) -> Column:
    """A column computed from one field (``source``, a path as in ``col``): ``compute`` gets
    the value as sent and returns the typed value, None, or ``UNTYPED``."""
    read = col(name, kind, source).get

    def get(data: Mapping[str, Any], envelope: Mapping[str, Any]) -> object:
        value = read(data, envelope)
        return value if value is None or value is UNTYPED else compute(value)

    return Column(name, kind, source, get)


def by_source(*, rest: Column, graphql: Column) -> Column:
    """One column whichever transport served the record: the envelope's ``source`` picks
    the getter (``github_graphql``: ``graphql``'s; anything else: ``rest``'s), so a table
    filled by GraphQL and one filled by the REST fallback have the same columns."""
    if rest.name != graphql.name or rest.kind != graphql.kind:
        raise ValueError(f"by_source: {rest.name}/{graphql.name} differ in name or kind")

    def get(data: Mapping[str, Any], envelope: Mapping[str, Any]) -> object:
        chosen = graphql if envelope.get("source") == GRAPHQL_SOURCE else rest
        return chosen.get(data, envelope)

    return Column(rest.name, rest.kind, f"{rest.source} (REST), {graphql.source} (GraphQL)", get)


GRAPHQL_SOURCE = "github_graphql"
ID = col("id", "int")
NODE_ID = col("node_id", "str")
REPO = Column("repo", "str", "repo (envelope)", _envelope("repo"))
FETCHED_AT = Column("fetched_at", "timestamp", "fetched_at (envelope)", _envelope("fetched_at"))
LABELS = Column("labels", "labels", "labels", _labels)
AUTHOR = (
    col("user_login", "str", "user.login"),
    col("user_id", "int", "user.id"),
    col("author_association", "str"),
)
TIMES = (col("created_at", "timestamp"), col("updated_at", "timestamp"))
