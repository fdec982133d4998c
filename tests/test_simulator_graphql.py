"""The simulator's GraphQL API over HTTP: GitHub's answers, limits and budget, and the same
data as the REST routes serve.

One simulator serves the read-only tests; budgets are per token, so each test that spends
or exhausts one uses a token of its own (or a simulator of its own for other settings).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gh_collect.simulator import SCENARIO_REPOS, Simulator, SimulatorConfig
from gh_collect.simulator.graphql.endpoint import TIMEOUT_PENALTY
from gh_collect.simulator.model.details import Details
from gh_collect.simulator.model.reviews import MANY_REVIEWS_REPO, PENDING
from gh_collect.simulator.server.owners import OTHER_USER

ORG = "sample-org"
HUNDRED = SCENARIO_REPOS["hundred"]
_tokens = itertools.count()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(seed=7, repos=10, org=ORG)) as simulator:
        yield simulator


def token() -> str:
    """A token of its own: its own budgets."""
    return f"gql-test-{next(_tokens)}"


def headers(auth: str | None) -> dict[str, str]:
    out = {"User-Agent": "gql-test"}
    if auth is not None:
        out["Authorization"] = f"bearer {auth}"
    return out


def post(
    sim: Simulator,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    auth: str | None = "gql-reader",
    path: str = "/graphql",
) -> httpx.Response:
    body = {"query": query, "variables": variables or {}}
    return httpx.post(sim.url + path, json=body, headers=headers(auth), timeout=30)


def data(sim: Simulator, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
    response = post(sim, query, variables, **kw)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def rest(sim: Simulator, path: str, **params: Any) -> httpx.Response:
    return httpx.get(sim.url + path, params=params, headers=headers("gql-reader"), timeout=30)


def rest_all(sim: Simulator, path: str, **params: Any) -> list[Any]:
    """Every item of a REST list, following its Link headers."""
    items: list[Any] = []
    response = rest(sim, path, **params)
    while True:
        assert response.status_code == 200, response.text
        items += response.json()
        following = response.links.get("next")
        if following is None:
            return items
        response = httpx.get(following["url"], headers=headers("gql-reader"), timeout=30)


PULLS = """
query($name: String!, $first: Int!, $after: String, $order: IssueOrder) {
  repository(owner: "sample-org", name: $name) {
    pullRequests(first: $first, after: $after, orderBy: $order) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { number databaseId fullDatabaseId updatedAt createdAt state }
    }
  }
}
"""


def graphql_pulls(sim: Simulator, name: str, order: dict[str, str] | None) -> list[Any]:
    """Every pull of a repo through ``pullRequests``, 40 a query, following endCursor."""
    nodes: list[Any] = []
    after = None
    while True:
        variables = {"name": name, "first": 40, "after": after, "order": order}
        page = data(sim, PULLS, variables)["repository"]["pullRequests"]
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            assert page["totalCount"] == len(nodes)
            return nodes
        after = page["pageInfo"]["endCursor"]


# -- validation against GitHub's schema, as GitHub words it -----------------------------------


def test_an_unknown_argument_and_field_are_refused_as_github_refuses_them(sim: Simulator) -> None:
    query = (
        '{ repository(owner: "sample-org", name: "x") {\n'
        '  pullRequests(first: 5, since: "2025-01-01") { nodes { number shoeSize } } } }'
    )
    response = post(sim, query, auth=(auth := token()))
    assert response.status_code == 200
    assert response.json() == {
        "errors": [
            {
                "path": ["query", "repository", "pullRequests", "since"],
                "extensions": {
                    "code": "argumentNotAccepted",
                    "name": "pullRequests",
                    "typeName": "Field",
                    "argumentName": "since",
                },
                "locations": [{"line": 2, "column": 26}],
                "message": "Field 'pullRequests' doesn't accept argument 'since'",
            },
            {
                "path": ["query", "repository", "pullRequests", "nodes", "shoeSize"],
                "extensions": {
                    "code": "undefinedField",
                    "typeName": "PullRequest",
                    "fieldName": "shoeSize",
                },
                "locations": [{"line": 2, "column": 64}],
                "message": "Field 'shoeSize' doesn't exist on type 'PullRequest'",
            },
        ]
    }
    assert response.headers["x-ratelimit-resource"] == "graphql"
    assert response.headers["x-ratelimit-used"] == "0", "a refused query is not charged"
    assert post(sim, "{ viewer { login } }", auth=auth).headers["x-ratelimit-used"] == "1"


def test_missing_arguments_are_one_error_naming_them_all(sim: Simulator) -> None:
    errors = post(sim, "{ repository { id } }").json()["errors"]
    assert [(e["extensions"]["code"], e["path"]) for e in errors] == [
        ("missingRequiredArguments", ["query", "repository"])
    ]
    assert errors[0]["message"] == "Field 'repository' is missing required arguments: name, owner"


@pytest.mark.parametrize(
    ("connection", "kind"),
    [
        ("pullRequests { nodes { id } }", "MISSING_PAGINATION_BOUNDARIES"),
        ("pullRequests(first: 101) { nodes { id } }", "EXCESSIVE_PAGINATION"),
        (
            "pullRequests(first: 100) { nodes { reviews(first: 100) { nodes { "
            "comments(first: 100) { nodes { id } } } } } }",
            "MAX_NODE_LIMIT_EXCEEDED",
        ),
    ],
)
def test_queries_over_github_s_limits_are_refused_uncharged(
    sim: Simulator, connection: str, kind: str
) -> None:
    before = sim.stats()["graphql_points"]
    response = post(
        sim, f'{{ repository(owner: "sample-org", name: "{HUNDRED}") {{ {connection} }} }}'
    )
    body = response.json()
    assert response.status_code == 200 and "data" not in body
    assert [error["type"] for error in body["errors"]] == [kind]
    assert sim.stats()["graphql_points"] == before


def test_a_query_that_does_not_parse_is_located(sim: Simulator) -> None:
    errors = post(sim, "{ viewer { login } } }").json()["errors"]
    assert errors == [
        {
            "message": 'Parse error on "}" (RCURLY) at [1, 22]',
            "locations": [{"line": 1, "column": 22}],
        }
    ]


def test_graphql_always_needs_a_token() -> None:
    with Simulator(SimulatorConfig(seed=1, repos=3, scenarios=False, token="the-token")) as own:
        anonymous = post(own, "{ viewer { login } }", auth=None)
        wrong = post(own, "{ viewer { login } }", auth="not-the-token")
        right = post(own, "{ viewer { login } }", auth="the-token")
    assert anonymous.status_code == 401
    assert anonymous.json()["message"] == "This endpoint requires you to be authenticated."
    assert wrong.status_code == 401 and wrong.json()["message"] == "Bad credentials"
    assert right.status_code == 200 and right.json()["data"]["viewer"]["login"] == OTHER_USER


def test_ghes_serves_graphql_at_api_graphql_not_under_api_v3(sim: Simulator) -> None:
    assert data(sim, "{ viewer { login } }", path="/api/graphql") == {
        "viewer": {"login": OTHER_USER}
    }
    assert post(sim, "{ viewer { login } }", path="/api/v3/graphql").status_code == 404
    assert httpx.get(sim.url + "/graphql", headers=headers("x")).status_code == 404


# -- the budget: points, apart from REST's core ----------------------------------------------


def test_points_are_a_budget_of_their_own_and_run_out_with_rate_limited() -> None:
    config = SimulatorConfig(seed=1, repos=3, scenarios=False, graphql_rate_limit=3)
    query = "{ rateLimit { cost remaining used limit nodeCount } viewer { login } }"
    with Simulator(config) as own:
        answers = [post(own, query, auth="spender") for _ in range(4)]
        core = httpx.get(f"{own.url}/rate_limit", headers=headers("spender"))
        rest_page = httpx.get(f"{own.url}/orgs/{ORG}/repos", headers=headers("spender"))
        stats = own.stats()
    rates = [answer.json()["data"]["rateLimit"] for answer in answers[:3]]
    assert [(r["cost"], r["remaining"], r["used"], r["limit"]) for r in rates] == [
        (1, 2, 1, 3),
        (1, 1, 2, 3),
        (1, 0, 3, 3),
    ]
    spent = answers[3]
    assert spent.status_code == 200
    assert spent.json() == {
        "errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."}]
    }
    assert spent.headers["x-ratelimit-remaining"] == "0"
    assert spent.headers["x-ratelimit-resource"] == "graphql"
    assert rest_page.headers["x-ratelimit-resource"] == "core"
    assert rest_page.headers["x-ratelimit-remaining"] == "4999", "GraphQL spent no core"
    assert core.json()["resources"]["graphql"]["used"] == 3
    assert (stats["graphql_queries"], stats["graphql_points"], stats["graphql_limited"]) == (
        3,
        3,
        1,
    )


def test_points_a_minute_are_a_secondary_limit() -> None:
    config = SimulatorConfig(seed=1, repos=3, scenarios=False, graphql_points_per_minute=2)
    with Simulator(config) as own:
        answers = [post(own, "{ viewer { login } }", auth="fast") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 403]
    assert "secondary rate limit" in answers[2].json()["message"]
    assert answers[2].headers["retry-after"] == "60"


def test_a_query_too_heavy_for_a_slow_repo_times_out_and_costs_extra() -> None:
    config = SimulatorConfig(
        seed=7, repos=10, org=ORG, slow_queries={HUNDRED: 20}, slow_page_hold_s=0.2
    )
    heavy = """query($first: Int!) { repository(owner: "sample-org", name: "%s") {
        pullRequests(first: $first) { nodes { number reviews(first: 10) { totalCount } } } } }"""
    plain = """{ repository(owner: "sample-org", name: "%s") {
        pullRequests(first: 50) { nodes { number } } } }"""
    with Simulator(config) as own:
        started = time.monotonic()
        cut = post(own, heavy % HUNDRED, {"first": 50}, auth="slow")
        held = time.monotonic() - started
        light = post(own, heavy % HUNDRED, {"first": 20}, auth="slow")
        without_reviews = post(own, plain % HUNDRED, auth="slow")
        elsewhere = post(own, heavy % SCENARIO_REPOS["two_hundred"], {"first": 50}, auth="slow")
        stats = own.stats()
    assert cut.status_code == 502 and held >= 0.2
    body = cut.json()
    assert body["data"] is None
    assert body["errors"][0]["message"].startswith(
        "Something went wrong while executing your query. This may be the result of a timeout"
    )
    assert cut.headers["x-ratelimit-used"] == str(1 + TIMEOUT_PENALTY)
    assert [r.status_code for r in (light, without_reviews, elsewhere)] == [200, 200, 200]
    assert stats["faults"]["graphql timeout"] == 1


def test_injected_faults_reach_graphql_too() -> None:
    config = SimulatorConfig(seed=1, repos=3, scenarios=False, faults={"502": 1.0})
    with Simulator(config) as own:
        response = post(own, "{ viewer { login } }")
        stats = own.stats()
    assert response.status_code == 502 and stats["faults"] == {"502": 1}
    assert stats["by_route"] == {"/graphql": 1} and stats["graphql_points"] == 0


# -- the same data as REST -------------------------------------------------------------------


def test_pulls_newest_updated_first_are_the_rest_list_in_its_order(sim: Simulator) -> None:
    name = SCENARIO_REPOS["two_hundred"]
    order = {"field": "UPDATED_AT", "direction": "DESC"}
    nodes = graphql_pulls(sim, name, order)
    listed = rest_all(
        sim, f"/repos/{ORG}/{name}/pulls", state="all", sort="updated", direction="desc",
        per_page=100,
    )  # fmt: skip
    assert len(nodes) == len(listed) == 200
    assert [(n["number"], n["databaseId"], n["updatedAt"]) for n in nodes] == [
        (p["number"], p["id"], p["updated_at"]) for p in listed
    ]
    assert all(n["fullDatabaseId"] == str(n["databaseId"]) for n in nodes)


def test_other_orders_and_state_filters_match_rest(sim: Simulator) -> None:
    name = HUNDRED
    created = graphql_pulls(sim, name, {"field": "CREATED_AT", "direction": "ASC"})
    listed = rest_all(sim, f"/repos/{ORG}/{name}/pulls", state="all", sort="created",
                      direction="asc", per_page=100)  # fmt: skip
    assert [n["number"] for n in created] == [p["number"] for p in listed]
    merged = data(
        sim,
        """{ repository(owner: "sample-org", name: "%s") { pullRequests(first: 100,
            states: [MERGED]) { totalCount nodes { number state } } } }""".replace("%s", name),
    )["repository"]["pullRequests"]
    expected = sorted(p["number"] for p in listed if p["merged_at"] is not None)
    assert sorted(n["number"] for n in merged["nodes"]) == expected
    assert merged["totalCount"] == len(expected) > 0
    assert {n["state"] for n in merged["nodes"]} == {"MERGED"}


STATS = """query($name: String!, $number: Int!) { repository(owner: "sample-org", name: $name) {
    pullRequest(number: $number) { additions deletions changedFiles commits { totalCount }
        mergedBy { login } author { __typename login url } state merged } } }"""


def test_stats_are_those_of_the_rest_pull(sim: Simulator) -> None:
    repo = next(r for r in sim.model.repos if r.name == HUNDRED)
    for item in repo.pulls[:12]:
        full = rest(sim, f"/repos/{ORG}/{HUNDRED}/pulls/{item.number}").json()
        pull = data(sim, STATS, {"name": HUNDRED, "number": item.number})["repository"]
        pull = pull["pullRequest"]
        assert (pull["additions"], pull["deletions"], pull["changedFiles"]) == (
            full["additions"],
            full["deletions"],
            full["changed_files"],
        )
        assert pull["commits"]["totalCount"] == full["commits"]
        merger = full["merged_by"]["login"] if full["merged_by"] else None
        assert (pull["mergedBy"] or {}).get("login") == merger
        assert pull["merged"] == full["merged"]


def test_a_bot_s_login_has_no_bot_suffix_in_graphql(sim: Simulator) -> None:
    found = [
        (repo.name, item.number, item.to_json("")["user"]["login"])
        for repo in sim.model.repos
        if not repo.vanished and repo.role != "renamed"
        for item in repo.pulls
        if (item.to_json("")["user"] or {}).get("type") == "Bot"
    ]
    assert found, "the seed's org has a pull by a bot"
    name, number, login = found[0]
    author = data(sim, STATS, {"name": name, "number": number})["repository"]["pullRequest"][
        "author"
    ]
    short = login.removesuffix("[bot]")
    assert author == {
        "__typename": "Bot",
        "login": short,
        "url": f"https://github.com/apps/{short}",
    }


REVIEWS = """query($name: String!, $number: Int!, $after: String) {
  repository(owner: "sample-org", name: $name) { pullRequest(number: $number) {
    reviews(first: 100, after: $after) { totalCount pageInfo { hasNextPage endCursor }
      nodes { id fullDatabaseId author { login } authorAssociation state submittedAt body
              commit { oid } url } } } } }"""


def as_rest(node: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL review in the REST fields it must equal."""
    return {
        "node_id": node["id"],
        "id": int(node["fullDatabaseId"]),
        "login": node["author"]["login"],
        "author_association": node["authorAssociation"],
        "state": node["state"],
        "submitted_at": node["submittedAt"],
        "body": node["body"],
        "commit_id": node["commit"]["oid"],
        "html_url": node["url"],
    }


def rest_fields(review: dict[str, Any]) -> dict[str, Any]:
    keys = ("node_id", "id", "author_association", "state", "body", "commit_id", "html_url")
    return {
        **{key: review[key] for key in keys},
        "login": review["user"]["login"],
        "submitted_at": review.get("submitted_at"),
    }


def graphql_reviews(sim: Simulator, name: str, number: int) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = data(sim, REVIEWS, {"name": name, "number": number, "after": after})
        reviews = page["repository"]["pullRequest"]["reviews"]
        nodes += reviews["nodes"]
        if not reviews["pageInfo"]["hasNextPage"]:
            assert reviews["totalCount"] == len(nodes)
            return nodes
        after = reviews["pageInfo"]["endCursor"]


def test_reviews_are_those_of_the_rest_route(sim: Simulator) -> None:
    repo = next(r for r in sim.model.repos if r.name == HUNDRED)
    compared = 0
    for item in repo.pulls[:15]:
        listed = rest_all(sim, f"/repos/{ORG}/{HUNDRED}/pulls/{item.number}/reviews")
        assert [as_rest(n) for n in graphql_reviews(sim, HUNDRED, item.number)] == [
            rest_fields(review) for review in listed
        ]
        compared += len(listed)
    assert compared > 10


def test_database_id_beyond_32_bits_is_an_error_beside_the_data(sim: Simulator) -> None:
    repo = next(r for r in sim.model.repos if r.name == HUNDRED)
    number = next(i.number for i in repo.pulls if Details(sim.model).reviews(repo, i.number))
    query = """query($number: Int!) { repository(owner: "sample-org", name: "%s") {
        pullRequest(number: $number) { databaseId reviews(first: 1) {
            nodes { databaseId fullDatabaseId } } } } }""".replace("%s", HUNDRED)
    body = post(sim, query, {"number": number}).json()
    pull = body["data"]["repository"]["pullRequest"]
    review = pull["reviews"]["nodes"][0]
    assert isinstance(pull["databaseId"], int), "pull ids fit in 32 bits"
    assert review["databaseId"] is None and int(review["fullDatabaseId"]) > 2**31
    assert body["errors"][0]["path"] == ["repository", "pullRequest", "reviews", "nodes", 0,
                                         "databaseId"]  # fmt: skip
    assert "32-bit" in body["errors"][0]["message"]


# -- the pull with many reviews, read by follow-up queries ------------------------------------


REVIEW = "fragment Review on PullRequestReview { id state submittedAt author { login } }"
BATCH = (
    """query { repository(owner: "sample-org", name: "%s") {
  pullRequests(first: 50, orderBy: {field: UPDATED_AT, direction: DESC}) { nodes { id number
    reviews(first: 10) { totalCount pageInfo { hasNextPage endCursor } nodes { ...Review } } } } } }
"""
    + REVIEW
)
FOLLOW_UP = (
    """query($id: ID!, $after: String) { node(id: $id) { ... on PullRequest {
  reviews(first: 100, after: $after) { pageInfo { hasNextPage endCursor }
    nodes { ...Review } } } } }
"""
    + REVIEW
)


def many_reviews_number(sim: Simulator) -> int:
    repo = next(r for r in sim.model.repos if r.name == MANY_REVIEWS_REPO)
    (pull_id,) = sim.model.many_reviews
    return next(item.number for item in repo.pulls if item.id == pull_id)


def test_a_pull_with_250_reviews_overflows_the_batch_and_is_read_by_follow_ups(
    sim: Simulator,
) -> None:
    number = many_reviews_number(sim)
    batch = data(sim, BATCH.replace("%s", HUNDRED))["repository"]["pullRequests"]["nodes"]
    pull = next(node for node in batch if node["number"] == number)
    reviews, page = pull["reviews"]["nodes"], pull["reviews"]["pageInfo"]
    assert pull["reviews"]["totalCount"] == 251 and len(reviews) == 10 and page["hasNextPage"]
    follow_ups = 0
    while page["hasNextPage"]:
        found = data(sim, FOLLOW_UP, {"id": pull["id"], "after": page["endCursor"]})
        reviews += found["node"]["reviews"]["nodes"]
        page = found["node"]["reviews"]["pageInfo"]
        follow_ups += 1
    assert follow_ups == 3  # 241 after the batch's 10: 100, 100, 41
    listed = rest_all(sim, f"/repos/{ORG}/{HUNDRED}/pulls/{number}/reviews", per_page=100)
    assert [r["id"] for r in reviews] == [r["node_id"] for r in listed]
    assert len({r["id"] for r in reviews}) == 251
    assert all(r["submittedAt"] for r in reviews[:250])
    assert reviews[-1]["state"] == PENDING and reviews[-1]["submittedAt"] is None
    assert reviews[-1]["author"]["login"] == OTHER_USER
    assert graphql_reviews(sim, HUNDRED, number)[-1]["id"] == reviews[-1]["id"]


def test_the_rest_reviews_route_pages_like_github(sim: Simulator) -> None:
    number = many_reviews_number(sim)
    first = rest(sim, f"/repos/{ORG}/{HUNDRED}/pulls/{number}/reviews")
    repo_id = next(r.id for r in sim.model.repos if r.name == HUNDRED)
    assert len(first.json()) == 30
    assert first.links["next"]["url"].startswith(
        f"{sim.url}/repositories/{repo_id}/pulls/{number}/reviews?"
    )
    assert "page=9" in first.links["last"]["url"]
    assert len(rest_all(sim, f"/repos/{ORG}/{HUNDRED}/pulls/{number}/reviews")) == 251


def test_a_pending_review_is_shown_to_its_author_only() -> None:
    config = SimulatorConfig(seed=7, repos=10, org=ORG, owner_type="user", owner_token="owner")
    with Simulator(config) as own:
        number = many_reviews_number(own)
        path = f"/repos/{ORG}/{HUNDRED}/pulls/{number}/reviews"
        seen: dict[str, tuple[int, int]] = {}
        for auth in ("owner", "visitor"):
            listed = httpx.get(own.url + path, params={"per_page": 100, "page": 3},
                               headers=headers(auth))  # fmt: skip
            query = REVIEWS.replace("first: 100", "first: 1")
            total = post(own, query, {"name": HUNDRED, "number": number}, auth=auth).json()
            count = total["data"]["repository"]["pullRequest"]["reviews"]["totalCount"]
            seen[auth] = (200 + len(listed.json()), count)
    assert seen == {"owner": (250, 250), "visitor": (251, 251)}


def test_many_reviews_changes_that_pull_s_reviews_and_nothing_else() -> None:
    plain = Simulator(SimulatorConfig(seed=7, repos=10, org=ORG, many_reviews=0))
    scenario = Simulator(SimulatorConfig(seed=7, repos=10, org=ORG))
    assert not plain.model.many_reviews and len(scenario.model.many_reviews) == 1
    (pull_id,) = scenario.model.many_reviews
    changed = []
    for plain_repo, repo in zip(plain.model.repos, scenario.model.repos, strict=True):
        assert plain_repo.listing == repo.listing and plain_repo.current == repo.current
        for plain_item, item in zip(plain_repo.pulls, repo.pulls, strict=True):
            assert plain_item.fragments == item.fragments
            before = Details(plain.model).reviews(plain_repo, item.number)
            if Details(scenario.model).reviews(repo, item.number) != before:
                changed.append(item.id)
        for plain_item, item in zip(plain_repo.issues, repo.issues, strict=True):
            assert plain_item.fragments == item.fragments
    assert changed == [pull_id]


# -- lookups that fail as GitHub's do ---------------------------------------------------------


def test_an_unknown_repository_or_node_is_not_found_beside_null_data(sim: Simulator) -> None:
    missing = post(sim, '{ repository(owner: "sample-org", name: "nope") { id } }').json()
    assert missing == {
        "data": {"repository": None},
        "errors": [
            {
                "type": "NOT_FOUND",
                "path": ["repository"],
                "locations": [{"line": 1, "column": 3}],
                "message": "Could not resolve to a Repository with the name 'sample-org/nope'.",
            }
        ],
    }
    vanished = post(sim, '{ repository(owner: "sample-org", name: "vanished-repo") { id } }')
    assert vanished.json()["errors"][0]["type"] == "NOT_FOUND"
    nodes = post(sim, '{ nodes(ids: ["bad", "MDExOlB1bGxSZXF1ZXN0MQ=="]) { id } }').json()
    assert nodes["data"] == {"nodes": [None, None]}
    assert [(e["type"], e["path"]) for e in nodes["errors"]] == [
        ("NOT_FOUND", ["nodes", 0]),
        ("NOT_FOUND", ["nodes", 1]),
    ]


def test_a_cursor_from_elsewhere_is_refused(sim: Simulator) -> None:
    pulls = data(sim, BATCH.replace("%s", HUNDRED))["repository"]["pullRequests"]["nodes"]
    cursor = data(sim, FOLLOW_UP, {"id": pulls[0]["id"], "after": None})["node"]["reviews"]
    review_cursor = cursor["pageInfo"]["endCursor"]
    query = """query($after: String) { repository(owner: "sample-org", name: "%s") {
        pullRequests(first: 5, after: $after) { totalCount } } }""".replace("%s", HUNDRED)
    for bad in (review_cursor, "Y3Vyc29yOnYyOpK5", "not base64!"):
        body = post(sim, query, {"after": bad}).json()
        assert body["data"] == {"repository": None}
        assert body["errors"][0]["type"] == "INVALID_CURSOR_ARGUMENTS"
        assert body["errors"][0]["message"] == f"`{bad}` does not appear to be a valid cursor."


def test_a_field_the_simulator_does_not_serve_is_an_error_not_silence(sim: Simulator) -> None:
    body = post(
        sim,
        '{ repository(owner: "sample-org", name: "%s") { id stargazerCount } }'.replace(
            "%s", HUNDRED
        ),
    ).json()
    assert body["data"] == {"repository": None}
    assert body["errors"][0]["path"] == ["repository", "stargazerCount"]
    assert "does not serve Repository.stargazerCount" in body["errors"][0]["message"]
