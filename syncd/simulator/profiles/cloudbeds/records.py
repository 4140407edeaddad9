"""What one Cloudbeds property or reservation is, derived from (seed, index, edits): pure
arithmetic, so an account of any size costs nothing until a record is asked for."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

MASK64 = (1 << 64) - 1
# 2026-06-01 00:00:00 UTC: base data and mutations stay clear of any DST change.
T0 = 1_780_272_000
TIE = 3  # base reservations share a dateModified second in threes (clients must handle ties)
PROPERTY_ID0 = 200_000
RESERVATION_ID0 = 5_000_000
ZONES = (
    ("America/New_York", "USD"),
    ("Europe/Lisbon", "EUR"),
    ("Asia/Tokyo", "JPY"),
    ("Australia/Sydney", "AUD"),
    ("America/Sao_Paulo", "BRL"),
    ("UTC", "USD"),
)
TZ = tuple(ZoneInfo(name) for name, _ in ZONES)
STATUSES = ("confirmed", "confirmed", "not_confirmed", "canceled", "checked_in", "checked_out", "no_show")
SOURCES = ("Website", "Booking.com", "Expedia", "Holiday rentals", "Walk-In", "Phone")
NAMES = ("Ana Silva", "Kenji Sato", "Olivia Brown", "Lucas Costa", "Mia Wong", "Noah Müller")
WORDS = ("Harbour", "Garden", "Summit", "Lagoon", "Old Town", "Riverside")


def mix64(x: int) -> int:
    """splitmix64's finaliser: a well-spread hash in a few integer operations."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


@functools.lru_cache(maxsize=65_536)
def local_text(ts: int, zone: int) -> str:
    """Epoch seconds as the property-local ``YYYY-MM-DD HH:MM:SS`` Cloudbeds sends
    (memoised: base records share their timestamps in threes)."""
    v = datetime.fromtimestamp(ts, TZ[zone])
    return "%04d-%02d-%02d %02d:%02d:%02d" % (v.year, v.month, v.day, v.hour, v.minute, v.second)  # noqa: UP031


@dataclass(frozen=True, slots=True)
class Hotel:
    index: int
    zone: int
    name: str

    @property
    def id(self) -> str:
        return str(PROPERTY_ID0 + self.index)

    @property
    def currency(self) -> str:
        return ZONES[self.zone][1]

    def item(self) -> dict[str, object]:
        """A ``getHotels`` item (the spec's ``propertyCurrency`` is an array)."""
        return {
            "propertyID": self.id,
            "organizationID": "77",
            "propertyName": self.name,
            "propertyImage": f"https://h.cloudbeds.invalid/{self.id}.jpg",
            "propertyDescription": "",
            "propertyTimezone": ZONES[self.zone][0],
            "propertyCurrency": [
                {"currencyCode": self.currency, "currencySymbol": "", "currencyPosition": "before"}
            ],
        }


def hotel(seed: int, i: int, renames: int) -> Hotel:
    h = mix64(seed * 0x51 ^ i)
    return Hotel(i, h % len(ZONES), f"{WORDS[((h >> 8) + renames) % len(WORDS)]} Hotel {i}")


@dataclass(frozen=True, slots=True)
class Booking:
    """One reservation's content; ``modified``/``created`` are epoch seconds (UTC)."""

    index: int
    hotel: Hotel
    modified: int
    created: int
    status: str
    guest: str
    start: date
    nights: int
    adults: int
    children: int
    balance_cents: int
    source: str
    third_party: str | None

    @property
    def id(self) -> str:
        return str(RESERVATION_ID0 + self.index)

    @property
    def balance(self) -> Decimal:
        return Decimal(self.balance_cents).scaleb(-2)

    def item(self) -> dict[str, object]:
        """A ``getReservations`` item, as documented (``adults``/``children`` as strings)."""
        z = self.hotel.zone
        return {
            "propertyID": self.hotel.id,
            "reservationID": self.id,
            "dateCreated": local_text(self.created, z),
            "dateModified": local_text(self.modified, z),
            "status": self.status,
            "guestID": str(9_000_000 + self.index),
            "guestName": self.guest,
            "startDate": self.start.isoformat(),
            "endDate": (self.start + timedelta(days=self.nights)).isoformat(),
            "adults": str(self.adults),
            "children": str(self.children),
            "balance": float(self.balance),
            "sourceName": self.source,
            "sourceID": "s-" + self.source.lower(),
            "thirdPartyIdentifier": self.third_party,
        }

    def details(self) -> dict[str, object]:
        """``getReservation``'s ``data``: the channel is ``source``, guests counted per room."""
        item = self.item()
        room = {
            "roomTypeID": "81",
            "roomTypeName": "Double",
            "adults": item.pop("adults"),
            "children": item.pop("children"),
        }
        item["source"] = item.pop("sourceName")
        return item | {
            "guestEmail": f"guest{self.index}@mail.invalid",
            "total": 100.0,
            "assigned": [room],
            "unassigned": [],
        }


def base_created(seed: int, j: int) -> int:
    """A base reservation's booking time: up to 16 days before the data starts (in May)."""
    return T0 - 3600 * (1 + mix64(seed ^ j * 0x2545F491) % 400)


def booking(seed: int, j: int, at: Hotel, modified: int, created: int, edits: int) -> Booking:
    h = mix64(seed * 0x9E37 ^ (j << 8) ^ edits)
    third = None if h % 3 == 0 else f"OTA-{h % 1_000_000:06d}"
    return Booking(
        j, at, modified, created,
        STATUSES[(h >> 12) % len(STATUSES)], NAMES[(h >> 16) % len(NAMES)],
        date(2026, 7, 1) + timedelta(days=(h >> 20) % 300), 1 + (h >> 30) % 14, 1 + (h >> 34) % 4,
        (h >> 36) % 3, (h >> 40) % 500_000, SOURCES[(h >> 50) % len(SOURCES)], third,
    )  # fmt: skip


def str_id(base: int, index: int) -> str:
    return str(base + index)
