"""Wall times to UTC and back, in a named zone; pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from syncd.connectors.localtime import to_utc, wall, zone_of


def test_a_known_zone_is_read_and_anything_else_is_none() -> None:
    assert zone_of("Europe/Lisbon") is not None
    for name in (None, "", "Mars/Olympus_Mons", "../etc/passwd", "Europe/"):
        assert zone_of(name) is None


def test_a_wall_time_is_read_in_its_zone_and_an_offset_wins() -> None:
    lisbon = zone_of("Europe/Lisbon")
    assert to_utc("2025-07-01 12:00:00", lisbon) == datetime(2025, 7, 1, 11, tzinfo=UTC)  # WEST, +1
    assert to_utc("2025-01-01 12:00:00", lisbon) == datetime(2025, 1, 1, 12, tzinfo=UTC)  # WET, +0
    assert to_utc("2025-07-01T12:00:00+02:00", lisbon) == datetime(2025, 7, 1, 10, tzinfo=UTC)
    assert to_utc("2025-07-01T12:00:00+02:00", None) == datetime(2025, 7, 1, 10, tzinfo=UTC)


def test_a_wall_time_that_occurs_twice_reads_as_the_first() -> None:
    # 2025-10-26: Lisbon's clocks go back from 02:00 WEST to 01:00 WET.
    assert to_utc("2025-10-26 01:30:00", zone_of("Europe/Lisbon")) == datetime(
        2025, 10, 26, 0, 30, tzinfo=UTC
    )


def test_a_wall_time_that_means_no_instant_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="timezone is unknown"):
        to_utc("2025-07-01 12:00:00", None)
    with pytest.raises(ValueError, match="out of range"):
        to_utc("0001-01-01 00:00:00", timezone(timedelta(hours=5)))
    with pytest.raises(ValueError):
        to_utc("yesterday", UTC)


def test_wall_is_to_utc_backwards_to_the_second() -> None:
    tokyo = zone_of("Asia/Tokyo")
    assert tokyo is not None
    instant = datetime(2025, 7, 1, 3, 4, 5, 678_000, tzinfo=UTC)
    assert wall(instant, tokyo) == "2025-07-01 12:04:05"
    assert to_utc(wall(instant, tokyo), tokyo) == instant.replace(microsecond=0)
    assert wall(instant, UTC) == "2025-07-01 03:04:05"
