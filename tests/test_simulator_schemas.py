"""The simulator's activity lists (issue 14) and a pull's reviews (issue 15) against
GitHub's published REST description: every object it serves validates against the
operation's 200 item schema, its errors
against theirs, and the query parameters a harvester sends (and the simulator's Link
headers repeat) are parameters the operation declares, with values in their enums.

The schemas are OpenAPI 3.0 (``nullable``); ``json_schema`` turns them into JSON Schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from jsonschema import Draft7Validator

from gh_collect.simulator import Simulator, SimulatorConfig

FIXTURE = Path(__file__).parent / "fixtures" / "github-schema" / "rest-operations.json"
OPERATIONS: dict[str, Any] = json.loads(FIXTURE.read_text())["operations"]
ORG = "sample-org"
AUTH = {"Authorization": "token schema-test"}
START, END = "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"
PATHS = {
    "issue_comments": "issues/comments",
    "review_comments": "pulls/comments",
    "commits": "commits",
    "releases": "releases",
}
CLIENT_QUERIES: dict[str, dict[str, str]] = {
    "issue_comments": {"sort": "created", "direction": "asc", "per_page": "100", "since": START},
    "review_comments": {"sort": "created", "direction": "asc", "per_page": "100", "since": START},
    "commits": {"per_page": "100", "since": START, "until": END},
    "releases": {"per_page": "100"},
}
"""What the client asks each list for (SPEC's endpoint table)."""
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def operation(endpoint: str) -> dict[str, Any]:
    return OPERATIONS[f"GET /repos/{{owner}}/{{repo}}/{PATHS[endpoint]}"]  # type: ignore[no-any-return]


def json_schema(schema: Any) -> Any:
    """OpenAPI 3.0 to JSON Schema: ``nullable: true`` means null is allowed too."""
    if isinstance(schema, list):
        return [json_schema(part) for part in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: json_schema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable"):
        return {"anyOf": [{"type": "null"}, converted]}
    return converted


def validator(endpoint: str, status: str = "200") -> Draft7Validator:
    schema = operation(endpoint)["responses"][status]["schema"]
    return Draft7Validator(json_schema(schema["items"] if status == "200" else schema))


def walk(http: httpx.Client, url: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        response = http.get(next_url)
        assert response.status_code == 200, response.text
        objects += response.json()
        next_url = response.links.get("next", {}).get("url")
    return objects


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Simulator, dict[str, list[dict[str, Any]]]]]:
    """Every object the four lists serve across a 12-repo org (scenario repos included)."""
    with (
        Simulator(SimulatorConfig(seed=0, repos=12, org=ORG)) as sim,
        httpx.Client(base_url=sim.url, headers=AUTH) as http,
    ):
        names = [r.current_name for r in sim.model.repos if not r.vanished and r.role != "empty"]
        objects = {
            endpoint: [
                obj
                for name in names
                for obj in walk(http, f"/repos/{ORG}/{name}/{path}?per_page=100")
            ]
            for endpoint, path in PATHS.items()
        }
        yield sim, objects


@pytest.mark.parametrize("endpoint", list(PATHS))
def test_every_served_object_validates_against_githubs_item_schema(
    served: tuple[Simulator, dict[str, list[dict[str, Any]]]], endpoint: str
) -> None:
    objects = served[1][endpoint]
    check = validator(endpoint)
    assert len(objects) > 50
    for obj in objects:
        errors = sorted(check.iter_errors(obj), key=lambda e: list(e.path))
        assert not errors, f"{endpoint} {obj.get('id', obj.get('sha'))}: {errors[0].message}"
        stamps = [obj.get(k) for k in ("created_at", "updated_at", "published_at") if obj.get(k)]
        if endpoint == "commits":
            stamps += [obj["commit"]["author"]["date"], obj["commit"]["committer"]["date"]]
        assert all(TIMESTAMP.match(stamp) for stamp in stamps), stamps


def test_the_sample_holds_the_shapes_that_are_easy_to_get_wrong(
    served: tuple[Simulator, dict[str, list[dict[str, Any]]]],
) -> None:
    """Validation above is only as good as what it saw: ghosts, replies, apps, merges,
    unlinked authors, rebased commits, prereleases, assets and optional keys."""
    objects = served[1]
    comments, reviews = objects["issue_comments"], objects["review_comments"]
    commits, releases = objects["commits"], objects["releases"]
    assert any(c["user"] is None for c in comments) and any(c["user"] for c in comments)
    assert any(c["performed_via_github_app"] for c in comments)
    assert any("/pull/" in c["html_url"] for c in comments)
    assert any("/issues/" in c["html_url"] for c in comments)
    assert any("in_reply_to_id" in c for c in reviews) and any(c["start_line"] for c in reviews)
    assert any(c["user"] is None for c in reviews)
    assert any(len(c["parents"]) == 2 for c in commits), "merge commits"
    assert any(c["author"] is None for c in commits), "emails linked to no user"
    assert any(c["commit"]["author"]["date"] != c["commit"]["committer"]["date"] for c in commits)
    assert any(c["commit"]["verification"]["verified"] for c in commits)
    assert any(r["prerelease"] for r in releases) and not any(r["draft"] for r in releases)
    assert any(r["assets"] for r in releases) and any("reactions" in r for r in releases)
    with_updated = sum("updated_at" in r for r in releases)
    assert len(releases) / 2 < with_updated < len(releases), "most, not all, have updated_at"


@pytest.mark.parametrize("endpoint", list(PATHS))
def test_the_clients_query_and_the_link_headers_use_declared_parameters(
    served: tuple[Simulator, dict[str, list[dict[str, Any]]]], endpoint: str
) -> None:
    sim = served[0]
    declared = {p["name"]: p["schema"] for p in operation(endpoint)["parameters"]}
    name = "hundred-repo"
    with httpx.Client(base_url=sim.url, headers=AUTH) as http:
        first = http.get(f"/repos/{ORG}/{name}/{PATHS[endpoint]}", params=CLIENT_QUERIES[endpoint])
        small = http.get(f"/repos/{ORG}/{name}/{PATHS[endpoint]}", params={"per_page": 1})
    assert first.status_code == small.status_code == 200
    links = [link["url"] for link in small.links.values()]
    assert links, "a one-per-page walk has a next page"
    sent = list(CLIENT_QUERIES[endpoint].items())
    sent += [pair for url in links for pair in parse_qsl(urlsplit(url).query)]
    for key, value in sent:
        assert key in declared, f"{key} is not a parameter of {endpoint}"
        schema = declared[key]
        if "enum" in schema:
            assert value in schema["enum"], (key, value)
        if schema.get("type") == "integer":
            assert value.isdigit(), (key, value)
        if schema.get("format") == "date-time":
            assert TIMESTAMP.match(value), (key, value)


def test_errors_validate_against_the_operations_error_schemas(
    served: tuple[Simulator, dict[str, list[dict[str, Any]]]],
) -> None:
    sim = served[0]
    with httpx.Client(base_url=sim.url, headers=AUTH) as http:
        empty = http.get(f"/repos/{ORG}/empty-repo/commits", params=CLIENT_QUERIES["commits"])
        invalid = http.get(f"/repos/{ORG}/hundred-repo/issues/comments", params={"sort": "x"})
        missing = http.get(f"/repos/{ORG}/vanished-repo/releases")
    assert empty.status_code == 409 and empty.json()["message"] == "Git Repository is empty."
    assert not list(validator("commits", "409").iter_errors(empty.json()))
    assert invalid.status_code == 422
    assert not list(validator("issue_comments", "422").iter_errors(invalid.json()))
    assert missing.status_code == 404
    assert not list(validator("releases", "404").iter_errors(missing.json()))


def test_the_conversion_keeps_the_schemas_strict() -> None:
    """A schema that accepts anything would pass every test above."""
    check = validator("commits")
    assert list(check.iter_errors({"sha": "abc"})), "required fields are required"
    comment = validator("issue_comments")
    bad_user = {"id": 1, "node_id": "x", "html_url": "h", "issue_url": "i", "url": "u"}
    bad_user |= {"created_at": START, "updated_at": START, "user": {"login": "only"}}
    assert list(comment.iter_errors(bad_user)), "a user object must be a whole simple-user"
    assert not list(comment.iter_errors({**bad_user, "user": None})), "a ghost is null"


REVIEWS_OPERATION = "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews"


def test_every_served_review_validates_and_its_links_use_declared_parameters(
    served: tuple[Simulator, dict[str, list[dict[str, Any]]]],
) -> None:
    """``GET .../pulls/{n}/reviews`` (the REST fallback of ``reviews``): every review of
    every pull of the org against GitHub's schema, ``per_page=100`` as the client asks, the
    pull with many reviews paged by Link with parameters the operation declares."""
    sim, operation_ = served[0], OPERATIONS[REVIEWS_OPERATION]
    check = Draft7Validator(json_schema(operation_["responses"]["200"]["schema"]["items"]))
    declared = {p["name"] for p in operation_["parameters"] if p["in"] == "query"}
    names = [r.current_name for r in sim.model.repos if not r.vanished and r.role != "empty"]
    reviews: list[dict[str, Any]] = []
    links: list[str] = []
    with httpx.Client(base_url=sim.url, headers=AUTH) as http:
        for name in names:
            pulls = walk(http, f"/repos/{ORG}/{name}/pulls?state=all&per_page=100")
            for pull in pulls:
                url: str | None = f"/repos/{ORG}/{name}/pulls/{pull['number']}/reviews"
                params: dict[str, str] | None = {"per_page": "100"}
                while url:
                    answer = http.get(url, params=params)
                    assert answer.status_code == 200, answer.text
                    reviews += answer.json()
                    url, params = answer.links.get("next", {}).get("url"), None
                    links += [url] if url else []
    assert len(reviews) > 250 and links, "the pull with many reviews takes several pages"
    for review in reviews:
        errors = sorted(check.iter_errors(review), key=lambda e: list(e.path))
        assert not errors, f"review {review['id']}: {errors[0].message}"
        assert "submitted_at" not in review or TIMESTAMP.match(review["submitted_at"])
    assert {key for url in links for key, _ in parse_qsl(urlsplit(url).query)} <= declared
    assert {r["state"] for r in reviews} >= {"APPROVED", "COMMENTED", "CHANGES_REQUESTED"}
