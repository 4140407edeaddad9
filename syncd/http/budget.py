"""The rate budget of one scope (a partner account, or a whole partner app), as pure
arithmetic on an injected ``now``; ``throttle.py`` is the async shell that waits on it.

Why not aiolimiter: ``AsyncLimiter`` derives its rate once in ``__init__`` (changing
``max_rate`` later does nothing, mjpieters/aiolimiter#98), cannot be charged for
consumption it did not see (what a partner's headers reveal), and acquiring one limiter
per tier in turn spends the first tier's budget while waiting for the next. The bucket
arithmetic is aiolimiter's (a level draining at ``capacity / period``; a request fits
when ``level + 1 <= capacity``), kept per tier, and every tier is decided at once.

Per tier we keep two levels:

- ``level``: our budget. Capacity = the partner's limit x safety factor x ``scale``.
- ``mirror``: our model of the partner's own counter, at the partner's limit. If the
  partner reports a fuller counter than the mirror allows for, someone else used the
  account (another token, another process) or the partner drains slower than it
  documents; the excess is charged to our budget too ("slow down"). If it reports an
  emptier counter than anything we sent could explain, requests we counted never
  reached it: the mirror follows, and requests that got no answer are given back to
  the budget ("both ways"; never more, so we never exceed the configured rate). And while its counter is
  well above zero, how fast it drains measures the limit it really enforces: clearly
  slower than assumed lowers ``scale`` as a 429 would, before any 429.

A 429 blocks the scope until ``Retry-After`` (never undercut; the refusing tier stays
full meanwhile, so no burst follows the block) and lowers ``scale`` (AIMD): for the
refusing tier, to where the partner's counter stood when its headers show it (a partner
that refuses at 60 of an advertised 120 enforces about 60), else for every tier by the
multiplicative factor; once per episode, and never by more than that factor in one
step. After ``quiet_s`` without a 429, ``scale`` grows additively back to 1: never above
the configured limits, and never above what the partner advertises.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from syncd.http.tiers import Tier

# Float drift must not hold back a request that fits exactly.
_EPSILON = 1e-9
DEFAULT_DECREASE = 0.5
DEFAULT_INCREASE = 0.1
DEFAULT_QUIET_S = 30.0
DEFAULT_FLOOR = 0.05
# Drain measurements span at least this many requests' worth of the partner's counter,
# and count only when it drained below this share of the rate we assume.
_DRAIN_UNITS = 20.0
_SLOW_DRAIN = 0.85


@dataclass(frozen=True)
class AimdPolicy:
    """How the budget reacts to 429s: ``scale *= decrease`` at most once per episode,
    ``scale += increase`` per ``quiet_s`` without one, within ``[floor, 1]``."""

    decrease: float = DEFAULT_DECREASE
    increase: float = DEFAULT_INCREASE
    quiet_s: float = DEFAULT_QUIET_S
    floor: float = DEFAULT_FLOOR


DEFAULT_AIMD = AimdPolicy()


@dataclass(frozen=True, slots=True)
class TierReading:
    """One tier as a response's headers report it (any part may be missing)."""

    limit: float | None
    remaining: float | None
    reset_in_s: float | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    """What the budget knew when it let one request go; handed back with the response."""

    seq: int
    sent_at: float
    mirrors: tuple[float, ...]
    folded: tuple[float, ...]
    in_flight: int


class _TierState:
    """One tier's levels, with its rates precomputed (``refresh``) for the hot path."""

    __slots__ = (
        "advertised",
        "anchor",
        "burst",
        "cap",
        "creditable",
        "folded",
        "hold_until",
        "level",
        "level_rate",
        "limit",
        "mirror",
        "mirror_rate",
        "period",
        "scale",
        "tier",
    )

    def __init__(self, tier: Tier, safety: float) -> None:
        self.tier = tier
        self.period = tier.period_s
        self.advertised = tier.limit  # never above the configured limit
        self.scale = 1.0
        self.level = 0.0
        self.mirror = 0.0
        self.folded = 0.0  # excess charged so far; tickets subtract what came after them
        self.creditable = 0.0  # charges of unanswered requests, which a credit may return
        self.hold_until = -math.inf  # the level does not drain before this (a 429's block)
        # (sent at, partner's counter, seq) of an earlier reading: where a drain measurement starts.
        self.anchor: tuple[float, float, int] | None = None
        self.refresh(safety)

    def refresh(self, safety: float) -> None:
        self.limit = self.advertised * self.scale  # what we believe the partner enforces
        self.cap = self.limit * safety  # our budget's capacity
        self.burst = max(1.0, self.cap)  # a tier below one request still lets one through
        self.level_rate = self.cap / self.period
        self.mirror_rate = self.limit / self.period

    def fill(self) -> float:
        return self.level / self.burst


class RateBudget:
    """Every tier of one scope. Not thread-safe; one event loop calls it."""

    def __init__(
        self,
        tiers: Sequence[Tier],
        safety_factor: float,
        now: float,
        policy: AimdPolicy = DEFAULT_AIMD,
    ) -> None:
        self.tiers = tuple(tiers)
        self.safety = safety_factor
        self.policy = policy
        self._states = [_TierState(t, safety_factor) for t in self.tiers]
        self._updated = now
        self._quiet_since = now
        self._decreased_at = -math.inf
        self.blocked_until = -math.inf
        self._seq = 0
        self._in_flight = 0
        self.throttled = 0
        self.version = 0  # bumped whenever effective rates change (metrics refresh)

    # --- reading --------------------------------------------------------------------

    def effective_rates(self, now: float) -> tuple[float, ...]:
        """Requests per second each tier lets through now (after safety and scale)."""
        self._advance(now)
        return tuple(s.level_rate for s in self._states)

    def levels(self) -> tuple[float, ...]:
        return tuple(s.level for s in self._states)

    def wait_s(self, now: float) -> float:
        """Seconds until one more request fits every tier (0: now)."""
        self._advance(now)
        wait = self.blocked_until - now
        for s in self._states:
            excess = s.level + 1.0 - s.burst
            if excess > _EPSILON:
                wait = max(wait, excess / s.level_rate)
        return max(0.0, wait)

    # --- a request's life -----------------------------------------------------------

    def consume(self, now: float) -> Ticket:
        """Charge one request (call when ``wait_s(now) == 0``)."""
        self._advance(now)
        for s in self._states:
            s.level += 1.0
            s.mirror += 1.0
        self._seq += 1
        ticket = Ticket(
            self._seq,
            now,
            tuple([s.mirror for s in self._states]),
            tuple([s.folded for s in self._states]),
            self._in_flight,
        )
        self._in_flight += 1
        return ticket

    def done(self, ticket: Ticket) -> None:
        """The request's response arrived or it failed (pair every ``consume`` with this)."""
        self._in_flight -= 1

    def unanswered(self, ticket: Ticket) -> None:
        """The request got no response (connection refused, reset, timed out): if the
        partner's counters later show it never arrived, its charge may be given back."""
        for s in self._states:
            s.creditable += 1.0

    def observe(self, ticket: Ticket, readings: Sequence[TierReading | None], now: float) -> None:
        """Refine the budget from the partner's view of its counters (one reading per tier)."""
        self._advance(now)
        sent_after = self._seq - ticket.seq
        # Requests sent before this one and not yet answered (this one is not done yet).
        still_out = min(ticket.in_flight, self._in_flight - 1)
        for i, reading in enumerate(readings):
            if reading is None or reading.remaining is None:
                continue
            s = self._states[i]
            configured = s.tier.limit
            advertised = reading.limit if reading.limit and reading.limit > 0 else configured
            if min(advertised, configured) != s.advertised:
                s.advertised = min(advertised, configured)
                s.refresh(self.safety)
                self.version += 1
            if reading.remaining <= 0 and reading.reset_in_s:
                # A window that resets: nothing until then, everything after (no fold, or
                # we would also wait for our model to drain what the reset clears).
                self.blocked_until = max(self.blocked_until, now + reading.reset_in_s)
                continue
            # ``remaining`` is floored by the partner: this over-states its level by < 1.
            reported = advertised - reading.remaining
            self._measure_drain(s, ticket, reported, now)
            # The most the partner could hold from us alone: the mirror when this request
            # left, plus everything sent and charged since (draining ignored).
            most = ticket.mirrors[i] + sent_after + (s.folded - ticket.folded[i])
            excess = reported - 1.0 - most
            if excess > 0:
                s.level += excess
                s.mirror += excess
                s.folded += excess
                continue
            # The least it must hold if it saw all we sent before this request: the mirror
            # then, drained since, minus those still in flight (they may arrive later).
            least = ticket.mirrors[i] - (now - ticket.sent_at) * s.mirror_rate - still_out
            credit = least - reported
            if credit > 0:
                s.mirror = max(0.0, s.mirror - credit)
                # Budget comes back only for requests that got no answer (the partner may
                # never have seen them): a partner whose counters say "all left" (limits
                # off, or a node that does not see the others' counts) must not lift us
                # above the configured rate.
                give = min(credit, s.creditable)
                s.level = max(0.0, s.level - give)
                s.creditable -= give

    def _measure_drain(self, s: _TierState, ticket: Ticket, reported: float, now: float) -> None:
        """Between two readings, the partner's counter fell by what it drained minus what
        we sent; a drain clearly slower than the limit we assume means a lower real limit
        (or another consumer of the account): lower ``scale`` to match, as a 429 would.

        Measured only while the counter is too full to have touched zero in between (a
        clamped counter drains nothing) and over at least ``_DRAIN_UNITS`` of drain, so
        the floored headers (+-1 each) move the estimate by at most 10 %.
        """
        anchor = s.anchor
        span = _DRAIN_UNITS / s.mirror_rate
        if reported <= _DRAIN_UNITS or anchor is None or ticket.seq <= anchor[2]:
            s.anchor = (ticket.sent_at, reported, ticket.seq) if reported > _DRAIN_UNITS else None
            return
        sent_at, level, seq = anchor
        elapsed = ticket.sent_at - sent_at
        if elapsed < span:
            return
        s.anchor = (ticket.sent_at, reported, ticket.seq)
        if level <= s.mirror_rate * elapsed:
            return  # it could have emptied meanwhile
        rate = (level + (ticket.seq - seq) - reported) / elapsed
        if rate < _SLOW_DRAIN * s.mirror_rate:
            target = rate * s.period / s.advertised
            self._rescale(s, max(s.scale * self.policy.decrease, min(s.scale, target)))
            self._quiet_since = now
            self.version += 1

    def throttle(
        self,
        ticket: Ticket,
        retry_after_s: float | None,
        readings: Sequence[TierReading | None],
        now: float,
    ) -> float:
        """The partner answered 429: block, slow down. Returns the block in seconds."""
        self._advance(now)
        self.throttled += 1
        self._quiet_since = now
        if not self._states:
            retry_after_s = 1.0 if retry_after_s is None else retry_after_s
            self.blocked_until = max(self.blocked_until, now + retry_after_s)
            return retry_after_s
        reported = [
            r.limit - r.remaining if r is not None and r.remaining is not None and r.limit else None
            for r in readings
        ]
        refusing = self._refusing(reported)
        if ticket.sent_at >= self._decreased_at:
            # One decrease per episode: 429s of requests sent before the last one are echoes.
            # Without Retry-After the leaky estimate assumes the shortest sensible wait.
            self._decrease(refusing, reported[refusing], retry_after_s or 0.0)
            self._decreased_at = now
        if retry_after_s is None:
            # No Retry-After (some partners send none): the time one request takes at the slowest tier.
            retry_after_s = max(1.0 / s.level_rate for s in self._states)
        self.blocked_until = max(self.blocked_until, now + retry_after_s)
        # The refusing tier stays full until the block ends, when the partner has room for
        # one request: no credit piles up during the block, no burst follows it.
        s = self._states[refusing]
        s.level = max(s.level, s.burst - 1.0)
        s.hold_until = max(s.hold_until, self.blocked_until)
        self.version += 1
        return retry_after_s

    # --- internals ------------------------------------------------------------------

    def _refusing(self, reported: Sequence[float | None]) -> int:
        """The tier that refused: the fullest the partner reports, else the fullest we hold."""
        shown = [i for i, level in enumerate(reported) if level is not None]
        if shown:
            return max(shown, key=lambda i: (reported[i] or 0.0) / self._states[i].advertised)
        return max(range(len(self._states)), key=lambda i: self._states[i].fill())

    def _decrease(self, i: int, reported: float | None, retry_after_s: float) -> None:
        s = self._states[i]
        if reported is None:
            for t in self._states:
                self._rescale(t, t.scale * self.policy.decrease)
            return
        # The partner told us where its counter stands when it refused. Under the leaky
        # bucket partners document (capacity = limit, drained at limit / period), the wait
        # it asks for also gives its limit: (level + 1 - L) / (L / period) = retry_after.
        leaky = (reported + 1.0) / (1.0 + retry_after_s / s.period)
        target = min(reported, leaky) / s.advertised
        # One step lowers the limit at most by the multiplicative factor: a 429 for
        # another reason (concurrency) must not collapse the budget.
        self._rescale(s, max(s.scale * self.policy.decrease, min(s.scale, target)))
        s.mirror = max(s.mirror, reported)

    def _rescale(self, s: _TierState, scale: float) -> None:
        scale = min(1.0, max(self.policy.floor, scale))
        # Keep the fill fraction: a lower rate must not also mean a long silence, nor a
        # higher one a sudden burst.
        s.level *= scale / s.scale
        s.scale = scale
        s.refresh(self.safety)

    def _advance(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed > 0:  # a clock stepping back must not refill
            for s in self._states:
                s.mirror = max(0.0, s.mirror - elapsed * s.mirror_rate)
                if s.hold_until > self._updated:
                    s.level = max(0.0, s.level - max(0.0, now - s.hold_until) * s.level_rate)
                else:
                    s.level = max(0.0, s.level - elapsed * s.level_rate)
            self._updated = now
        if now - self._quiet_since >= self.policy.quiet_s:
            steps = math.floor((now - self._quiet_since) / self.policy.quiet_s)
            self._quiet_since += steps * self.policy.quiet_s
            for s in self._states:
                if s.scale < 1.0:
                    # Fill fraction kept: a higher rate, not a sudden burst of room.
                    self._rescale(s, s.scale + steps * self.policy.increase)
                    self.version += 1


_PERIOD_NAMES = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}
_PREFIX = "x-ratelimit-"
_FIELDS = ("limit", "remaining", "reset")
# Reset values this large are Unix timestamps, not seconds from now.
_EPOCH_THRESHOLD = 1e9


@functools.cache
def _header_names(tiers: tuple[Tier, ...]) -> dict[str, tuple[int, int]]:
    """Header name -> (tier index, field index), for the tiers' periods."""
    names: dict[str, tuple[int, int]] = {}
    for i, tier in enumerate(tiers):
        suffixes = [f"-{_PERIOD_NAMES[tier.period_s]}"] if tier.period_s in _PERIOD_NAMES else []
        if len(tiers) == 1:
            suffixes.append("")  # unsuffixed headers (Smoobu) describe the only tier
        for suffix in suffixes:
            for f, field in enumerate(_FIELDS):
                names.setdefault(f"{_PREFIX}{field}{suffix}", (i, f))
    return names


def read_headers(
    headers: Sequence[tuple[str, str]], tiers: tuple[Tier, ...], wall_now: float
) -> tuple[TierReading | None, ...]:
    """``X-RateLimit-{Limit,Remaining,Reset}-{Second,Minute,Hour,Day}`` -> one reading per
    tier (matched by period). Unsuffixed headers apply when there is a single tier.
    ``headers`` are (lower-cased name, value) pairs."""
    names = _header_names(tiers)
    values: list[list[float | None]] | None = None
    for name, value in headers:
        hit = names.get(name)
        if hit is None:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if values is None:
            values = [[None, None, None] for _ in tiers]
        values[hit[0]][hit[1]] = number
    if values is None:
        return (None,) * len(tiers)
    readings: list[TierReading | None] = []
    for limit, remaining, reset in values:
        if remaining is None:
            readings.append(None)
            continue
        if reset is not None and reset > _EPOCH_THRESHOLD:
            reset = max(0.0, reset - wall_now)
        readings.append(TierReading(limit, remaining, reset))
    return tuple(readings)
