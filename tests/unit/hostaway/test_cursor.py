"""The verified ``afterId`` cursor: pure arithmetic over pages of (id, updatedOn) heads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncd.connectors.hostaway.cursor import AfterIdCursor, hostaway_time, parse_time
from syncd.connectors.pagination import EPOCH

T = datetime(2025, 1, 1, tzinfo=UTC)
Head = tuple[int, datetime]


def id_of(head: Head) -> int:
    return head[0]


def time_of(head: Head) -> datetime:
    return head[1]


def at(seconds: int, *ids: int) -> list[Head]:
    return [(i, T + timedelta(seconds=seconds)) for i in ids]


def test_a_first_run_starts_at_the_epoch_without_a_cursor() -> None:
    cursor = AfterIdCursor.start(None, 30)
    assert cursor.since == EPOCH
    assert cursor.params() == {"sortOrder": "updatedOn", "latestActivityStart": "1970-01-01 00:00:00"}


def test_a_resumed_run_starts_from_the_checkpoint_minus_the_overlap_floored_to_the_second() -> None:
    cursor = AfterIdCursor.start({"updated_since": "2025-01-01T00:01:00.000Z", "after_id": 5}, 2.5)
    assert cursor.params() == {"sortOrder": "updatedOn", "latestActivityStart": "2025-01-01 00:00:57"}


def test_after_a_page_the_cursor_names_the_second_to_last_record_and_expects_the_last() -> None:
    cursor = AfterIdCursor(EPOCH).advance(at(0, 1, 2) + at(1, 3), id_of, time_of)
    assert (cursor.after_id, cursor.anchor, cursor.anchor_at) == (2, 3, T + timedelta(seconds=1))
    assert cursor.params()["afterId"] == 2 and cursor.params()["latestActivityStart"] == "2025-01-01 00:00:01"
    assert cursor.to_checkpoint() == {"updated_since": "2025-01-01T00:00:01.000Z", "after_id": 2, "anchor": 3}


def test_a_page_that_starts_with_the_anchor_as_read_continues_the_walk() -> None:
    cursor = AfterIdCursor(EPOCH).advance(at(0, 1, 2), id_of, time_of)
    assert cursor.verify(at(0, 2) + at(1, 4, 5), id_of, time_of) == at(1, 4, 5)


def test_a_moved_anchor_a_different_first_record_or_an_empty_page_mean_a_rescan() -> None:
    cursor = AfterIdCursor(EPOCH).advance(at(0, 1, 2), id_of, time_of)
    assert cursor.verify(at(9, 2) + at(9, 4), id_of, time_of) is None  # the anchor was modified
    assert cursor.verify(at(1, 4, 5), id_of, time_of) is None  # the cursor record moved away
    assert cursor.verify([], id_of, time_of) is None  # the cursor record is gone
    rescan = cursor.rescan()
    assert (rescan.since, rescan.after_id) == (T, None)


def test_a_single_record_page_keeps_the_previous_anchor_as_the_cursor() -> None:
    cursor = AfterIdCursor(EPOCH).advance(at(0, 1, 2), id_of, time_of).advance(at(3, 7), id_of, time_of)
    assert (cursor.after_id, cursor.anchor) == (2, 7)


def test_records_without_a_readable_time_do_not_move_the_window() -> None:
    page: list[tuple[int, datetime | None]] = [(1, T), (2, None)]
    cursor = AfterIdCursor(EPOCH).advance(page, lambda h: h[0], lambda h: h[1])
    assert (cursor.since, cursor.anchor, cursor.anchor_at) == (T, 2, None)


def test_hostaway_times_parse_and_format_at_the_second() -> None:
    assert parse_time("2025-01-01 00:00:05") == T + timedelta(seconds=5)
    assert parse_time("2025-01-01T00:00:05Z") == T + timedelta(seconds=5)
    assert parse_time("2025-01-01 00:00:05x") is None and parse_time(5) is None
    assert hostaway_time(T + timedelta(seconds=5, microseconds=900_000)) == "2025-01-01 00:00:05"
