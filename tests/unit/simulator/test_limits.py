"""Leaky-bucket arithmetic with hand-driven time."""

from __future__ import annotations

import pytest

from syncd.simulator import limits
from syncd.simulator.limits import LimitSettings, RateLimiter
from syncd.simulator.profiles.guesty.api import MAX_CONCURRENT, TIERS


def _burst(limiter: RateLimiter, now: float, n: int) -> list[limits.Decision]:
    return [limiter.check(now) for _ in range(n)]


def test_fifteen_per_second_then_429_with_retry_after() -> None:
    limiter = RateLimiter(0.0, TIERS, max_concurrent=MAX_CONCURRENT)
    decisions = _burst(limiter, 0.0, 16)
    assert all(d.allowed for d in decisions[:15])
    refused = decisions[15]
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(1 / 15)
    assert refused.retry_after_header == "1"
    assert decisions[0].remaining == (14, 119, 4999)
    assert decisions[14].remaining == (0, 105, 4985)
    assert refused.limits == (15, 120, 5000)


def test_bucket_leaks_at_a_constant_rate() -> None:
    limiter = RateLimiter(0.0, TIERS, max_concurrent=MAX_CONCURRENT)
    _burst(limiter, 0.0, 15)
    assert not limiter.check(0.05).allowed
    assert limiter.check(1 / 15).allowed  # exactly one unit has leaked
    assert not limiter.check(1 / 15).allowed
    assert limiter.check(1 / 15 + 0.5).remaining[0] == 6  # 7.5 leaked, 1 taken


def test_minute_tier_caps_a_steady_15_per_second() -> None:
    limiter = RateLimiter(0.0, TIERS, max_concurrent=MAX_CONCURRENT)
    allowed = [limiter.check(k / 15).allowed for k in range(15 * 12)]  # 12 s at exactly 15/s
    # The second tier never refuses this pace; the minute bucket (120, leaking 2/s) fills
    # at 120 = (15 - 2) t, t ≈ 9.2 s, and from then on admits only its leak rate.
    assert all(allowed[:135])
    assert 2 <= sum(allowed[-15:]) <= 3
    assert 138 <= sum(allowed) <= 150


def test_hour_tier_limits_long_runs() -> None:
    limiter = RateLimiter(0.0, TIERS, max_concurrent=MAX_CONCURRENT)
    allowed = sum(limiter.check(k * 0.5).allowed for k in range(2 * 3 * 3600))  # 2/s for 3 hours
    # 2/s is the minute tier's own rate; the hour bucket (5000, leaking 5000/3600 per second)
    # fills after ~8,200 s and then admits only its leak: 5000 + 10,800 * 5000/3600 ≈ 20,000.
    assert 19_900 <= allowed <= 20_100
    assert limiter.check(3 * 3600.0).remaining[2] == 0


def test_disabled_limits_always_allow_and_advertise_full_budget() -> None:
    limiter = RateLimiter(0.0, TIERS, max_concurrent=MAX_CONCURRENT, settings=LimitSettings(enabled=False))
    decisions = _burst(limiter, 0.0, 100)
    assert all(d.allowed for d in decisions)
    assert decisions[-1].remaining == (15, 120, 5000)


def test_factor_scales_enforcement_and_headers() -> None:
    limiter = RateLimiter(0.0, TIERS, max_concurrent=MAX_CONCURRENT, settings=LimitSettings(factor=0.5))
    decisions = _burst(limiter, 0.0, 8)
    assert [d.allowed for d in decisions] == [True] * 7 + [False]
    assert decisions[0].limits == (7, 60, 2500)


def test_silent_halving_at_runtime_keeps_documented_headers() -> None:
    limiter = RateLimiter(0.0, TIERS, max_concurrent=MAX_CONCURRENT)
    _burst(limiter, 0.0, 5)
    limiter.configure(LimitSettings(factor=0.5, advertise_documented=True), 0.0)
    decisions = _burst(limiter, 0.0, 5)
    # 5 units already in a bucket now holding 7.5: two more fit, the third is refused.
    assert [d.allowed for d in decisions] == [True, True, False, False, False]
    assert decisions[-1].limits == (15, 120, 5000)
    assert decisions[1].remaining[0] == 8  # what the documented limit would leave: misleading on purpose
    # The halved bucket also leaks at half speed (7.5/s): level 7 → 6.25 after 0.1 s.
    assert limiter.check(0.1).allowed
    refused = limiter.check(0.1)
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(0.1)  # 1/15 s at the documented rate


def test_peek_reports_without_consuming() -> None:
    limiter = RateLimiter(0.0, TIERS, max_concurrent=MAX_CONCURRENT)
    assert [limiter.peek(0.0).remaining[0] for _ in range(3)] == [15, 15, 15]
    assert limiter.check(0.0).remaining[0] == 14


def test_concurrency_cap() -> None:
    limiter = RateLimiter(0.0, TIERS, max_concurrent=MAX_CONCURRENT)
    assert all(limiter.enter() for _ in range(15))
    assert not limiter.enter()
    limiter.leave()
    assert limiter.enter()


def test_headers_name_every_tier() -> None:
    decision = RateLimiter(0.0, TIERS, max_concurrent=MAX_CONCURRENT).check(0.0)
    assert limits.headers(decision, TIERS) == {
        "X-RateLimit-Limit-Second": "15",
        "X-RateLimit-Remaining-Second": "14",
        "X-RateLimit-Limit-Minute": "120",
        "X-RateLimit-Remaining-Minute": "119",
        "X-RateLimit-Limit-Hour": "5000",
        "X-RateLimit-Remaining-Hour": "4999",
    }


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    limiter = RateLimiter(0.0, tiers=(limits.Tier("Minute", 3, 60.0),))
    assert all(d.allowed for d in _burst(limiter, 0.0, 3))
    assert limiter.check(0.0).retry_after_s == pytest.approx(20.0)  # one unit leaks every 20 s
    assert limiter.check(0.5).retry_after_header == "20"
    assert limiter.check(19.99).retry_after_header == "1"
    assert limiter.check(20.0).allowed


def test_a_clock_stepping_back_does_not_refill() -> None:
    limiter = RateLimiter(10.0, TIERS, max_concurrent=MAX_CONCURRENT)
    _burst(limiter, 10.0, 15)
    assert not limiter.check(5.0).allowed


def test_factor_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LimitSettings(factor=0)
