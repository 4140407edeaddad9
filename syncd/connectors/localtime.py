"""Wall times: datetimes written without an offset, which mean an instant only in a zone.

Partners write times as wall-clock text (``YYYY-MM-DD HH:MM:SS``), in UTC or in the
zone of the property a record belongs to, and take filters in the same form. Pure
helpers between that text and UTC instants. A wall time that occurs twice (clocks going
back) reads as the first, as ``zoneinfo`` reads it (``fold=0``).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo


def zone_of(name: str | None) -> tzinfo | None:
    """The IANA zone ``name`` (``Europe/Lisbon``), or None: no name, or one unknown here."""
    try:
        return ZoneInfo(name) if name else None
    except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError
        return None


def to_utc(text: str, zone: tzinfo | None) -> datetime:
    """An ISO datetime, local to ``zone`` unless it carries an offset, as UTC. ValueError:
    not a datetime, local with no zone known, or with no UTC value."""
    try:
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            if zone is None:
                raise ValueError("the property's timezone is unknown")
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    except OverflowError as exc:  # a wall time with no UTC value (year 1, year 9999)
        raise ValueError(f"datetime out of range: {text!r}") from exc


def wall(ts: datetime, zone: tzinfo) -> str:
    """The instant ``ts`` as ``zone``'s wall clock shows it, to the second."""
    return ts.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
