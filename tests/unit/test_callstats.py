"""The status board's rolling window of partner calls, on a hand-driven clock."""

from __future__ import annotations

import random

import pytest

from syncd.observability.callstats import BUCKET_S, WINDOW_S, CallStats, CallWindow


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counts_by_kind_and_success_rate() -> None:
    clock = FakeClock()
    stats = CallStats(clock)
    for status, ok in [("200", True)] * 6 + [("429", False), ("503", False), ("500", False)]:
        stats.record("p", status, 0.1, ok)
    stats.record("p", "timeout", 30.0, False)
    stats.record("p", "404", 0.05, False)
    stats.record("p", "200", 0.2, False)  # answered, but the body could not be decoded
    s = stats.summary("p")
    assert (s.calls, s.ok, s.rate_limited, s.server_errors, s.no_answer) == (12, 6, 1, 2, 1)
    assert s.success_rate == pytest.approx(0.5)
    assert stats.summary("other").calls == 0 and stats.summary("other").success_rate is None


def test_rate_per_minute_over_the_span_recorded_and_the_peak_minute() -> None:
    clock = FakeClock()
    stats = CallStats(clock)
    clock.now += 5
    for _ in range(30):
        stats.record("p", "200", 0.1, True)
    # Five seconds after start: a rate over one minute, not 30 calls in 5 s (360/min).
    assert stats.summary("p").per_min == pytest.approx(30.0)
    clock.now += 115  # two minutes in
    for _ in range(90):
        stats.record("p", "200", 0.1, True)
    s = stats.summary("p")
    assert s.span_s == pytest.approx(120.0)
    assert s.per_min == pytest.approx(60.0) and s.peak_per_min == 90
    clock.now += 1000  # the whole window later: the span is the window
    stats.record("p", "200", 0.1, True)
    assert stats.summary("p").span_s == WINDOW_S
    assert stats.summary("p").per_min == pytest.approx(0.2)


def test_calls_leave_the_window_after_window_s() -> None:
    clock = FakeClock()
    stats = CallStats(clock)
    stats.record("p", "429", 0.1, False)
    clock.now += 100
    stats.record("p", "200", 0.1, True)
    clock.now += WINDOW_S - 100 - BUCKET_S
    assert stats.summary("p").calls == 2
    clock.now += 2 * BUCKET_S  # the first call's bucket is out; the second's is not
    s = stats.summary("p")
    assert (s.calls, s.rate_limited, s.success_rate) == (1, 0, 1.0)
    clock.now += WINDOW_S
    s = stats.summary("p")
    assert (s.calls, s.peak_per_min, s.p95_s, s.success_rate) == (0, 0, None, None)


def test_a_reused_bucket_starts_empty_and_memory_stays_bounded() -> None:
    clock = FakeClock()
    window = CallWindow(60.0, 10.0)
    for second in range(600):
        window.add(clock.now + second, "200", 0.5 if second < 590 else 0.002, True)
    s = window.summary(clock.now + 599, since=clock.now)
    # Only the last minute counts (six buckets), and only its latencies.
    assert s.calls == 60 and s.peak_per_min == 60
    assert s.p95_s is not None and s.p95_s > 0.4
    assert len(window._buckets) == 6
    later = window.summary(clock.now + 700, since=clock.now)
    assert later.calls == 0


def test_a_clock_stepping_back_past_the_window_is_not_counted() -> None:
    window = CallWindow(60.0, 10.0)
    window.add(1000.0, "200", 0.1, True)
    window.add(900.0, "200", 0.1, True)  # its slot in the ring now holds newer calls
    assert window.summary(1000.0, since=0.0).calls == 1


def test_p95_is_within_a_bin_of_the_truth_and_never_above_the_slowest_call() -> None:
    rng = random.Random(7)
    latencies = [rng.lognormvariate(-2.0, 0.8) for _ in range(2000)]
    clock = FakeClock()
    stats = CallStats(clock)
    for i, seconds in enumerate(latencies):
        clock.now = 1000.0 + i * 0.1
        stats.record("p", "200", seconds, True)
    truth = sorted(latencies)[int(0.95 * len(latencies)) - 1]
    p95 = stats.summary("p").p95_s
    assert p95 is not None and truth <= p95 <= truth * 2**0.25 * 1.001

    one = CallStats(FakeClock())
    one.record("p", "200", 0.123, True)
    assert one.summary("p").p95_s == pytest.approx(0.123)
    slow = CallStats(FakeClock())
    slow.record("p", "timeout", 5000.0, False)  # beyond the last bin's edge
    assert slow.summary("p").p95_s == pytest.approx(5000.0)
    fast = CallStats(FakeClock())
    fast.record("p", "200", 0.0001, True)
    assert fast.summary("p").p95_s == pytest.approx(0.0001)


def test_partners_are_kept_apart() -> None:
    stats = CallStats(FakeClock())
    stats.record("a", "200", 0.1, True)
    stats.record("b", "500", 0.1, False)
    assert stats.summary("a").server_errors == 0 and stats.summary("b").server_errors == 1


def test_a_window_must_hold_whole_buckets() -> None:
    with pytest.raises(ValueError, match="multiple"):
        CallWindow(65.0, 10.0)
