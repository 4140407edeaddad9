"""The ingest fast path (bounds read from the canonical models, pydantic only on a miss)
accepts exactly what the canonical pydantic models accept, with the same values."""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from syncd.connectors.guesty import adapter
from syncd.models import Property, Reservation, canonical_check, field_names
from syncd.pipeline import RECORD_ERRORS

TIMESTAMPS = st.sampled_from(
    [
        "2025-01-01T00:00:00.000Z",
        "2025-06-30T12:00:00+02:00",
        "2025-01-01T00:00:00",
        "2025-01-01",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:00:00-02:00",  # after year 9999 in UTC
    ]
)
TEXT = st.one_of(st.none(), st.text(max_size=4), st.text(min_size=498, max_size=503))
NUMBER = st.one_of(
    st.none(),
    st.integers(-5, 10_005),
    st.floats(-200, 10_005, allow_nan=False),
    st.sampled_from([-1e400, 1e400]),
)
PRICE = st.one_of(
    st.none(),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10, max_value=10**6),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "12.50", -0.0, "1E+400", 1e15, "999999999999.99"]),
)


def _listing(draw: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "_id": draw(st.sampled_from(["", "a" * 24, "b" * 201])),
        "lastUpdatedAt": draw(TIMESTAMPS),
    }
    for key in ("title", "nickname", "type", "timezone"):
        if draw(st.booleans()):
            record[key] = draw(TEXT)
    for key in ("accommodates", "bedrooms", "bathrooms"):
        if draw(st.booleans()):
            record[key] = draw(NUMBER)
    if draw(st.booleans()):
        record["address"] = {
            "city": draw(TEXT),
            "lat": draw(NUMBER),
            "lng": draw(NUMBER),
            "zipcode": draw(st.one_of(st.none(), st.text(max_size=3))),
        }
    if draw(st.booleans()):
        price = draw(PRICE)
        record["prices"] = {
            "basePrice": str(price) if isinstance(price, Decimal) else price,
            "currency": draw(st.one_of(st.none(), st.text(min_size=2, max_size=4))),
        }
    return record


listings = st.composite(_listing)()


def _outcome(normalize: Any, raw: bytes) -> Any:
    try:
        return normalize(raw)
    except RECORD_ERRORS:
        return "refused"


def _named(model: type[BaseModel], values: Any) -> Any:
    """Values in field order, named: a value in the wrong position shows as a wrong field."""
    return values if values == "refused" else dict(zip(field_names(model), values, strict=True))


@settings(max_examples=600, deadline=None)
@given(listings)
def test_fast_listing_path_equals_the_canonical_model(record: dict[str, Any]) -> None:
    raw = orjson.dumps(record)
    fast = _named(Property, _outcome(adapter.listing_values, raw))
    canonical = _outcome(lambda r: adapter.listing_to_property(r).__dict__, raw)
    assert fast == canonical


def _reservation(draw: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "_id": draw(st.sampled_from(["", "r" * 24])),
        "listingId": draw(st.sampled_from(["", "l" * 24, "x" * 201])),
        "lastUpdatedAt": draw(TIMESTAMPS),
        "status": draw(st.one_of(st.none(), st.sampled_from(["confirmed", "Canceled", "odd", ""]))),
    }
    for key in ("checkIn", "checkOut", "createdAt"):
        if draw(st.booleans()):
            record[key] = draw(TIMESTAMPS)
    for key in ("nightsCount", "guestsCount"):
        if draw(st.booleans()):
            record[key] = draw(st.one_of(st.none(), st.integers(-3, 10_003)))
    if draw(st.booleans()):
        record["money"] = {
            "totalPaid": draw(
                st.one_of(st.none(), st.sampled_from(["NaN", "10.00", "-5", "-1E+13", "1E+12"]))
            ),
            "currency": draw(st.one_of(st.none(), st.text(min_size=2, max_size=4))),
        }
    return record


@settings(max_examples=400, deadline=None)
@given(st.composite(_reservation)())
def test_fast_reservation_path_equals_the_canonical_model(record: dict[str, Any]) -> None:
    raw = orjson.dumps(record)
    fast = _named(Reservation, _outcome(adapter.reservation_values, raw))
    canonical = _outcome(lambda r: adapter.reservation_to_canonical(r).__dict__, raw)
    assert fast == canonical


def test_fast_path_skips_pydantic_only_for_in_bounds_records() -> None:
    check = canonical_check(Property)
    good = adapter.listing_values(
        orjson.dumps({"_id": "a1", "title": "T", "lastUpdatedAt": "2025-01-01T00:00:00Z"})
    )

    def but(name: str, value: Any) -> tuple[Any, ...]:
        return tuple(value if n == name else v for n, v in zip(field_names(Property), good, strict=True))

    assert check(good)
    assert not check(but("latitude", 91.0))
    assert not check(but("accommodates", True))  # a bool is not an int here
    assert not check(but("base_price", Decimal("NaN")))
    assert not check(but("title", None))
    assert not check(good[:-1])  # a value missing: positions would be off


def test_the_adapter_puts_each_wire_field_in_its_canonical_position() -> None:
    """Every mapped field at once, each with a value no other field has: a tuple built in
    the wrong order cannot pass (both paths share ``_listing``, so only names prove it)."""
    raw = orjson.dumps(
        {
            "_id": "L1", "lastUpdatedAt": "2025-01-02T03:04:05.678Z", "title": "Title",
            "nickname": "Nick", "type": "APARTMENT", "accommodates": 4, "bedrooms": 2.5,
            "bathrooms": 1.5, "timezone": "Europe/Paris", "active": False, "listed": True,
            "address": {"street": "1 Rue", "city": "Paris", "state": "IDF", "zipcode": "75001",
                        "country": "France", "lat": 48.8, "lng": 2.3},
            "prices": {"basePrice": 120.5, "currency": "EUR"},
            "pictures": [{"_id": "P1", "original": "https://img/p1.jpg", "caption": "Pool"}],
        }
    )  # fmt: skip
    values = dict(zip(field_names(Property), adapter.listing_values(raw), strict=True))
    pictures = b'[{"_id":"P1","original":"https://img/p1.jpg","caption":"Pool"}]'
    fingerprint = zlib.crc32(pictures) | len(pictures) << 32
    assert values == {
        "external_id": "L1", "source_updated_at": datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "title": "Title", "nickname": "Nick", "property_type": "APARTMENT", "accommodates": 4,
        "bedrooms": 2.5, "bathrooms": 1.5, "timezone": "Europe/Paris", "street": "1 Rue",
        "city": "Paris", "state": "IDF", "postal_code": "75001", "country": "France",
        "latitude": 48.8, "longitude": 2.3, "active": False, "listed": True,
        "base_price": Decimal("120.5"), "currency": "EUR", "photos_fingerprint": fingerprint,
    }  # fmt: skip


def test_a_constraint_without_a_fast_check_is_refused_at_import() -> None:
    class Odd(BaseModel):
        n: int = Field(multiple_of=2)

    with pytest.raises(TypeError, match="no fast check"):
        canonical_check(Odd)


def test_the_adapter_puts_each_reservation_field_in_its_canonical_position() -> None:
    raw = orjson.dumps(
        {
            "_id": "R1", "lastUpdatedAt": "2025-01-02T03:04:05Z", "listingId": "L1",
            "status": "Confirmed", "confirmationCode": "GY-1", "source": "airbnb2",
            "checkIn": "2025-02-01T15:00:00Z", "checkOut": "2025-02-03T11:00:00Z",
            "checkInDateLocalized": "2025-02-01", "checkOutDateLocalized": "2025-02-03",
            "nightsCount": 2, "guestsCount": 3, "guest": {"fullName": "Ann", "email": "a@x.test"},
            "money": {"totalPaid": 200, "balanceDue": 50, "currency": "USD"},
            "createdAt": "2024-12-01T00:00:00Z",
        }
    )  # fmt: skip
    values = dict(zip(field_names(Reservation), adapter.reservation_values(raw), strict=True))
    assert values == {
        "external_id": "R1", "source_updated_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        "property_external_id": "L1", "status": "confirmed", "partner_status": "Confirmed",
        "confirmation_code": "GY-1", "channel": "airbnb2",
        "check_in": datetime(2025, 2, 1, 15, tzinfo=UTC), "check_out": datetime(2025, 2, 3, 11, tzinfo=UTC),
        "check_in_date": date(2025, 2, 1), "check_out_date": date(2025, 2, 3), "nights": 2, "guests": 3,
        "guest_name": "Ann", "guest_email": "a@x.test", "total_paid": Decimal(200),
        "balance_due": Decimal(50), "currency": "USD", "source_created_at": datetime(2024, 12, 1, tzinfo=UTC),
    }  # fmt: skip
