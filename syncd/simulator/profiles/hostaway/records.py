"""Hostaway listings and reservations as pure functions of (seed, index, version, times).

Each record is a tuple of plain values (``ListingFields``, ``ReservationFields``) rendered
as Hostaway's JSON with one ``bytes %`` (text pieces are JSON-encoded once, at import),
with the documented quirks: integer ids, ``YYYY-MM-DD HH:MM:SS`` UTC times, 0/1 booleans,
UK ``cancelled``, placeholder dates under ``isDatesUnspecified=1``, names that may be empty.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import orjson

from syncd.simulator import calendar
from syncd.simulator.encoding import format_date

T0_S = 1_735_689_600  # 2025-01-01 00:00:00 UTC: every base time derives from it
LISTING_ID0 = 40_000
RESERVATION_ID0 = 1_000_000
_DAY = 86_400


def _j(value: object) -> bytes:
    return orjson.dumps(value)


# city | state | country ("": only the code is sent) | code | zipcode | tz | currency | lat | lng | street
_PLACE_TABLE = """
Dubai|Dubai|United Arab Emirates|AE|00000|Asia/Dubai|AED|25.08|55.14|Marina Walk
Lisboa|Lisboa|Portugal|PT|1100-148|Europe/Lisbon|EUR|38.7223|-9.1393|Rua Augusta
Austin|TX|United States|US|78701|America/Chicago|USD|30.2672|-97.7431|Congress Ave
Kraków|Małopolskie|Poland|PL|31-042|Europe/Warsaw|PLN|50.0647|19.945|Floriańska
Tōkyō|東京都||JP|150-0002|Asia/Tokyo|JPY|35.6762|139.6503|Omotesandō
Reykjavík|Höfuðborg|Iceland|IS|101|Atlantic/Reykjavik|ISK|64.1466|-21.9426|Laugavegur
Cape Town|Western Cape|South Africa|ZA|8001|Africa/Johannesburg|ZAR|-33.92|18.42|Long St
Miami Beach|FL|United States|US|33139|America/New_York|USD|25.7907|-80.13|Ocean Drive
"""


def _place(line: str) -> tuple[Any, ...]:
    """JSON pieces (0-9) for rendering, then the plain texts (10-14) for the truth."""
    c, st, co, cc, z, tz, cur, lat, lng, street = line.split("|")
    country = co or None
    return (_j(c), _j(st), _j(country), cc.encode(), _j(z), tz.encode(), cur.encode(), float(lat),
            float(lng), _j(street), c, st, country, z, street)  # fmt: skip


_PLACES = tuple(_place(line) for line in _PLACE_TABLE.strip().splitlines())
_ADJECTIVES = ("Sunny", "Cozy", "Modern", "Très chic", "Quiet", 'The "Blue"', "Gemütlich", "Bright")
_KINDS = ("Loft", "Studio", "Villa", "Cabin \\ Annex", "Penthouse", "Casa Açaí", "Condo", "Suite 🌊")
_GUESTS = tuple(
    (_j(first), _j(last), _j(f"{first} {last}"), _j(email), f"{first} {last}", email)
    for first, last, email in (
        ("Andrew", "Peterson", "andrew@example.com"), ("Zoë", "Ångström", "zoe@example.org"),
        ("Seán", "O'Brien", None), ("李", "雷", "li.lei@example.cn"),
        ("María José", "Núñez", "mj@example.es"), ("Ngozi", "Okafor", None),
        ("Ólafur", "Jónsson", "olafur@example.is"), ("Amélie", 'D"Arc', "amelie@example.fr"),
    )
)  # fmt: skip
_CHANNELS = ((2000, b"direct"), (2005, b"airbnbOfficial"), (2002, b"bookingcom"), (2013, b"vrboical"))
# Hostaway's statuses, weighted towards live bookings.
_STATUSES = ("new",) * 6 + ("modified",) * 3 + (
    "cancelled", "ownerStay", "pending", "awaitingPayment", "inquiry", "inquiryPreapproved",
    "declined", "expired", "inquiryTimedout", "inquiryDenied", "inquiryNotPossible",
)  # fmt: skip


# Records share times and dates in groups: most lookups on a page are cache hits.
_date = functools.lru_cache(maxsize=65_536)(lambda day: format_date(day).encode())


@functools.lru_cache(maxsize=65_536)
def hostaway_time(seconds: int) -> bytes:
    """Epoch seconds -> ``b"YYYY-MM-DD HH:MM:SS"``."""
    day, rest = divmod(seconds, _DAY)
    return b"%s %02d:%02d:%02d" % (_date(day), rest // 3600, rest // 60 % 60, rest % 60)


class ListingFields(NamedTuple):
    id: int
    h: int  # the listing's hash: picks its text and numbers
    version: int
    activity_s: int


class ReservationFields(NamedTuple):
    id: int
    h: int
    version: int
    updated_s: int
    created_s: int
    listing: ListingFields


def _name(f: ListingFields) -> tuple[str, str | None]:
    """(name, internalListingName): a name may be empty and an internal name absent."""
    h = f.h
    internal = None if h % 17 == 0 else f"HA-{f.id}-{(h >> 20) % 1000:03d}"
    name = "" if h % 13 == 0 else f"{_ADJECTIVES[(h >> 3) % 8]} {_KINDS[(h >> 6) % 8]} v{f.version}"
    return name, internal


def _price_cents(f: ListingFields) -> int:
    return 4_000 + (f.h >> 24) % 40_000 + 500 * (f.version - 1)


def nightly(f: ListingFields) -> tuple[int, int]:
    """The listing's calendar terms: its price in cents and its minimum stay."""
    return _price_cents(f), 1 + (f.h >> 7) % 3


_IMAGES = tuple(
    b",".join(
        b'{"url":"https://img.hostaway.sim/%%d/%d.jpg","caption":%%s,"sortOrder":%d}' % (k, k)
        for k in range(n)
    )
    for n in (1, 2, 3)
)


def render_listing(f: ListingFields) -> bytes:
    h = f.h
    place = _PLACES[(h >> 9) % len(_PLACES)]
    name, internal = _name(f)
    cents = _price_cents(f)
    caption = _j(name)
    images = _IMAGES[h % 3] % ((f.id, caption) * (1 + h % 3))
    return (
        b'{"id":%d,"propertyTypeId":1,"name":%s,"internalListingName":%s,"address":%s,"street":%s,'
        b'"city":%s,"state":%s,"zipcode":%s,"country":%s,"countryCode":"%s","lat":%r,"lng":%r,'
        b'"personCapacity":%d,"bedroomsNumber":%d,"bathroomsNumber":%s,"price":%d.%02d,'
        b'"currencyCode":"%s","timeZoneName":"%s","checkInTimeStart":15,"checkOutTime":11,'
        b'"instantBookable":%d,"latestActivityOn":"%s","listingImages":[%s]}'
        % (f.id, caption, _j(internal), _j(f"{place[14]}, {place[10]}"), place[9], place[0], place[1],
           place[4], place[2], place[3], place[7], place[8], 2 + h % 7, 1 + (h >> 4) % 4,
           b"1.5" if h & 0x100 else b"1", cents // 100, cents % 100, place[6], place[5], (h >> 5) & 1,
           hostaway_time(f.activity_s), images)
    )  # fmt: skip


def _reservation_parts(f: ReservationFields) -> tuple[str, int, int, int, int, bool, bool]:
    """(status, guests, arrival day, nights, total cents, paid, dates unspecified)."""
    h, v = f.h, f.version
    status = _STATUSES[(h >> 8) % len(_STATUSES)] if v == 1 else ("modified", "cancelled")[(h >> v) & 1]
    placeholder = status.startswith("inquiry") and h & 0x10 == 0
    nights = 1 + (h >> 16) % 9
    arrival = f.created_s // _DAY - 1 if placeholder else f.created_s // _DAY + 3 + (h >> 20) % 120
    cents = nights * _price_cents(f.listing) + 1_500
    paid = status in ("new", "modified") and h & 0x20 != 0
    return status, 1 + (h >> 12) % 6 + (v - 1) % 2, arrival, nights, cents, paid, placeholder


def render_reservation(f: ReservationFields) -> bytes:
    h = f.h
    status, guests, arrival, nights, cents, paid, placeholder = _reservation_parts(f)
    channel_id, channel = _CHANNELS[(h >> 28) % len(_CHANNELS)]
    first, last, full, email = _GUESTS[(h >> 4) % len(_GUESTS)][:4]
    currency = _PLACES[(f.listing.h >> 9) % len(_PLACES)][6]
    updated = hostaway_time(f.updated_s)
    return (
        b'{"id":%d,"listingMapId":%d,"channelId":%d,"channelName":"%s","reservationId":"%d-%d-%x",'
        b'"hostawayReservationId":%d,"reservationDate":"%s","guestName":%s,"guestFirstName":%s,'
        b'"guestLastName":%s,"guestEmail":%s,"phone":null,"numberOfGuests":%d,"adults":%d,"children":null,'
        b'"arrivalDate":"%s","departureDate":"%s","isDatesUnspecified":%d,"nights":%d,"totalPrice":%d.%02d,'
        b'"currency":"%s","isPaid":%d,"status":"%s","updatedOn":"%s","latestActivityOn":"%s"}'
        % (f.id, f.listing.id, channel_id, channel, f.listing.id, f.id, h & 0xFFFFFF, f.id,
           hostaway_time(f.created_s), b"null" if h % 23 == 0 else full, first, last, email, guests, guests,
           _date(arrival), _date(arrival + nights), placeholder, nights,
           cents // 100, cents % 100, currency, paid, status.encode(), updated, updated)
    )  # fmt: skip


def render_day(listing_id: int, d: calendar.Day, embedded: bytes) -> bytes:
    """A calendar day object; ``embedded``: its reservations' records (``includeResources``)."""
    status = d.status.encode()
    return (
        b'{"id":%d,"date":"%s","isAvailable":%d,"isProcessed":1,"status":"%s","price":%d.%02d,'
        b'"minimumStay":%d,"maximumStay":1125,"closedOnArrival":null,"closedOnDeparture":null,"note":null,'
        b'"reservations":[%s]}'
        % (listing_id * 100_000 + d.day, _date(d.day), status == b"available", status, d.price_cents // 100,
           d.price_cents % 100, d.min_nights, embedded)
    )  # fmt: skip


def stay(f: ReservationFields) -> calendar.Stay:
    """What a reservation does to its listing's calendar (live bookings take their nights)."""
    status, _, arrival, nights, _, _, placeholder = _reservation_parts(f)
    takes = _TAKES.get(status) if not placeholder else None
    return calendar.Stay(arrival, nights, takes, f.id)


_TAKES = {"new": calendar.RESERVED, "modified": calendar.RESERVED, "ownerStay": calendar.RESERVED,
          "pending": calendar.PENDING, "awaitingPayment": calendar.PENDING}  # fmt: skip
