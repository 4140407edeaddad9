"""Airbnb records (raw bytes) -> canonical values. Pure.

* Listings [C]: integer ``id`` (kept as its decimal text), ``name`` (an empty one reads
  "Untitled listing": the canonical title is required), ``person_capacity``, ``bedrooms``,
  ``bathrooms``, ``listing_price`` + ``listing_currency``, ``country_code`` as the
  country. [assumption] ``updated_at`` (ISO 8601 UTC) is the update time,
  ``time_zone_name`` the IANA zone and ``has_availability`` whether it is listed.
* Reservations [assumption]: the ``confirmation_code`` names one (and is its
  confirmation code); ``listing_id`` its listing; ``start_date``/``end_date`` are the
  stay's dates (no times: check-in hours are the listing's policy); the guest is
  ``guest.first_name`` + ``last_name`` (the host may see only a first name); the
  ``expected_payout_amount`` is the host's payout, not what the guest paid, so it maps to
  no money field. Statuses ``accepted``/``pending``/``cancelled``/``denied``/
  ``expired``/``inquiry``; any other is ``other``, spelled in ``partner_status`` and
  reported as drift.

Type errors surface as ``msgspec.ValidationError``, bad times as ``ValueError``, canonical
bounds as pydantic's ``ValidationError``: the pipeline dead-letters all three.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from syncd.connectors.airbnb import wire
from syncd.models import Property, Reservation, ReservationStatus, canonical_values
from syncd.observability import drift

_STATUS = {
    "accepted": ReservationStatus.CONFIRMED,
    "pending": ReservationStatus.PENDING,
    "cancelled": ReservationStatus.CANCELED,
    "denied": ReservationStatus.DECLINED,
    "expired": ReservationStatus.EXPIRED,
    "inquiry": ReservationStatus.INQUIRY,
}
_PROPERTY = canonical_values(Property)
_RESERVATION = canonical_values(Reservation)


def utc(text: str) -> datetime:
    """An ISO 8601 time; one without an offset is UTC."""
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # an offset pushing it past year 1 or 9999
        raise ValueError(f"time out of range: {text!r}") from None


def listing_values(raw: bytes) -> tuple[Any, ...]:
    x = wire.LISTING.decode(raw)
    # Field order: models.Property.
    return _PROPERTY((
        str(x.id), utc(x.updated_at), x.name or "Untitled listing", None,
        x.property_type_category or x.room_type_category, x.person_capacity, x.bedrooms, x.bathrooms,
        x.time_zone_name, x.street, x.city, x.state, x.zipcode, x.country_code, x.lat, x.lng,
        True, x.has_availability is not False, x.listing_price, x.listing_currency, None,
    ))  # fmt: skip


def reservation_values(raw: bytes) -> tuple[Any, ...]:
    r = wire.RESERVATION.decode(raw)
    status = r.status or ""
    canonical = _STATUS.get(status)
    if canonical is None:
        drift.unknown_value("status", status)  # kept verbatim in partner_status
        canonical = ReservationStatus.OTHER
    nights = r.nights
    if nights is None and r.start_date is not None and r.end_date is not None:
        nights = (r.end_date - r.start_date).days
    guest = " ".join(p for p in (r.guest.first_name, r.guest.last_name) if p) if r.guest else ""
    created = utc(r.created_at) if r.created_at else None
    # Field order: models.Reservation.
    return _RESERVATION((
        r.confirmation_code, utc(r.updated_at), str(r.listing_id), canonical, status,
        r.confirmation_code, "airbnb", None, None, r.start_date, r.end_date, nights,
        r.number_of_guests, guest or None, None, None, None, r.currency, created,
    ))  # fmt: skip
