from __future__ import annotations

from datetime import UTC, datetime

from gh_collect.endpoints import ENDPOINTS, Window

WINDOW = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


def item(created: str, updated: str, **extra: object) -> dict[str, object]:
    return {"id": 1, "created_at": created, "updated_at": updated, **extra}


def test_window_keeps_created_before_end_and_updated_since_start() -> None:
    assert WINDOW.contains(item("2024-05-01T00:00:00Z", "2025-01-01T00:00:00Z"))
    assert WINDOW.contains(item("2025-12-31T23:59:59Z", "2026-03-01T00:00:00Z"))
    assert not WINDOW.contains(item("2024-05-01T00:00:00Z", "2024-12-31T23:59:59Z"))
    assert not WINDOW.contains(item("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"))


def test_items_without_timestamps_are_kept_rather_than_lost() -> None:
    assert WINDOW.contains({"id": 1})


def test_issues_drop_pull_requests_and_use_since() -> None:
    spec = ENDPOINTS["issues"]
    url, params = spec.first_request("o/r", WINDOW)
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


def test_pulls_read_oldest_first_without_since_and_stop_past_the_window() -> None:
    spec = ENDPOINTS["pulls"]
    _, params = spec.first_request("o/r", WINDOW)
    assert "since" not in params
    assert (params["sort"], params["direction"]) == ("created", "asc")
    kept, stop = spec.select(
        [
            item("2025-06-01T00:00:00Z", "2025-06-02T00:00:00Z"),
            item("2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z"),
        ],
        WINDOW,
    )
    assert len(kept) == 1 and stop is True
    _, stop = spec.select([item("2025-06-01T00:00:00Z", "2025-06-02T00:00:00Z")], WINDOW)
    assert stop is False
