"""Airbnb payloads as they arrive, decoded with msgspec (partners.md section 4).

A single record comes wrapped as ``{listing: {...}, metadata: {}}`` [C];
[assumption] a list as ``{listings: [...], metadata: {...}}`` (``reservations`` likewise),
records kept as ``msgspec.Raw`` slices (stored verbatim: the inner object, as a single get
returns it too). Listing ids are integers [C]; [assumption] a reservation is named by its
``confirmation_code`` (the code guests and hosts see), times are ISO 8601 UTC
(``updated_at``), dates ``YYYY-MM-DD``, money a decimal string.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import msgspec


class Listed(msgspec.Struct, gc=False):
    listings: list[msgspec.Raw] | None = None
    reservations: list[msgspec.Raw] | None = None


class Single(msgspec.Struct, gc=False):
    # (``msgspec.Raw`` takes no union: an absent member stays the empty slice.)
    listing: msgspec.Raw = msgspec.Raw(b"")
    reservation: msgspec.Raw = msgspec.Raw(b"")


class Head(msgspec.Struct, gc=False):
    """Just enough of any record to name and place it (unchecked)."""

    id: Any = None
    confirmation_code: Any = None
    updated_at: Any = None


class Listing(msgspec.Struct, gc=False):
    id: int
    updated_at: str
    name: str | None = None
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zipcode: str | None = None
    country_code: str | None = None
    lat: float | None = None
    lng: float | None = None
    person_capacity: int | None = None
    bedrooms: float | None = None
    bathrooms: float | None = None
    listing_price: Decimal | None = None
    listing_currency: str | None = None
    check_in_time: int | None = None
    property_type_category: str | None = None
    room_type_category: str | None = None
    time_zone_name: str | None = None  # [assumption]
    has_availability: bool | None = None  # [assumption] listed and bookable


class Guest(msgspec.Struct, gc=False):
    first_name: str | None = None
    last_name: str | None = None


class Reservation(msgspec.Struct, gc=False):
    confirmation_code: str
    listing_id: int
    updated_at: str
    status: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    nights: int | None = None
    number_of_guests: int | None = None
    guest: Guest | None = None
    expected_payout_amount: Decimal | None = None
    currency: str | None = None
    created_at: str | None = None


LISTED = msgspec.json.Decoder(Listed)
SINGLE = msgspec.json.Decoder(Single)
HEAD = msgspec.json.Decoder(Head)
LISTING = msgspec.json.Decoder(Listing)
RESERVATION = msgspec.json.Decoder(Reservation)
