"""Guesty payloads -> canonical models. Pure; every rule here is a documented quirk.

* ``title`` may be missing: fall back to ``nickname`` (partners.md), then a placeholder.
* ``address`` and most other fields may be absent.
* status spelling is US (``canceled``); unknown statuses are kept as ``other``.
"""

from __future__ import annotations

from typing import Any

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
_EMPTY: dict[str, Any] = {}


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


def listing_to_property(raw: dict[str, Any]) -> Property:
    address = _obj(raw.get("address"))
    prices = _obj(raw.get("prices"))
    nickname = raw.get("nickname")
    return Property.model_validate(
        {
            "external_id": raw.get("_id"),
            "source_updated_at": raw.get("lastUpdatedAt"),
            "title": raw.get("title") or nickname or "Untitled listing",
            "nickname": nickname,
            "property_type": raw.get("type"),
            "accommodates": raw.get("accommodates"),
            "bedrooms": raw.get("bedrooms"),
            "bathrooms": raw.get("bathrooms"),
            "timezone": raw.get("timezone"),
            "street": address.get("street"),
            "city": address.get("city"),
            "state": address.get("state"),
            "postal_code": address.get("zipcode"),
            "country": address.get("country"),
            "latitude": address.get("lat"),
            "longitude": address.get("lng"),
            "active": raw.get("active", True),
            "listed": raw.get("listed", True),
            "base_price": prices.get("basePrice"),
            "currency": prices.get("currency"),
        }
    )


def reservation_to_canonical(raw: dict[str, Any]) -> Reservation:
    guest = _obj(raw.get("guest"))
    money = _obj(raw.get("money"))
    partner_status = str(raw.get("status") or "")
    return Reservation.model_validate(
        {
            "external_id": raw.get("_id"),
            "source_updated_at": raw.get("lastUpdatedAt"),
            "property_external_id": raw.get("listingId"),
            "status": _STATUS.get(partner_status.lower(), ReservationStatus.OTHER),
            "partner_status": partner_status,
            "confirmation_code": raw.get("confirmationCode"),
            "channel": raw.get("source"),
            "check_in": raw.get("checkIn"),
            "check_out": raw.get("checkOut"),
            "check_in_date": raw.get("checkInDateLocalized"),
            "check_out_date": raw.get("checkOutDateLocalized"),
            "nights": raw.get("nightsCount"),
            "guests": raw.get("guestsCount"),
            "guest_name": guest.get("fullName"),
            "guest_email": guest.get("email"),
            "total_paid": money.get("totalPaid"),
            "balance_due": money.get("balanceDue"),
            "currency": money.get("currency"),
            "source_created_at": raw.get("createdAt"),
        }
    )
