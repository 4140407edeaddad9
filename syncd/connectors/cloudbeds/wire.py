"""Cloudbeds payloads as they arrive (partners.md section 3), decoded with msgspec.

Tolerant where the API is loose: ids are strings holding numbers, but older keys and the
webhooks send integers; ``adults``/``children`` are strings; ``propertyCurrency`` is an
array in ``getHotels`` and an object in ``getHotelDetails``. Datetimes stay text: they are
property-local and mean an instant only with the property's timezone (``adapter``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import msgspec

Count = str | int | None


class Listed(msgspec.Struct, gc=False):
    """A list method's ``{success, data, count, total}``, each record its exact bytes."""

    success: Any = None
    data: list[msgspec.Raw] = []
    total: Any = None


class Single(msgspec.Struct, gc=False):
    data: msgspec.Raw = msgspec.Raw(b"null")


class Head(msgspec.Struct, gc=False):
    """Just enough of any record to name it and place it (unchecked)."""

    reservationID: Any = None
    propertyID: Any = None
    dateModified: Any = None


class Currency(msgspec.Struct, gc=False):
    currencyCode: str | None = None


class Hotel(msgspec.Struct, gc=False):
    """An item of ``getHotels``."""

    propertyID: str | int
    propertyName: str | None = None
    propertyTimezone: str | None = None
    propertyCurrency: list[Currency] | Currency | None = None


class Room(msgspec.Struct, gc=False):
    """A room of ``getReservation``'s ``assigned``/``unassigned`` lists."""

    adults: Count = None
    children: Count = None


class Reservation(msgspec.Struct, gc=False):
    """A ``getReservations`` item or ``getReservation``'s ``data`` (the fields of both)."""

    reservationID: str | int
    propertyID: str | int
    dateModified: str
    dateModifiedUTC: str | None = None  # getReservationsWithRateDetails only
    dateCreated: str | None = None
    status: str | None = None
    guestName: str | None = None
    startDate: date | None = None
    endDate: date | None = None
    adults: Count = None
    children: Count = None
    balance: Decimal | None = None
    sourceName: str | None = None
    source: str | None = None  # getReservation's name for sourceName
    thirdPartyIdentifier: str | None = None
    assigned: list[Room] | None = None
    unassigned: list[Room] | None = None


LISTED = msgspec.json.Decoder(Listed)
SINGLE = msgspec.json.Decoder(Single)
HEAD = msgspec.json.Decoder(Head)
HOTEL = msgspec.json.Decoder(Hotel)
RESERVATION = msgspec.json.Decoder(Reservation)
