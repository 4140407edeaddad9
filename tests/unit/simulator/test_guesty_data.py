"""The Guesty dataset: determinism, payload shape, ties, queries, mutations, ground truth."""

from __future__ import annotations

import re
import time
import tracemalloc
from collections import Counter
from datetime import date, datetime
from typing import Any

import orjson
import pytest

from syncd.simulator import encoding
from syncd.simulator.profiles.guesty import render as guesty_render
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.profiles.guesty.query import ListQuery
from syncd.simulator.sparse import ALL_AFTER, ALL_BEFORE

OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LISTING_KEYS = {
    "_id",
    "title",
    "type",
    "accommodates",
    "bedrooms",
    "bathrooms",
    "timezone",
    "defaultCheckInTime",
    "defaultCheckOutTime",
    "pictures",
    "amenities",
    "active",
    "listed",
    "tags",
    "prices",
    "createdAt",
    "lastUpdatedAt",
    "isTest",
}
RESERVATION_KEYS = {
    "_id",
    "listingId",
    "status",
    "confirmationCode",
    "source",
    "checkIn",
    "checkOut",
    "checkInDateLocalized",
    "checkOutDateLocalized",
    "nightsCount",
    "guestsCount",
    "guest",
    "money",
    "createdAt",
    "lastUpdatedAt",
}
STATUSES = {"inquiry", "reserved", "confirmed", "canceled", "checked_in", "checked_out"}


def _page(account: GuestyAccount, **kw: Any) -> list[dict[str, Any]]:
    return [orjson.loads(r) for r in account.query_listings(ListQuery(**kw)).records]


def _ids(account: GuestyAccount, **kw: Any) -> list[str]:
    return [r["_id"] for r in _page(account, **kw)]


def _ms(value: str) -> int:
    return encoding.parse_iso_ms(value)


def test_same_seed_same_bytes_and_other_seed_differs() -> None:
    a, b, c = GuestyAccount(7, 500), GuestyAccount(7, 500), GuestyAccount(8, 500)
    q = ListQuery(by_timestamp=True, skip=100, limit=100)
    assert a.query_listings(q).records == b.query_listings(q).records
    assert a.query_reservations(q).records == b.query_reservations(q).records
    assert a.mutate(50, seed=3) == b.mutate(50, seed=3)
    assert list(a.truth_ndjson()) == list(b.truth_ndjson())
    assert a.listing_id(0) != c.listing_id(0)
    assert a.query_listings(q).records != c.query_listings(q).records


def test_ids_are_object_ids_unique_and_ordered_like_indexes() -> None:
    account = GuestyAccount(1, 3000)
    listing_ids = [account.listing_id(i) for i in range(3000)]
    reservation_ids = [account.reservation_id(j) for j in range(6000)]
    for ident in listing_ids + reservation_ids:
        assert OBJECT_ID.match(ident)
    assert len(set(listing_ids)) == 3000
    assert len(set(reservation_ids)) == 6000
    assert not set(listing_ids) & set(reservation_ids)
    assert listing_ids == sorted(listing_ids)
    assert reservation_ids == sorted(reservation_ids)
    assert _ids(account, limit=100, skip=2900) == listing_ids[2900:]


def test_listing_payload_has_guesty_shape() -> None:
    account = GuestyAccount(2, 400)
    sizes = []
    for raw in account.query_listings(ListQuery(limit=100, skip=200)).records:
        sizes.append(len(raw))
        listing = orjson.loads(raw)
        assert LISTING_KEYS <= set(listing)
        assert listing["type"] in ("SINGLE", "MTL")
        assert ISO_MS.match(listing["createdAt"]) and ISO_MS.match(listing["lastUpdatedAt"])
        assert listing["createdAt"] <= listing["lastUpdatedAt"]
        assert re.match(r"^\d\d:00$", listing["defaultCheckInTime"])
        assert 2 <= len(listing["pictures"]) <= 4
        assert {"_id", "original", "thumbnail", "caption"} <= set(listing["pictures"][0])
        assert all(OBJECT_ID.match(p["_id"]) for p in listing["pictures"])
        assert 10 <= len(listing["amenities"]) <= 16
        assert set(listing["prices"]) == {"basePrice", "currency", "cleaningFee"}
        assert isinstance(listing["accommodates"], int)
        if "address" in listing:
            assert isinstance(listing["address"]["lat"], float)
            assert {"full", "street", "city", "state", "zipcode", "country", "lng"} <= set(listing["address"])
    assert 800 <= sum(sizes) / len(sizes) <= 1800  # ≈ 1 KB per listing


def test_realistic_dirt_rates() -> None:
    account = GuestyAccount(3, 20_000)
    listings = [orjson.loads(account.render_listing(i)) for i in range(20_000)]
    no_address = sum("address" not in x for x in listings) / len(listings)
    no_nickname = sum("nickname" not in x for x in listings) / len(listings)
    assert 0.01 <= no_address <= 0.035
    assert 0.035 <= no_nickname <= 0.07
    assert any(not x["title"].isascii() for x in listings)
    assert len({x["title"] for x in listings}) > 500
    assert 0 < sum(x["isTest"] for x in listings) < 0.05 * len(listings)


def test_base_timestamps_tie_in_groups_that_cross_page_boundaries() -> None:
    account = GuestyAccount(4, 1000, reservations_per_listing=1)
    first = _page(account, by_timestamp=True, limit=100)
    second = _page(account, by_timestamp=True, skip=100, limit=100)
    # Indexes 98..104 share one timestamp: a group split between two pages of 100.
    assert first[-1]["lastUpdatedAt"] == second[0]["lastUpdatedAt"] == second[4]["lastUpdatedAt"]
    assert second[4]["lastUpdatedAt"] != second[5]["lastUpdatedAt"]
    stamps = Counter(x["lastUpdatedAt"] for x in first + second)
    assert sorted(Counter(stamps.values()).items()) == [(4, 1), (7, 28)]  # 200 = 28 groups of 7 + 4
    res = [
        orjson.loads(r) for r in account.query_reservations(ListQuery(by_timestamp=True, limit=10)).records
    ]
    assert [r["lastUpdatedAt"] for r in res].count(res[0]["lastUpdatedAt"]) == 5


def test_reservations_reference_listings_and_are_consistent() -> None:
    account = GuestyAccount(5, 300, reservations_per_listing=3)
    listing_ids = {account.listing_id(i) for i in range(300)}
    page = account.query_reservations(ListQuery(limit=100, skip=500))
    assert page.count == 900
    for raw in page.records:
        r = orjson.loads(raw)
        assert set(r) == RESERVATION_KEYS
        assert r["listingId"] in listing_ids
        assert r["status"] in STATUSES
        assert r["checkIn"] < r["checkOut"]
        nights = date.fromisoformat(r["checkOutDateLocalized"]) - date.fromisoformat(
            r["checkInDateLocalized"]
        )
        assert nights.days == r["nightsCount"]
        assert ISO_MS.match(r["checkIn"]) and r["createdAt"] <= r["lastUpdatedAt"]
        assert set(r["guest"]) == {"fullName", "email", "phone"}
        assert r["money"]["totalPaid"] + r["money"]["balanceDue"] > 0


def test_malformed_listings_are_served_broken_but_excluded_from_truth() -> None:
    account = GuestyAccount(6, 50, malformed_listings=frozenset({3, 10}))
    page = _page(account, limit=20)
    broken = [x for x in page if x["lastUpdatedAt"] == "not-a-date"]
    assert [x["_id"] for x in broken] == account.malformed_listing_ids()
    assert all(x["accommodates"] == "many" and OBJECT_ID.match(x["_id"]) for x in broken)
    truth_ids = [t.id for t in account.truth_listings()]
    assert len(truth_ids) == 48
    assert not set(truth_ids) & set(account.malformed_listing_ids())
    # Still filtered and sorted by their real (internal) timestamp.
    assert _ids(account, by_timestamp=True, limit=50)[3] == account.listing_id(3)
    with pytest.raises(ValueError):
        GuestyAccount(6, 50, malformed_listings=frozenset({50}))


def _expected(
    account: GuestyAccount, lo: int, hi: int, sort: str, descending: bool, skip: int, limit: int
) -> list[str]:
    rows = [t.payload for t in account.truth_listings()]
    rows = [r for r in rows if lo <= _ms(str(r["lastUpdatedAt"])) < hi]
    key = {
        "lastUpdatedAt": lambda r: (r["lastUpdatedAt"], r["_id"]),
        "_id": lambda r: r["_id"],
        "createdAt": lambda r: (r["createdAt"], r["_id"]),
    }[sort]
    ordered = sorted(rows, key=key, reverse=descending)
    return [str(r["_id"]) for r in ordered[skip : skip + limit]]


@pytest.mark.parametrize("sort", ["lastUpdatedAt", "_id", "createdAt"])
@pytest.mark.parametrize("descending", [False, True])
def test_filters_sort_and_skip_agree_with_the_truth(sort: str, descending: bool) -> None:
    account = GuestyAccount(9, 300)
    account.mutate(80, seed=1)
    base_max = account.listing_table.max_base_ts()
    windows = [
        (ALL_BEFORE, ALL_AFTER),
        (guesty_render.T0_MS + 5_000, ALL_AFTER),
        (guesty_render.T0_MS + 5_001, guesty_render.T0_MS + 20_000),
        (base_max - 3_000, ALL_AFTER),
        (base_max + 1, ALL_AFTER),
    ]
    by_ts = sort == "lastUpdatedAt"
    for lo, hi in windows:
        for skip, limit in ((0, 100), (13, 7), (95, 100), (290, 100)):
            got = _ids(
                account, lo_ms=lo, hi_ms=hi, by_timestamp=by_ts, descending=descending, skip=skip, limit=limit
            )
            assert got == _expected(account, lo, hi, sort, descending, skip, limit), (lo, hi, skip)
        count = account.query_listings(ListQuery(lo_ms=lo, hi_ms=hi)).count
        assert count == len(_expected(account, lo, hi, sort, False, 0, 10_000))


def test_incremental_checkpoint_paging_sees_every_record_once_despite_ties() -> None:
    """A client paging by `lastUpdatedAt >= checkpoint` and skipping the tie group it already has."""
    account = GuestyAccount(10, 1000)
    account.mutate(150, seed=2)
    seen: list[str] = []
    checkpoint, tied = ALL_BEFORE, 0
    while True:
        page = _page(account, lo_ms=checkpoint, by_timestamp=True, skip=tied, limit=100)
        seen.extend(x["_id"] for x in page)
        if len(page) < 100:
            break
        last = _ms(page[-1]["lastUpdatedAt"])
        same = sum(_ms(x["lastUpdatedAt"]) == last for x in page)
        tied = tied + same if last == checkpoint else same
        checkpoint = last
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(t.id for t in account.truth_listings())


def test_mutations_show_up_in_queries_truth_and_gets() -> None:
    account = GuestyAccount(11, 500)
    before = {t.id: t for t in account.truth_listings()}
    base_max = account.listing_table.max_base_ts()
    summary = account.mutate(300, seed=5)
    kinds = {
        "lu": len(summary.listings_updated),
        "li": len(summary.listings_inserted),
        "ld": len(summary.listings_deleted),
        "ru": len(summary.reservations_updated),
        "ri": len(summary.reservations_inserted),
    }
    assert 80 <= kinds["lu"] <= 125 and 25 <= kinds["li"] <= 65 and 15 <= kinds["ld"] <= 45
    assert 50 <= kinds["ru"] <= 95 and 15 <= kinds["ri"] <= 45
    after = {t.id: t for t in account.truth_listings()}
    for ident in (
        set(summary.listings_updated) - set(summary.listings_deleted) - set(summary.listings_inserted)
    ):
        old, new = before[ident], after[ident]
        assert new.version >= 2
        assert _ms(str(new.payload["lastUpdatedAt"])) > base_max
        changed = {
            k for k in ("title", "accommodates", "prices", "pictures") if old.payload[k] != new.payload[k]
        }
        assert changed, ident
        # Only a photo edit changes the pictures.
        assert "pictures" not in changed or ident in summary.listings_photos, ident
        assert orjson.loads(account.get_listing(ident) or b"null") == new.payload
    edited = set(summary.listings_photos) - set(summary.listings_deleted) - set(summary.listings_inserted)
    assert edited, "a quarter of the listing updates are photo edits"
    assert all(before[i].payload["pictures"] != after[i].payload["pictures"] for i in edited)
    for ident in summary.listings_deleted:
        assert ident not in after
        assert account.get_listing(ident) is None
        assert _ids(account, id_eq=ident) == []
    assert sorted(account.deleted_listing_ids()) == sorted(set(summary.listings_deleted))
    for ident in set(summary.listings_inserted) - set(summary.listings_deleted):
        assert after[ident].payload["createdAt"] == after[ident].payload["lastUpdatedAt"] or (
            after[ident].version > 1
        )
    # Exactly the changed listings are newer than every base record, grouped by shared stamps.
    changed_ids = (set(summary.listings_updated) | set(summary.listings_inserted)) - set(
        summary.listings_deleted
    )
    newer = _page(account, lo_ms=base_max + 1, by_timestamp=True, limit=100)
    newer += _page(account, lo_ms=base_max + 1, by_timestamp=True, limit=100, skip=100)
    assert {x["_id"] for x in newer} == changed_ids
    stamps = [x["lastUpdatedAt"] for x in newer]
    assert stamps == sorted(stamps)
    assert max(Counter(stamps).values()) >= 2
    reservations = {t.id: t for t in account.truth_reservations()}
    for ident in summary.reservations_updated:
        assert reservations[ident].version >= 2
        assert orjson.loads(account.get_reservation(ident) or b"null") == reservations[ident].payload


def test_reservation_update_changes_status_or_guests() -> None:
    account = GuestyAccount(12, 100)
    old = {t.id: t.payload for t in account.truth_reservations()}
    summary = account.mutate(100, seed=9)
    new = {t.id: t.payload for t in account.truth_reservations()}
    assert summary.reservations_updated
    statuses = set()
    for ident in summary.reservations_updated:
        assert (
            new[ident]["guestsCount"] != old[ident]["guestsCount"]
            or new[ident]["status"] != (old[ident]["status"])
        )
        statuses.add((old[ident]["status"], new[ident]["status"]))
    assert any(a != b for a, b in statuses)


def test_mutate_is_deterministic_and_depends_on_its_seed() -> None:
    a, b = GuestyAccount(13, 200), GuestyAccount(13, 200)
    assert a.mutate(40, seed=1) == b.mutate(40, seed=1)
    assert a.mutate(40, seed=1) != GuestyAccount(13, 200).mutate(40, seed=2)
    assert a.mutate(0, seed=1).first_ts is None


def test_mutation_timestamps_only_move_forward() -> None:
    account = GuestyAccount(14, 100)
    first = account.mutate(20, seed=1)
    second = account.mutate(20, seed=1)
    assert first.last_ts is not None and second.first_ts is not None
    assert _ms(second.first_ts) > _ms(first.last_ts)
    assert datetime.fromisoformat(first.last_ts).tzinfo is not None


def test_get_by_id_rejects_unknown_foreign_and_garbage_ids() -> None:
    account = GuestyAccount(15, 100)
    assert account.get_listing(account.listing_id(5)) == account.render_listing(5)
    assert account.get_listing(GuestyAccount(16, 100).listing_id(5)) is None
    assert account.get_listing(account.listing_id(100)) is None  # not inserted yet
    assert account.get_listing("not-an-id") is None
    assert account.get_listing("z" * 24) is None
    assert account.get_reservation(account.reservation_id(7)) is not None
    assert _ids(account, id_eq=account.listing_id(5)) == [account.listing_id(5)]


def test_id_only_projection_skips_rendering() -> None:
    account = GuestyAccount(17, 300)
    page = account.query_listings(ListQuery(fields=("_id",), limit=100, skip=200))
    assert [orjson.loads(r) for r in page.records] == [
        {"_id": account.listing_id(i)} for i in range(200, 300)
    ]
    titled = account.query_listings(ListQuery(fields=("title",), limit=2))
    assert [set(orjson.loads(r)) for r in titled.records] == [{"_id", "title"}] * 2


def test_million_listings_page_near_the_end_is_fast_and_small() -> None:
    tracemalloc.start()
    try:
        started = time.perf_counter()
        account = GuestyAccount(18, 1_000_000)
        account.mutate(1000, seed=1)
        for sort in (True, False):
            page = account.query_listings(ListQuery(by_timestamp=sort, skip=999_950, limit=100))
            assert page.count == account.live_listing_count()
            assert len(page.records) == 100
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000, peak  # a materialised dataset would need gigabytes
    assert elapsed < 5.0  # generous: the point is "not O(N)", which would take minutes here


def test_a_later_generation_rewrites_every_record_with_newer_timestamps() -> None:
    first = GuestyAccount(seed=5, listings=300)
    second = GuestyAccount(seed=5, listings=300, generation=1)
    old = {t.id: t for t in first.truth_listings()}
    new = {t.id: t for t in second.truth_listings()}
    assert old.keys() == new.keys()
    newest_old = max(str(t.payload["lastUpdatedAt"]) for t in old.values())
    for ident, record in new.items():
        assert record.version == 2 and old[ident].version == 1
        assert record.payload != old[ident].payload
        assert str(record.payload["lastUpdatedAt"]) > newest_old
        assert record.payload["createdAt"] == old[ident].payload["createdAt"]
    # Mutations of the new generation still come after every base record.
    summary = second.mutate(10, seed=1)
    assert summary.first_ts is not None and summary.first_ts > max(
        str(t.payload["lastUpdatedAt"]) for t in new.values()
    )
