"""Pure paginators. No I/O: they turn responses into the next request and a checkpoint
(``rescanned`` only logs: the limit every walk puts on a list that keeps shifting).

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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from syncd import errors

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CONSECUTIVE_RESCANS = 5


def rescanned(where: str, rescans: int, at: str, log: Any) -> int:
    """The consecutive rescans of a walk after one more (its page shifted under it, at
    ``at``); past ``MAX_CONSECUTIVE_RESCANS`` the walk fails: the list never holds still."""
    if rescans >= MAX_CONSECUTIVE_RESCANS:
        raise errors.PaginationError(f"{where}: the walk keeps shifting at {at}")
    if log is not None:
        log.info("tie_group_shifted", endpoint=where, updated_since=at)
    return rescans + 1


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


@dataclass(frozen=True)
class NumberedWalk:
    """A walk by page number (1, 2, ...) over a whole list whose size each answer reports
    (``total``), for a list with no order or filter to anchor on.

    Pages numbered over a list that changes under them skip or repeat records. When the
    total moves between two pages of one attempt, the page just read may be shifted, so it
    is dropped (``restarted``: whatever the caller gathered from this attempt is void) and
    the walk starts again from page 1, at most ``restarts`` times. After that it reads on
    to the end however the total moves: a list that changes faster than it can be read
    would otherwise never be finished, and every later use of it would wait. What a shift
    hid then is missing from this walk only; a caller that needs more confirms it otherwise
    (a deletion sweep confirms each missing id on its own before deleting it).
    """

    restarts: int = 1
    number: int = 1
    total: Any = None  # what this attempt's last page reported (None: nothing yet)
    done: bool = False
    restarted: bool = False

    def advance(self, count: int, total: Any, size: int) -> NumberedWalk:
        """The walk after page ``number`` came back with ``count`` records and reported
        ``total`` (``done`` after a short page)."""
        if self.total is not None and total != self.total and self.restarts > 0:
            return NumberedWalk(self.restarts - 1, restarted=True)
        if count < size:
            return NumberedWalk(self.restarts, self.number, total, done=True)
        return NumberedWalk(self.restarts, self.number + 1, total)


@dataclass(frozen=True)
class NewestFirstCursor:
    """A walk down a list sorted newest first by update time whose pages are numbered:
    each request asks for the records updated at or before ``before`` (the oldest time read
    so far; None: the top), from page 1, dropping the ids consumed at ``before`` (``seen``).

    A numbered walk over a changing list skips or repeats records; this one is anchored:
    a record updated meanwhile moves above ``before`` and shifts nothing below it (the next
    run's overlap reads it). Only more records sharing ``before`` than a page holds need
    page numbers past 1; if the list under the same filter then changes size (``total``),
    some may have shifted, so the group is read again from page 1. ``newest`` is the newest
    update time the walk read (the partner's clock, not ours): where the next run starts,
    minus its overlap.
    """

    before: datetime | None = None
    seen: tuple[str, ...] = ()
    page: int = 1
    total: int | None = None  # what the last answer for ``before`` reported
    newest: datetime | None = None
    done: bool = False
    rereads: int = 0

    @classmethod
    def of(cls, checkpoint: dict[str, Any]) -> NewestFirstCursor:
        seen, page = checkpoint.get("seen") or (), checkpoint.get("page")
        return cls(
            parse_ts(checkpoint.get("before")),
            tuple(map(str, seen)),
            page if isinstance(page, int) and page > 0 else 1,
            newest=parse_ts(checkpoint.get("newest")),
        )

    def to_checkpoint(self) -> dict[str, Any]:
        stamps = {"before": self.before, "newest": self.newest}
        return {k: v and format_ts(v) for k, v in stamps.items()} | {
            "seen": list(self.seen),
            "page": self.page,
        }

    def advance(
        self, records: Sequence[Any], total: Any, size: int, ts_of: TimestampOf, id_of: IdOf
    ) -> tuple[list[Any], NewestFirstCursor]:
        """The page's records not consumed yet, and the cursor after them (``done`` after a
        short page). ValueError for a full page that moves nothing, again and again: the
        list is not sorted as documented, and walking on would loop."""
        consumed = set(self.seen)
        fresh = [r for r in records if id_of(r) not in consumed]
        newest = self.newest or next((t for t in map(ts_of, records) if t is not None), None)
        total = total if isinstance(total, int) else None
        if self.page > 1 and self.total is not None and total != self.total:
            # The group at ``before`` moved under its page numbers: this page may be shifted,
            # so it is dropped and the group read again from page 1.
            return [], replace(self, page=1, total=None, newest=newest, rereads=self.rereads + 1)
        if len(records) < size:
            return fresh, NewestFirstCursor(self.before, self.seen, newest=newest, done=True)
        oldest = next((t for t in map(ts_of, reversed(records)) if t is not None), None)
        rereads = 0 if fresh else self.rereads + 1
        if oldest is None or (oldest == self.before and rereads > MAX_CONSECUTIVE_RESCANS):
            raise ValueError(f"a full page without progress at {self.before}")
        at_oldest = [i for r in records if ts_of(r) == oldest and (i := id_of(r)) is not None]
        if oldest != self.before:  # page 1 under the new filter first: it sets ``total``
            return fresh, NewestFirstCursor(oldest, tuple(at_oldest), newest=newest)
        seen = tuple(dict.fromkeys([*self.seen, *at_oldest]))
        return fresh, NewestFirstCursor(oldest, seen, self.page + 1, total, newest, rereads=rereads)
