"""The reservations walk: Hostaway's ``afterId`` cursor, verified. Pure, no I/O.

Requests are ``sortOrder=updatedOn`` (oldest modification first, ties by id) with
``latestActivityStart`` at the newest time consumed, and ``afterId`` naming a record
already consumed: the page then holds the records that sort after that record's
*current* position. A record modified during the walk moves to the end of the order, so
a cursor on it would jump over everything between its old and new places, and a cursor
on a deleted record yields an empty page (which the documentation says means "done").
Hence ``afterId`` names the *second-to-last* record consumed and the page must start with
the last one (the anchor), at the time it had: that proves both are still where we left
them and the rest of the page follows on directly. Otherwise the walk restarts at the
anchor's second without a cursor (re-reads are harmless: upserts are idempotent).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from syncd.connectors.pagination import EPOCH, format_ts, parse_ts

IdOf = Callable[[Any], "int | None"]
TimeOf = Callable[[Any], "datetime | None"]


def hostaway_time(value: datetime) -> str:
    """A UTC time as Hostaway writes it, to the second (floored: a filter from it can only
    include more, never less)."""
    return value.strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True, slots=True)
class AfterIdCursor:
    """``since``: records older than it are consumed. ``after_id``/``anchor``: the last two
    records consumed, ``anchor_at`` the anchor's ``updatedOn`` when it was read."""

    since: datetime
    after_id: int | None = None
    anchor: int | None = None
    anchor_at: datetime | None = None

    @classmethod
    def start(cls, checkpoint: dict[str, Any] | None, overlap_s: float) -> AfterIdCursor:
        ts = parse_ts((checkpoint or {}).get("updated_since"))
        if ts is None:
            return cls(EPOCH)
        return cls(max(EPOCH, (ts - timedelta(seconds=overlap_s)).replace(microsecond=0)))

    def params(self) -> dict[str, str | int]:
        params: dict[str, str | int] = {"sortOrder": "updatedOn"}
        params["latestActivityStart"] = hostaway_time(self.since)
        if self.after_id is not None:
            params["afterId"] = self.after_id
        return params

    def to_checkpoint(self) -> dict[str, Any]:
        return {"updated_since": format_ts(self.since), "after_id": self.after_id, "anchor": self.anchor}

    def verify(self, records: Sequence[Any], id_of: IdOf, time_of: TimeOf) -> list[Any] | None:
        """The page's new records, or None when it does not start with the anchor as read."""
        if self.after_id is None:
            return list(records)
        if records and id_of(records[0]) == self.anchor and time_of(records[0]) == self.anchor_at:
            return list(records[1:])
        return None

    def rescan(self) -> AfterIdCursor:
        return AfterIdCursor(self.since)

    def advance(self, records: Sequence[Any], id_of: IdOf, time_of: TimeOf) -> AfterIdCursor:
        """The cursor after consuming ``records`` (verified, in partner order)."""
        if not records:
            return self
        since = self.since
        for record in records:
            ts = time_of(record)
            if ts is not None and ts > since:
                since = ts
        before = id_of(records[-2]) if len(records) > 1 else self.anchor
        last = records[-1]
        return AfterIdCursor(since, before, id_of(last), time_of(last))


def parse_time(value: Any) -> datetime | None:
    """A record's Hostaway time, or None when it is not one."""
    if not isinstance(value, str):
        return None
    return parse_ts(value.replace(" ", "T", 1) + "+00:00") if len(value) == 19 else parse_ts(value)
