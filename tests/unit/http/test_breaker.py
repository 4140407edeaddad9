"""Circuit-breaker state machine on a hand-driven clock."""

from __future__ import annotations

import pytest

from syncd import errors
from syncd.http.breaker import BreakerPolicy, Breakers, CircuitBreaker, State, reschedule_delay

POLICY = BreakerPolicy(
    failure_threshold=3,
    failure_ratio=0.5,
    window_s=10.0,
    cooldown_s=5.0,
    half_open_probes=2,
    probe_timeout_s=1.0,
)


def fail(breaker: CircuitBreaker, now: float, n: int = 1) -> None:
    for _ in range(n):
        permit = breaker.admit(now)
        assert permit is not None
        breaker.record(permit, False, now)


def succeed(breaker: CircuitBreaker, now: float, n: int = 1) -> None:
    for _ in range(n):
        permit = breaker.admit(now)
        assert permit is not None
        breaker.record(permit, True, now)


def opened(now: float = 0.0) -> CircuitBreaker:
    breaker = CircuitBreaker("p/i", POLICY)
    fail(breaker, now, 3)
    assert breaker.state is State.OPEN
    return breaker


def test_opens_after_the_threshold_within_the_window() -> None:
    breaker = CircuitBreaker("p/i", POLICY)
    fail(breaker, 0.0, 2)
    assert breaker.current(0.0) is State.CLOSED
    fail(breaker, 1.0)
    assert breaker.current(1.0) is State.OPEN


def test_sporadic_failures_among_successes_keep_it_closed() -> None:
    breaker = CircuitBreaker("p/i", POLICY)
    for k in range(20):  # 1 failure in 3 calls: below the 50 % ratio
        succeed(breaker, k * 0.1, 2)
        fail(breaker, k * 0.1)
    assert breaker.state is State.CLOSED


def test_failures_outside_the_window_are_forgotten() -> None:
    breaker = CircuitBreaker("p/i", POLICY)
    fail(breaker, 0.0, 2)
    fail(breaker, 11.0)  # the first two slid out of the 10 s window
    assert breaker.state is State.CLOSED


def test_open_refuses_until_the_cool_down_then_admits_bounded_probes() -> None:
    breaker = opened()
    assert breaker.admit(4.9) is None
    assert breaker.retry_in(4.9) == pytest.approx(0.1)
    first, second = breaker.admit(5.0), breaker.admit(5.0)
    assert first is not None and first.probe and second is not None and second.probe
    assert breaker.state is State.HALF_OPEN
    assert breaker.admit(5.1) is None  # two probes in flight: the bound
    assert breaker.retry_in(5.1) == pytest.approx(0.9)  # until the first may overrun


def test_a_probe_success_closes_and_a_failure_reopens() -> None:
    breaker = opened()
    probe = breaker.admit(5.0)
    assert probe is not None
    breaker.record(probe, True, 5.2)
    assert breaker.current(5.2) is State.CLOSED
    fail(breaker, 6.0, 3)
    probe = breaker.admit(11.0)
    assert probe is not None
    breaker.record(probe, False, 11.5)
    assert breaker.current(11.5) is State.OPEN
    assert breaker.retry_in(11.5) == pytest.approx(5.0)  # a fresh cool-down


def test_a_probe_that_never_reports_reopens_after_its_timeout() -> None:
    breaker = opened()
    hung = breaker.admit(5.0)
    assert hung is not None
    assert breaker.current(5.99) is State.HALF_OPEN
    assert breaker.current(6.0) is State.OPEN  # not stuck in half-open
    breaker.record(hung, True, 6.5)  # its late answer belongs to a decided state
    assert breaker.state is State.OPEN


def test_a_cancelled_probe_frees_its_slot() -> None:
    breaker = opened()
    probes = [breaker.admit(5.0), breaker.admit(5.0)]
    assert all(probes)
    first = probes[0]
    assert first is not None
    breaker.release(first)
    assert breaker.admit(5.1) is not None


def test_outcomes_from_before_the_breaker_opened_are_ignored() -> None:
    breaker = CircuitBreaker("p/i", POLICY)
    slow = breaker.admit(0.0)
    assert slow is not None
    fail(breaker, 0.0, 3)
    breaker.record(slow, True, 0.5)
    assert breaker.state is State.OPEN


def test_transitions_are_reported() -> None:
    seen: list[tuple[State, State]] = []
    breaker = CircuitBreaker("p/i", POLICY, on_change=lambda _, a, b: seen.append((a, b)))
    fail(breaker, 0.0, 3)
    probe = breaker.admit(5.0)
    assert probe is not None
    breaker.record(probe, True, 5.0)
    assert seen == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]


def test_partner_and_integration_breakers_both_decide() -> None:
    partner, own = CircuitBreaker("p", POLICY), CircuitBreaker("p/i", POLICY)
    guard = Breakers([partner, own])
    fail(own, 0.0, 3)
    with pytest.raises(errors.CircuitOpen) as refused:
        guard.check(1.0)
    assert refused.value.retry_in == pytest.approx(4.0)
    # Half-open integration breaker, closed partner breaker: one probe permit from each.
    permits = guard.admit(5.0)
    assert [p.probe for p in permits] == [False, True]
    Breakers.record(permits, True, 5.1)
    assert own.state is State.CLOSED
    # An open partner breaker refuses every integration; none of their probe slots leak.
    fail(partner, 6.0, 3)
    with pytest.raises(errors.CircuitOpen, match="circuit p is open"):
        guard.admit(6.0)


def test_a_refusal_releases_the_permits_already_taken() -> None:
    partner, own = opened(), opened()
    guard = Breakers([own, partner])  # own first: its probe slot is taken, then refused
    partner.opened_at = 100.0  # keep the partner open
    with pytest.raises(errors.CircuitOpen):
        guard.admit(5.0)
    assert own.admit(5.0) is not None and own.admit(5.0) is not None  # both slots free


def test_a_failed_fast_sync_returns_when_the_breaker_admits_not_sooner() -> None:
    assert reschedule_delay(30.0, 0.0) == 30.0
    assert 30.0 <= reschedule_delay(30.0, 0.99) <= 36.0
    assert reschedule_delay(0.0, 0.0) == 1.0  # never an immediate retry loop
