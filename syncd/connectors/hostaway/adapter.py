"""Hostaway records (raw bytes) -> canonical values. Pure; every rule is a documented quirk
(partners.md section 2):

* ids are integers; canonical ids are their decimal text.
* times are ``YYYY-MM-DD HH:MM:SS`` in UTC, without an offset.
* statuses are Hostaway's (``new``/``modified`` are live bookings, ``cancelled`` is UK
  spelling); unknown ones are kept as ``other`` and reported as drift.
* ``isDatesUnspecified=1`` means the dates are placeholders ("yesterday"): no dates.
* booleans are 0/1 integers.

Type errors surface as ``msgspec.ValidationError``, bad times as ``ValueError`` and
canonical bounds as pydantic's ``ValidationError``: the pipeline dead-letters all three.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from syncd.connectors.hostaway import wire
from syncd.models import Property, Reservation, ReservationStatus, canonical_values
from syncd.observability import drift

_STATUS = {
    "new": ReservationStatus.CONFIRMED,
    "modified": ReservationStatus.CONFIRMED,
    "confirmed": ReservationStatus.CONFIRMED,  # deprecated for writes, still read
    "cancelled": ReservationStatus.CANCELED,
    "ownerstay": ReservationStatus.OWNER_STAY,
    "pending": ReservationStatus.PENDING,
    "awaitingpayment": ReservationStatus.PENDING,
    "declined": ReservationStatus.DECLINED,
    "expired": ReservationStatus.EXPIRED,
    "inquiry": ReservationStatus.INQUIRY,
    "inquirypreapproved": ReservationStatus.INQUIRY,
    "inquirydenied": ReservationStatus.DECLINED,
    "inquirynotpossible": ReservationStatus.DECLINED,
    "inquirytimedout": ReservationStatus.EXPIRED,
}
_PAID_IN_FULL = Decimal("0.00")
_PROPERTY = canonical_values(Property)
_RESERVATION = canonical_values(Reservation)


def utc(text: str) -> datetime:
    """A Hostaway time: UTC without an offset (an explicit offset is honoured)."""
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # an offset pushing it past year 1 or 9999
        raise ValueError(f"time out of range: {text!r}") from None


def _utc_or_none(text: str | None) -> datetime | None:
    try:
        return None if text is None else utc(text)
    except ValueError:  # an optional time that is not one (e.g. MySQL's 0000-00-00) is absent
        return None


def listing_values(raw: bytes) -> tuple[Any, ...]:
    return _PROPERTY(listing_tuple(wire.LISTING.decode(raw)))


def reservation_values(raw: bytes) -> tuple[Any, ...]:
    return _RESERVATION(reservation_tuple(wire.RESERVATION.decode(raw)))


# Field order: models.Property (the comments name the canonical fields).
def listing_tuple(w: wire.Listing) -> tuple[Any, ...]:
    return (
        str(w.id),  # external_id
        utc(w.latestActivityOn),  # source_updated_at
        w.name or w.internalListingName or "Untitled listing",  # title
        w.internalListingName,  # nickname
        None,  # property_type: not in the documented listing fields
        w.personCapacity,  # accommodates
        w.bedroomsNumber,  # bedrooms
        w.bathroomsNumber,  # bathrooms
        w.timeZoneName,  # timezone
        w.street,
        w.city,
        w.state,
        w.zipcode,  # postal_code
        w.country or w.countryCode,  # country: the name, else the ISO code
        w.lat,  # latitude
        w.lng,  # longitude
        True,  # active: not documented
        True,  # listed: not documented
        w.price,  # base_price
        w.currencyCode,  # currency
        None,  # photos_fingerprint: photos are not offered as a child resource here
    )


def reservation_tuple(w: wire.Reservation) -> tuple[Any, ...]:
    partner_status = w.status or ""
    status = _STATUS.get(partner_status.lower())
    if status is None:
        drift.unknown_value("status", partner_status)  # kept verbatim in partner_status
        status = ReservationStatus.OTHER
    placeholder_dates = bool(w.isDatesUnspecified)
    guest = w.guestName or " ".join(n for n in (w.guestFirstName, w.guestLastName) if n) or None
    paid = bool(w.isPaid) and w.totalPrice is not None
    return (
        str(w.id),  # external_id
        utc(w.updatedOn),  # source_updated_at
        str(w.listingMapId),  # property_external_id
        status,
        partner_status,
        None if w.reservationId is None else str(w.reservationId),  # confirmation_code
        w.channelName,  # channel
        None,  # check_in: Hostaway sends dates only
        None,  # check_out
        None if placeholder_dates else w.arrivalDate,  # check_in_date
        None if placeholder_dates else w.departureDate,  # check_out_date
        w.nights,
        w.numberOfGuests,  # guests
        guest,  # guest_name
        w.guestEmail,  # guest_email
        # isPaid says "paid in full" or not; a partial payment is not documented.
        w.totalPrice if paid else None,  # total_paid
        _PAID_IN_FULL if paid else None,  # balance_due
        w.currency,
        _utc_or_none(w.reservationDate),  # source_created_at
    )
