"""One Cloudbeds account's dataset (partners.md section 3): ``N`` properties, ``k``
reservations each, as formulas (``records``) plus sparse overrides, so 10,000 x 2 costs
nothing until asked. It answers the documented methods with the bodies routes send:

* ``getHotels``: ``propertyIDs`` (comma-list), ``pageNumber`` (1-based), ``pageSize``.
* ``getReservations``: ``propertyID`` (comma-list, required), ``status``,
  ``modifiedFrom``/``modifiedTo`` (inclusive, in each property's local time, as its
  ``dateModified`` is written), ``sortByRecent`` (newest first; ties by id, descending;
  else by id), ``pageNumber`` + ``pageSize`` (at most 100).
* ``getReservation`` by ``reservationID``; None when not served (the route's "not found").
  Errors are HTTP 200 ``{"success": false, "message"}``.

Mutations move ``dateModified`` to a logical clock advancing 0-2 s each (so ties happen),
except a *silent* edit: the documented "some modifications may not be reflected in this
timestamp". Reservations are canceled, never deleted; a deleted (disconnected) property's
reservations are no longer served.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from syncd.simulator.profiles.cloudbeds import records as rec
from syncd.simulator.profiles.cloudbeds.records import Booking, Hotel

MAX_PAGE_SIZE = 100


class QueryError(ValueError):
    """A request the API answers with ``{"success": false, "message": ...}``."""


@dataclass
class Mutations:
    """Ids touched by one ``mutate`` call."""

    updated: list[str] = field(default_factory=list)
    inserted: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    hotels_renamed: list[str] = field(default_factory=list)
    hotels_inserted: list[str] = field(default_factory=list)
    hotels_deleted: list[str] = field(default_factory=list)


def page(data: list[Any], total: int) -> bytes:
    return orjson.dumps({"success": True, "data": data, "count": len(data), "total": total})


def failure(message: str) -> bytes:
    return orjson.dumps({"success": False, "message": message})


class CloudbedsAccount:
    def __init__(self, seed: int, listings: int, reservations_per_listing: int = 2) -> None:
        if listings < 0 or reservations_per_listing < 0:
            raise ValueError("listings and reservations_per_listing must be >= 0")
        self.seed, self.k = seed, reservations_per_listing
        self.hotels, self.base_reservations = listings, listings * reservations_per_listing
        self.reservations = self.base_reservations
        self.clock = rec.T0 + max(0, self.base_reservations - 1) // rec.TIE + 1  # after every base time
        self.renames: dict[int, int] = {}
        self.hotels_gone: set[int] = set()
        self.modified: dict[int, int] = {}  # reservation -> dateModified, once mutated
        self.edits: dict[int, int] = {}
        self.canceled: set[int] = set()
        self.placed: dict[int, int] = {}  # inserted reservation -> its hotel
        self.created: dict[int, int] = {}
        self.added: dict[int, list[int]] = {}  # hotel -> its inserted reservations
        self._mutations = 0
        self._hotels: dict[int, Hotel] = {}  # memo: a page asks for each of its hotels twice

    # -- records ----------------------------------------------------------------------

    def hotel(self, i: int) -> Hotel:
        found = self._hotels.get(i)
        if found is None:
            found = self._hotels[i] = rec.hotel(self.seed, i, self.renames.get(i, 0))
        return found

    def hotel_index(self, property_id: str) -> int | None:
        i = _index(property_id, rec.PROPERTY_ID0)
        return i if i is not None and i < self.hotels and i not in self.hotels_gone else None

    def booking(self, j: int) -> Booking:
        at = self.placed.get(j, j // self.k if self.k else 0)
        modified = self.modified.get(j, rec.T0 + j // rec.TIE)
        created = self.created.get(j) or rec.base_created(self.seed, j)
        b = rec.booking(self.seed, j, self.hotel(at), modified, created, self.edits.get(j, 0))
        return dataclasses.replace(b, status="canceled") if j in self.canceled else b

    def reservation_index(self, reservation_id: str) -> int | None:
        j = _index(reservation_id, rec.RESERVATION_ID0)
        gone = (
            j is None or j >= self.reservations or self.placed.get(j, j // max(1, self.k)) in self.hotels_gone
        )
        return None if gone else j

    def live_hotels(self) -> Iterator[int]:
        return (i for i in range(self.hotels) if i not in self.hotels_gone)

    def of_hotel(self, i: int) -> list[int]:
        base = range(i * self.k, (i + 1) * self.k) if i * self.k < self.base_reservations else range(0)
        return [*base, *self.added.get(i, ())]

    # -- methods ----------------------------------------------------------------------

    def get_hotels(self, params: dict[str, str]) -> bytes:
        ids = _ids(params.get("propertyIDs"))
        try:
            start, size = _paging(params, default_size=20)
        except QueryError as exc:
            return failure(str(exc))
        chosen: range | list[int] = sorted({i for i in map(self.hotel_index, ids or ()) if i is not None})
        if ids is None:  # the usual full listing needs no scan
            chosen = list(self.live_hotels()) if self.hotels_gone else range(self.hotels)
        return page([self.hotel(i).item() for i in chosen[start : start + size]], len(chosen))

    def get_reservations(self, params: dict[str, str]) -> bytes:
        ids = _ids(params.get("propertyID"))
        if not ids:
            return failure("Please specify propertyID for this multi-property request")
        try:
            start, size = _paging(params, default_size=MAX_PAGE_SIZE)
            lo, hi = (_wall(params.get(name)) for name in ("modifiedFrom", "modifiedTo"))
        except QueryError as exc:
            return failure(str(exc))
        status = params.get("status")
        hits: list[tuple[int, int]] = []
        for i in {i for i in map(self.hotel_index, ids) if i is not None}:
            zone = rec.TZ[self.hotel(i).zone]
            low = -(1 << 62) if lo is None else _epoch(lo, zone)
            high = 1 << 62 if hi is None else _epoch(hi, zone)
            for j in self.of_hotel(i):
                ts = self.modified.get(j, rec.T0 + j // rec.TIE)
                if low <= ts <= high and (status is None or self.booking(j).status == status):
                    hits.append((ts, j))
        recent = params.get("sortByRecent", "").lower() in ("true", "1")
        hits.sort(key=None if recent else lambda hit: hit[1], reverse=recent)
        return page([self.booking(j).item() for _, j in hits[start : start + size]], len(hits))

    def get_reservation(self, reservation_id: str) -> bytes | None:
        j = self.reservation_index(reservation_id)
        return None if j is None else orjson.dumps({"success": True, "data": self.booking(j).details()})

    # -- mutations --------------------------------------------------------------------

    def mutate(self, count: int, seed: int, silent: bool = False) -> Mutations:
        """``count`` deterministic mutations: 45 % reservation edits, 20 % inserts, 10 %
        cancellations, 15 % property renames, 5 % property inserts, 5 % property deletions.
        With ``silent``, a tenth of the edits leave ``dateModified`` alone. Reservations end
        canceled, never deleted (syncd never sweeps them); a property deleted had no
        reservation change in this call, so its reservations stay as a sync last saw them."""
        out, touched = Mutations(), set()
        self._mutations += 1
        for n in range(count):
            h = rec.mix64(rec.mix64(self.seed ^ seed << 20 ^ self._mutations << 40) ^ n)
            self.clock += h % 3
            roll, live = h % 100, list(self.live_hotels())
            j = self._pick(h >> 8)
            if roll < 55 and j is not None:
                self.edits[j] = self.edits.get(j, 0) + 1
                if silent and roll < 5:
                    out.silent.append(rec.str_id(rec.RESERVATION_ID0, j))
                    continue
                self.modified[j] = self.clock
                touched.add(self.placed.get(j, j // max(1, self.k)))
                (out.updated if roll < 45 else out.canceled).append(rec.str_id(rec.RESERVATION_ID0, j))
                if roll >= 45:
                    self.canceled.add(j)
            elif roll < 75 and live:
                i = live[(h >> 8) % len(live)]
                j = self.reservations
                self.reservations += 1
                self.placed[j], self.created[j], self.modified[j] = i, self.clock, self.clock
                touched.add(i)
                self.added.setdefault(i, []).append(j)
                out.inserted.append(rec.str_id(rec.RESERVATION_ID0, j))
            elif roll < 90 and live:
                i = live[(h >> 8) % len(live)]
                self.renames[i] = self.renames.get(i, 0) + 1
                self._hotels.pop(i, None)
                out.hotels_renamed.append(self.hotel(i).id)
            elif roll < 95 or not live:
                self.hotels += 1
                out.hotels_inserted.append(self.hotel(self.hotels - 1).id)
            elif idle := [i for i in live if i not in touched]:
                i = idle[(h >> 8) % len(idle)]
                self.hotels_gone.add(i)
                out.hotels_deleted.append(self.hotel(i).id)
        return out

    def _pick(self, h: int) -> int | None:
        """A live reservation derived from ``h``, probing forward past gone ones."""
        for step in range(min(self.reservations, 256)):
            j = (h + step) % self.reservations
            if self.reservation_index(rec.str_id(rec.RESERVATION_ID0, j)) is not None:
                return j
        return None


def _index(text: str, base: int) -> int | None:
    return int(text) - base if text.isascii() and text.isdigit() and int(text) >= base else None


def _ids(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]


def _paging(params: dict[str, str], default_size: int) -> tuple[int, int]:
    try:
        number = int(params.get("pageNumber", 1))
        size = min(int(params.get("pageSize", default_size)), MAX_PAGE_SIZE)
    except ValueError:
        raise QueryError("pageNumber and pageSize must be integers") from None
    if number < 1 or size < 1:
        raise QueryError("pageNumber and pageSize start at 1")
    return (number - 1) * size, size


def _wall(value: str | None) -> datetime | None:
    """A date-time parameter as the naive wall time it names (a date alone: midnight)."""
    try:
        return None if value is None else datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(f"invalid date-time {value!r}") from None


def _epoch(wall: datetime, zone: Any) -> int:
    """Epoch seconds of a wall time in ``zone`` (a time with an offset names its instant)."""
    return int((wall if wall.tzinfo else wall.replace(tzinfo=zone)).timestamp())
