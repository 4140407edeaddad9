"""Guesty records (raw bytes) -> canonical models. Pure; every rule here is a documented quirk.

* ``title`` may be missing: fall back to ``nickname`` (partners.md), then a placeholder.
* ``address`` and most other fields may be absent.
* status spelling is US (``canceled``); unknown statuses are kept as ``other``.

Type errors surface as ``msgspec.ValidationError`` (wire) or pydantic ``ValidationError``
(canonical constraints); the pipeline turns either into a dead letter.

``listing_values``/``reservation_values`` are the ingest path: the canonical values,
with pydantic consulted only for a record outside the canonical bounds (``models.
canonical_check``). ``listing_to_property``/``reservation_to_canonical`` build the models.
"""

from __future__ import annotations

from typing import Any

from syncd.connectors.guesty import wire
from syncd.models import Property, Reservation, ReservationStatus, canonical_check

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
_PROPERTY_OK = canonical_check(Property)
_RESERVATION_OK = canonical_check(Reservation)


def listing_values(raw: bytes) -> dict[str, Any]:
    values = _listing(wire.LISTING.decode(raw))
    return values if _PROPERTY_OK(values) else Property.model_validate(values).__dict__


def reservation_values(raw: bytes) -> dict[str, Any]:
    values = _reservation(wire.RESERVATION.decode(raw))
    return values if _RESERVATION_OK(values) else Reservation.model_validate(values).__dict__


def listing_to_property(raw: bytes) -> Property:
    return Property.model_validate(_listing(wire.LISTING.decode(raw)))


def reservation_to_canonical(raw: bytes) -> Reservation:
    return Reservation.model_validate(_reservation(wire.RESERVATION.decode(raw)))


def _listing(w: wire.Listing) -> dict[str, Any]:
    address = w.address or _NO_ADDRESS
    prices = w.prices or _NO_PRICES
    return {
        "external_id": w.id,
        "source_updated_at": w.lastUpdatedAt,
        "title": w.title or w.nickname or "Untitled listing",
        "nickname": w.nickname,
        "property_type": w.type,
        "accommodates": w.accommodates,
        "bedrooms": w.bedrooms,
        "bathrooms": w.bathrooms,
        "timezone": w.timezone,
        "street": address.street,
        "city": address.city,
        "state": address.state,
        "postal_code": address.zipcode,
        "country": address.country,
        "latitude": address.lat,
        "longitude": address.lng,
        "active": w.active,
        "listed": w.listed,
        "base_price": prices.basePrice,
        "currency": prices.currency,
    }


def _reservation(w: wire.Reservation) -> dict[str, Any]:
    guest = w.guest or _NO_GUEST
    money = w.money or _NO_MONEY
    partner_status = w.status or ""
    return {
        "external_id": w.id,
        "source_updated_at": w.lastUpdatedAt,
        "property_external_id": w.listingId,
        "status": _STATUS.get(partner_status.lower(), ReservationStatus.OTHER),
        "partner_status": partner_status,
        "confirmation_code": w.confirmationCode,
        "channel": w.source,
        "check_in": w.checkIn,
        "check_out": w.checkOut,
        "check_in_date": w.checkInDateLocalized,
        "check_out_date": w.checkOutDateLocalized,
        "nights": w.nightsCount,
        "guests": w.guestsCount,
        "guest_name": guest.fullName,
        "guest_email": guest.email,
        "total_paid": money.totalPaid,
        "balance_due": money.balanceDue,
        "currency": money.currency,
        "source_created_at": w.createdAt,
    }
