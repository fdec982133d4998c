"""Link parsing and the paginator, checked against GitHub's recorded Link headers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gh_collect.errors import RetriableApiError, SkippableApiError
from gh_collect.github.pagination import LinkPaginator, object_items, parse_link_header

FIXTURES = Path(__file__).parent / "fixtures" / "octokit"


def octokit(name: str) -> list[dict[str, Any]]:
    exchanges: list[dict[str, Any]] = json.loads(
        (FIXTURES / name / "normalized-fixture.json").read_text()
    )
    return exchanges


def test_parse_link_header_on_recorded_first_page() -> None:
    first = octokit("paginate-issues")[0]["headers"]["link"]
    assert parse_link_header(first) == {
        "next": "https://api.github.com/repositories/1000/issues?per_page=3&page=2",
        "last": "https://api.github.com/repositories/1000/issues?per_page=3&page=5",
    }


def test_parse_link_header_on_every_recorded_page() -> None:
    links = [parse_link_header(ex["headers"].get("link")) for ex in octokit("paginate-issues")]
    assert [sorted(link) for link in links] == [
        ["last", "next"],
        ["first", "last", "next", "prev"],
        ["first", "last", "next", "prev"],
        ["first", "last", "next", "prev"],
        ["first", "prev"],
    ]
    assert links[2]["prev"].endswith("page=2") and links[2]["next"].endswith("page=4")


@pytest.mark.parametrize(
    "header",
    [
        '<https://x/a?page=2>; rel="next", <https://x/a?page=9>; rel="last"',
        "<https://x/a?page=2>;rel=next,<https://x/a?page=9>;rel=last",
        '  <https://x/a?page=2> ;  rel = "next" ,\n <https://x/a?page=9>; REL="last"  ',
        '<https://x/a?page=2>; title="t"; rel="next", <https://x/a?page=9>; rel="last"',
    ],
)
def test_parse_link_header_tolerates_spacing_and_quotes(header: str) -> None:
    assert parse_link_header(header) == {
        "next": "https://x/a?page=2",
        "last": "https://x/a?page=9",
    }


def test_parse_link_header_edge_cases() -> None:
    assert parse_link_header(None) == {}
    assert parse_link_header("") == {}
    assert parse_link_header("garbage, <>; rel=next, <u>; norel") == {}
    assert parse_link_header('<https://x/1>; rel="prev first"') == {
        "prev": "https://x/1",
        "first": "https://x/1",
    }
    cursor = '<https://api.github.com/repositories/1/issues?after=Y3Vyc29yOjE%3D>; rel="next"'
    assert parse_link_header(cursor)["next"].endswith("after=Y3Vyc29yOjE%3D")


def test_paginator_walks_recorded_pages_verbatim() -> None:
    exchanges = octokit("paginate-issues")
    paginator = LinkPaginator("/repos/octokit-fixture-org/paginate-issues/issues", {"per_page": 3})
    visited: list[tuple[str, dict[str, str | int] | None, int]] = []
    for exchange in exchanges:
        assert not paginator.finished
        visited.append((paginator.current_url, paginator.current_params, paginator.page_number))
        paginator.advance(parse_link_header(exchange["headers"].get("link")).get("next"))
    assert paginator.finished
    assert paginator.page_number == 5
    assert visited[0] == ("/repos/octokit-fixture-org/paginate-issues/issues", {"per_page": 3}, 1)
    assert [url for url, _, _ in visited[1:]] == [
        f"https://api.github.com/repositories/1000/issues?per_page=3&page={n}" for n in (2, 3, 4, 5)
    ]
    assert all(params is None for _, params, _ in visited[1:])


def test_paginator_resumes_from_a_saved_cursor_url() -> None:
    saved = "https://api.github.com/repositories/7/issues?per_page=100&after=Y3Vyc29yOnYyOpK5"
    paginator = LinkPaginator(
        "/repos/o/r/issues", {"per_page": 100}, resume_url=saved, start_page=4
    )
    assert paginator.current_url == saved
    assert paginator.current_params is None
    assert paginator.page_number == 4
    paginator.advance(None)
    assert paginator.finished and paginator.page_number == 4


def test_paginator_single_page_without_link() -> None:
    paginator = LinkPaginator("/orgs/o/repos")
    assert paginator.current_params is None
    paginator.advance(None)
    assert paginator.finished
    with pytest.raises(RuntimeError):
        paginator.advance("https://x/next")


def test_paginator_detects_a_loop() -> None:
    paginator = LinkPaginator("https://api.github.com/repositories/1/issues?page=1")
    paginator.advance("https://api.github.com/repositories/1/issues?page=2")
    with pytest.raises(SkippableApiError, match=r"pagination loop at .*page=1"):
        paginator.advance("https://api.github.com/repositories/1/issues?page=1")


def test_paginator_detects_a_page_linking_to_itself() -> None:
    paginator = LinkPaginator("https://x/a?after=abc")
    with pytest.raises(SkippableApiError, match="pagination loop"):
        paginator.advance("https://x/a?after=abc")


def test_first_request_counts_with_its_params_for_loop_detection() -> None:
    paginator = LinkPaginator("https://x/a", {"per_page": 3})
    paginator.advance("https://x/a?per_page=3&page=2")
    assert paginator.page_number == 2
    with pytest.raises(SkippableApiError, match="pagination loop"):
        paginator.advance("https://x/a?per_page=3")


@pytest.mark.parametrize(("item", "kind"), [(17, "number"), ("x", "string"), (None, "null")])
def test_object_items_refuses_a_page_with_an_item_that_is_not_an_object(
    item: Any, kind: str
) -> None:
    with pytest.raises(RetriableApiError) as info:
        object_items([{"id": 1}, item], "http://api/repos/o/r/pulls")
    message = str(info.value)
    assert f"item 2 is a JSON {kind}, not an object" in message and "\n" not in message


def test_object_items_passes_objects_through() -> None:
    assert object_items([{"id": 1}], "u") == [{"id": 1}]
    assert object_items(None, "u") == []  # no body (204)
