"""Pure scheduling decisions: time is an argument, never read here."""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from syncd.store.types import Schedule

Key = tuple[str, str]


def shard_of(integration_id: str, shard_count: int) -> int:
    """Stable across processes and Python versions (``hash()`` is salted per process)."""
    return zlib.crc32(integration_id.encode()) % shard_count


def owned(integration_ids: Iterable[str], shard_index: int, shard_count: int) -> list[str]:
    return [i for i in integration_ids if shard_of(i, shard_count) == shard_index]


def due(schedules: Iterable[Schedule], running: Collection[Key], now: datetime) -> list[Schedule]:
    """Schedules whose time has come and that are not already running here, oldest first."""
    ready = [s for s in schedules if s.next_due_at <= now and (s.integration_id, s.resource) not in running]
    return sorted(ready, key=lambda s: s.next_due_at)


@dataclass(frozen=True)
class Backlog:
    """How far the scheduler is behind: the schedules waiting, and the oldest one's lateness."""

    waiting: int
    oldest_late_s: float


def backlog(ready: Sequence[Schedule], now: datetime) -> Backlog:
    """The backlog at ``now`` of ``ready``, the schedules ``due`` returned. A healthy daemon
    claims a due schedule within a tick: lateness beyond that means every worker slot is busy."""
    if not ready:
        return Backlog(0, 0.0)
    oldest = min(s.next_due_at for s in ready)
    return Backlog(len(ready), max(0.0, (now - oldest).total_seconds()))


def next_interval(interval_s: float, jitter: float, rand: float) -> float:
    """Interval with +/- ``jitter`` (fraction) so that many integrations do not align."""
    return max(0.0, interval_s * (1.0 + jitter * (2.0 * rand - 1.0)))


def failure_backoff(interval_s: float, base_s: float, consecutive_failures: int) -> float:
    """Retry a failed run sooner than its interval, backing off up to that interval."""
    return min(interval_s, base_s * 2.0 ** min(consecutive_failures, 16))


@dataclass
class Backoff:
    """Waits between attempts to reach a dependency that is down: doubling from
    ``initial`` up to ``cap``. (The scheduler's loop also wakes on events while it waits,
    which a retry decorator such as tenacity's would not allow.)"""

    initial: float = 0.5
    cap: float = 10.0
    failures: int = 0

    def failed(self) -> None:
        self.failures += 1

    def reset(self) -> None:
        self.failures = 0

    def next(self) -> float:
        return failure_backoff(self.cap, self.initial, max(0, self.failures - 1))
