"""Guesty records (raw bytes) -> canonical models. Pure; every rule here is a documented quirk.

* ``title`` may be missing: fall back to ``nickname`` (partners.md), then a placeholder.
* ``address`` and most other fields may be absent.
* status spelling is US (``canceled``); unknown statuses are kept as ``other``.

Type errors surface as ``msgspec.ValidationError`` (wire) or pydantic ``ValidationError``
(canonical constraints); the pipeline turns either into a dead letter.
"""

from __future__ import annotations

from syncd.connectors.guesty import wire
from syncd.models import Property, Reservation, ReservationStatus

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


def listing_to_property(raw: bytes) -> Property:
    w = wire.LISTING.decode(raw)
    address = w.address or _NO_ADDRESS
    prices = w.prices or _NO_PRICES
    return Property.model_validate(
        {
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
    )


def reservation_to_canonical(raw: bytes) -> Reservation:
    w = wire.RESERVATION.decode(raw)
    guest = w.guest or _NO_GUEST
    money = w.money or _NO_MONEY
    partner_status = w.status or ""
    return Reservation.model_validate(
        {
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
    )
