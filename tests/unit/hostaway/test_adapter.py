"""Hostaway records -> canonical values: the documented payloads and each documented quirk."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from syncd.connectors.hostaway import adapter
from syncd.models import Property, Reservation, ReservationStatus, field_names
from syncd.observability import drift
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.pipeline import RECORD_ERRORS

# The documentation's own examples (partners.md section 2, Hostaway/api reservationObject).
LISTING: dict[str, Any] = {
    "id": 40160, "name": "Luxury Marina View 2BR", "internalListingName": "MARINA-2BR-01",
    "address": "Marina Walk, Tower 5", "street": "Marina Walk", "city": "Dubai", "state": "Dubai",
    "zipcode": "00000", "country": "United Arab Emirates", "countryCode": "AE", "lat": 25.08, "lng": 55.14,
    "personCapacity": 4, "bedroomsNumber": 2, "bathroomsNumber": 2, "price": 650.00, "currencyCode": "AED",
    "timeZoneName": "Asia/Dubai", "checkInTimeStart": 15, "latestActivityOn": "2025-03-01 10:41:10",
    "listingImages": [{"url": "https://example.invalid/1.jpg", "caption": "", "sortOrder": 1}],
}  # fmt: skip
RESERVATION: dict[str, Any] = {
    "id": 13, "listingMapId": 40160, "channelId": 2001, "channelName": "airbnb",
    "reservationId": "10450-40160-thread313906227-9586017324", "hostawayReservationId": 13,
    "isProcessed": 1, "reservationDate": "2017-06-10 10:41:10", "guestName": "Andrew Peterson",
    "guestFirstName": "Andrew", "guestLastName": "Peterson", "guestEmail": "mail@test.com",
    "numberOfGuests": 1, "adults": 1, "children": None, "arrivalDate": "2017-07-15",
    "departureDate": "2017-07-16", "isDatesUnspecified": 0, "nights": 1, "phone": "+75125551212",
    "totalPrice": 267, "currency": "USD", "isPaid": 1, "status": "new", "updatedOn": "2017-06-11 08:00:01",
}  # fmt: skip


def listing(**changes: Any) -> dict[str, Any]:
    return {k: v for k, v in {**LISTING, **changes}.items() if v is not ...}


def reservation(**changes: Any) -> dict[str, Any]:
    return {k: v for k, v in {**RESERVATION, **changes}.items() if v is not ...}


def prop(record: dict[str, Any]) -> dict[str, Any]:
    return dict(zip(field_names(Property), adapter.listing_values(orjson.dumps(record)), strict=True))


def booking(record: dict[str, Any]) -> dict[str, Any]:
    return dict(zip(field_names(Reservation), adapter.reservation_values(orjson.dumps(record)), strict=True))


def test_a_documented_listing_maps_field_by_field() -> None:
    assert prop(LISTING) == {
        "external_id": "40160", "source_updated_at": datetime(2025, 3, 1, 10, 41, 10, tzinfo=UTC),
        "title": "Luxury Marina View 2BR", "nickname": "MARINA-2BR-01", "property_type": None,
        "accommodates": 4, "bedrooms": 2.0, "bathrooms": 2.0, "timezone": "Asia/Dubai",
        "street": "Marina Walk", "city": "Dubai", "state": "Dubai", "postal_code": "00000",
        "country": "United Arab Emirates", "latitude": 25.08, "longitude": 55.14, "active": True,
        "listed": True, "base_price": Decimal("650.0"), "currency": "AED", "photos_fingerprint": None,
    }  # fmt: skip


def test_a_documented_reservation_maps_field_by_field() -> None:
    assert booking(RESERVATION) == {
        "external_id": "13", "source_updated_at": datetime(2017, 6, 11, 8, 0, 1, tzinfo=UTC),
        "property_external_id": "40160", "status": ReservationStatus.CONFIRMED, "partner_status": "new",
        "confirmation_code": "10450-40160-thread313906227-9586017324", "channel": "airbnb",
        "check_in": None, "check_out": None, "check_in_date": date(2017, 7, 15),
        "check_out_date": date(2017, 7, 16), "nights": 1, "guests": 1, "guest_name": "Andrew Peterson",
        "guest_email": "mail@test.com", "total_paid": Decimal(267), "balance_due": Decimal("0.00"),
        "currency": "USD", "source_created_at": datetime(2017, 6, 10, 10, 41, 10, tzinfo=UTC),
    }  # fmt: skip


def test_times_without_an_offset_are_utc_and_an_explicit_offset_is_honoured() -> None:
    assert booking(reservation(updatedOn="2025-01-01 23:30:00+02:00"))["source_updated_at"] == datetime(
        2025, 1, 1, 21, 30, tzinfo=UTC
    )
    assert booking(RESERVATION)["source_updated_at"].tzinfo is UTC


@pytest.mark.parametrize(
    ("status", "canonical"),
    [
        ("new", ReservationStatus.CONFIRMED), ("modified", ReservationStatus.CONFIRMED),
        ("cancelled", ReservationStatus.CANCELED), ("ownerStay", ReservationStatus.OWNER_STAY),
        ("pending", ReservationStatus.PENDING), ("awaitingPayment", ReservationStatus.PENDING),
        ("declined", ReservationStatus.DECLINED), ("expired", ReservationStatus.EXPIRED),
        ("inquiry", ReservationStatus.INQUIRY), ("inquiryPreapproved", ReservationStatus.INQUIRY),
        ("inquiryDenied", ReservationStatus.DECLINED), ("inquiryTimedout", ReservationStatus.EXPIRED),
        ("inquiryNotPossible", ReservationStatus.DECLINED), ("confirmed", ReservationStatus.CONFIRMED),
        ("somethingNew", ReservationStatus.OTHER), (None, ReservationStatus.OTHER),
    ],
)  # fmt: skip
def test_statuses_map_with_uk_cancelled_and_unknown_kept_as_other(
    status: str | None, canonical: ReservationStatus
) -> None:
    mapped = booking(reservation(status=status))
    assert (mapped["status"], mapped["partner_status"]) == (canonical, status or "")


def test_dates_unspecified_means_the_yesterday_placeholders_are_dropped() -> None:
    mapped = booking(reservation(isDatesUnspecified=1, arrivalDate="2025-02-28", departureDate="2025-02-28"))
    assert (mapped["check_in_date"], mapped["check_out_date"]) == (None, None)
    assert booking(reservation(isDatesUnspecified=True))["check_in_date"] is None


def test_is_paid_0_or_1_decides_the_paid_amount() -> None:
    unpaid = booking(reservation(isPaid=0, totalPrice=120.5))
    assert (unpaid["total_paid"], unpaid["balance_due"]) == (None, None)
    paid = booking(reservation(isPaid=1, totalPrice=120.5))
    assert (paid["total_paid"], paid["balance_due"]) == (Decimal("120.5"), Decimal("0.00"))


def test_guest_name_falls_back_to_first_and_last_names() -> None:
    assert booking(reservation(guestName=None))["guest_name"] == "Andrew Peterson"
    assert booking(reservation(guestName="", guestFirstName="Zoë", guestLastName=None))["guest_name"] == "Zoë"
    assert booking(reservation(guestName=..., guestFirstName=..., guestLastName=...))["guest_name"] is None


def test_an_optional_time_that_is_not_one_is_absent_but_updated_on_is_required() -> None:
    assert booking(reservation(reservationDate="0000-00-00 00:00:00"))["source_created_at"] is None
    with pytest.raises(RECORD_ERRORS):
        booking(reservation(updatedOn="0000-00-00 00:00:00"))
    with pytest.raises(RECORD_ERRORS):
        booking(reservation(updatedOn=...))


def test_a_numeric_channel_reservation_id_becomes_text() -> None:
    assert booking(reservation(reservationId=987654))["confirmation_code"] == "987654"


def test_listing_title_falls_back_to_the_internal_name_then_a_placeholder() -> None:
    assert prop(listing(name=""))["title"] == "MARINA-2BR-01"
    assert prop(listing(name=None, internalListingName=None))["title"] == "Untitled listing"


def test_country_falls_back_to_the_iso_code() -> None:
    assert prop(listing(country=None))["country"] == "AE"


def test_absent_listing_fields_are_none_and_unknown_ones_are_ignored() -> None:
    bare = prop({"id": 7, "name": "x", "latestActivityOn": "2025-01-01 00:00:00", "surprise": {"a": [1]}})
    assert bare["external_id"] == "7" and bare["city"] is None and bare["base_price"] is None


@pytest.mark.parametrize(
    "change",
    [
        {"id": "40160"},  # ids are integers
        {"lat": 123.0},  # outside the canonical bounds
        {"currencyCode": "EURO"},
        {"price": -1},
        {"latestActivityOn": "yesterday"},
        {"personCapacity": 2.5},
    ],
)
def test_listings_the_canonical_model_refuses_are_record_errors(change: dict[str, Any]) -> None:
    with pytest.raises(RECORD_ERRORS):
        prop(listing(**change))


def test_a_reservation_with_an_id_out_of_type_is_a_record_error() -> None:
    with pytest.raises(RECORD_ERRORS):
        booking(reservation(listingMapId="40160"))


def test_only_a_status_the_adapter_does_not_know_is_reported_as_drift() -> None:
    metrics = Metrics()
    signal = drift.DriftSignal(metrics, get_logger())
    with drift.bind(signal, "hostaway", "reservations"):
        for status in ("new", "modified", "cancelled", "inquiryTimedout", "teleported", "teleported"):
            adapter.reservation_values(orjson.dumps(reservation(status=status)))
    labels = {"partner": "hostaway", "resource": "reservations", "field": "status", "kind": "unknown_value"}
    assert metrics.registry.get_sample_value("syncd_schema_drift_total", labels) == 2
