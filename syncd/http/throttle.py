"""Client-side rate limits: every documented tier at once, plus a concurrency cap.

Each tier is an aiolimiter leaky bucket scaled by the partner's safety factor; a request
goes out only when every tier has budget. ``penalize`` (after a 429) blocks all requests
until the partner's ``Retry-After`` has passed, so we never undercut it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import anyio
from aiolimiter import AsyncLimiter

from syncd.http.tiers import Tier


class Throttle:
    def __init__(self, tiers: Sequence[Tier], safety_factor: float, max_concurrency: int | None) -> None:
        self.tiers = tuple(t.scaled(safety_factor) for t in tiers)
        self._buckets = [AsyncLimiter(max(t.limit, 1.0), t.period_s) for t in self.tiers]
        self._concurrency = anyio.Semaphore(max_concurrency) if max_concurrency else None
        self._blocked_until = 0.0

    def penalize(self, retry_after_s: float) -> None:
        """Hold every request of this bucket back until ``retry_after_s`` from now."""
        self._blocked_until = max(self._blocked_until, time.monotonic() + retry_after_s)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Wait for budget in every tier and a concurrency slot; yields the seconds waited."""
        started = time.monotonic()
        # The deadline may move later while we sleep (another 429), hence the re-check.
        while (delay := self._blocked_until - time.monotonic()) > 0:  # noqa: ASYNC110
            await anyio.sleep(delay)
        for bucket in self._buckets:
            await bucket.acquire()
        if self._concurrency is None:
            yield time.monotonic() - started
            return
        async with self._concurrency:
            yield time.monotonic() - started
