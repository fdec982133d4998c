"""GitHub's GraphQL error shapes, as recorded from the real service.

GitHub answers most GraphQL failures with HTTP 200 and an ``errors`` list; its server is
graphql-ruby, whose wording differs from graphql-core's, so the common validation errors
are reworded as GitHub words them (``Field 'x' doesn't exist on type 'T'`` with
``extensions.code: undefinedField`` and a ``path`` that starts at the operation), e.g.
refined-github#6946, gh-dash#376. Errors found while resolving carry GitHub's ``type``
(``NOT_FOUND``, ``INVALID_CURSOR_ARGUMENTS``), a ``path`` and ``locations``. What GitHub sends
when the budget is spent, a query times out or the request is not GraphQL at all is here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    print_ast,
)

__all__ = [
    "BAD_JSON",
    "GRAPHQL_DOCS",
    "NO_QUERY",
    "UNAUTHENTICATED",
    "FieldProblem",
    "GitHubError",
    "execution_error",
    "location_of",
    "parse_error",
    "rate_limited",
    "timed_out",
    "validation_errors",
    "variable_errors",
]

GitHubError = dict[str, Any]

GRAPHQL_DOCS = "https://docs.github.com/graphql"
UNAUTHENTICATED = {
    "message": "This endpoint requires you to be authenticated.",
    "documentation_url": (
        "https://docs.github.com/graphql/guides/forming-calls-with-graphql"
        "#authenticating-with-graphql"
    ),
}
BAD_JSON = {"message": "Problems parsing JSON", "documentation_url": GRAPHQL_DOCS}
NO_QUERY = "A query attribute must be specified and must be a string."


class FieldProblem(Exception):
    """Raised by a resolver: the field resolves to null and the answer carries this error
    with GitHub's ``type`` (``NOT_FOUND``...; None for an error without one)."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind


def location_of(node: Node) -> dict[str, int]:
    """``{"line": ..., "column": ...}`` of a node (1-based, as GitHub reports them)."""
    token = node.loc.start_token if node.loc is not None else None
    return {"line": token.line, "column": token.column} if token else {"line": 1, "column": 1}


def rate_limited(user_id: int) -> GitHubError:
    """The primary budget is spent (HTTP 200). GitHub documents ``type: RATE_LIMITED``;
    answers recorded in 2026 also say ``RATE_LIMIT`` with ``code: graphql_rate_limit``."""
    return {"type": "RATE_LIMITED", "message": f"API rate limit exceeded for user ID {user_id}."}


def timed_out(request_id: str) -> GitHubError:
    """What a query cut at GitHub's ~10 s deadline answers (HTTP 502, ``data: null``)."""
    return {
        "message": (
            "Something went wrong while executing your query. This may be the result of a "
            "timeout, or it could be a GitHub bug. Please include "
            f"`{request_id}` when reporting this issue."
        )
    }


# -- parse and validation errors ---------------------------------------------------------

_PUNCTUATORS = {
    "{": "LCURLY", "}": "RCURLY", "(": "LPAREN", ")": "RPAREN", "[": "LBRACKET",
    "]": "RBRACKET", ":": "COLON", "$": "VAR_SIGN", "!": "BANG", "=": "EQUALS",
    "@": "DIR_SIGN", "|": "PIPE", "&": "AMP", ".": "ELLIPSIS",
}  # fmt: skip


def parse_error(error: GraphQLSyntaxError, source: str) -> GitHubError:
    """graphql-ruby's ``Parse error on "}" (RCURLY) at [1, 10]``, located."""
    location = error.locations[0] if error.locations else None
    if location is None:
        return {"message": "Unexpected end of document", "locations": []}
    line, column = location.line, location.column
    where = {"line": line, "column": column}
    lines = source.splitlines()
    text = lines[line - 1][column - 1 :] if 0 < line <= len(lines) else ""
    if not text.strip():
        return {"message": "Unexpected end of document", "locations": [where]}
    token = _token_at(text)
    kind = _PUNCTUATORS.get(token[0], "IDENTIFIER" if token[0].isalpha() else "UNKNOWN_CHAR")
    if token.startswith('"'):
        kind = "STRING"
    elif token[0].isdigit() or token[0] == "-":
        kind = "INT"
    message = f"Parse error on {_quoted(token)} ({kind}) at [{line}, {column}]"
    return {"message": message, "locations": [where]}


def _token_at(text: str) -> str:
    found = re.match(r'"[^"]*"?|\.\.\.|[A-Za-z_][A-Za-z0-9_]*|-?[0-9][0-9.eE+-]*|\S', text)
    return found.group(0) if found else text[:1]


def _quoted(token: str) -> str:
    return token if token.startswith('"') else f'"{token}"'


Rewrite = Callable[[re.Match[str]], tuple[str, dict[str, str]]]


def _undefined_field(m: re.Match[str]) -> tuple[str, dict[str, str]]:
    code = {"code": "undefinedField", "typeName": m[2], "fieldName": m[1]}
    return f"Field '{m[1]}' doesn't exist on type '{m[2]}'", code


def _argument_not_accepted(m: re.Match[str]) -> tuple[str, dict[str, str]]:
    code = {"code": "argumentNotAccepted", "name": m[2], "typeName": "Field"}
    return f"Field '{m[2]}' doesn't accept argument '{m[1]}'", {**code, "argumentName": m[1]}


def _missing_argument(m: re.Match[str]) -> tuple[str, dict[str, str]]:
    code = {"code": "missingRequiredArguments", "className": "Field", "name": m[1]}
    return f"Field '{m[1]}' is missing required arguments: {m[2]}", {**code, "arguments": m[2]}


def _variable_not_used(m: re.Match[str]) -> tuple[str, dict[str, str]]:
    code = {"code": "variableNotUsed", "variableName": m[1]}
    return f"Variable ${m[1]} is declared but not used", code


def _variable_not_defined(m: re.Match[str]) -> tuple[str, dict[str, str]]:
    code = {"code": "variableNotDefined", "variableName": m[1]}
    return f"Variable ${m[1]} is used but not declared", code


_REWRITES: tuple[tuple[re.Pattern[str], Rewrite], ...] = (
    (re.compile(r"Cannot query field '(\w+)' on type '(\w+)'\."), _undefined_field),
    (re.compile(r"Unknown argument '(\w+)' on field '\w+\.(\w+)'\."), _argument_not_accepted),
    (re.compile(r"Argument '\w+\.(\w+)\((\w+):\)' of type '.*' is required"), _missing_argument),
    (re.compile(r"Variable '\$(\w+)' is never used"), _variable_not_used),
    (re.compile(r"Variable '\$(\w+)' is not defined"), _variable_not_defined),
)


def validation_errors(errors: Sequence[GraphQLError], document: DocumentNode) -> list[GitHubError]:
    """graphql-core's validation errors as GitHub words and locates them; a field missing
    several arguments is one error naming them all, as graphql-ruby reports it."""
    shaped: list[GitHubError] = []
    for error in map(lambda e: _validation_error(e, document), errors):
        previous = shaped[-1] if shaped else None
        if previous is not None and _same_missing_arguments(previous, error):
            arguments = f"{previous['extensions']['arguments']}, {error['extensions']['arguments']}"
            previous["extensions"]["arguments"] = arguments
            field = previous["extensions"]["name"]
            previous["message"] = f"Field '{field}' is missing required arguments: {arguments}"
        else:
            shaped.append(error)
    return shaped


def _same_missing_arguments(first: GitHubError, second: GitHubError) -> bool:
    code = "missingRequiredArguments"
    return (
        first.get("extensions", {}).get("code") == code
        and second.get("extensions", {}).get("code") == code
        and first.get("path") == second.get("path")
        and first.get("locations") == second.get("locations")
    )


def _validation_error(error: GraphQLError, document: DocumentNode) -> GitHubError:
    message, extensions = _reworded(error.message)
    shaped: GitHubError = {}
    path = _path_to(document, error.nodes[0]) if error.nodes else None
    if path is not None:
        shaped["path"] = path
    if extensions:
        shaped["extensions"] = extensions
    shaped["locations"] = [
        {"line": loc.line, "column": loc.column} for loc in error.locations or ()
    ]
    shaped["message"] = message
    return shaped


def _reworded(message: str) -> tuple[str, dict[str, str]]:
    for pattern, rewrite in _REWRITES:
        found = pattern.search(message)
        if found:
            return rewrite(found)
    return message, {}


def _path_to(document: DocumentNode, target: Node) -> list[str] | None:
    """graphql-ruby's static path to a node: ``["query", "repository", "pullRequests"]``
    (the operation, then field names; ``... on T`` for inline fragments)."""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            name = definition.name.value if definition.name else ""
            label = f"{definition.operation.value} {name}".strip()
        elif isinstance(definition, FragmentDefinitionNode):
            label = f"fragment {definition.name.value}"
        else:
            continue
        found = _search(definition, target, [label])
        if found is not None:
            return found
    return None


def _search(node: Node, target: Node, path: list[str]) -> list[str] | None:
    if node is target:
        return path
    arguments: Sequence[ArgumentNode] = getattr(node, "arguments", None) or ()
    for argument in arguments:
        if argument is target:
            return [*path, argument.name.value]
    selection_set = getattr(node, "selection_set", None)
    for selection in selection_set.selections if selection_set is not None else ():
        found = _search(selection, target, [*path, _step(selection)])
        if found is not None:
            return found
    return None


def _step(selection: Node) -> str:
    if isinstance(selection, FieldNode):
        return selection.name.value
    if isinstance(selection, InlineFragmentNode):
        condition = selection.type_condition
        return f"... on {condition.name.value}" if condition is not None else "..."
    if isinstance(selection, FragmentSpreadNode):
        return f"... {selection.name.value}"
    return "?"  # pragma: no cover - selections are fields or fragments


# -- errors found while resolving ---------------------------------------------------------


def execution_error(error: GraphQLError) -> GitHubError:
    """A resolver's error as GitHub shapes it: ``type`` first when it has one."""
    shaped: GitHubError = {}
    original = error.original_error
    if isinstance(original, FieldProblem) and original.kind is not None:
        shaped["type"] = original.kind
    if error.path is not None:
        shaped["path"] = list(error.path)
    shaped["locations"] = [
        {"line": loc.line, "column": loc.column} for loc in error.locations or ()
    ]
    shaped["message"] = str(original) if isinstance(original, FieldProblem) else error.message
    return shaped


_VARIABLE = re.compile(r"Variable '\$(\w+)' has invalid value: (.*)", re.DOTALL)


def variable_errors(
    errors: Sequence[GraphQLError], operation: OperationDefinitionNode, inputs: dict[str, Any]
) -> list[GitHubError]:
    """graphql-ruby's ``Variable $x of type Int! was provided invalid value``, with the value
    and graphql-core's explanation as its ``problems``."""
    declared = {
        definition.variable.name.value: print_ast(definition.type)
        for definition in operation.variable_definitions or ()
    }
    shaped: list[GitHubError] = []
    for error in errors:
        found = _VARIABLE.match(error.message)
        if found is None:
            shaped.append({"message": error.message})
            continue
        name, explanation = found[1], found[2]
        shaped.append(
            {
                "extensions": {
                    "value": inputs.get(name),
                    "problems": [{"path": [], "explanation": explanation}],
                },
                "locations": _locations(error),
                "message": (
                    f"Variable ${name} of type {declared.get(name, '?')} was provided invalid value"
                ),
            }
        )
    return shaped


def _locations(error: GraphQLError) -> list[dict[str, int]]:
    return [{"line": loc.line, "column": loc.column} for loc in error.locations or ()]
