"""Pure paginators. No I/O: they turn responses into the next request and a checkpoint.

``UpdatedSinceCursor`` walks a partner list sorted by its update timestamp, with a filter
``updated >= ts`` and a ``skip`` counted *within* that filter. Anchoring every request on a
timestamp (instead of one long skip) keeps pagination correct while records change under
us: an updated record moves to the end and is fetched again, never pushing another one
out of view. Two dangers remain and are handled here:

* ties: many records can share one timestamp, across a page boundary. The cursor counts
  how many records at the newest timestamp it has consumed and skips exactly those.
* a tie group that shrinks between two requests (one of its records was updated) would
  make that skip jump over an unseen record. Every request therefore re-reads the last
  consumed record (the *anchor*) and checks it is still where we left it; if not, the tie
  group is re-read from its start (re-reads are harmless: upserts are idempotent and
  versions only move on real changes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CONSECUTIVE_RESCANS = 5

TimestampOf = Callable[[Any], "datetime | None"]
IdOf = Callable[[Any], "str | None"]


def format_ts(value: datetime) -> str:
    """ISO UTC with milliseconds and ``Z``, the format several partners use."""
    v = value.astimezone(UTC)
    # %-formatting, not strftime: this runs for every page request, and strftime is ~4x slower.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond // 1000
    )  # fmt: skip


def parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return None
        return parsed.astimezone(UTC)  # also refuses a time with no UTC value (year 0, 10000)
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class UpdatedSinceCursor:
    """Consumed: every record older than ``ts`` and the first ``skip`` records at >= ``ts``."""

    ts: datetime
    skip: int = 0
    anchor: str | None = None

    @classmethod
    def start(cls, checkpoint: dict[str, Any] | None, overlap_s: float) -> UpdatedSinceCursor:
        """Where a new run begins: the checkpoint's timestamp minus a safety overlap (the
        partner may commit records with timestamps slightly in the past)."""
        ts = parse_ts((checkpoint or {}).get("updated_since"))
        if ts is None:
            return cls(EPOCH)
        return cls(max(EPOCH, ts - timedelta(seconds=overlap_s)))

    def to_checkpoint(self) -> dict[str, Any]:
        # A checkpoint is jsonb, which cannot hold NUL: such an anchor is not stored (runs
        # restart from ``updated_since`` minus the overlap; skip and anchor are for people).
        anchor = None if self.anchor is not None and "\x00" in self.anchor else self.anchor
        return {"updated_since": format_ts(self.ts), "skip": self.skip, "anchor": anchor}

    @property
    def request_skip(self) -> int:
        """The skip to send: one less than consumed when there is an anchor to re-read."""
        return self.skip - 1 if self.anchor is not None and self.skip > 0 else self.skip

    def verify(self, results: Sequence[Any], id_of: IdOf) -> list[Any] | None:
        """The page minus the re-read anchor, or None if the anchor is gone (re-scan).

        Records ahead of the anchor are kept: they are either re-reads (an unparseable
        timestamp made us under-count) or records that newly joined the tie group.
        """
        if self.anchor is None or self.skip == 0:
            return list(results)
        for i, record in enumerate(results):
            if id_of(record) == self.anchor:
                return [*results[:i], *results[i + 1 :]]
        return None

    def rescan(self) -> UpdatedSinceCursor:
        return UpdatedSinceCursor(self.ts)

    def advance(self, records: Sequence[Any], ts_of: TimestampOf, id_of: IdOf) -> UpdatedSinceCursor:
        """The cursor after consuming ``records`` (the verified page, in partner order)."""
        n = len(records)
        if n == 0:
            return self
        newest: datetime | None = None
        first_at_newest = n
        for i in range(n - 1, -1, -1):
            ts = ts_of(records[i])
            if ts is None:
                continue  # unparseable: its true position is unknown, so it is not counted
            if newest is None:
                newest = ts
            if ts == newest:
                first_at_newest = i
            elif ts < newest:
                break
        anchor = id_of(records[-1])
        if newest is None or newest <= self.ts:
            return UpdatedSinceCursor(self.ts, self.skip + n, anchor)
        return UpdatedSinceCursor(newest, n - first_at_newest, anchor)


@dataclass(frozen=True)
class OffsetCursor:
    """Plain ``skip``/``offset`` walk (ID sweeps), with Singer-style loop detection."""

    offset: int = 0

    def advance(self, count: int) -> OffsetCursor:
        if count < 0:
            raise ValueError("count must be >= 0")
        return OffsetCursor(self.offset + count)
