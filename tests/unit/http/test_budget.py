"""Rate budgets as arithmetic on a hand-driven clock: tiers, header refinement, 429s, AIMD.

The partner in the closed-loop tests is the simulator's own pure limiter (Guesty's leaky
buckets), so "zero 429s" and "429s stop" are checked against the same model the
simulator serves, without sockets or sleeps.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import pytest

from syncd.http.budget import AimdPolicy, RateBudget, Ticket, TierReading, read_headers
from syncd.http.tiers import parse_tier
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.api import MAX_CONCURRENT, TIERS

GUESTY = tuple(parse_tier(t) for t in ("15/s", "120/min", "5000/h"))


def budget_of(*tiers: str, safety: float = 0.8, now: float = 0.0, **aimd: float) -> RateBudget:
    return RateBudget([parse_tier(t) for t in tiers], safety, now, AimdPolicy(**aimd))


def admitted_until(budget: RateBudget, start: float, end: float) -> int:
    """A greedy sender: each request goes the moment the budget allows it."""
    now, sent = start, 0
    while True:
        now += budget.wait_s(now)
        if now >= end:
            return sent
        budget.done(budget.consume(now))
        sent += 1


def reading(limit: float, remaining: float, reset: float | None = None) -> TierReading:
    return TierReading(limit, remaining, reset)


# --- the buckets -------------------------------------------------------------------------


def test_every_tier_at_once_scaled_by_the_safety_factor() -> None:
    budget = budget_of("15/s", "120/min")
    assert budget.effective_rates(0.0) == pytest.approx((12.0, 1.6))
    assert admitted_until(budget, 0.0, 1e-9) == 12  # the second tier's burst, at once
    # Two minutes from empty: what leaky buckets at 0.8 x each tier admit, min over tiers.
    budget = budget_of("15/s", "120/min", "5000/h")
    expected = min(t.limit * 0.8 * (1 + 120 / t.period_s) for t in GUESTY)
    assert admitted_until(budget, 0.0, 120.0) == pytest.approx(expected, abs=1)


def test_a_tier_below_one_request_still_admits_one_at_its_rate() -> None:
    budget = budget_of("1/s")  # 0.8 requests per second
    assert admitted_until(budget, 0.0, 10.0) == pytest.approx(8, abs=1)


def test_no_tiers_means_no_wait() -> None:
    budget = RateBudget([], 0.8, 0.0)
    assert budget.wait_s(0.0) == 0.0
    assert budget.effective_rates(0.0) == ()


# --- headers -----------------------------------------------------------------------------


def test_guesty_headers_map_to_tiers_by_period() -> None:
    headers = [
        ("x-ratelimit-limit-second", "15"),
        ("x-ratelimit-remaining-second", "14"),
        ("x-ratelimit-limit-minute", "120"),
        ("x-ratelimit-remaining-minute", "bogus"),
        ("x-ratelimit-remaining-hour", "4999"),
        ("content-type", "application/json"),
    ]
    second, minute, hour = read_headers(headers, GUESTY, wall_now=0.0)
    assert second == TierReading(15.0, 14.0, None)
    assert minute is None  # a limit without a (parsable) remaining says nothing
    assert hour == TierReading(None, 4999.0, None)
    assert read_headers([], GUESTY, 0.0) == (None, None, None)


def test_unsuffixed_headers_describe_a_single_tier_and_epoch_resets_become_delays() -> None:
    tiers = (parse_tier("1000/min"),)
    headers = [
        ("x-ratelimit-limit", "1000"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "1700000030"),
    ]
    assert read_headers(headers, tiers, wall_now=1_700_000_000.0) == (TierReading(1000.0, 0.0, 30.0),)


def test_a_partner_counting_more_than_we_sent_slows_us_down() -> None:
    budget = budget_of("15/s", "120/min")
    ticket = budget.consume(0.0)
    budget.done(ticket)
    # Someone else (another token of the account) used 40 of the minute's 120.
    budget.observe(ticket, [reading(15, 14), reading(120, 79)], now=0.1)
    minute = budget.levels()[1]
    assert minute == pytest.approx(41 - 1 - 0.1 * 1.6, abs=0.01)  # our 1 + the excess
    before = admitted_until(budget_of("15/s", "120/min"), 0.1, 30.0)
    assert admitted_until(budget, 0.1, 30.0) == before - 39


def test_requests_that_never_reached_the_partner_are_given_back() -> None:
    budget = budget_of("120/min")
    tickets = [budget.consume(0.0) for _ in range(50)]
    for t in tickets[:30]:
        budget.unanswered(t)  # connection refused: no answer
        budget.done(t)
    for t in tickets[30:-1]:
        budget.done(t)
    probe = tickets[-1]
    budget.observe(probe, [reading(120, 99)], now=0.2)  # the partner saw 21 of our 50
    budget.done(probe)
    # It holds 21 where at least 49.6 were due (50 sent, 0.2 s of its 2/s drain): 28.6 of
    # the 30 unanswered charges come back.
    assert budget.levels()[0] == pytest.approx(50 - 0.2 * 1.6 - 28.6)


def test_a_partner_reporting_everything_left_never_lifts_us_above_the_configuration() -> None:
    budget = budget_of("15/s", "120/min")
    sent = 0
    now = 0.0
    while now < 10.0:
        now += budget.wait_s(now)
        ticket = budget.consume(now)
        budget.observe(ticket, [reading(15, 15), reading(120, 120)], now)  # limits off
        budget.done(ticket)
        sent += 1
    assert sent <= budget_of("15/s", "120/min").effective_rates(0)[0] * 10 + 12 + 1


def test_never_above_what_the_partner_advertises_nor_above_the_configuration() -> None:
    budget = budget_of("15/s", "120/min")
    ticket = budget.consume(0.0)
    budget.observe(ticket, [reading(15, 14), reading(60, 59)], now=0.0)
    assert budget.effective_rates(0.0) == pytest.approx((12.0, 0.8))
    budget.observe(ticket, [reading(30, 29), reading(240, 239)], now=0.0)
    assert budget.effective_rates(0.0) == pytest.approx((12.0, 1.6))


def test_remaining_zero_with_a_reset_blocks_until_the_reset() -> None:
    budget = budget_of("1000/min")
    ticket = budget.consume(0.0)
    budget.observe(ticket, [reading(1000, 0, reset=12.5)], now=1.0)
    assert budget.wait_s(1.0) == pytest.approx(12.5)


# --- 429s --------------------------------------------------------------------------------


def test_retry_after_blocks_every_request_and_is_never_undercut() -> None:
    budget = budget_of("15/s", "120/min")
    ticket = budget.consume(0.0)
    assert budget.throttle(ticket, 7.0, [None, None], now=0.5) == 7.0
    assert budget.wait_s(0.5) == pytest.approx(7.0)
    assert budget.wait_s(7.49) > 0
    assert budget.wait_s(7.5) == 0.0


def test_no_credit_piles_up_during_a_block_so_no_burst_follows_it() -> None:
    budget = budget_of("120/min", decrease=1.0)  # isolate the block from the decrease
    ticket = budget.consume(0.0)
    budget.throttle(ticket, 30.0, [None], now=0.0)
    sent = admitted_until(budget, 0.0, 31.0)
    assert sent <= 2  # paced at 1.6/s from the end of the block, not 48 at once


def test_429_without_headers_halves_every_tier_once_per_episode() -> None:
    budget = budget_of("15/s", "120/min")
    early = budget.consume(0.0)
    late = budget.consume(0.1)
    budget.throttle(late, None, [None, None], now=0.2)
    assert budget.effective_rates(0.2) == pytest.approx((6.0, 0.8))
    # Without Retry-After the block is what one request takes at the slowest new rate.
    assert budget.blocked_until == pytest.approx(0.2 + 1 / 0.8)
    budget.throttle(early, None, [None, None], now=0.3)  # sent before we reacted: an echo
    assert budget.effective_rates(0.3) == pytest.approx((6.0, 0.8))
    assert budget.throttled == 2


def test_429_with_headers_learns_the_refusing_tiers_real_limit() -> None:
    budget = budget_of("15/s", "120/min", "5000/h")
    ticket = budget.consume(0.0)
    # Guesty silently halved to 60/min; its minute counter stood at 80 when it refused,
    # and it asked for the 21 s a leaky bucket of 60/min takes to make room.
    headers = [reading(15, 14), reading(120, 40), reading(5000, 4800)]
    budget.throttle(ticket, 21.0, headers, now=0.0)
    assert budget.effective_rates(0.0) == pytest.approx((12.0, 0.8, 5000 * 0.8 / 3600))


def test_a_decrease_is_at_most_multiplicative_and_never_below_the_floor() -> None:
    budget = budget_of("120/min", floor=0.3)
    ticket = budget.consume(0.0)
    budget.throttle(ticket, 1.0, [reading(120, 119)], now=0.0)  # "full" at 1 of 120?
    assert budget.effective_rates(0.0)[0] == pytest.approx(0.8)  # halved, not x1/120
    for k in range(1, 5):
        budget.throttle(budget.consume(2.0 * k), None, [None], now=2.0 * k + 0.1)
    assert budget.effective_rates(10.0)[0] == pytest.approx(1.6 * 0.3)


def test_rates_recover_additively_after_quiet_periods_up_to_the_cap() -> None:
    budget = budget_of("120/min", quiet_s=30.0, increase=0.1)
    budget.throttle(budget.consume(0.0), None, [None], now=0.0)
    assert budget.effective_rates(29.9)[0] == pytest.approx(0.8)
    assert budget.effective_rates(30.0)[0] == pytest.approx(0.96)
    assert budget.effective_rates(95.0)[0] == pytest.approx(1.28)  # three quiet periods
    budget.throttle(budget.consume(95.0), None, [None], now=95.0)  # the quiet timer restarts
    assert budget.effective_rates(124.0)[0] == pytest.approx(0.64)
    assert budget.effective_rates(1000.0)[0] == pytest.approx(1.6)  # never above the cap


# --- closed loop against the simulator's limiter ------------------------------------------


@dataclass(order=True)
class _Response:
    at: float
    seq: int
    ticket: Ticket = field(compare=False)
    decision: limits.Decision = field(compare=False)


@dataclass
class Loop:
    """``workers`` concurrent requests through ``budget`` to ``partner``, each answered
    ``latency`` seconds after it is sent; the partner decides on arrival (no latency)."""

    budget: RateBudget
    partner: limits.RateLimiter
    workers: int = 8
    latency: float = 0.1
    sent: list[tuple[float, bool]] = field(default_factory=list)

    def run(self, start: float, end: float) -> None:
        now = start
        pending: list[_Response] = []
        while True:
            next_send = now + self.budget.wait_s(now) if len(pending) < self.workers else math.inf
            if pending and pending[0].at <= next_send:
                response = heapq.heappop(pending)
                now = response.at
                self._answer(response, now)
                continue
            if next_send >= end:
                return
            now = next_send
            ticket = self.budget.consume(now)
            decision = self.partner.check(now)
            self.sent.append((now, decision.allowed))
            heapq.heappush(pending, _Response(now + self.latency, ticket.seq, ticket, decision))

    def _answer(self, response: _Response, now: float) -> None:
        headers = [(k.lower(), v) for k, v in limits.headers(response.decision, self.partner.tiers).items()]
        readings = read_headers(headers, self.budget.tiers, 0.0)
        if response.decision.allowed:
            self.budget.observe(response.ticket, readings, now)
        else:
            retry_after = float(response.decision.retry_after_header)
            self.budget.throttle(response.ticket, retry_after, readings, now)
        self.budget.done(response.ticket)

    def refused(self, start: float, end: float) -> list[float]:
        return [t for t, ok in self.sent if not ok and start <= t < end]

    def accepted(self, start: float, end: float) -> int:
        return sum(1 for t, ok in self.sent if ok and start <= t < end)


def test_zero_429s_and_the_whole_budget_used_against_the_documented_limits() -> None:
    loop = Loop(RateBudget(GUESTY, 0.8, 0.0), limits.RateLimiter(0.0, TIERS, max_concurrent=MAX_CONCURRENT))
    loop.run(0.0, 300.0)
    assert loop.refused(0.0, 300.0) == []
    allowed = min(t.limit * 0.8 * (1 + 300 / t.period_s) for t in GUESTY)
    assert loop.accepted(0.0, 300.0) >= 0.95 * allowed
    # A partner that drains as documented is never mistaken for a slower one.
    assert loop.budget.effective_rates(300.0) == pytest.approx((12.0, 1.6, 5000 * 0.8 / 3600))


@pytest.mark.parametrize("halve_at", [20.0, 60.0, 150.0])
def test_after_a_silent_halving_429s_stop_within_ten_seconds(halve_at: float) -> None:
    partner = limits.RateLimiter(0.0, TIERS, max_concurrent=MAX_CONCURRENT)
    loop = Loop(RateBudget(GUESTY, 0.8, 0.0), partner)
    loop.run(0.0, halve_at)
    assert loop.refused(0.0, halve_at) == []
    partner.configure(limits.LimitSettings(factor=0.5, advertise_documented=True), halve_at)
    loop.run(halve_at, halve_at + 300.0)
    refused = loop.refused(halve_at, math.inf)
    assert not refused or refused[-1] - halve_at <= 10.0
    # Settled (a minute on): at least the new limit's budget (60/min x 0.8), never above
    # the new limit. Later, with the partner's counter near empty, it runs at the new limit.
    settled = loop.accepted(halve_at + 60.0, halve_at + 160.0) / 100.0
    assert 0.8 * 0.95 <= settled <= 1.0
    assert loop.accepted(halve_at + 200.0, halve_at + 300.0) / 100.0 <= 1.02


def test_a_tier_the_partner_reports_twice_as_full_as_we_think() -> None:
    """Another consumer takes half the account's minute budget; we adapt, no 429s."""
    partner = limits.RateLimiter(0.0, TIERS, max_concurrent=MAX_CONCURRENT)
    loop = Loop(RateBudget(GUESTY, 0.8, 0.0), partner)
    now = 0.0
    for _ in range(60):  # the other consumer: 1/s for a minute, interleaved with us
        loop.run(now, now + 1.0)
        now += 1.0
        partner.check(now)
    assert loop.refused(0.0, now) == []
