"""A listing's calendar, for any profile: each day's state follows from the listing's
bookings, a deterministic nightly price and the host's edits. Pure; days are day numbers
since 1970-01-01 (``encoding.format_date``).

* **Bookings.** A day from a stay's arrival up to (not including) its departure is taken:
  ``reserved`` by a live booking, ``pending`` by one awaiting confirmation. A stay that
  is cancelled, declined or only an inquiry takes nothing.
* **Prices.** The listing's price, varied per day (-10 % to +10 %) and 15 % more on
  Friday and Saturday nights; the minimum stay is the listing's, one more at weekends.
* **Blocks.** About one day in 23 is blocked by the host. ``Edits`` hold what mutations
  changed since: a day's price, or a block set or lifted.

A profile renders ``Day`` in its partner's shape and names the statuses its API uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from syncd.simulator.encoding import format_date, mix64, parse_iso_ms

AVAILABLE, BLOCKED, RESERVED, PENDING = "available", "blocked", "reserved", "pending"
_FRIDAY = 1  # 1970-01-01 was a Thursday: day % 7 == 1 is a Friday


class Stay(NamedTuple):
    """A booking's nights: ``arrival`` (a day number), ``nights``, and what it does to the
    calendar (``RESERVED``, ``PENDING``, or None: nothing)."""

    arrival: int
    nights: int
    takes: str | None
    booking: int  # the booking's index, for partners that embed bookings in their days


class Day(NamedTuple):
    day: int
    status: str
    price_cents: int
    min_nights: int
    bookings: tuple[int, ...]


@dataclass
class Edits:
    """The host's changes: per (listing index, day), a price in cents and a block flag."""

    prices: dict[tuple[int, int], int] = field(default_factory=dict)
    blocks: dict[tuple[int, int], bool] = field(default_factory=dict)

    def edit(self, listing: int, day: int, h: int, base_cents: int) -> None:
        """One deterministic edit from ``h``: a third toggle the day's block, the rest
        set its price between 80 % and 130 % of ``base_cents``."""
        key = (listing, day)
        if h % 3 == 0:
            self.blocks[key] = not self.blocks.get(key, _base_blocked(listing, day))
        else:
            self.prices[key] = base_cents * (80 + (h >> 8) % 51) // 100

    def mutate(
        self, key: int, count: int, pick: Callable[[int], int | None], base_cents: Callable[[int], int],
        window: tuple[int, int],
    ) -> list[tuple[int, int]]:  # fmt: skip
        """``count`` edits of days in ``window`` (first day, days) of listings ``pick`` finds
        from a hash (None: none left); the (listing, day) pairs edited."""
        edited = []
        for n in range(count):
            h = mix64(key ^ n)
            i = pick(h >> 8)
            if i is not None:
                day = window[0] + (h >> 24) % window[1]
                self.edit(i, day, h >> 40, base_cents(i))
                edited.append((i, day))
        return edited


def parse_window(start: str | None, end: str | None, default: tuple[int, int]) -> tuple[int, int]:
    """A request's first and last day (``YYYY-MM-DD``, both included) as day numbers; a
    missing one from ``default`` (first day, days). ValueError for anything else."""
    first = parse_iso_ms(start) // 86_400_000 if start else default[0]
    last = parse_iso_ms(end) // 86_400_000 if end else first + default[1] - 1
    if not 0 <= last - first < 3 * 366:
        raise ValueError("the last day must be on or after the first, within three years")
    return first, last


def truth_line(parent: int | str, day: int, record: bytes) -> bytes:
    """A day's ground-truth NDJSON line: the day under its listing's id, as a child walk
    stores a record that does not name its parent (``syncd.connectors.children``)."""
    return b'{"id":"%s:%s","kind":"calendar","payload":{"parent":"%s","record":%s}}\n' % (
        str(parent).encode(), format_date(day).encode(), str(parent).encode(), record)  # fmt: skip


def _base_blocked(listing: int, day: int) -> bool:
    return mix64(listing * 1_000_003 + day) % 23 == 0


def days(listing: int, base_cents: int, min_nights: int, stays: Iterable[Stay], first: int, last: int,
         edits: Edits) -> list[Day]:  # fmt: skip
    """The listing's days ``first`` to ``last`` (day numbers, both included)."""
    taken: dict[int, tuple[str, list[int]]] = {}
    for stay in stays:
        if stay.takes is None:
            continue
        for d in range(max(first, stay.arrival), min(last + 1, stay.arrival + stay.nights)):
            status, held = taken.get(d, (PENDING, []))
            taken[d] = (RESERVED if RESERVED in (status, stay.takes) else PENDING, [*held, stay.booking])
    out = []
    for d in range(first, last + 1):
        weekend = d % 7 in (_FRIDAY, _FRIDAY + 1)
        cents = base_cents * (90 + mix64(listing ^ d * 0x9E3779B1) % 21) // 100
        cents = edits.prices.get((listing, d), cents * 115 // 100 if weekend else cents)
        status, bookings = taken.get(d, (AVAILABLE, []))
        if status == AVAILABLE and edits.blocks.get((listing, d), _base_blocked(listing, d)):
            status = BLOCKED
        out.append(Day(d, status, cents, min_nights + weekend, tuple(bookings)))
    return out
