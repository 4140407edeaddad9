"""The canonical values a correct sync of a Cloudbeds dataset holds, computed from its
state, not through the adapter (a property's ``source_updated_at`` is None: the API has
none). Reservations are never swept: a deleted property's stay as last served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from syncd.models import ReservationStatus
from syncd.simulator.profiles.cloudbeds import records as rec
from syncd.simulator.profiles.cloudbeds.data import CloudbedsAccount

_STATUS = {
    "not_confirmed": ReservationStatus.PENDING,
    "confirmed": ReservationStatus.CONFIRMED,
    "canceled": ReservationStatus.CANCELED,
    "checked_in": ReservationStatus.CHECKED_IN,
    "checked_out": ReservationStatus.CHECKED_OUT,
}


def truth_properties(account: CloudbedsAccount) -> dict[str, tuple[Any, ...]]:
    """Canonical values of every live property (``source_updated_at`` None: unknown)."""
    out: dict[str, tuple[Any, ...]] = {}
    for i in account.live_hotels():
        h = account.hotel(i)
        tz = rec.ZONES[h.zone][0]
        out[h.id] = (h.id, None, h.name, *(None,) * 5, tz, *(None,) * 7, True, True, None, h.currency, None)
    return out


def truth_reservations(account: CloudbedsAccount) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for i in range(account.hotels):
        for j in account.of_hotel(i):
            b = account.booking(j)
            end = b.start + timedelta(days=b.nights)
            status = _STATUS.get(b.status, ReservationStatus.OTHER)
            out[b.id] = (
                b.id, _utc(b.modified), b.hotel.id, status, b.status, b.third_party, b.source,
                None, None, b.start, end, b.nights, b.adults + b.children, b.guest, None, None,
                b.balance, b.hotel.currency, _utc(b.created),
            )  # fmt: skip
    return out


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
