"""Hostaway payloads as they arrive on the wire (partners.md section 2), decoded with msgspec.

Every response is wrapped in ``{status, result, ...}``; ``result`` is a list of records on
list endpoints, one record on single gets and an error message when ``status`` is
``"fail"``. Records are kept as ``msgspec.Raw`` slices (stored verbatim) and decoded into
the typed structs below only for the fields the adapter maps. Ids are integers; times are
strings (``YYYY-MM-DD HH:MM:SS``, UTC) parsed by the adapter; booleans are 0/1 integers,
accepted as JSON booleans too.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import msgspec


class Envelope(msgspec.Struct, gc=False):
    """Only ``result`` is read: ``status`` is checked from the parsed body by the client
    (``PARTNER.classify_body``) and the paging fields are informational."""

    result: msgspec.Raw = msgspec.Raw(b"null")


class Head(msgspec.Struct, gc=False):
    """Just enough of any record to paginate: its id and timestamps (unchecked)."""

    id: Any = None
    updatedOn: Any = None  # camelCase: Hostaway's names, verbatim
    latestActivityOn: Any = None


class Listing(msgspec.Struct, gc=False):
    id: int
    latestActivityOn: str
    name: str | None = None
    internalListingName: str | None = None
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zipcode: str | None = None
    country: str | None = None
    countryCode: str | None = None
    lat: float | None = None
    lng: float | None = None
    personCapacity: int | None = None
    bedroomsNumber: float | None = None
    bathroomsNumber: float | None = None
    price: Decimal | None = None
    currencyCode: str | None = None
    timeZoneName: str | None = None


class Reservation(msgspec.Struct, gc=False):
    id: int
    listingMapId: int
    updatedOn: str
    status: str | None = None
    channelName: str | None = None
    reservationId: str | int | None = None  # the channel's own id
    arrivalDate: date | None = None
    departureDate: date | None = None
    isDatesUnspecified: bool | int | None = None
    reservationDate: str | None = None
    guestName: str | None = None
    guestFirstName: str | None = None
    guestLastName: str | None = None
    guestEmail: str | None = None
    numberOfGuests: int | None = None
    nights: int | None = None
    totalPrice: Decimal | None = None
    currency: str | None = None
    isPaid: bool | int | None = None


ENVELOPE = msgspec.json.Decoder(Envelope)
RECORDS = msgspec.json.Decoder(list[msgspec.Raw])
HEAD = msgspec.json.Decoder(Head)
LISTING = msgspec.json.Decoder(Listing)
RESERVATION = msgspec.json.Decoder(Reservation)
