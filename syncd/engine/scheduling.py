"""Pure scheduling decisions: time is an argument, never read here."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

Key = tuple[str, str]


def shard_of(integration_id: str, shard_count: int) -> int:
    """Stable across processes and Python versions (``hash()`` is salted per process)."""
    return zlib.crc32(integration_id.encode()) % shard_count


def owned(integration_ids: Iterable[str], shard_index: int, shard_count: int) -> list[str]:
    return [i for i in integration_ids if shard_of(i, shard_count) == shard_index]


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
