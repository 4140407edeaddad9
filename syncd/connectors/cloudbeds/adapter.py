"""Cloudbeds records (raw bytes) -> canonical values. Pure; every rule a documented quirk
(partners.md section 3).

* Datetimes are ``YYYY-MM-DD HH:MM:SS`` in the property's local time: they become UTC
  with the property's IANA timezone (``Local``, from ``getHotels``); the rate-details
  variant's ``dateModifiedUTC`` is used as is when present. A wall time that occurs twice
  (the hour clocks go back) is read as its first occurrence: the payload cannot say.
* Ids are strings holding numbers (integers from older keys and webhooks): kept as text.
* A hotel has no update timestamp, so its ``source_updated_at`` is when it was fetched.
* ``not_confirmed`` is pending; ``no_show`` and the webhooks' ``in_progress`` have no
  canonical twin and are kept as ``other`` (their spelling in ``partner_status``).
* ``getReservation`` names the channel ``source`` and counts guests per room; the list
  names it ``sourceName`` and counts them on the reservation. Only fields both carry are
  mapped (no e-mail, no total), so a targeted fetch never flips a list-synced row.
* HTTP 200 ``{"success": false, "message": ...}`` is an error: ``body_error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from syncd.connectors.cloudbeds import wire
from syncd.errors import ErrorClass
from syncd.models import Property, Reservation, ReservationStatus, canonical_values

_STATUS = {
    "not_confirmed": ReservationStatus.PENDING,
    "confirmed": ReservationStatus.CONFIRMED,
    "canceled": ReservationStatus.CANCELED,
    "checked_in": ReservationStatus.CHECKED_IN,
    "checked_out": ReservationStatus.CHECKED_OUT,
}
# Messages of success:false bodies that mean the credentials (or their grant) are dead.
_AUTH_WORDS = ("access", "token", "not active", "authoriz", "api key", "credential")
_PROPERTY = canonical_values(Property)
_RESERVATION = canonical_values(Reservation)


@dataclass(frozen=True, slots=True)
class Local:
    """What a property lends its reservations: its timezone (None: unknown) and currency."""

    zone: tzinfo | None
    currency: str | None


def local_of(hotel: wire.Hotel) -> Local:
    return Local(zone_of(hotel.propertyTimezone), _currency(hotel))


def zone_of(name: str | None) -> tzinfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError
        return None


def body_error(body: Any) -> tuple[ErrorClass, str] | None:
    """The error class of a response body (parsed JSON), or None when it is no error.
    Cloudbeds answers business errors, including some dead grants, with HTTP 200."""
    if not isinstance(body, dict) or body.get("success") is not False:
        return None
    message = body.get("message")
    text = message[:200] if isinstance(message, str) else "success: false"
    lowered = text.lower()
    if "rate limit" in lowered or "too many" in lowered:
        return ErrorClass.RATE_LIMITED, text
    if any(word in lowered for word in _AUTH_WORDS):
        return ErrorClass.AUTH, text
    return ErrorClass.CLIENT, text


def to_utc(text: str, zone: tzinfo | None) -> datetime:
    """A Cloudbeds datetime (property-local unless it carries an offset) as UTC."""
    try:
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            if zone is None:
                raise ValueError("the property's timezone is unknown")
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    except OverflowError as exc:  # a wall time with no UTC value (year 1, year 9999)
        raise ValueError(f"datetime out of range: {text!r}") from exc


def hotel_values(raw: bytes, fetched_at: datetime) -> tuple[Any, ...]:
    h = wire.HOTEL.decode(raw)
    return _PROPERTY(
        (
            str(h.propertyID),  # external_id
            fetched_at,  # source_updated_at: the API has no update time for a hotel
            h.propertyName or "Untitled property",  # title
            *(None,) * 5,  # nickname, property_type, accommodates, bedrooms, bathrooms
            h.propertyTimezone,  # timezone
            *(None,) * 7,  # street, city, state, postal_code, country, latitude, longitude
            True,  # active: getHotels lists only properties connected to the app
            True,  # listed
            None,  # base_price: rates live per room type and date
            _currency(h),
        )
    )


def reservation_values(raw: bytes, hotels: Mapping[str, Local]) -> tuple[Any, ...]:
    r = wire.RESERVATION.decode(raw)
    property_id = str(r.propertyID)
    local = hotels.get(property_id)
    if local is None:
        raise ValueError(f"property {property_id!r} is not one of this account's")
    zone = local.zone
    updated = to_utc(r.dateModifiedUTC, UTC) if r.dateModifiedUTC else to_utc(r.dateModified, zone)
    status = r.status or ""
    nights = None if r.startDate is None or r.endDate is None else (r.endDate - r.startDate).days
    return _RESERVATION(
        (
            str(r.reservationID),  # external_id
            updated,  # source_updated_at
            property_id,  # property_external_id
            _STATUS.get(status, ReservationStatus.OTHER),  # status
            status,  # partner_status
            r.thirdPartyIdentifier,  # confirmation_code: the channel's own number
            r.sourceName or r.source,  # channel
            None,  # check_in: only dates are given (times are the property's policy)
            None,  # check_out
            r.startDate,  # check_in_date
            r.endDate,  # check_out_date
            nights,
            _guests(r),
            r.guestName,  # guest_name
            None,  # guest_email: getReservation only
            None,  # total_paid: not in the list
            r.balance,  # balance_due
            local.currency,  # currency: the property's
            None if not r.dateCreated else to_utc(r.dateCreated, zone),  # source_created_at
        )
    )


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
