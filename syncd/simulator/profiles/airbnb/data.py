"""One Airbnb account's dataset: listings and reservations as formulas plus sparse
overrides (``sparse.OverrideTable``), rendered in the public listing shape [C] and the
reservation shape ``syncd.connectors.airbnb`` assumes.

[assumption] Lists: ``_limit`` (1-50, default 20), ``_offset``, ``updated_since`` (unix
seconds, inclusive); sorted by ``updated_at`` then id with ``updated_since``, by id
without it. Bodies ``{listings|reservations: [...], metadata: {record_count}}``; one
record ``{listing|reservation: {...}, metadata: {}}``. Times are whole seconds, shared by
small tie groups and by mutations. Listings are deleted (a get answers 404);
reservations are cancelled, never deleted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from syncd.simulator import sparse
from syncd.simulator.encoding import format_date, mix64, stream_key
from syncd.simulator.params import QueryError as QueryError  # the API shell's 400
from syncd.simulator.params import int_param
from syncd.simulator.sparse import ALL_AFTER, ListQuery, OverrideTable, pick_live, select_page

T0_S = 1_735_689_600  # 2025-01-01 00:00:00 UTC
LISTING_ID0 = 7_000_000
LISTING_TIE = 7
RESERVATION_TIE = 5
MAX_LIMIT = 50
DEFAULT_LIMIT = 20
CODE_PREFIX = "HM"
_DAY = 86_400
_PLACES = (
    ("Lisboa", "Lisboa", "PT", "1100-148", "Europe/Lisbon", "EUR", 38.7223, -9.1393, "Rua Augusta"),
    ("Austin", "TX", "US", "78701", "America/Chicago", "USD", 30.2672, -97.7431, "Congress Ave"),
    ("Kraków", "Małopolskie", "PL", "31-042", "Europe/Warsaw", "PLN", 50.0647, 19.945, "Floriańska"),
    ("Tōkyō", "東京都", "JP", "150-0002", "Asia/Tokyo", "JPY", 35.6762, 139.6503, "Omotesandō"),
    ("Cape Town", "Western Cape", "ZA", "8001", "Africa/Johannesburg", "ZAR", -33.92, 18.42, "Long St"),
)
_ADJECTIVES = ("Sunny", "Cozy", "Modern", "Très chic", "Quiet", 'The "Blue"', "Gemütlich", "Bright")
_KINDS = ("Loft", "Studio", "Villa", "Cabin \\ Annex", "Casa Açaí", "Suite 🌊")
_TYPES = (("apartment", "entire_home"), ("house", "entire_home"), ("apartment", "private_room"))
_GUESTS = (("Andrew", "Peterson"), ("Zoë", None), ("Seán", "O'Brien"), ("李", None), ("María José", "Núñez"))
_FIRST_STATUSES = ("accepted",) * 6 + ("pending", "inquiry", "denied", "expired")


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def code_of(j: int) -> str:
    """A reservation's confirmation code: ``HM`` + 8 base-36 digits of its index."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    n, out = j + 36**7, ""  # 8 digits, never a leading zero
    while n:
        n, d = divmod(n, 36)
        out = digits[d] + out
    return CODE_PREFIX + out


def index_of(code: str) -> int | None:
    if not code.startswith(CODE_PREFIX) or len(code) != 10:
        return None
    try:
        return int(code[2:], 36) - 36**7
    except ValueError:
        return None


def parse_query(params: Mapping[str, str]) -> ListQuery:
    limit = int_param(params, "_limit", DEFAULT_LIMIT, 1) or DEFAULT_LIMIT
    if limit > MAX_LIMIT:
        raise QueryError(f"_limit must be at most {MAX_LIMIT}")
    since = int_param(params, "updated_since", None, 0)
    return ListQuery(
        limit=limit,
        offset=int_param(params, "_offset", 0, 0) or 0,
        order="id" if since is None else "asc",
        lo_ms=sparse.ALL_BEFORE if since is None else since * 1000,
        hi_ms=ALL_AFTER,
    )


class Mutations(NamedTuple):
    listings_updated: tuple[int, ...] = ()
    listings_inserted: tuple[int, ...] = ()
    listings_deleted: tuple[int, ...] = ()
    reservations_updated: tuple[str, ...] = ()
    reservations_inserted: tuple[str, ...] = ()


class AirbnbAccount:
    def __init__(self, seed: int, listings: int, reservations_per_listing: int = 2) -> None:
        if listings < 0 or reservations_per_listing < 0:
            raise ValueError("listings and reservations_per_listing must be >= 0")
        self.seed, self.per_listing = seed, reservations_per_listing
        self._lkey, self._rkey = stream_key(seed, 41), stream_key(seed, 42)
        self.listings = OverrideTable(listings, LISTING_TIE, T0_S * 1000)
        self.reservations = OverrideTable(listings * reservations_per_listing, RESERVATION_TIE, T0_S * 1000)
        self._clock_s = max(self.listings.max_base_ts(), self.reservations.max_base_ts()) // 1000
        self._listing_of: dict[int, int] = {}  # inserted reservation -> its listing index
        self._mutations = 0

    # -- records ----------------------------------------------------------------------

    def listing_object(self, i: int, table: OverrideTable | None = None) -> dict[str, Any]:
        t = table or self.listings
        h, v = mix64(self._lkey ^ i), t.version(i)
        city, state, country, zipcode, zone, currency, lat, lng, street = _PLACES[(h >> 9) % len(_PLACES)]
        kind, room = _TYPES[(h >> 13) % len(_TYPES)]
        name = "" if h % 13 == 0 else f"{_ADJECTIVES[(h >> 3) % 8]} {_KINDS[(h >> 6) % 6]} v{v}"
        cents = 4_000 + (h >> 24) % 40_000 + 500 * (v - 1)
        return {
            "id": LISTING_ID0 + i,
            "name": name,
            "street": street,
            "city": city,
            "state": state,
            "zipcode": zipcode,
            "country_code": country,
            "lat": lat,
            "lng": lng,
            "person_capacity": 2 + h % 7,
            "bedrooms": 1 + (h >> 4) % 4,
            "bathrooms": 1.5 if h & 0x100 else 1.0,
            "listing_price": f"{cents // 100}.{cents % 100:02d}",
            "listing_currency": currency,
            "check_in_time": 14 + (h >> 5) % 3,
            "property_type_category": kind,
            "room_type_category": room,
            "time_zone_name": zone,
            "has_availability": h % 11 != 0,
            "updated_at": iso(t.timestamp(i) // 1000),
        }

    def reservation_object(self, j: int, table: OverrideTable | None = None) -> dict[str, Any]:
        t = table or self.reservations
        h, v = mix64(self._rkey ^ j), t.version(j)
        i = self._listing_of.get(j, j // max(1, self.per_listing))
        created_s = t.created.get(j, t.base_ts(j) - (30 * _DAY + j % 1000 * 60) * 1000) // 1000
        status = (
            _FIRST_STATUSES[(h >> 8) % len(_FIRST_STATUSES)]
            if v == 1
            else ("accepted", "cancelled")[(h >> v) & 1]
        )
        nights = 1 + (h >> 16) % 9 + (v - 1) % 2
        start = created_s // _DAY + 3 + (h >> 20) % 120
        first, last = _GUESTS[(h >> 4) % len(_GUESTS)]
        payout = nights * (4_000 + (h >> 24) % 20_000)
        currency = _PLACES[(mix64(self._lkey ^ i) >> 9) % len(_PLACES)][5]
        return {
            "confirmation_code": code_of(j),
            "listing_id": LISTING_ID0 + i,
            "status": status,
            "start_date": format_date(start),
            "end_date": format_date(start + nights),
            "nights": nights,
            "number_of_guests": 1 + (h >> 12) % 6,
            "guest": {"first_name": first, "last_name": last},
            "expected_payout_amount": f"{payout // 100}.{payout % 100:02d}",
            "currency": currency,
            "created_at": iso(created_s),
            "updated_at": iso(t.timestamp(j) // 1000),
        }

    def get_listing(self, ident: str) -> bytes | None:
        i = int(ident) - LISTING_ID0 if ident.isdigit() else -1
        if not self.listings.is_live(i):
            return None
        return orjson.dumps({"listing": self.listing_object(i), "metadata": {}})

    def get_reservation(self, code: str) -> bytes | None:
        j = index_of(code)
        if j is None or not self.reservations.is_live(j):
            return None
        return orjson.dumps({"reservation": self.reservation_object(j), "metadata": {}})

    def query(self, kind: str, q: ListQuery) -> bytes:
        table = self.listings if kind == "listings" else self.reservations
        picked, count = select_page(table, q, None)
        render = self.listing_object if kind == "listings" else self.reservation_object
        return orjson.dumps({kind: [render(k) for k in picked], "metadata": {"record_count": count}})

    # -- mutations --------------------------------------------------------------------

    def mutate(self, count: int, seed: int) -> Mutations:
        """``count`` changes: 35 % listing edits, 10 % new listings, 10 % listing deletions,
        35 % reservation edits (to ``accepted`` or ``cancelled``), 10 % new bookings."""
        touched: dict[str, list[Any]] = {k: [] for k in ("lu", "li", "ld", "ru", "ri")}
        key = stream_key(self.seed ^ (seed * 0x9E3779B1), 2000 + self._mutations)
        self._mutations += 1
        for h, second in sparse.mutation_seconds(key, count, self._clock_s):
            kind, ident = self._mutate_one(h, second * 1000)
            self._clock_s = second
            touched[kind].append(ident)
        u = {k: tuple(dict.fromkeys(v)) for k, v in touched.items()}
        return Mutations(u["lu"], u["li"], u["ld"], u["ru"], u["ri"])

    def _mutate_one(self, h: int, ts: int) -> tuple[str, Any]:
        roll = h % 100
        if roll < 55:
            i = pick_live(self.listings, h >> 8)
            if i is not None and roll < 35:
                self.listings.update(i, ts)
                return "lu", LISTING_ID0 + i
            if i is not None and roll >= 45:
                self.listings.delete(i, ts)
                return "ld", LISTING_ID0 + i
            return "li", LISTING_ID0 + self.listings.insert(ts)
        j = pick_live(self.reservations, h >> 8) if roll < 90 else None
        if j is not None:
            self.reservations.update(j, ts)
            return "ru", code_of(j)
        i = pick_live(self.listings, h >> 16)
        j = self.reservations.insert(ts)
        self._listing_of[j] = 0 if i is None else i
        return "ri", code_of(j)

    # -- truth ------------------------------------------------------------------------

    def live(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(id, the record as the API renders it) of every live record, from a snapshot."""
        listings = kind == "listings"
        table = (self.listings if listings else self.reservations).copy()
        for k in range(table.total):
            if k in table.deleted:
                continue
            if listings:
                yield str(LISTING_ID0 + k), self.listing_object(k, table)
            else:
                yield code_of(k), self.reservation_object(k, table)
