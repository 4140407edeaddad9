"""The micro-benchmark runs and reports per-page figures (no timing assertion: CI machines vary)."""

from __future__ import annotations

import orjson
import pytest

from syncd.simulator.profiles.guesty import bench


def test_bench_reports_microseconds_per_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--listings", "20000", "--pages", "20"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = orjson.loads(last)
    assert set(figures) == {
        "listing_page_us",
        "reservation_page_us",
        "listing_page_bytes",
        "listing_page_us_after_mutations",
    }
    assert all(value > 0 for value in figures.values())
    assert figures["listing_page_bytes"] > 80_000  # 100 listings ≈ 100 KB or more
