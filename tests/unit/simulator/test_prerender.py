"""Prerendered records: the same bytes as rendering on demand, for every query shape."""

from __future__ import annotations

import tracemalloc

import pytest

from syncd.simulator.prerender import PrerenderedRecords
from syncd.simulator.profiles.guesty import query as guesty_query
from syncd.simulator.profiles.guesty import render as guesty_render
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.profiles.guesty.query import ListQuery
from syncd.simulator.sparse import ALL_AFTER

QUERIES = [
    ListQuery(),
    ListQuery(by_timestamp=True, skip=0, limit=100),
    ListQuery(by_timestamp=True, skip=1_937, limit=100),  # the tail page: fewer than 100
    ListQuery(by_timestamp=True, descending=True, skip=250, limit=100),
    ListQuery(lo_ms=guesty_render.T0_MS + 40_000, hi_ms=ALL_AFTER, by_timestamp=True, skip=7, limit=60),
    ListQuery(skip=500, limit=100, fields=("_id", "title", "lastUpdatedAt")),
    ListQuery(skip=40, limit=100, fields=("_id",)),
]


def _pages(account: GuestyAccount) -> list[bytes]:
    pages = []
    for q in QUERIES:
        listed = account.query_listings(q)
        pages.append(guesty_query.render_page(listed.records, listed.count, q))
        booked = account.query_reservations(q)
        pages.append(guesty_query.render_page(booked.records, booked.count, q))
    for i in (0, 999, 2_036):
        pages.append(account.get_listing(account.listing_id(i)) or b"")
    return pages


@pytest.mark.parametrize("generation", [0, 1])
def test_prerendered_account_serves_the_same_bytes_as_rendering(generation: int) -> None:
    live = GuestyAccount(5, 2_037, reservations_per_listing=2, generation=generation)
    ahead = GuestyAccount(5, 2_037, reservations_per_listing=2, generation=generation)
    ahead.prerender()
    pages = _pages(live)
    assert _pages(ahead) == pages
    assert any(len(p) > 50_000 for p in pages)  # full 100-record pages were compared


def test_a_mutated_prerendered_account_serves_its_mutations() -> None:
    live, ahead = GuestyAccount(6, 800), GuestyAccount(6, 800)
    ahead.prerender()
    live.mutate(60, seed=3)
    summary = ahead.mutate(60, seed=3)
    assert summary.listings_updated and summary.listings_inserted
    assert _pages(ahead) == _pages(live)
    assert [t.payload for t in ahead.truth_listings()] == [t.payload for t in live.truth_listings()]


def test_records_come_back_by_index_in_any_order_and_past_the_end() -> None:
    def render(i: int) -> bytes:
        return b'{"i":%d,"pad":"%s"}' % (i, b"x" * (i % 37))

    store = PrerenderedRecords(10_000, render)
    assert store.nbytes == sum(len(render(i)) for i in range(10_000))
    shapes: tuple[list[int], ...] = (
        [],
        [0],
        [9_999],
        list(range(300, 400)),
        [402, 401, 400],
        [5, 9_000, 17],
        [9_998, 10_000, 12],
    )
    for indexes in shapes:
        assert store.get(indexes) == [render(i) for i in indexes]
    store.close()


def test_the_records_are_kept_off_the_heap() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = PrerenderedRecords(100_000, lambda i: b"%08d" % i * 100)  # 800 bytes each, 80 MB
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert store.nbytes == 80_000_000
    assert held < 2_000_000  # the offsets (8 bytes per record), not the records
    assert store.get([99_999]) == [b"%08d" % 99_999 * 100]
