"""Rate-limit tiers as partners document them: ``15/s``, ``120/min``, ``20/10s``, ``5000/h``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {
    "s": 1.0, "sec": 1.0, "second": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0,
    "h": 3600.0, "hour": 3600.0,
    "d": 86400.0, "day": 86400.0,
}  # fmt: skip
_TIER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Tier:
    """``limit`` requests per ``period_s`` seconds."""

    limit: float
    period_s: float

    @property
    def rate(self) -> float:
        return self.limit / self.period_s

    def scaled(self, factor: float) -> Tier:
        return Tier(self.limit * factor, self.period_s)

    def __str__(self) -> str:
        return f"{self.limit:g}/{self.period_s:g}s"


def parse_tier(text: str) -> Tier:
    """Parse ``"15/s"``-style text; raise ``ValueError`` with the accepted forms otherwise."""
    match = _TIER.match(text.lower())
    if not match or match.group(3) not in _UNITS:
        raise ValueError(f"rate limit {text!r} is not of the form '15/s', '120/min', '20/10s' or '5000/h'")
    limit = float(match.group(1))
    period = float(match.group(2) or 1) * _UNITS[match.group(3)]
    if limit <= 0 or period <= 0:
        raise ValueError(f"rate limit {text!r} must be positive")
    return Tier(limit, period)
