"""The Airbnb adapter on the simulator's records and on generated ones (hypothesis): every
mapped field says what the payload says, and a malformed record is a dead letter."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgspec
import orjson
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.connectors.airbnb import adapter
from syncd.connectors.airbnb.connector import listing_id, reservation_id, updated_at
from syncd.models import Property, Reservation, ReservationStatus, field_names
from syncd.simulator.profiles.airbnb.data import AirbnbAccount, code_of

P = field_names(Property)
R = field_names(Reservation)


def test_simulated_records_normalize() -> None:
    account = AirbnbAccount(seed=3, listings=20)
    listing = account.listing_object(4)
    values = dict(zip(P, adapter.listing_values(orjson.dumps(listing)), strict=True))
    assert values["external_id"] == str(listing["id"])
    assert values["source_updated_at"] == datetime.fromisoformat(listing["updated_at"])
    assert values["base_price"] == Decimal(listing["listing_price"])
    assert values["accommodates"] == listing["person_capacity"]
    assert values["country"] == listing["country_code"] and values["timezone"] == listing["time_zone_name"]
    booking = account.reservation_object(7)
    values = dict(zip(R, adapter.reservation_values(orjson.dumps(booking)), strict=True))
    assert values["external_id"] == code_of(7) == values["confirmation_code"]
    assert values["property_external_id"] == str(booking["listing_id"])
    assert values["check_in_date"] == date.fromisoformat(booking["start_date"])
    assert values["nights"] == booking["nights"]


STATUSES = st.sampled_from(
    ["accepted", "pending", "cancelled", "denied", "expired", "inquiry", "at_checkpoint"]
)
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda t: t.replace(microsecond=0, tzinfo=UTC)
)


@given(
    ident=st.integers(min_value=0, max_value=2**53),
    name=st.text(max_size=40),
    capacity=st.none() | st.integers(min_value=0, max_value=50),
    price=st.none() | st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False),
    at=TIMES,
    available=st.none() | st.booleans(),
)
def test_any_listing_maps_its_fields(
    ident: int, name: str, capacity: int | None, price: Decimal | None, at: datetime, available: bool | None
) -> None:
    raw: dict[str, Any] = {
        "id": ident,
        "name": name,
        "person_capacity": capacity,
        "updated_at": at.isoformat(),
    }
    if price is not None:
        raw["listing_price"] = str(price)
    if available is not None:
        raw["has_availability"] = available
    body = orjson.dumps(raw)
    values = dict(zip(P, adapter.listing_values(body), strict=True))
    assert values["external_id"] == str(ident) == listing_id(body)
    assert values["title"] == (name or "Untitled listing")
    assert values["accommodates"] == capacity and values["base_price"] == price
    assert values["source_updated_at"] == at == updated_at(body)
    assert values["listed"] is (available is not False)


@given(
    code=st.text(alphabet="ABCDEFGHJKMNPQRSTVWXYZ0123456789", min_size=1, max_size=12),
    status=STATUSES,
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)),
    nights=st.integers(min_value=0, max_value=60),
    first=st.none() | st.text(min_size=1, max_size=10),
    at=TIMES,
)
def test_any_reservation_maps_its_fields(
    code: str, status: str, start: date, nights: int, first: str | None, at: datetime
) -> None:
    end = date.fromordinal(start.toordinal() + nights)
    raw = {
        "confirmation_code": code, "listing_id": 12, "status": status, "start_date": str(start),
        "end_date": str(end), "guest": {"first_name": first}, "updated_at": at.isoformat(),
    }  # fmt: skip
    body = orjson.dumps(raw)
    values = dict(zip(R, adapter.reservation_values(body), strict=True))
    assert values["external_id"] == code == reservation_id(body)
    assert values["nights"] == nights  # from the dates when the partner sends none
    assert values["partner_status"] == status
    expected = {"accepted": "confirmed", "cancelled": "canceled", "denied": "declined"}.get(status, status)
    assert values["status"] == (
        ReservationStatus(expected) if status != "at_checkpoint" else ReservationStatus.OTHER
    )
    assert values["guest_name"] == first


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": "7", "updated_at": "2025-01-01T00:00:00Z"}',  # ids are integers
        b'{"id": 7}',  # no update time
        b'{"id": 7, "updated_at": "yesterday"}',
        b'{"id": 7, "updated_at": "2025-01-01T00:00:00Z", "lat": 91.0}',
    ],
)
def test_malformed_listings_are_dead_letters(raw: bytes) -> None:
    with pytest.raises((msgspec.ValidationError, ValueError, pydantic.ValidationError)):
        adapter.listing_values(raw)
