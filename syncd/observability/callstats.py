"""Partner calls over a recent window, for the status board: rate, success, p95, 429s, 5xx.

Prometheus keeps the lifetime totals; the board answers "how is this partner doing right
now" without a Prometheus server to ask. Each partner gets a ring of fixed-width buckets
(memory bounded whatever the traffic), and each bucket a small latency histogram whose
bins grow by 2^(1/4): a p95 read from it is at most 19 % above the true value, and never
above the slowest call of the window. Pure arithmetic on ``now``; ``CallStats`` reads its
injected clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_S = 300.0
BUCKET_S = 10.0
# A rate over less than a minute would turn the first seconds' burst into a huge per-minute
# figure: short spans count as one minute.
MIN_RATE_SPAN_S = 60.0
P95 = 0.95
_BIN_BASE_S = 0.001  # bin 0 holds calls under 1 ms x 2^(1/4)
_BINS_PER_DOUBLING = 4
_BINS = 80  # the last bin (from ~15 min) holds everything slower


@dataclass(frozen=True, slots=True)
class CallSummary:
    """One partner's calls over ``span_s`` (the window, or less just after start)."""

    span_s: float
    calls: int = 0
    ok: int = 0
    rate_limited: int = 0  # 429
    server_errors: int = 0  # 5xx
    no_answer: int = 0  # no HTTP status: timeouts, resets, refused connections
    peak_per_min: int = 0  # the most calls in any minute of the window (six buckets)
    p95_s: float | None = None

    @property
    def per_min(self) -> float:
        return self.calls * 60.0 / max(self.span_s, MIN_RATE_SPAN_S)

    @property
    def success_rate(self) -> float | None:
        return self.ok / self.calls if self.calls else None


class _Bucket:
    __slots__ = ("bins", "calls", "index", "max_s", "no_answer", "ok", "rate_limited", "server_errors")

    def __init__(self) -> None:
        self.index = -1  # which BUCKET_S-wide slice of time it holds; stale means empty
        self.bins = [0] * _BINS
        self.reset(-1)

    def reset(self, index: int) -> None:
        self.index = index
        self.calls = self.ok = self.rate_limited = self.server_errors = self.no_answer = 0
        self.max_s = 0.0
        if any(self.bins):
            self.bins = [0] * _BINS


def _bin(seconds: float) -> int:
    if seconds < _BIN_BASE_S:
        return 0
    return min(_BINS - 1, math.floor(math.log2(seconds / _BIN_BASE_S) * _BINS_PER_DOUBLING))


def _upper_edge(index: int) -> float:
    if index == _BINS - 1:
        return math.inf
    return _BIN_BASE_S * math.exp2((index + 1) / _BINS_PER_DOUBLING)


class CallWindow:
    """One partner's calls over the last ``window_s``, in buckets ``bucket_s`` wide."""

    def __init__(self, window_s: float = WINDOW_S, bucket_s: float = BUCKET_S) -> None:
        if window_s <= 0 or bucket_s <= 0 or window_s % bucket_s:
            raise ValueError("the window must be a positive multiple of the bucket width")
        self.window_s = window_s
        self.bucket_s = bucket_s
        self._buckets = [_Bucket() for _ in range(round(window_s / bucket_s))]

    def add(self, now: float, status: str, seconds: float, ok: bool) -> None:
        """One call that ended at ``now``: its status label (``"200"``, ``"429"``,
        ``"timeout"``…), how long it took, and whether it succeeded."""
        index = math.floor(now / self.bucket_s)
        bucket = self._buckets[index % len(self._buckets)]
        if bucket.index != index:
            if bucket.index > index:
                return  # older than the window the ring holds now (a clock stepping back)
            bucket.reset(index)
        bucket.calls += 1
        bucket.ok += ok
        if status == "429":
            bucket.rate_limited += 1
        elif status.isdigit():
            bucket.server_errors += status.startswith("5")
        else:
            bucket.no_answer += 1
        bucket.bins[_bin(seconds)] += 1
        bucket.max_s = max(bucket.max_s, seconds)

    def summary(self, now: float, since: float) -> CallSummary:
        """The calls of the window ending at ``now``; ``since``: when recording began."""
        index = math.floor(now / self.bucket_s)
        count = len(self._buckets)
        live = sorted(
            (b for b in self._buckets if index - count < b.index <= index and b.calls),
            key=lambda b: b.index,
        )
        span = max(0.0, min(self.window_s, now - since))
        if not live:
            return CallSummary(span)
        per_minute = max(1, round(60.0 / self.bucket_s))
        by_index = {b.index: b.calls for b in live}
        peak = max(
            sum(by_index.get(i, 0) for i in range(start, start + per_minute))
            for start in range(live[0].index - per_minute + 1, live[-1].index + 1)
        )
        calls = sum(b.calls for b in live)
        return CallSummary(
            span_s=span,
            calls=calls,
            ok=sum(b.ok for b in live),
            rate_limited=sum(b.rate_limited for b in live),
            server_errors=sum(b.server_errors for b in live),
            no_answer=sum(b.no_answer for b in live),
            peak_per_min=peak,
            p95_s=_percentile(live, calls, P95),
        )


def _percentile(live: list[_Bucket], calls: int, q: float) -> float:
    rank = math.ceil(q * calls)  # the call at this rank (1-based) is the percentile
    seen = 0
    for i in range(_BINS):
        seen += sum(b.bins[i] for b in live)
        if seen >= rank:
            return min(_upper_edge(i), max(b.max_s for b in live))
    raise AssertionError("unreachable: the bins hold every call")  # pragma: no cover


class CallStats:
    """A ``CallWindow`` per partner, on an injected clock (monotonic seconds)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        window_s: float = WINDOW_S,
        bucket_s: float = BUCKET_S,
    ) -> None:
        self._clock = clock
        self.window_s = window_s
        self._bucket_s = bucket_s
        self._since = clock()
        self._partners: dict[str, CallWindow] = {}

    def record(self, partner: str, status: str, seconds: float, ok: bool) -> None:
        window = self._partners.get(partner)
        if window is None:
            window = self._partners[partner] = CallWindow(self.window_s, self._bucket_s)
        window.add(self._clock(), status, seconds, ok)

    def summary(self, partner: str) -> CallSummary:
        now = self._clock()
        window = self._partners.get(partner)
        if window is None:
            return CallSummary(max(0.0, min(self.window_s, now - self._since)))
        return window.summary(now, self._since)
