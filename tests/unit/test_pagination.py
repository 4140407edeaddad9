"""The updated-since cursor never loses a record, even with ties and concurrent updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.connectors.pagination import (
    EPOCH,
    NewestFirstCursor,
    NumberedWalk,
    UpdatedSinceCursor,
    format_ts,
    parse_ts,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class FakePartner:
    """A list sorted by (ts, id) with a ``ts >= x`` filter and skip/limit, like Guesty's."""

    def __init__(self, timestamps: list[int]) -> None:
        self.records: dict[str, tuple[int, int]] = {f"r{i:04d}": (ts, 1) for i, ts in enumerate(timestamps)}

    def query(self, since: datetime, skip: int, limit: int) -> list[dict[str, Any]]:
        since_s = int((since - T0).total_seconds())
        rows = sorted((ts, rid, v) for rid, (ts, v) in self.records.items() if ts >= since_s)
        return [
            {"_id": rid, "ts": T0 + timedelta(seconds=ts), "v": v} for ts, rid, v in rows[skip : skip + limit]
        ]

    def update(self, rid: str, same_as_max: bool) -> None:
        top = max(ts for ts, _ in self.records.values())
        _, v = self.records[rid]
        self.records[rid] = (top if same_as_max else top + 1, v + 1)


def walk(partner: FakePartner, limit: int, updates: list[tuple[int, bool]]) -> dict[str, int]:
    """Page through the partner, applying one update after each request; return seen versions."""
    cursor = UpdatedSinceCursor(EPOCH)
    seen: dict[str, int] = {}
    ids = sorted(partner.records)
    for step in range(10_000):
        results = partner.query(cursor.ts, cursor.request_skip, limit)
        if step < len(updates):
            index, same = updates[step]
            partner.update(ids[index % len(ids)], same)
        records = cursor.verify(results, lambda r: r["_id"])
        if records is None:
            cursor = cursor.rescan()
            continue
        for r in records:
            seen[r["_id"]] = max(seen.get(r["_id"], 0), r["v"])
        cursor = cursor.advance(records, lambda r: r["ts"], lambda r: r["_id"])
        if len(results) < limit:
            return seen
    raise AssertionError("pagination did not terminate")


@settings(max_examples=300, deadline=None)
@given(
    timestamps=st.lists(st.integers(0, 30), min_size=1, max_size=120),
    limit=st.integers(2, 12),
    updates=st.lists(st.tuples(st.integers(0, 10_000), st.booleans()), max_size=40),
)
def test_every_record_is_seen_at_least_at_its_starting_version(
    timestamps: list[int], limit: int, updates: list[tuple[int, bool]]
) -> None:
    partner = FakePartner(sorted(timestamps))
    start = {rid: v for rid, (_, v) in partner.records.items()}
    seen = walk(partner, limit, updates)
    lost = [rid for rid, v in start.items() if seen.get(rid, 0) < v]
    assert not lost


def test_ties_across_a_page_boundary_are_skipped_exactly() -> None:
    partner = FakePartner([0, 5, 5, 5, 5, 5, 9])
    cursor = UpdatedSinceCursor(EPOCH)
    page1 = partner.query(cursor.ts, cursor.request_skip, 3)
    cursor = cursor.advance(page1, lambda r: r["ts"], lambda r: r["_id"])
    assert cursor.ts == T0 + timedelta(seconds=5) and cursor.skip == 2 and cursor.anchor == "r0002"
    # Re-reads exactly one record (the anchor) and drops it.
    page2 = partner.query(cursor.ts, cursor.request_skip, 3)
    records = cursor.verify(page2, lambda r: r["_id"])
    assert records is not None and [r["_id"] for r in records] == ["r0003", "r0004"]


def test_a_shrunken_tie_group_is_rescanned_not_skipped() -> None:
    partner = FakePartner([5, 5, 5, 5, 9])
    cursor = UpdatedSinceCursor(EPOCH)
    page = partner.query(cursor.ts, 0, 2)
    cursor = cursor.advance(page, lambda r: r["ts"], lambda r: r["_id"])
    partner.update("r0000", same_as_max=False)  # leaves the tie group: r0002 would be skipped
    assert cursor.verify(partner.query(cursor.ts, cursor.request_skip, 2), lambda r: r["_id"]) is None


def test_unparseable_timestamps_are_never_counted_as_consumed() -> None:
    cursor = UpdatedSinceCursor(EPOCH)
    page = [
        {"_id": "a", "ts": T0},
        {"_id": "bad", "ts": None},
        {"_id": "c", "ts": T0 + timedelta(seconds=1)},
    ]
    nxt = cursor.advance(page, lambda r: r["ts"], lambda r: r["_id"])
    assert (nxt.ts, nxt.skip, nxt.anchor) == (T0 + timedelta(seconds=1), 1, "c")
    all_bad = cursor.advance([{"_id": "x", "ts": None}], lambda r: r["ts"], lambda r: r["_id"])
    assert (all_bad.ts, all_bad.skip) == (EPOCH, 1)


def test_checkpoint_round_trip_applies_the_overlap() -> None:
    cursor = UpdatedSinceCursor(T0 + timedelta(milliseconds=1500), 3, "x")
    checkpoint = cursor.to_checkpoint()
    assert checkpoint == {"updated_since": "2025-01-01T00:00:01.500Z", "skip": 3, "anchor": "x"}
    resumed = UpdatedSinceCursor.start(checkpoint, overlap_s=1.0)
    assert (resumed.ts, resumed.skip, resumed.anchor) == (T0 + timedelta(milliseconds=500), 0, None)
    assert UpdatedSinceCursor.start(None, 30).ts == EPOCH


def test_timestamp_format_and_parse() -> None:
    assert format_ts(T0) == "2025-01-01T00:00:00.000Z"
    assert parse_ts("2025-08-17T15:00:00.000Z") == datetime(2025, 8, 17, 15, tzinfo=UTC)
    assert parse_ts("2025-08-17T15:00:00") is None  # naive: refuse to guess the zone
    assert parse_ts("not-a-date") is None and parse_ts(None) is None


def test_formatted_timestamps_are_utc_milliseconds_that_parse_back() -> None:
    paris = timezone(timedelta(hours=2))
    assert format_ts(datetime(2025, 3, 4, 5, 6, 7, 890_999, tzinfo=paris)) == "2025-03-04T03:06:07.890Z"
    assert format_ts(datetime(5, 1, 2, tzinfo=UTC)) == "0005-01-02T00:00:00.000Z"


@given(st.datetimes(min_value=datetime(1000, 1, 2), timezones=st.just(UTC)))
def test_format_then_parse_is_the_time_to_the_millisecond(value: datetime) -> None:
    assert parse_ts(format_ts(value)) == value.replace(microsecond=value.microsecond // 1000 * 1000)


def test_a_time_without_a_utc_value_is_unparseable_not_a_crash() -> None:
    from syncd.connectors.pagination import parse_ts

    assert parse_ts("0001-01-01T00:00:00+01:00") is None
    assert parse_ts("9999-12-31T23:00:00-02:00") is None
    assert parse_ts("2025-01-01T01:00:00+01:00") == parse_ts("2025-01-01T00:00:00Z")


class NewestFirstPartner:
    """A list sorted newest first by (ts, id), a ``ts <= x`` filter and numbered pages."""

    def __init__(self, timestamps: list[int]) -> None:
        self.ts = {f"r{i:04d}": ts for i, ts in enumerate(timestamps)}

    def query(self, before: datetime | None, number: int, size: int) -> tuple[list[dict[str, Any]], int]:
        upto = None if before is None else int((before - T0).total_seconds())
        rows = sorted(((t, r) for r, t in self.ts.items() if upto is None or t <= upto), reverse=True)
        start = (number - 1) * size
        return [{"id": r, "ts": T0 + timedelta(seconds=t)} for t, r in rows[start : start + size]], len(rows)


@settings(max_examples=200, deadline=None)
@given(
    timestamps=st.lists(st.integers(0, 30), min_size=0, max_size=120),
    size=st.integers(1, 7),
    edits=st.lists(st.tuples(st.integers(0, 119), st.booleans()), max_size=5),
)
def test_newest_first_walk_reads_every_record_not_edited_meanwhile_once(
    timestamps: list[int], size: int, edits: list[tuple[int, bool]]
) -> None:
    partner = NewestFirstPartner(timestamps)
    cursor, read, edited = NewestFirstCursor(), [], set()
    for step in range(10_000):
        if cursor.done:
            break
        page, total = partner.query(cursor.before, cursor.page, size)
        fresh, cursor = cursor.advance(page, total, size, lambda r: r["ts"], lambda r: r["id"])
        read += [r["id"] for r in fresh]
        if step < len(edits) and partner.ts:  # an edit moves a record to the top (or ties it)
            index, tie = edits[step]
            rid = sorted(partner.ts)[index % len(partner.ts)]
            partner.ts[rid] = max(partner.ts.values()) + (0 if tie else 1)
            edited.add(rid)
    assert cursor.done
    assert len(read) == len(set(read))  # nothing read twice
    assert set(partner.ts) - edited <= set(read)  # nothing untouched skipped
    first = max(timestamps, default=None)
    assert cursor.newest == (None if first is None else T0 + timedelta(seconds=first))
    assert NewestFirstCursor.of(cursor.to_checkpoint()) == NewestFirstCursor(
        cursor.before, cursor.seen, newest=cursor.newest
    )


def test_a_full_page_that_moves_nothing_is_refused() -> None:
    page = [{"id": "a", "ts": T0}, {"id": "b", "ts": T0}]
    cursor = NewestFirstCursor(T0, ("a", "b"))
    with pytest.raises(ValueError, match="without progress"):  # the partner ignores pageNumber
        for _ in range(10):
            _, cursor = cursor.advance(page, 2, 2, lambda r: r["ts"], lambda r: r["id"])


class NumberedPartner:
    """A list read by page number whose answers report its size; a record joins it at the
    top before each of the first ``changes`` requests (so every later page shifts)."""

    def __init__(self, size: int, changes: int) -> None:
        self.ids, self.changes = [f"r{i:04d}" for i in range(size)], changes

    def page(self, number: int, size: int) -> tuple[list[str], int]:
        if self.changes > 0:
            self.changes -= 1
            self.ids.insert(0, f"n{len(self.ids):04d}")
        start = (number - 1) * size
        return self.ids[start : start + size], len(self.ids)


def read_numbered(partner: NumberedPartner, size: int, restarts: int) -> tuple[list[str], int]:
    """What the walk's last attempt gathered (as its caller keeps it), and how often it
    started again."""
    walk, gathered, restarted = NumberedWalk(restarts), list[str](), 0
    for _ in range(10_000):
        if walk.done:
            return gathered, restarted
        page, total = partner.page(walk.number, size)
        walk = walk.advance(len(page), total, size)
        if walk.restarted:
            gathered, restarted = [], restarted + 1
            continue
        gathered += page
    raise AssertionError("the walk did not finish")


@settings(max_examples=200, deadline=None)
@given(length=st.integers(0, 60), size=st.integers(1, 7), restarts=st.integers(0, 2))
def test_a_numbered_walk_over_a_still_list_reads_it_once_in_order(
    length: int, size: int, restarts: int
) -> None:
    partner = NumberedPartner(length, 0)
    assert read_numbered(partner, size, restarts) == (partner.ids, 0)


@settings(max_examples=200, deadline=None)
@given(length=st.integers(0, 60), size=st.integers(2, 7), changes=st.integers(0, 40))
def test_a_numbered_walk_over_a_moving_list_restarts_once_then_reads_to_the_end(
    length: int, size: int, changes: int
) -> None:
    partner = NumberedPartner(length, changes)
    gathered, restarted = read_numbered(partner, size, restarts=1)
    assert restarted <= 1
    assert set(gathered) <= set(partner.ids)  # shifted pages may repeat or hide records
    if changes <= 1:  # a change before page 1 moves no total the walk has seen
        assert (gathered, restarted) == (partner.ids, 0)
    if changes > 1 and length + 1 >= size:  # page 1 was full: page 2's total moved
        assert restarted == 1


def test_a_list_that_changes_before_every_request_is_still_read_to_its_end() -> None:
    # The case a restart on every move never finishes: the total moves on every page.
    partner = NumberedPartner(1_000, 10**9)
    gathered, restarted = read_numbered(partner, 100, restarts=1)
    assert restarted == 1
    assert set(partner.ids[-1_000:]) <= set(gathered)  # what was there at first, all read


def test_a_moved_total_drops_the_page_and_starts_again_from_page_1() -> None:
    walk = NumberedWalk(1).advance(2, 10, 2)
    assert (walk.number, walk.total, walk.restarted) == (2, 10, False)
    moved = walk.advance(2, 11, 2)
    assert moved == NumberedWalk(0, 1, None, restarted=True)
    # The last attempt reads on whatever the total does, to a short page.
    walk = moved.advance(2, 11, 2).advance(2, 12, 2).advance(1, 13, 2)
    assert (walk.done, walk.restarted, walk.number, walk.total) == (True, False, 3, 13)


def test_a_list_that_reports_no_total_is_never_restarted() -> None:
    walk = NumberedWalk(1).advance(2, None, 2).advance(2, None, 2)
    assert (walk.number, walk.restarted) == (3, False)
    assert NumberedWalk(1).advance(0, 5, 2).done  # an empty first page ends the walk


def test_a_short_page_whose_total_moved_is_dropped_not_final() -> None:
    walk = NumberedWalk(1).advance(2, 4, 2).advance(1, 3, 2)
    assert walk.restarted and not walk.done and walk.number == 1
