"""Cloudbeds records (raw bytes) -> canonical values. Pure; each rule a documented quirk
(partners.md section 3).

* Datetimes are ``YYYY-MM-DD HH:MM:SS`` in the property's local time: made UTC with its
  IANA zone (``Local``, from ``getHotels``); ``dateModifiedUTC`` (rate-details variant)
  wins. A wall time that occurs twice (clocks going back) reads as the first. A
  reservation of a property the account does not list is a dead letter.
* Ids are strings holding numbers (integers from older keys and webhooks): kept as text.
* A hotel has no update time: its ``source_updated_at`` is when it was fetched (each
  newer listing wins: the raw payload kept is the one last listed).
* ``not_confirmed`` is pending; ``no_show`` and ``in_progress`` (webhooks) are ``other``,
  spelled in ``partner_status``; any other status too, reported as schema drift.
* ``getReservation`` names the channel ``source`` and counts guests per room; only fields
  both it and the list carry are mapped, so a targeted fetch never flips a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from syncd.connectors.cloudbeds import wire
from syncd.connectors.localtime import to_utc
from syncd.connectors.localtime import zone_of as zone_of  # re-exported: the adapter's tests name it
from syncd.models import Property, Reservation, ReservationStatus, canonical_values
from syncd.observability import drift

# The documented statuses; all but not_confirmed (pending) are spelled as the canonical ones.
_STATUS = {"not_confirmed": ReservationStatus.PENDING} | {
    s: ReservationStatus(s) for s in ("confirmed", "canceled", "checked_in", "checked_out")
}
_DOCUMENTED_OTHER = frozenset({"no_show", "in_progress"})
_PROPERTY = canonical_values(Property)
_RESERVATION = canonical_values(Reservation)


@dataclass(frozen=True, slots=True)
class Local:
    """What a property lends its reservations: its timezone (None: unknown) and currency."""

    zone: tzinfo | None
    currency: str | None


# Lent by a connector that has listed no property (offline normalizing, in tools and
# tests; a sync lists the properties first): wall times read as UTC.
_NOWHERE = Local(UTC, None)


def local_of(hotel: wire.Hotel) -> Local:
    return Local(zone_of(hotel.propertyTimezone), _currency(hotel))


def hotel_values(raw: bytes, fetched_at: datetime) -> tuple[Any, ...]:
    h = wire.HOTEL.decode(raw)
    # Field order: models.Property. getHotels has no address (getHotelDetails, one request
    # per property, has) and no price (rates live per room type and date); it lists only
    # the properties connected to the app: active and listed.
    title = h.propertyName or "Untitled property"
    none5, none7 = (None,) * 5, (None,) * 7  # nickname..bathrooms, street..longitude
    values = (str(h.propertyID), fetched_at, title, *none5, h.propertyTimezone, *none7, True, True, None)
    return _PROPERTY((*values, _currency(h), None))  # no photos fingerprint


def reservation_values(raw: bytes, hotels: Mapping[str, Local]) -> tuple[Any, ...]:
    r = wire.RESERVATION.decode(raw)
    property_id = str(r.propertyID)
    local = hotels.get(property_id, None if hotels else _NOWHERE)
    if local is None:
        raise ValueError(f"property {property_id!r} is not one of this account's")
    zone = local.zone
    updated = to_utc(r.dateModifiedUTC, UTC) if r.dateModifiedUTC else to_utc(r.dateModified, zone)
    status = r.status or ""
    canonical = _STATUS.get(status, ReservationStatus.OTHER)
    if canonical is ReservationStatus.OTHER and status not in _DOCUMENTED_OTHER:
        drift.unknown_value("status", status)  # kept verbatim in partner_status
    nights = None if r.startDate is None or r.endDate is None else (r.endDate - r.startDate).days
    created = None if not r.dateCreated else to_utc(r.dateCreated, zone)
    # Field order: models.Reservation. No check-in/out times (only dates: times are the
    # property's policy); the confirmation code is the channel's own number; the currency
    # is the property's.
    return _RESERVATION((
        str(r.reservationID), updated, property_id, canonical, status,
        r.thirdPartyIdentifier, r.sourceName or r.source, None, None, r.startDate, r.endDate, nights,
        _guests(r), r.guestName, None, None, r.balance, local.currency, created,
    ))  # fmt: skip


def _currency(h: wire.Hotel) -> str | None:
    c = h.propertyCurrency
    if isinstance(c, list):
        c = c[0] if c else None
    return None if c is None else c.currencyCode


def _guests(r: wire.Reservation) -> int | None:
    if r.adults is not None or r.children is not None:
        return _count(r.adults) + _count(r.children)
    rooms = [*(r.assigned or ()), *(r.unassigned or ())]
    return sum(_count(room.adults) + _count(room.children) for room in rooms) if rooms else None


def _count(value: str | int | None) -> int:
    return 0 if value is None or value == "" else int(value)  # documented as strings
