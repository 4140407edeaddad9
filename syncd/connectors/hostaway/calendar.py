"""Hostaway calendar days (partners.md section 2) -> canonical ``CalendarDay`` values. Pure.

``GET /listings/{id}/calendar?startDate&endDate`` answers the listing's days, each
``{id, date, isAvailable, status, price, minimumStay, ...}``; a day names no listing, so
each is stored under its listing's id (``children.child_record``). Day statuses:
``available``, ``blocked``, ``hardBlock``, ``reserved`` (a booking) and ``pending`` (a
pending booking); ``mblocked``, ``mreserved`` and ``conflicted`` are deprecated, still
read. An unknown status is kept verbatim as ``other`` and reported as drift. A day
carries no currency (its price is in the listing's) and no modification time
(``models.UNTIMED``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import msgspec

from syncd.models import UNTIMED, CalendarDay, CalendarStatus, canonical_values
from syncd.observability import drift

_STATUS = {
    "available": CalendarStatus.AVAILABLE,
    "blocked": CalendarStatus.UNAVAILABLE,
    "hardblock": CalendarStatus.UNAVAILABLE,
    "mblocked": CalendarStatus.UNAVAILABLE,
    "reserved": CalendarStatus.RESERVED,
    "pending": CalendarStatus.RESERVED,
    "mreserved": CalendarStatus.RESERVED,
    "conflicted": CalendarStatus.OTHER,
}
_CALENDAR_DAY = canonical_values(CalendarDay)


class Day(msgspec.Struct, gc=False):
    date: date
    status: str | None = None
    isAvailable: bool | int | None = None  # 0/1, used when a day has no status
    price: Decimal | None = None
    minimumStay: int | None = None


class ListingDay(msgspec.Struct, gc=False):
    parent: str  # the listing id the day was requested for
    record: Day


_LISTING_DAY = msgspec.json.Decoder(ListingDay)


class _Parent(msgspec.Struct, gc=False):
    parent: Any = None
    record: Any = None


_PARENT = msgspec.json.Decoder(_Parent)


def _status(w: Day) -> tuple[CalendarStatus, str]:
    if w.status is None:
        open_ = w.isAvailable
        return (CalendarStatus.OTHER if open_ is None else _STATUS["available" if open_ else "blocked"]), ""
    status = _STATUS.get(w.status.lower())
    if status is None:
        drift.unknown_value("status", w.status)  # kept verbatim in partner_status
        status = CalendarStatus.OTHER
    return status, w.status


def day_values(raw: bytes) -> tuple[Any, ...]:
    d = _LISTING_DAY.decode(raw)
    w = d.record
    status, partner_status = _status(w)
    return _CALENDAR_DAY(
        (
            f"{d.parent}:{w.date.isoformat()}",  # external_id
            UNTIMED,  # source_updated_at: a day has none
            d.parent,  # property_external_id
            w.date,  # day
            status,
            partner_status,
            w.price,
            None,  # currency: the listing's, not on the day
            w.minimumStay,  # min_nights
        )
    )


def day_id(raw: bytes) -> str | None:
    """``<listing>:<date>`` of a possibly malformed stored day, best effort."""
    try:
        found = _PARENT.decode(raw)
    except (msgspec.MsgspecError, RecursionError):
        return None
    day = found.record.get("date") if isinstance(found.record, dict) else None
    if not isinstance(found.parent, str) or not isinstance(day, str):
        return None
    return f"{found.parent}:{day}"
