"""Guesty payloads as they arrive on the wire (partners.md section 1), decoded with msgspec.

A page is split into one ``msgspec.Raw`` slice per record without building dicts; each
slice is both the record's ``raw`` column (the partner's exact bytes, no re-serialisation)
and the input of a typed decode that materialises only the fields the adapter maps.
Unknown fields are skipped, absent ones default: Guesty omits much of a listing.
The structs hold only scalars and each other, never a cycle, so they are kept out of the
cyclic collector (``gc=False``: untracked, they make decoding a listing a little cheaper).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec


class Page(msgspec.Struct, gc=False):
    """``{results, count, limit, skip}`` of the listing endpoints."""

    results: list[msgspec.Raw]
    # Informational (it only decides whether to ask for the next page early), so taken
    # as sent: a count sent as "1000" or 1000.0 must not make every page undecodable.
    count: Any = None


class Head(msgspec.Struct, gc=False):
    """Just enough of any record to paginate: its id and update timestamp (unchecked)."""

    id: Any = msgspec.field(default=None, name="_id")
    lastUpdatedAt: Any = None  # camelCase: Guesty's field names, verbatim


class Address(msgspec.Struct, gc=False):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zipcode: str | None = None
    country: str | None = None
    lat: float | None = None
    lng: float | None = None


class Prices(msgspec.Struct, gc=False):
    basePrice: Decimal | None = None
    currency: str | None = None


class Listing(msgspec.Struct, gc=False):
    id: str = msgspec.field(name="_id")
    lastUpdatedAt: datetime
    title: str | None = None
    nickname: str | None = None
    type: str | None = None
    accommodates: int | None = None
    bedrooms: float | None = None
    bathrooms: float | None = None
    timezone: str | None = None
    address: Address | None = None
    prices: Prices | None = None
    active: bool = True
    listed: bool = True
    # The pictures array as sent, not decoded: only its digest is read from a list page
    # (``adapter.photos_fingerprint``); the photos themselves come with ``ListingPictures``.
    pictures: msgspec.Raw = msgspec.Raw(b"")


class Picture(msgspec.Struct, gc=False):
    """One entry of a listing's ``pictures[]`` (partners.md: docs/listing-photos).
    [assumption] its fields: ``_id``, ``original`` (the full-size URL), ``thumbnail`` and
    ``caption``, as community code reads them; partners.md names only the array."""

    id: str = msgspec.field(name="_id")
    original: str
    thumbnail: str | None = None
    caption: str | None = None


class ListingPictures(msgspec.Struct, gc=False):
    """``GET /listings/{id}?fields=pictures lastUpdatedAt``: the listing's pictures, each kept
    as its raw bytes (a photo row's ``raw``)."""

    id: str = msgspec.field(name="_id")
    lastUpdatedAt: datetime
    pictures: list[msgspec.Raw] = msgspec.field(default_factory=list)


class Guest(msgspec.Struct, gc=False):
    fullName: str | None = None
    email: str | None = None


class Money(msgspec.Struct, gc=False):
    totalPaid: Decimal | None = None
    balanceDue: Decimal | None = None
    currency: str | None = None


class ReservationV3(msgspec.Struct, gc=False):
    """A reservations-v3 record: the legacy fields less the embedded ``guest`` and ``money``
    (v3 "no longer embeds guest or financial data", partners.md). ASSUMPTION (not
    documented): the other fields keep their legacy names, ``lastUpdatedAt`` included."""

    id: str = msgspec.field(name="_id")
    lastUpdatedAt: datetime
    listingId: str
    status: str | None = None
    confirmationCode: str | None = None
    source: str | None = None
    checkIn: datetime | None = None
    checkOut: datetime | None = None
    checkInDateLocalized: date | None = None
    checkOutDateLocalized: date | None = None
    nightsCount: int | None = None
    guestsCount: int | None = None
    createdAt: datetime | None = None


class Reservation(ReservationV3, gc=False):
    """A legacy reservation: v3's fields plus the embedded guest and money."""

    guest: Guest | None = None
    money: Money | None = None


class Pagination(msgspec.Struct, gc=False):
    # Taken as sent: a malformed flag falls back to "a full page means more" (the walk).
    hasMore: Any = None


class SearchPage(msgspec.Struct, gc=False):
    """A reservations-v3 search response: the documented ``pagination.hasMore``.
    ASSUMPTION (not documented): the records sit under ``results``, as on the list endpoints."""

    results: list[msgspec.Raw]
    pagination: Pagination | None = None


class ListingPage(msgspec.Struct, gc=False):
    """A listing page decoded typed in one call (see ``connector._typed_listed``)."""

    results: list[Listing]


class ReservationPage(msgspec.Struct, gc=False):
    results: list[Reservation]


class ReservationV3Page(msgspec.Struct, gc=False):
    results: list[ReservationV3]


PAGE = msgspec.json.Decoder(Page)
LISTING_PAGE = msgspec.json.Decoder(ListingPage)
RESERVATION_PAGE = msgspec.json.Decoder(ReservationPage)
HEAD = msgspec.json.Decoder(Head)
LISTING = msgspec.json.Decoder(Listing)
RESERVATION = msgspec.json.Decoder(Reservation)
SEARCH_PAGE = msgspec.json.Decoder(SearchPage)
RESERVATION_V3_PAGE = msgspec.json.Decoder(ReservationV3Page)
RESERVATION_V3 = msgspec.json.Decoder(ReservationV3)
PICTURE = msgspec.json.Decoder(Picture)
LISTING_PICTURES = msgspec.json.Decoder(ListingPictures)
