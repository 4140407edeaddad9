"""The canonical values syncd must store for each simulated Hostaway record, derived from
the same (seed, index, version, times) as the rendering but independently of the adapter:
the oracle the adapter and connector tests compare with."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from syncd.models import ReservationStatus as S
from syncd.simulator.profiles.hostaway.data import HostawayAccount
from syncd.simulator.profiles.hostaway.records import (
    _CHANNELS,
    _GUESTS,
    _PLACES,
    ListingFields,
    ReservationFields,
    _name,
    _price_cents,
    _reservation_parts,
)

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


CANONICAL_STATUS = {
    "new": S.CONFIRMED, "modified": S.CONFIRMED, "cancelled": S.CANCELED, "ownerStay": S.OWNER_STAY,
    "pending": S.PENDING, "awaitingPayment": S.PENDING, "inquiry": S.INQUIRY,
    "inquiryPreapproved": S.INQUIRY, "declined": S.DECLINED, "expired": S.EXPIRED,
    "inquiryTimedout": S.EXPIRED, "inquiryDenied": S.DECLINED, "inquiryNotPossible": S.DECLINED,
}  # fmt: skip


def listing_truth(f: ListingFields) -> tuple[Any, ...]:
    """The canonical ``Property`` values of the listing (models.Property field order)."""
    h = f.h
    place = _PLACES[(h >> 9) % len(_PLACES)]
    name, internal = _name(f)
    cents = _price_cents(f)
    return (
        str(f.id), _utc(f.activity_s), name or internal or "Untitled listing", internal, None,
        2 + h % 7, float(1 + (h >> 4) % 4), 1.5 if h & 0x100 else 1.0, place[5].decode(),
        place[14], place[10], place[11], place[13], place[12] or place[3].decode(), place[7], place[8],
        True, True, Decimal(cents).scaleb(-2), place[6].decode(), None,
    )  # fmt: skip


def reservation_truth(f: ReservationFields) -> tuple[Any, ...]:
    """The canonical ``Reservation`` values (models.Reservation field order)."""
    h = f.h
    status, guests, arrival, nights, cents, paid, placeholder = _reservation_parts(f)
    guest = _GUESTS[(h >> 4) % len(_GUESTS)]
    total = Decimal(cents).scaleb(-2)
    return (
        str(f.id), _utc(f.updated_s), str(f.listing.id), CANONICAL_STATUS[status], status,
        f"{f.listing.id}-{f.id}-{h & 0xFFFFFF:x}", _CHANNELS[(h >> 28) % len(_CHANNELS)][1].decode(),
        None, None,
        None if placeholder else date.fromordinal(_EPOCH_ORDINAL + arrival),
        None if placeholder else date.fromordinal(_EPOCH_ORDINAL + arrival + nights),
        nights, guests, guest[4], guest[5], total if paid else None, Decimal("0.00") if paid else None,
        _PLACES[(f.listing.h >> 9) % len(_PLACES)][6].decode(), _utc(f.created_s),
    )  # fmt: skip


def truth_properties(account: HostawayAccount) -> Iterator[tuple[Any, ...]]:
    """The canonical values of every live listing, by id (from a snapshot of the state)."""
    table = account.listings.copy()
    for i in range(table.total):
        if i not in table.deleted:
            yield listing_truth(account.listing_fields(i, table))


def truth_reservations(account: HostawayAccount) -> Iterator[tuple[Any, ...]]:
    table = account.reservations.copy()
    for j in range(table.total):
        if j not in table.deleted:
            yield reservation_truth(account.reservation_fields(j, table))
