"""Guesty records (raw bytes) -> canonical models. Pure; every rule here is a documented quirk.

* ``title`` may be missing: fall back to ``nickname`` (partners.md), then a placeholder.
* ``address`` and most other fields may be absent.
* status spelling is US (``canceled``); an unknown status is stored as ``other`` and counted
  as schema drift.

Type errors surface as ``msgspec.ValidationError`` (wire) or pydantic ``ValidationError``
(canonical constraints); the pipeline turns either into a dead letter.

reservations-v3 records (``reservation_v3_values``) carry no guest and no money: v3 no
longer embeds them (partners.md), so ``guest_name``, ``guest_email``, ``total_paid``,
``balance_due`` and ``currency`` are None for an integration on v3 (filling them would take
separate guest and financial requests per reservation).

``listing_values``/``reservation_values`` are the ingest path: the canonical values as a
tuple in the model's field order, with pydantic consulted only for a record outside the
canonical bounds (``models.canonical_values``). ``listing_to_property``/
``reservation_to_canonical`` build the models from the same tuples.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from syncd.connectors.guesty import wire
from syncd.models import Photo, Property, Reservation, ReservationStatus, canonical_values, field_names
from syncd.observability import drift

_STATUS = {
    "inquiry": ReservationStatus.INQUIRY,
    "reserved": ReservationStatus.RESERVED,
    "confirmed": ReservationStatus.CONFIRMED,
    "canceled": ReservationStatus.CANCELED,
    "cancelled": ReservationStatus.CANCELED,
    "declined": ReservationStatus.DECLINED,
    "expired": ReservationStatus.EXPIRED,
    "checked_in": ReservationStatus.CHECKED_IN,
    "checked_out": ReservationStatus.CHECKED_OUT,
    "awaiting_payment": ReservationStatus.PENDING,
    "owner": ReservationStatus.OWNER_STAY,
}
_NO_ADDRESS = wire.Address()
_NO_PRICES = wire.Prices()
_NO_GUEST = wire.Guest()
_NO_MONEY = wire.Money()
_PROPERTY = canonical_values(Property)
_RESERVATION = canonical_values(Reservation)
_PHOTO = canonical_values(Photo)
_crc32 = zlib.crc32
PROPERTY_FIELDS = field_names(Property)
RESERVATION_FIELDS = field_names(Reservation)


def listing_values(raw: bytes) -> tuple[Any, ...]:
    return _PROPERTY(_listing(wire.LISTING.decode(raw)))


def reservation_values(raw: bytes) -> tuple[Any, ...]:
    return _RESERVATION(_reservation(wire.RESERVATION.decode(raw)))


def listing_values_of(listing: wire.Listing) -> tuple[Any, ...]:
    """``listing_values`` of a listing decoded already (a whole page at once)."""
    return _PROPERTY(_listing(listing))


def listing_values_unpictured(raw: bytes) -> tuple[Any, ...]:
    """``listing_values`` without the pictures digest (None), for integrations that do not
    sync photos."""
    return _PROPERTY(_listing(wire.LISTING.decode(raw), _no_fingerprint))


def listing_values_of_unpictured(listing: wire.Listing) -> tuple[Any, ...]:
    return _PROPERTY(_listing(listing, _no_fingerprint))


def reservation_values_of(reservation: wire.Reservation) -> tuple[Any, ...]:
    return _RESERVATION(_reservation(reservation))


def reservation_v3_values(raw: bytes) -> tuple[Any, ...]:
    return _RESERVATION(_reservation_v3(wire.RESERVATION_V3.decode(raw)))


def reservation_v3_values_of(reservation: wire.ReservationV3) -> tuple[Any, ...]:
    return _RESERVATION(_reservation_v3(reservation))


def listing_to_property(raw: bytes) -> Property:
    return Property.model_validate(
        dict(zip(PROPERTY_FIELDS, _listing(wire.LISTING.decode(raw)), strict=True))
    )


def reservation_to_canonical(raw: bytes) -> Reservation:
    values = _reservation(wire.RESERVATION.decode(raw))
    return Reservation.model_validate(dict(zip(RESERVATION_FIELDS, values, strict=True)))


# A tuple, not a dict: this runs once per record (a dict and the lookups that turn it into
# a row would be about a third of a listing's normalisation). Field order: models.Property,
# which the comments name; tests/unit/test_canonical_check.py compares every position by name.
def _listing(w: wire.Listing, fingerprint: Callable[[Any], int | None] | None = None) -> tuple[Any, ...]:
    address = w.address or _NO_ADDRESS
    prices = w.prices or _NO_PRICES
    return (
        w.id,  # external_id
        w.lastUpdatedAt,  # source_updated_at
        w.title or w.nickname or "Untitled listing",  # title
        w.nickname,
        w.type,  # property_type
        w.accommodates,
        w.bedrooms,
        w.bathrooms,
        w.timezone,
        address.street,
        address.city,
        address.state,
        address.zipcode,  # postal_code
        address.country,
        address.lat,  # latitude
        address.lng,  # longitude
        w.active,
        w.listed,
        prices.basePrice,  # base_price
        prices.currency,
        (fingerprint or photos_fingerprint)(w.pictures),
    )


def photos_fingerprint(pictures: Any) -> int | None:
    """A digest of the ``pictures`` array's bytes as the list page sends them (their CRC-32
    and length): any picture added, removed, re-ordered or re-captioned changes it, and so
    fetches the listing's photos again. Bytes, not decoded pictures, and a CRC, not a
    cryptographic hash: this runs for every listing of every page, where a hash would cost
    a few percent of a full sync. A change it misses (about one in four billion) waits for
    the listing's next photo change; a change of the partner's formatting alone reads each
    listing's photos once more. None when the page shows no pictures (absent, null or empty)."""
    size = len(pictures)
    if size <= 4 and bytes(pictures) in (b"", b"null", b"[]"):
        return None
    return _crc32(pictures) | size << 32


def _no_fingerprint(pictures: Any) -> None:
    return None


def picture_values(raw: bytes, listing_id: str, position: int, updated_at: datetime) -> tuple[Any, ...]:
    """One picture of ``listing_id`` (its ``position`` in the listing's array, the listing's
    ``lastUpdatedAt``) as a canonical photo; field order: models.Photo."""
    p = wire.PICTURE.decode(raw)
    return _PHOTO(
        (
            f"{listing_id}:{p.id}",  # external_id
            updated_at,  # source_updated_at
            listing_id,  # property_external_id
            position,
            p.original,  # url
            p.thumbnail,  # thumbnail_url
            p.caption,
        )
    )


def _reservation(w: wire.Reservation) -> tuple[Any, ...]:
    guest = w.guest or _NO_GUEST
    money = w.money or _NO_MONEY
    partner_status = w.status or ""
    return (
        w.id,  # external_id
        w.lastUpdatedAt,  # source_updated_at
        w.listingId,  # property_external_id
        _status(partner_status),
        partner_status,
        w.confirmationCode,
        w.source,  # channel
        w.checkIn,
        w.checkOut,
        w.checkInDateLocalized,  # check_in_date
        w.checkOutDateLocalized,  # check_out_date
        w.nightsCount,  # nights
        w.guestsCount,  # guests
        guest.fullName,  # guest_name
        guest.email,  # guest_email
        money.totalPaid,
        money.balanceDue,
        money.currency,
        w.createdAt,  # source_created_at
    )


def _status(partner_status: str) -> ReservationStatus:
    status = _STATUS.get(partner_status.lower())
    if status is None:
        drift.unknown_value("status", partner_status)  # kept verbatim in partner_status
        return ReservationStatus.OTHER
    return status


# Its own function rather than a branch in ``_reservation``: the legacy path stays as cheap.
def _reservation_v3(w: wire.ReservationV3) -> tuple[Any, ...]:
    partner_status = w.status or ""
    return (
        w.id,  # external_id
        w.lastUpdatedAt,  # source_updated_at
        w.listingId,  # property_external_id
        _status(partner_status),
        partner_status,
        w.confirmationCode,
        w.source,  # channel
        w.checkIn,
        w.checkOut,
        w.checkInDateLocalized,  # check_in_date
        w.checkOutDateLocalized,  # check_out_date
        w.nightsCount,  # nights
        w.guestsCount,  # guests
        None,  # guest_name: not embedded in v3
        None,  # guest_email
        None,  # total_paid: no financial data in v3
        None,  # balance_due
        None,  # currency
        w.createdAt,  # source_created_at
    )
