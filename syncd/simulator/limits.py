"""Per-account leaky buckets: the partner's rate limits, as arithmetic on an injected ``now``.

A profile documents its tiers (e.g. 15/s, 120/min and 5,000/h per account, restored at a
constant rate: a leaky bucket) and a concurrency cap. Each tier is a bucket whose level
drains at ``capacity / period`` per second; a request adds one unit and is refused when
any tier would overflow. Nothing here reads the clock, so tests drive time by hand.

Limits can be disabled, scaled by a factor, and changed at runtime. With
``advertise_documented`` the headers keep showing the documented limits while the
scaled ones are enforced: the partner "silently halving" its limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Tier:
    """One documented limit; ``name`` is the suffix of its ``X-RateLimit-*-{name}`` headers."""

    name: str
    limit: int
    period_s: float


# Float drift must not refuse a request sent exactly on schedule.
_EPSILON: Final = 1e-9


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """How limits are enforced; replaced wholesale at runtime (``RateLimiter.configure``)."""

    enabled: bool = True
    factor: float = 1.0
    advertise_documented: bool = False

    def __post_init__(self) -> None:
        if self.factor <= 0:
            raise ValueError("factor must be > 0")


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of one ``check``; ``limits``/``remaining`` are per tier, as advertised."""

    allowed: bool
    retry_after_s: float
    limits: tuple[int, ...]
    remaining: tuple[int, ...]

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` is whole seconds: rounded up, and never 0 for a refusal."""
        return str(max(1, math.ceil(self.retry_after_s - _EPSILON)))


class LeakyBucket:
    """A level that drains at ``capacity / period_s`` per second; one request adds one unit."""

    __slots__ = ("capacity", "level", "period_s", "updated")

    def __init__(self, capacity: float, period_s: float, now: float) -> None:
        self.capacity = capacity
        self.period_s = period_s
        self.level = 0.0
        self.updated = now

    @property
    def rate(self) -> float:
        return self.capacity / self.period_s

    def drain(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)  # a clock stepping back must not refill
        self.level = max(0.0, self.level - elapsed * self.rate)
        self.updated = max(self.updated, now)

    def wait_s(self) -> float:
        """Seconds until one more unit fits (0 if it fits now); call after ``drain``."""
        excess = self.level + 1.0 - self.capacity
        return 0.0 if excess <= _EPSILON else excess / self.rate


class RateLimiter:
    """All tiers of one account plus its concurrency cap (None: uncapped)."""

    def __init__(
        self,
        now: float,
        tiers: tuple[Tier, ...],
        settings: LimitSettings | None = None,
        max_concurrent: int | None = None,
    ) -> None:
        self.tiers = tiers
        self.settings = settings or LimitSettings()
        self.max_concurrent = max_concurrent
        self.in_flight = 0
        self._buckets = [LeakyBucket(t.limit * self.settings.factor, t.period_s, now) for t in tiers]

    def configure(self, settings: LimitSettings, now: float) -> None:
        """Change enforcement from ``now`` on; levels carry over, so a halving bites at once."""
        for tier, bucket in zip(self.tiers, self._buckets, strict=True):
            bucket.drain(now)
            bucket.capacity = tier.limit * settings.factor
        self.settings = settings

    def check(self, now: float) -> Decision:
        """Admit one request at ``now`` (consuming a unit in every tier) or say how long to wait."""
        return self._decide(now, consume=True)

    def peek(self, now: float) -> Decision:
        """What ``check`` would say, without consuming: headers for refusals made elsewhere."""
        return self._decide(now, consume=False)

    def _decide(self, now: float, consume: bool) -> Decision:
        documented = tuple(t.limit for t in self.tiers)
        if not self.settings.enabled:
            return Decision(True, 0.0, documented, documented)
        for bucket in self._buckets:
            bucket.drain(now)
        wait = max((b.wait_s() for b in self._buckets), default=0.0)
        allowed = wait == 0.0
        if allowed and consume:
            for bucket in self._buckets:
                bucket.level += 1.0
        if self.settings.advertise_documented:
            limits = documented
        else:
            limits = tuple(max(1, math.floor(b.capacity + _EPSILON)) for b in self._buckets)
        remaining = tuple(
            max(0, math.floor(limit - b.level + _EPSILON))
            for limit, b in zip(limits, self._buckets, strict=True)
        )
        return Decision(allowed, wait, limits, remaining)

    def enter(self) -> bool:
        """Take a concurrency slot; False means "answer 429" (pair every True with ``leave``)."""
        if (
            self.settings.enabled
            and self.max_concurrent is not None
            and self.in_flight >= self.max_concurrent
        ):
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1


def headers(decision: Decision, tiers: tuple[Tier, ...]) -> dict[str, str]:
    """The ``X-RateLimit-{Limit,Remaining}-{tier}`` headers every API response carries."""
    out: dict[str, str] = {}
    for tier, limit, remaining in zip(tiers, decision.limits, decision.remaining, strict=True):
        out[f"X-RateLimit-Limit-{tier.name}"] = str(limit)
        out[f"X-RateLimit-Remaining-{tier.name}"] = str(remaining)
    return out
