"""Cloudbeds payloads -> canonical values: each documented quirk (partners.md section 3),
wire tolerance, and arbitrary payloads failing only as the pipeline's record errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.connectors.cloudbeds import PARTNER, adapter, wire
from syncd.errors import AuthFailed, PartnerRejected, RateLimited
from syncd.models import Reservation, ReservationStatus, field_names
from syncd.observability import drift
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.pipeline import RECORD_ERRORS

LISBON = adapter.Local(adapter.zone_of("Europe/Lisbon"), "EUR")
HOTELS = {"12": LISBON, "13": adapter.Local(adapter.zone_of("Asia/Tokyo"), "JPY")}
FIELDS = field_names(Reservation)
ITEM: dict[str, Any] = {
    "propertyID": "12",
    "reservationID": "4417",
    "dateCreated": "2026-05-30 23:30:00",
    "dateModified": "2026-06-01 10:00:00",
    "status": "not_confirmed",
    "guestName": "Ana Silva",
    "startDate": "2026-07-01",
    "endDate": "2026-07-04",
    "adults": "2",
    "children": "1",
    "balance": 120.5,
    "sourceName": "Booking.com",
    "thirdPartyIdentifier": "BDC-1",
}


def values(record: dict[str, Any], hotels: dict[str, adapter.Local] = HOTELS) -> dict[str, Any]:
    return dict(zip(FIELDS, adapter.reservation_values(orjson.dumps(record), hotels), strict=True))


def test_a_list_item_maps_to_canonical_values() -> None:
    v = values(ITEM)
    assert v["external_id"] == "4417" and v["property_external_id"] == "12"
    assert v["status"] is ReservationStatus.PENDING and v["partner_status"] == "not_confirmed"
    assert (v["check_in_date"], v["check_out_date"], v["nights"]) == (date(2026, 7, 1), date(2026, 7, 4), 3)
    assert v["guests"] == 3  # adults and children arrive as strings
    assert v["balance_due"] == Decimal("120.5") and v["currency"] == "EUR"  # the property's currency
    assert v["channel"] == "Booking.com" and v["confirmation_code"] == "BDC-1"


def test_property_local_times_become_utc_with_the_property_s_zone() -> None:
    assert values(ITEM)["source_updated_at"] == datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # Lisbon, summer
    assert values(ITEM)["source_created_at"] == datetime(2026, 5, 30, 22, 30, tzinfo=UTC)
    assert values(ITEM | {"propertyID": "13"})["source_updated_at"] == datetime(2026, 6, 1, 1, 0, tzinfo=UTC)


def test_date_modified_utc_of_the_rate_details_variant_wins() -> None:
    v = values(ITEM | {"dateModifiedUTC": "2026-06-01 09:00:07"})
    assert v["source_updated_at"] == datetime(2026, 6, 1, 9, 0, 7, tzinfo=UTC)


def test_a_repeated_wall_time_is_read_as_its_first_occurrence() -> None:
    autumn = values(ITEM | {"dateModified": "2026-10-25 01:30:00"})  # Lisbon goes back 02:00 -> 01:00
    assert autumn["source_updated_at"] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_integer_ids_of_older_keys_are_kept_as_text() -> None:
    v = values(ITEM | {"propertyID": 12, "reservationID": 4417})
    assert (v["external_id"], v["property_external_id"]) == ("4417", "12")


def test_get_reservation_s_shape_gives_the_same_values_as_the_list_s() -> None:
    rooms = [{"adults": "1", "children": "1"}, {"adults": "1", "children": "0"}]
    single = {k: v for k, v in ITEM.items() if k not in ("adults", "children", "sourceName")}
    single |= {"source": "Booking.com", "guestEmail": "a@b.invalid", "total": 300, "assigned": rooms}
    assert values(single) == values(ITEM)


@pytest.mark.parametrize(
    ("status", "canonical"),
    [
        ("confirmed", ReservationStatus.CONFIRMED),
        ("canceled", ReservationStatus.CANCELED),
        ("checked_in", ReservationStatus.CHECKED_IN),
        ("checked_out", ReservationStatus.CHECKED_OUT),
        ("no_show", ReservationStatus.OTHER),
        ("in_progress", ReservationStatus.OTHER),
    ],
)
def test_statuses(status: str, canonical: ReservationStatus) -> None:
    v = values(ITEM | {"status": status})
    assert (v["status"], v["partner_status"]) == (canonical, status)


def test_only_a_status_the_partner_does_not_document_is_reported_as_drift() -> None:
    metrics = Metrics()
    with drift.bind(drift.DriftSignal(metrics, get_logger()), "cloudbeds", "reservations"):
        for status in ("confirmed", "no_show", "in_progress", "not_confirmed", "teleported", "teleported"):
            values(ITEM | {"status": status})
    labels = {"partner": "cloudbeds", "resource": "reservations", "field": "status", "kind": "unknown_value"}
    assert metrics.registry.get_sample_value("syncd_schema_drift_total", labels) == 2


def test_a_reservation_of_an_unknown_property_or_zone_is_a_record_error() -> None:
    with pytest.raises(RECORD_ERRORS, match="not one of this account's"):
        values(ITEM | {"propertyID": "99"})
    with pytest.raises(RECORD_ERRORS, match="timezone is unknown"):
        values(ITEM, {"12": adapter.Local(adapter.zone_of("Mars/Olympus"), None)})


def test_hotels_take_currency_from_an_array_or_an_object() -> None:
    at = datetime(2026, 6, 1, tzinfo=UTC)
    listed = {"propertyID": "12", "propertyName": "Sol", "propertyTimezone": "Europe/Lisbon"}
    for currency in ([{"currencyCode": "EUR"}], {"currencyCode": "EUR"}):
        v = adapter.hotel_values(orjson.dumps(listed | {"propertyCurrency": currency}), at)
        assert (v[0], v[1], v[2], v[8], v[-2]) == ("12", at, "Sol", "Europe/Lisbon", "EUR")
    assert adapter.hotel_values(b'{"propertyID":7}', at)[2] == "Untitled property"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"success": True, "data": []}, None),
        (
            200,
            {"success": False, "message": "User who approved this connection is not active anymore"},
            AuthFailed,
        ),
        (200, {"success": False, "message": "Please specify propertyID"}, PartnerRejected),
        (200, {"success": False, "message": "Too many requests"}, RateLimited),
        (200, {"success": False}, PartnerRejected),
        (200, [1], None),
        (429, {"success": False, "message": "Rate limit exceeded"}, None),  # the status says it
    ],
)
def test_success_false_under_200_is_classified(status: int, body: Any, expected: type | None) -> None:
    found = PARTNER.classify_body and PARTNER.classify_body(status, body)
    assert type(found) is expected if expected else found is None


def test_not_found_under_200_is_the_rpc_s_404() -> None:
    found = PARTNER.classify_body and PARTNER.classify_body(
        200, {"success": False, "message": "Reservation not found"}
    )
    assert isinstance(found, PartnerRejected) and found.status == 404


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELD_VALUES = st.one_of(
    JSONISH,
    st.sampled_from(["2026-06-01 10:00:00", "0001-01-01 00:00:00", "9999-12-31 23:59:59", "2026-13-01", ""]),
    st.sampled_from(["12", "13", 12, "4417", "-3", "1e3", "NaN"]),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted({*ITEM, *wire.Reservation.__struct_fields__})), FIELD_VALUES))
def test_arbitrary_payloads_fail_only_as_record_errors(changes: dict[str, Any]) -> None:
    raw = json.dumps(ITEM | changes).encode()  # big integers and NaN too, as a partner may send
    try:
        adapter.reservation_values(raw, HOTELS)
    except RECORD_ERRORS:
        pass
    try:
        adapter.hotel_values(raw, datetime(2026, 6, 1, tzinfo=UTC))
    except RECORD_ERRORS:
        pass
