"""The ingest fast path (bounds read from the canonical models, pydantic only on a miss)
accepts exactly what the canonical pydantic models accept, with the same values."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from syncd.connectors.guesty import adapter
from syncd.models import Property, canonical_check
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
        return dict(normalize(raw))
    except RECORD_ERRORS:
        return "refused"


@settings(max_examples=600, deadline=None)
@given(listings)
def test_fast_listing_path_equals_the_canonical_model(record: dict[str, Any]) -> None:
    raw = orjson.dumps(record)
    fast = _outcome(adapter.listing_values, raw)
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
    fast = _outcome(adapter.reservation_values, raw)
    canonical = _outcome(lambda r: adapter.reservation_to_canonical(r).__dict__, raw)
    assert fast == canonical


def test_fast_path_skips_pydantic_only_for_in_bounds_records() -> None:
    check = canonical_check(Property)
    good = adapter.listing_values(
        orjson.dumps({"_id": "a1", "title": "T", "lastUpdatedAt": "2025-01-01T00:00:00Z"})
    )
    assert check(good)
    assert not check({**good, "latitude": 91.0})
    assert not check({**good, "accommodates": True})  # a bool is not an int here
    assert not check({**good, "base_price": Decimal("NaN")})
    assert not check({**good, "title": None})


def test_a_constraint_without_a_fast_check_is_refused_at_import() -> None:
    class Odd(BaseModel):
        n: int = Field(multiple_of=2)

    with pytest.raises(TypeError, match="no fast check"):
        canonical_check(Odd)
