"""Byte-level rendering of Guesty listings and reservations from (index, version, timestamps).

A record is a pure function of the account seed, its index, its version and its two
timestamps: nothing is stored per record. The JSON is produced by one ``bytes %`` call
per record over templates that embed the precomputed fragments of ``guesty_pools``,
which keeps a 100-listing page (~100 KB) at a few hundred microseconds of CPU.
"""

from __future__ import annotations

from typing import Final

from syncd.simulator import encoding
from syncd.simulator.profiles.guesty import pools

LISTING_ID_PREFIX: Final = 0x60000000
RESERVATION_ID_PREFIX: Final = 0x64000000
PICTURE_ID_PREFIX: Final = 0x68000000
# All base timestamps derive from T0 = 2025-01-01T00:00:00.000Z.
T0_MS: Final = 1_735_689_600_000
LISTING_TIE_GROUP: Final = 7
RESERVATION_TIE_GROUP: Final = 5
_LISTING_CREATED_LAG_MS: Final = 400 * 86_400_000
_RESERVATION_CREATED_LAG_MS: Final = 30 * 86_400_000
_RES_FIRST_DAY: Final = T0_MS // 86_400_000 - 60
_HOUR_MS: Final = 3_600_000
_PAID = frozenset((b"confirmed", b"checked_in", b"checked_out"))
# Small odd strides so consecutive versions always land on a different pool entry.
_TITLE_STRIDE: Final = 389
_ROOMS_STRIDE: Final = 13


def _picture(k: int) -> bytes:
    return (
        b'{"_id":"%%s%d","original":"https://img.guesty.sim/%%s%d.jpg",'
        b'"thumbnail":"https://img.guesty.sim/%%s%d_t.jpg","caption":%%s}' % (k, k, k)
    )


def _listing_template(pictures: int) -> bytes:
    return (
        b'{"_id":"%08x%016x","title":%s%s%s%s,"pictures":['
        + b",".join(_picture(k) for k in range(pictures))
        + b']%s%s,"prices":{"basePrice":%d,"currency":"%s","cleaningFee":%d},"customFields":[],'
        b'"createdAt":"%s","lastUpdatedAt":"%s","isTest":%s}'
    )


# Module-level aliases: the render loops below run ~1,000 times per 10-page burst.
_mix = encoding.mix64
_PLACES = pools.PLACES
_ROOMS = pools.ROOMS
_TITLES = pools.TITLES
_NICKNAMES = pools.NICKNAMES
_CAPTIONS = pools.CAPTIONS
_AMENITIES = pools.AMENITIES
_FLAGS = pools.FLAGS
_GUESTS = pools.GUESTS
_SOURCES = pools.SOURCES
_STATUSES = pools.STATUSES

_LISTING_TEMPLATES: Final = (_listing_template(2), _listing_template(3), _listing_template(4))
_RESERVATION_TEMPLATE: Final = (
    b'{"_id":"%08x%016x","listingId":"%08x%016x","status":"%s","confirmationCode":"GY-%08X","source":"%s",'
    b'"checkIn":"%s","checkOut":"%s","checkInDateLocalized":"%s","checkOutDateLocalized":"%s",'
    b'"nightsCount":%d,"guestsCount":%d%s,"money":{"totalPaid":%d.%02d,"balanceDue":%d.%02d,'
    b'"currency":"%s"},"createdAt":"%s","lastUpdatedAt":"%s"}'
)


class ListingRenderer:
    """Renders listing ``i`` of one account; ``listing_id``/``base_*`` are the index maths."""

    __slots__ = ("_iso", "_key", "_pic_key")

    def __init__(self, seed: int) -> None:
        self._key = encoding.stream_key(seed, 1)
        self._pic_key = encoding.stream_key(seed, 2)
        self._iso = encoding.IsoClock()

    @property
    def key(self) -> int:
        return self._key

    def digest(self, i: int) -> int:
        return encoding.mix64(self._key ^ i)

    def listing_id(self, i: int) -> bytes:
        return encoding.object_id(LISTING_ID_PREFIX, i, self.digest(i))

    def place(self, i: int) -> pools.Place:
        return pools.PLACES[(self.digest(i) >> 43) & 1023]

    @staticmethod
    def base_ts(i: int) -> int:
        return T0_MS + (i // LISTING_TIE_GROUP) * 1000

    @staticmethod
    def base_created(i: int) -> int:
        return ListingRenderer.base_ts(i) - _LISTING_CREATED_LAG_MS

    def base_pictures(self, i: int) -> tuple[tuple[int, int], ...]:
        """Listing ``i``'s pictures before any photo edit, as (suffix, caption index) pairs:
        exactly those ``render`` writes (a picture's id is the listing's picture prefix and
        its suffix)."""
        h2 = _mix(self._pic_key ^ i)
        return tuple((k, (h2 >> (4 + 4 * k)) & 15) for k in range(2 + h2 % 3))

    def pictures_json(self, i: int, pictures: tuple[tuple[int, int], ...]) -> bytes:
        """The ``pictures`` array of listing ``i`` holding ``pictures`` (after photo edits)."""
        pid = b"%08x%015x" % (PICTURE_ID_PREFIX + i, _mix(self._pic_key ^ i) >> 4)
        return b"[" + b",".join(_picture(k) % (pid, pid, pid, _CAPTIONS[c]) for k, c in pictures) + b"]"

    def render_base(self, i: int, t0_ms: int = T0_MS, version: int = 1) -> bytes:
        """Listing ``i`` as never mutated (in its dataset generation): the full-sync hot path."""
        updated = t0_ms + (i // LISTING_TIE_GROUP) * 1000
        created = T0_MS + (i // LISTING_TIE_GROUP) * 1000 - _LISTING_CREATED_LAG_MS
        return self.render(i, version, updated, created, False)

    def render(self, i: int, version: int, updated_ms: int, created_ms: int, malformed: bool) -> bytes:
        h = _mix(self._key ^ i)
        h2 = _mix(self._pic_key ^ i)
        pid = b"%08x%015x" % (PICTURE_ID_PREFIX + i, h2 >> 4)
        bump = version - 1
        place = _PLACES[(h >> 43) & 1023]
        iso = self._iso
        if malformed:
            rooms, updated = pools.ROOMS_MALFORMED, b"not-a-date"
        else:
            rooms, updated = _ROOMS[((h >> 37) + bump * _ROOMS_STRIDE) & 63], iso[updated_ms]
        n = h2 % 3
        c = _CAPTIONS
        c0, c1, c2, c3 = c[(h2 >> 4) & 15], c[(h2 >> 8) & 15], c[(h2 >> 12) & 15], c[(h2 >> 16) & 15]
        # Each picture repeats its id three times (_id, original, thumbnail), then a caption.
        if n == 0:
            pictures: tuple[bytes, ...] = (pid, pid, pid, c0, pid, pid, pid, c1)
        elif n == 1:
            pictures = (pid, pid, pid, c0, pid, pid, pid, c1, pid, pid, pid, c2)
        else:
            pictures = (pid, pid, pid, c0, pid, pid, pid, c1, pid, pid, pid, c2, pid, pid, pid, c3)
        return _LISTING_TEMPLATES[n] % (
            LISTING_ID_PREFIX + i,
            h,
            _TITLES[((h >> 8) + bump * _TITLE_STRIDE) & 1023],
            b"" if (h >> 18) % 100 < 5 else _NICKNAMES[(h >> 25) & 4095],
            rooms,
            place.bare if (h >> 53) % 100 < 2 else place.full,
            *pictures,
            _AMENITIES[(h2 >> 24) & 255],
            _FLAGS[(h2 >> 32) & 127],
            40 + (h2 >> 40) % 360 + 5 * bump,
            place.currency,
            10 + (h2 >> 50) % 90,
            iso[created_ms],
            updated,
            b"true" if (h2 >> 58) == 0 else b"false",
        )


class ReservationRenderer:
    """Renders reservation ``j``; its listing is ``digest(j) % listings`` of the base range."""

    __slots__ = ("_dates", "_iso", "_key", "_listing_count", "_listings", "_listings_key")

    def __init__(self, seed: int, listings: ListingRenderer, listing_count: int) -> None:
        self._key = encoding.stream_key(seed, 3)
        self._listings = listings
        self._listings_key = listings.key
        self._listing_count = max(1, listing_count)
        self._iso = encoding.IsoClock()
        self._dates: dict[int, bytes] = {}

    def digest(self, j: int) -> int:
        return encoding.mix64(self._key ^ j)

    def reservation_id(self, j: int) -> bytes:
        return encoding.object_id(RESERVATION_ID_PREFIX, j, self.digest(j))

    def listing_index(self, j: int) -> int:
        return self.digest(j) % self._listing_count

    @staticmethod
    def base_ts(j: int) -> int:
        return T0_MS + (j // RESERVATION_TIE_GROUP) * 1000

    @staticmethod
    def base_created(j: int) -> int:
        return ReservationRenderer.base_ts(j) - _RESERVATION_CREATED_LAG_MS

    def stay(self, j: int) -> tuple[int, int, int, int]:
        """(check-in day, check-out day, check-in ms, check-out ms) exactly as ``render``
        writes them (days since the epoch in listing time): what searches filter and sort on."""
        h = _mix(self._key ^ j)
        hl = _mix(self._listings_key ^ (h % self._listing_count))
        offset_ms = _PLACES[(hl >> 43) & 1023].utc_offset_min * 60_000
        day = _RES_FIRST_DAY + (h >> 16) % 540
        nights = 1 + (h >> 26) % 14
        day_start = day * 86_400_000 - offset_ms
        return day, day + nights, day_start + 15 * _HOUR_MS, day_start + nights * 86_400_000 + 11 * _HOUR_MS

    def status(self, j: int, version: int) -> bytes:
        h = self.digest(j)
        status = pools.STATUSES[(h >> 8) & 15]
        for v in range(2, version + 1):
            status = pools.NEXT_STATUS[status][encoding.mix64(h ^ v) & 1]
        return status

    def _date(self, day: int) -> bytes:
        text = self._dates.get(day)
        if text is None:
            text = self._dates[day] = encoding.format_date(day).encode()
        return text

    def render_base(self, j: int, t0_ms: int = T0_MS, version: int = 1) -> bytes:
        """Reservation ``j`` as never mutated (in its dataset generation): the full-sync hot path."""
        updated = t0_ms + (j // RESERVATION_TIE_GROUP) * 1000
        created = T0_MS + (j // RESERVATION_TIE_GROUP) * 1000 - _RESERVATION_CREATED_LAG_MS
        return self.render(j, version, updated, created)

    def render(self, j: int, version: int, updated_ms: int, created_ms: int) -> bytes:
        h = _mix(self._key ^ j)
        li = h % self._listing_count
        hl = _mix(self._listings_key ^ li)
        place = _PLACES[(hl >> 43) & 1023]
        offset_ms = place.utc_offset_min * 60_000
        day = _RES_FIRST_DAY + (h >> 16) % 540
        nights = 1 + (h >> 26) % 14
        status = _STATUSES[(h >> 8) & 15] if version == 1 else self.status(j, version)
        total = ((60 + (h >> 48) % 300) * nights + 50) * 100 + (h >> 40) % 100
        paid = total if status in _PAID else 0
        due = total - paid
        iso = self._iso
        dates = self._dates
        check_in = dates.get(day) or self._date(day)
        check_out = dates.get(day + nights) or self._date(day + nights)
        day_start = day * 86_400_000 - offset_ms
        return _RESERVATION_TEMPLATE % (
            RESERVATION_ID_PREFIX + j,
            h,
            LISTING_ID_PREFIX + li,
            hl,
            status,
            h >> 32,
            _SOURCES[(h >> 12) & 7],
            iso[day_start + 15 * _HOUR_MS],
            iso[day_start + nights * 86_400_000 + 11 * _HOUR_MS],
            check_in,
            check_out,
            nights,
            1 + ((h >> 30) % 6 + version - 1) % 6,
            _GUESTS[(h >> 36) & 4095],
            paid // 100,
            paid % 100,
            due // 100,
            due % 100,
            place.currency,
            iso[created_ms],
            iso[updated_ms],
        )
