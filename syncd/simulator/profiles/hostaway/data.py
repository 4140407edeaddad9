"""One Hostaway account's dataset: deterministic, mutable over logical time, never materialised.

State is base formulas plus sparse overrides (``sparse.OverrideTable``): a query costs
O(page + overrides). Times are whole seconds, as Hostaway's are, shared by small tie groups
and by mutations (one to four per second; ``touch``: any number, a bulk edit). Lists follow
partners.md section 2: ``limit`` (default 100) and ``offset`` (deprecated on reservations,
still served); ``latestActivityStart``/``End`` are inclusive bounds on ``latestActivityOn``
(listings) or ``updatedOn`` (reservations), as a day or a second; ``sortOrder`` is by id
(listings) or newest-first (reservations) unless ``latestActivity[Desc]``/``updatedOn``,
ties by id; other documented filters are refused, never ignored. ``afterId``: the records
after that record's *current* place (a modified one moved; a deleted one: an empty page).
Listings are deleted (gets 404); reservations are cancelled, never deleted. Calendars:
``syncd.simulator.calendar``; ``calendar_window`` holds the days mutations edit and truth covers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import NamedTuple

import orjson

from syncd.simulator import calendar, sparse
from syncd.simulator.encoding import format_date, mix64, stream_key
from syncd.simulator.params import QueryError as QueryError  # the API shell's 400
from syncd.simulator.params import int_param, moment_ms
from syncd.simulator.profiles.hostaway import records
from syncd.simulator.profiles.hostaway.records import LISTING_ID0, RESERVATION_ID0, ListingFields
from syncd.simulator.sparse import ALL_AFTER, ALL_BEFORE, ListQuery, OverrideTable, pick_live, select_page

LISTING_TIE = 7
RESERVATION_TIE = 5
DEFAULT_LIMIT = 100
_CREATED_LAG_S = 30 * 86_400
_SORTS = {
    "listings": {None: "id", "latestActivity": "asc", "latestActivityDesc": "desc"},
    "reservations": {None: "desc", "updatedOn": "asc", "latestActivity": "asc", "latestActivityDesc": "desc"},
}

_NOT_SIMULATED = frozenset(
    ("listingId", "channelId", "guestEmail", "match", "arrivalStartDate", "arrivalEndDate",
     "departureStartDate", "departureEndDate")
)  # fmt: skip


def parse_query(resource: str, params: Mapping[str, str]) -> ListQuery:
    """The query string of ``GET /listings`` or ``GET /reservations`` as a ``ListQuery``."""
    refused = _NOT_SIMULATED.intersection(params)
    if refused:  # documented filters a client must not believe were applied
        raise QueryError(f"filter {sorted(refused)[0]!r} is not simulated")
    order = _SORTS[resource].get(params.get("sortOrder") or None)
    if order is None:
        raise QueryError(f"sortOrder {params['sortOrder']!r} is not supported here")
    after_id = int_param(params, "afterId", None, 0)
    if after_id is not None and resource != "reservations":
        raise QueryError("'afterId' is a reservations cursor")
    start, end = params.get("latestActivityStart"), params.get("latestActivityEnd")
    return ListQuery(
        limit=int_param(params, "limit", DEFAULT_LIMIT, 1) or DEFAULT_LIMIT,
        offset=int_param(params, "offset", 0, 0) or 0,
        order=order,
        lo_ms=ALL_BEFORE if not start else moment_ms(start, "latestActivityStart", False),
        hi_ms=ALL_AFTER if not end else moment_ms(end, "latestActivityEnd", True),
        after_id=after_id,
    )


class Mutations(NamedTuple):
    """Ids touched by one ``mutate`` call, per kind."""

    listings_updated: tuple[int, ...] = ()
    listings_inserted: tuple[int, ...] = ()
    listings_deleted: tuple[int, ...] = ()
    reservations_updated: tuple[int, ...] = ()
    reservations_inserted: tuple[int, ...] = ()
    calendar_days_edited: tuple[str, ...] = ()


class HostawayAccount:
    """The dataset behind one Hostaway account id."""

    def __init__(self, seed: int, listings: int, reservations_per_listing: int = 2) -> None:
        if listings < 0 or reservations_per_listing < 0:
            raise ValueError("listings and reservations_per_listing must be >= 0")
        self.seed = seed
        self.per_listing = reservations_per_listing
        self._lkey, self._rkey = stream_key(seed, 31), stream_key(seed, 32)
        t0 = records.T0_S * 1000
        self.listings = OverrideTable(listings, LISTING_TIE, t0)
        self.reservations = OverrideTable(listings * reservations_per_listing, RESERVATION_TIE, t0)
        self._clock_s = max(self.listings.max_base_ts(), self.reservations.max_base_ts()) // 1000
        self._listing_of: dict[int, int] = {}  # inserted reservation -> its listing index
        self._mutations = 0
        self.edits = calendar.Edits()
        self.calendar_window = (records.T0_S // 86_400, 60)  # (first day number, days)

    def listing_fields(self, i: int, table: OverrideTable | None = None) -> ListingFields:
        t = table or self.listings
        return ListingFields(LISTING_ID0 + i, mix64(self._lkey ^ i), t.version(i), t.timestamp(i) // 1000)

    def reservation_fields(self, j: int, table: OverrideTable | None = None) -> records.ReservationFields:
        t = table or self.reservations
        created_ms = t.created.get(j, t.base_ts(j) - (_CREATED_LAG_S + j % 1000 * 60) * 1000)
        i = self._listing_of.get(j, j // max(1, self.per_listing))
        # The listing as first created: a later listing edit must not change the booking.
        listing = ListingFields(LISTING_ID0 + i, mix64(self._lkey ^ i), 1, 0)
        h = mix64(self._rkey ^ j)
        return records.ReservationFields(
            RESERVATION_ID0 + j, h, t.version(j), t.timestamp(j) // 1000, created_ms // 1000, listing
        )

    def listing(self, i: int, table: OverrideTable | None = None) -> bytes:
        return records.render_listing(self.listing_fields(i, table))

    def reservation(self, j: int, table: OverrideTable | None = None) -> bytes:
        return records.render_reservation(self.reservation_fields(j, table))

    def get_listing(self, listing_id: int) -> bytes | None:
        i = listing_id - LISTING_ID0
        return self.listing(i) if self.listings.is_live(i) else None

    def get_reservation(self, reservation_id: int) -> bytes | None:
        j = reservation_id - RESERVATION_ID0
        return self.reservation(j) if self.reservations.is_live(j) else None

    def calendar(self, ident: str, params: Mapping[str, str]) -> bytes | None:
        """``GET /listings/{id}/calendar``: the JSON list of the days ``startDate`` to ``endDate``
        (ValueError: refused), or None when there is no such listing."""
        get = params.get
        first, last = calendar.parse_window(get("startDate"), get("endDate"), self.calendar_window)
        embed = get("includeResources") != "0"  # documented default: 1
        days = self.calendar_days(int(ident), first, last, embed) if ident.isdigit() else None
        return None if days is None else b"[%s]" % b",".join(days)

    def calendar_days(self, listing_id: int, first: int, last: int, embed: bool) -> list[bytes] | None:
        """The listing's days ``first`` to ``last`` (day numbers), or None if it is gone;
        ``embed``: with the reservations that take each day."""
        i = listing_id - LISTING_ID0
        if not self.listings.is_live(i):
            return None
        f, per = self.listing_fields(i), self.per_listing
        mine = [j for j in range(i * per, (i + 1) * per) if j < self.reservations.base_count]
        mine += [j for j, k in self._listing_of.items() if k == i]
        stays = [records.stay(self.reservation_fields(j)) for j in mine if self.reservations.is_live(j)]
        days = calendar.days(i, *records.nightly(f), stays, first, last, self.edits)
        held = (lambda d: [self.reservation(b - RESERVATION_ID0) for b in d.bookings]) if embed else None
        return [records.render_day(f.id, d, b",".join(held(d)) if held else b"") for d in days]

    def query_listings(self, q: ListQuery) -> tuple[list[bytes], int]:
        """One page of listings and the number of matches (the envelope's ``count``)."""
        picked, count = select_page(self.listings, q, None)
        return [self.listing(i) for i in picked], count

    def query_reservations(self, q: ListQuery) -> tuple[list[bytes], int]:
        after = None if q.after_id is None else q.after_id - RESERVATION_ID0
        picked, count = select_page(self.reservations, q, after)
        return [self.reservation(j) for j in picked], count

    def mutate(self, count: int, seed: int) -> Mutations:
        """``count`` deterministic changes: 35 % listing edits, 10 % new listings, 10 % listing
        deletions, 35 % reservation edits (to ``modified`` or ``cancelled``), 10 % new bookings;
        and ``count // 4`` edits of calendar days (``calendar.Edits``)."""
        touched: dict[str, list[int]] = {k: [] for k in ("lu", "li", "ld", "ru", "ri")}
        key = stream_key(self.seed ^ (seed * 0x9E3779B1), 1000 + self._mutations)
        self._mutations += 1
        for h, second in sparse.mutation_seconds(key, count, self._clock_s):
            kind, ident = self._mutate_one(h, second * 1000)
            self._clock_s = second
            touched[kind].append(ident)
        unique = {k: tuple(dict.fromkeys(v)) for k, v in touched.items()}
        edited = self.edits.mutate(
            key ^ 1 << 40,
            count // 4,
            lambda h: pick_live(self.listings, h),
            lambda i: records.nightly(self.listing_fields(i))[0],
            self.calendar_window,
        )
        days = tuple(dict.fromkeys(f"{LISTING_ID0 + i}:{format_date(d)}" for i, d in edited))
        return Mutations(unique["lu"], unique["li"], unique["ld"], unique["ru"], unique["ri"], days)

    def _mutate_one(self, h: int, ts: int) -> tuple[str, int]:
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
            return "ru", RESERVATION_ID0 + j
        i = pick_live(self.listings, h >> 16)
        j = self.reservations.insert(ts)
        self._listing_of[j] = 0 if i is None else i
        return "ri", RESERVATION_ID0 + j

    def touch(self, listing_ids: tuple[int, ...] = (), reservation_ids: tuple[int, ...] = ()) -> None:
        """A bulk edit: every record named gets a new version stamped with one new second."""
        self._clock_s += 1
        for ident in listing_ids:
            self.listings.update(ident - LISTING_ID0, self._clock_s * 1000)
        for ident in reservation_ids:
            self.reservations.update(ident - RESERVATION_ID0, self._clock_s * 1000)

    def live(self, kind: str) -> Iterator[tuple[int, bytes]]:
        """(id, the record as the API renders it) of every live ``listings`` or
        ``reservations`` record, by id, from a snapshot of the state."""
        listings = kind == "listings"
        table = (self.listings if listings else self.reservations).copy()
        render, id0 = (self.listing, LISTING_ID0) if listings else (self.reservation, RESERVATION_ID0)
        return ((id0 + i, render(i, table)) for i in range(table.total) if i not in table.deleted)

    def calendar_truth(self) -> Iterator[bytes]:
        """The truth of every live listing's days in ``calendar_window`` (``includeResources=0``)."""
        first, span = self.calendar_window
        for listing_id, _ in self.live("listings"):
            days = self.calendar_days(listing_id, first, first + span - 1, False) or []
            yield from (calendar.truth_line(listing_id, first + k, day) for k, day in enumerate(days))


def list_body(page: list[bytes], count: int, q: ListQuery) -> bytes:
    """The documented envelope around a list page."""
    pages = -(-count // q.limit)
    meta = orjson.dumps({"limit": q.limit, "offset": q.offset, "count": count})[1:-1]
    return b'{"status":"success","result":[%s],%s,"page":%d,"totalPages":%d}' % (
        b",".join(page), meta, q.offset // q.limit + 1, pages)  # fmt: skip


def record_body(record: bytes) -> bytes:
    return b'{"status":"success","result":%s}' % record


def fail_body(message: str) -> bytes:
    return orjson.dumps({"status": "fail", "result": None, "message": message})
