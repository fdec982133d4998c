from __future__ import annotations

from datetime import UTC, datetime

from gh_collect import endpoints
from gh_collect.curated.schemas import schema_for
from gh_collect.endpoints import Window, WindowRule

WINDOW = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
RULE = WindowRule()


def item(created: str, updated: str, **extra: object) -> dict[str, object]:
    return {"id": 1, "created_at": created, "updated_at": updated, **extra}


def test_window_keeps_created_before_end_and_updated_since_start() -> None:
    assert RULE.keeps(item("2024-05-01T00:00:00Z", "2025-01-01T00:00:00Z"), WINDOW)
    assert RULE.keeps(item("2025-12-31T23:59:59Z", "2026-03-01T00:00:00Z"), WINDOW)
    assert not RULE.keeps(item("2024-05-01T00:00:00Z", "2024-12-31T23:59:59Z"), WINDOW)
    assert not RULE.keeps(item("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"), WINDOW)


def test_items_without_timestamps_are_kept_rather_than_lost() -> None:
    assert RULE.keeps({"id": 1}, WINDOW)


def test_issues_drop_pull_requests_and_use_since() -> None:
    spec = endpoints.get("issues")
    first = spec.first_request("o/r", WINDOW)
    url, params = first.url, dict(first.params or {})
    assert url == "/repos/o/r/issues"
    assert params["since"] == "2025-01-01T00:00:00Z"
    assert params["state"] == "all" and params["per_page"] == 100
    kept, _ = spec.select(
        [
            item("2025-02-01T00:00:00Z", "2025-02-01T00:00:00Z"),
            item("2025-02-01T00:00:00Z", "2025-02-01T00:00:00Z", pull_request={}),
        ],
        WINDOW,
    )
    assert len(kept) == 1 and "pull_request" not in kept[0]


def test_pulls_read_newest_updated_first_and_stop_below_the_year() -> None:
    spec = endpoints.get("pulls")
    params = dict(spec.first_request("o/r", WINDOW).params or {})
    assert "since" not in params
    assert (params["sort"], params["direction"]) == ("updated", "desc")
    kept, stop = spec.select(
        [
            item("2026-02-01T00:00:00Z", "2026-02-03T00:00:00Z"),  # created after the year
            item("2019-06-01T00:00:00Z", "2025-06-02T00:00:00Z"),  # old, touched in the year
            item("2020-06-01T00:00:00Z", "2024-12-31T23:59:59Z"),  # below the year: stop
        ],
        WINDOW,
    )
    assert [i["created_at"][:4] for i in kept] == ["2019"] and stop is True
    _, stop = spec.select([item("2019-06-01T00:00:00Z", "2025-01-01T00:00:00Z")], WINDOW)
    assert stop is False  # exactly at the start is in the year


def test_a_catch_up_pass_stops_below_its_own_floor() -> None:
    spec = endpoints.get("pulls")
    floor = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    page = [item("2025-06-01T00:00:00Z", "2026-03-01T12:00:05Z")]
    assert not spec.stops(page, WINDOW, floor=floor)  # the same second is read again
    page.append(item("2025-06-01T00:00:00Z", "2026-03-01T12:00:04Z"))
    assert spec.stops(page, WINDOW, floor=floor)


def test_a_walk_resumed_from_a_0_1_0_url_finishes_in_its_own_order() -> None:
    spec = endpoints.get("pulls")
    legacy = (
        "http://h/repositories/1/pulls?state=all&sort=created&direction=asc&per_page=100&page=3"
    )
    order = spec.order_of(legacy)
    assert not order.newest_first and order.matches(legacy)
    past = [item("2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z")]
    assert spec.stops(past, WINDOW, order=order)  # created after the year: done
    assert not spec.stops(past, WINDOW)  # newest-first would read on
    assert spec.order_of(legacy.replace("created&direction=asc", "updated&direction=desc")) is (
        spec.order
    )
    assert spec.order_of(None) is spec.order


def test_the_declaration_decides_what_the_curated_table_keeps() -> None:
    """ "Drop PRs from the issues list" lives in one place: the declaration's ``skip``."""
    issues, pulls = schema_for("issues"), schema_for("pulls")
    line = b'{"endpoint":"issues","repo":"o/r","data":{"id":1,"pull_request":{}}}'
    assert issues.extract(line) is None
    assert pulls.extract(line) is not None
    assert [c.name for c in issues.columns] == [c.name for c in endpoints.get("issues").columns]


def test_a_registered_endpoint_is_known_to_config_and_refused_twice() -> None:
    from gh_collect.config import Config

    toy = endpoints.Endpoint(name="toys", path="/repos/{full_name}/toys", columns=())
    endpoints.register(toy)
    try:
        config = Config.model_validate(
            {"target": {"org": "o"}, "year": 2025, "endpoints": ["toys"]}
        )
        assert config.endpoints == ["toys"]
        try:
            endpoints.register(toy)
        except ValueError as exc:
            assert "already declared" in str(exc)
        else:
            raise AssertionError("a second declaration of one name was accepted")
    finally:
        endpoints.unregister("toys")
