"""Client-side rate limits, the async shell: wait until every budget has room, then go.

A request passes its integration's budget (the partner account's tiers, refined from
the partner's headers) and, where a partner limits the whole app (per IP, per client
id), the partner's budget shared by every integration in this process. It also holds a
concurrency slot of each scope. The arithmetic is in ``budget.py``; this module only
reads the clock and sleeps, both injected so tests drive time by hand.

Order: the integration's concurrency slot, then the rate budgets (all at once: we never
hold one scope's budget while waiting for another's), then the partner-wide slot (held
last so a request waiting for its own budget never blocks other integrations).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio

from syncd.http.budget import RateBudget, Ticket, TierReading, read_headers

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
# (budget, is_shared): effective rates changed (metrics hook).
OnChange = Callable[[RateBudget, bool], None]


@dataclass(frozen=True, slots=True)
class Pass:
    """One request's admission: seconds it waited and its tickets (own, then shared)."""

    waited: float
    tickets: tuple[Ticket, ...]


class Throttle:
    """What one integration's requests wait for; ``Throttle()`` lets everything through."""

    def __init__(
        self,
        budgets: Sequence[RateBudget] = (),
        *,
        shared: Sequence[RateBudget] = (),
        concurrency: anyio.Semaphore | None = None,
        shared_concurrency: anyio.Semaphore | None = None,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = anyio.sleep,
        on_change: OnChange | None = None,
    ) -> None:
        self.budgets = tuple(budgets)  # the account's: the partner's headers describe these
        self.shared = tuple(shared)  # partner-wide, shared with other integrations
        self._all = self.budgets + self.shared
        self._concurrency = concurrency
        self._shared_concurrency = shared_concurrency
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._on_change = on_change
        self._versions = [b.version for b in self._all]
        # FIFO among this integration's waiters (anyio's Lock is fair); no checkpoint
        # when free, the request itself will yield soon enough.
        self._queue = anyio.Lock(fast_acquire=True)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Pass]:
        """Hold rate budget and concurrency slots for one request on the wire."""
        admitted = await self.acquire()
        try:
            yield admitted
        finally:
            self.release(admitted)

    async def acquire(self) -> Pass:
        """``slot`` without the context manager (the client's per-request path)."""
        started = self._clock()
        if self._concurrency is not None:
            await self._concurrency.acquire()
        try:
            tickets = await self._rate() if self._all else ()
            if self._shared_concurrency is not None:
                try:
                    await self._shared_concurrency.acquire()
                except BaseException:
                    self._done(tickets)
                    raise
        except BaseException:
            if self._concurrency is not None:
                self._concurrency.release()
            raise
        return Pass(self._clock() - started, tickets)

    def release(self, admitted: Pass) -> None:
        if self._shared_concurrency is not None:
            self._shared_concurrency.release()
        self._done(admitted.tickets)
        if self._concurrency is not None:
            self._concurrency.release()

    def unanswered(self, admitted: Pass) -> None:
        """The request got no response; see ``RateBudget.unanswered``."""
        for budget, ticket in zip(self._all, admitted.tickets, strict=False):
            budget.unanswered(ticket)

    def _done(self, tickets: tuple[Ticket, ...]) -> None:
        for budget, ticket in zip(self._all, tickets, strict=False):
            budget.done(ticket)

    async def _rate(self) -> tuple[Ticket, ...]:
        if not self._queue.locked():
            # Fast path, no waiter ahead of us: decide and charge without yielding.
            now = self._clock()
            if all(b.wait_s(now) <= 0 for b in self._all):
                return self._consume(now)
        async with self._queue:
            while True:
                now = self._clock()
                delay = max(b.wait_s(now) for b in self._all)
                if delay <= 0:
                    return self._consume(now)
                # Re-checked after the sleep: a 429 elsewhere may have moved the deadline.
                await self._sleep(delay)

    def _consume(self, now: float) -> tuple[Ticket, ...]:
        # No await between the check and the charge: nothing can slip in.
        tickets = tuple(b.consume(now) for b in self._all)
        self._changed()
        return tickets

    def observe(self, admitted: Pass, headers: Sequence[tuple[str, str]]) -> None:
        """Refine the account's budgets from a response's ``X-RateLimit-*`` headers."""
        if not self.budgets:
            return
        now, wall = self._clock(), self._wall_clock()
        for budget, ticket in zip(self.budgets, admitted.tickets, strict=False):
            readings = read_headers(headers, budget.tiers, wall)
            if any(r is not None for r in readings):
                budget.observe(ticket, readings, now)
        self._changed()

    def throttled(
        self, admitted: Pass, retry_after_s: float | None, headers: Sequence[tuple[str, str]]
    ) -> float:
        """The partner answered 429: block and slow every scope the request passed.
        Returns how long the block lasts."""
        now, wall = self._clock(), self._wall_clock()
        blocked = 0.0
        for i, (budget, ticket) in enumerate(zip(self._all, admitted.tickets, strict=False)):
            own = i < len(self.budgets)
            readings: tuple[TierReading | None, ...] = (
                read_headers(headers, budget.tiers, wall) if own else (None,) * len(budget.tiers)
            )
            if own:
                budget.observe(ticket, readings, now)
            blocked = max(blocked, budget.throttle(ticket, retry_after_s, readings, now))
        self._changed()
        return blocked

    def _changed(self) -> None:
        if self._on_change is None:
            return
        for i, budget in enumerate(self._all):
            if budget.version != self._versions[i]:
                self._versions[i] = budget.version
                self._on_change(budget, i >= len(self.budgets))
