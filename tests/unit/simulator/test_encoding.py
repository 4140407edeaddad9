"""Hashing, ids and timestamp text."""

from __future__ import annotations

import pytest

from syncd.simulator import encoding


def test_mix64_is_a_stable_64_bit_hash() -> None:
    # splitmix64 reference values (state 0 → first output 0xe220a8397b1dcdaf).
    assert encoding.mix64(0) == 0xE220A8397B1DCDAF
    assert len({encoding.mix64(i) for i in range(10_000)}) == 10_000
    assert all(0 <= encoding.mix64(i) < 1 << 64 for i in range(100))


def test_object_id_round_trip() -> None:
    ident = encoding.object_id(0x60000000, 42, 0xABC).decode()
    assert ident == "6000002a0000000000000abc"
    assert encoding.object_id_index(0x60000000, ident) == 42
    assert encoding.object_id_index(0x60000000, "short") is None
    assert encoding.object_id_index(0x60000000, "g" * 24) is None


def test_iso_formatting_and_parsing() -> None:
    ms = encoding.parse_iso_ms("2025-08-17T15:00:00.123Z")
    assert encoding.format_iso_ms(ms) == "2025-08-17T15:00:00.123Z"
    assert encoding.IsoClock(limit=2)[ms] == b"2025-08-17T15:00:00.123Z"
    assert encoding.parse_iso_ms("2025-08-17") == encoding.parse_iso_ms("2025-08-17T00:00:00Z")
    assert encoding.parse_iso_ms("2025-08-17T17:00:00+02:00") == encoding.parse_iso_ms("2025-08-17T15:00:00Z")
    with pytest.raises(ValueError):
        encoding.parse_iso_ms("not-a-date")


def test_iso_clock_cache_is_bounded() -> None:
    clock = encoding.IsoClock(limit=3)
    for ms in range(10):
        assert clock[ms * 1000] == encoding.format_iso_ms(ms * 1000).encode()
    assert len(clock) <= 3
