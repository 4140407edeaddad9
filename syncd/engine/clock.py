"""The engine's clock: the database's, so that every shard agrees on what is due.

Tests inject a shifted clock to live hours of schedule in a second (a backlog after a
night's outage) without waiting; leases never use it, they fence real time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from syncd.store.postgres import Store


class Clock(Protocol):
    async def now(self) -> datetime: ...


@dataclass
class DatabaseClock:
    store: Store

    async def now(self) -> datetime:
        return await self.store.now()


@dataclass
class ShiftedClock:
    """Another clock moved by ``offset`` (which a test may advance between ticks)."""

    base: Clock
    offset: timedelta = timedelta(0)

    async def now(self) -> datetime:
        return await self.base.now() + self.offset
