"""The simulated Hostaway dataset: deterministic, shaped as documented, answering the
documented list queries, mutable, and with a ground truth."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from syncd.simulator.profiles.hostaway import data
from syncd.simulator.profiles.hostaway.records import LISTING_ID0, RESERVATION_ID0
from syncd.simulator.sparse import ListQuery
from tests.unit.hostaway import oracle

TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def listings(account: data.HostawayAccount, **params: str) -> list[dict[str, Any]]:
    page, _ = account.query_listings(data.parse_query("listings", params))
    return [orjson.loads(r) for r in page]


def reservations(account: data.HostawayAccount, **params: str) -> list[dict[str, Any]]:
    page, _ = account.query_reservations(data.parse_query("reservations", params))
    return [orjson.loads(r) for r in page]


def keys(records: list[dict[str, Any]], field: str) -> list[tuple[str, int]]:
    return [(r[field], r["id"]) for r in records]


def test_same_seed_same_bytes_and_another_seed_other_data() -> None:
    a, b = data.HostawayAccount(4, 50), data.HostawayAccount(4, 50)
    a.mutate(40, seed=1)
    b.mutate(40, seed=1)
    q = data.parse_query("reservations", {"limit": "100"})
    assert a.query_reservations(q) == b.query_reservations(q)
    assert a.query_listings(ListQuery()) == b.query_listings(ListQuery())
    assert data.HostawayAccount(5, 50).query_listings(ListQuery()) != a.query_listings(ListQuery())


def test_records_have_the_documented_shape() -> None:
    account = data.HostawayAccount(1, 30)
    for listing in listings(account):
        assert type(listing["id"]) is int and TIME.match(listing["latestActivityOn"])
        assert listing["instantBookable"] in (0, 1) and isinstance(listing["listingImages"], list)
    for booking in reservations(account):
        assert type(booking["id"]) is int and type(booking["listingMapId"]) is int
        assert TIME.match(booking["updatedOn"]) and TIME.match(booking["reservationDate"])
        assert booking["isPaid"] in (0, 1) and booking["isDatesUnspecified"] in (0, 1)
        assert booking["status"] != "canceled"  # UK spelling only
    statuses = {b["status"] for b in reservations(data.HostawayAccount(2, 200), limit="400")}
    assert {"new", "modified", "cancelled", "inquiry", "ownerStay"} <= statuses


def test_listing_orders_by_id_by_default_and_by_latest_activity_on_request() -> None:
    account = data.HostawayAccount(3, 40)
    account.mutate(30, seed=2)
    by_id = [r["id"] for r in listings(account)]
    assert by_id == sorted(by_id) == [int(v[0]) for v in oracle.truth_properties(account)]
    ascending = keys(listings(account, sortOrder="latestActivity"), "latestActivityOn")
    assert ascending == sorted(ascending) and len(ascending) == len(by_id)
    assert keys(listings(account, sortOrder="latestActivityDesc"), "latestActivityOn") == ascending[::-1]


def test_reservations_are_newest_first_by_default_and_oldest_first_by_updated_on() -> None:
    account = data.HostawayAccount(3, 40)
    account.mutate(30, seed=2)
    ascending = keys(reservations(account, sortOrder="updatedOn"), "updatedOn")
    assert ascending == sorted(ascending) and len(ascending) == account.reservations.total
    assert keys(reservations(account), "updatedOn") == ascending[::-1]


def test_offset_pages_concatenate_to_the_whole_list() -> None:
    account = data.HostawayAccount(6, 95)
    whole = listings(account, sortOrder="latestActivity", limit="1000")
    pages = [
        listings(account, sortOrder="latestActivity", limit="20", offset=str(o)) for o in range(0, 95, 20)
    ]
    assert [r for page in pages for r in page] == whole


def test_latest_activity_bounds_are_inclusive_at_the_second_or_the_day() -> None:
    account = data.HostawayAccount(7, 70)  # 7 listings a second from 2025-01-01 00:00:00
    inside = listings(
        account, latestActivityStart="2025-01-01 00:00:02", latestActivityEnd="2025-01-01 00:00:03"
    )
    assert [r["id"] - LISTING_ID0 for r in inside] == list(range(14, 28))
    assert len(listings(account, latestActivityStart="2025-01-01", latestActivityEnd="2025-01-01")) == 70
    assert listings(account, latestActivityStart="2025-01-02") == []


def test_after_id_continues_after_that_record_in_the_requested_order() -> None:
    account = data.HostawayAccount(8, 30)
    whole = reservations(account, sortOrder="updatedOn", limit="1000")
    walked: list[dict[str, Any]] = []
    params = {"sortOrder": "updatedOn", "limit": "7"}
    while page := reservations(account, **params):
        walked += page
        params["afterId"] = str(page[-1]["id"])
    assert walked == whole
    newest_first = reservations(account, limit="1000")
    assert reservations(account, afterId=str(newest_first[9]["id"]), limit="5") == newest_first[10:15]


def test_after_id_follows_a_record_that_moved_and_ends_on_one_that_is_gone() -> None:
    account = data.HostawayAccount(8, 30)
    whole = reservations(account, sortOrder="updatedOn", limit="1000")
    cursor = whole[9]["id"]
    account.touch(reservation_ids=(cursor,))  # now the newest: the cursor jumps past everything
    assert reservations(account, sortOrder="updatedOn", afterId=str(cursor)) == []
    assert reservations(account, sortOrder="updatedOn", afterId="1") == []


@pytest.mark.parametrize(
    ("resource", "params"),
    [
        ("listings", {"sortOrder": "name"}), ("listings", {"afterId": "5"}), ("reservations", {"limit": "0"}),
        ("reservations", {"offset": "-1"}), ("reservations", {"latestActivityStart": "yesterday"}),
        ("reservations", {"afterId": "x"}), ("reservations", {"listingId": "40001"}),
    ],
)  # fmt: skip
def test_queries_outside_the_documented_ones_are_refused(resource: str, params: dict[str, str]) -> None:
    with pytest.raises(data.QueryError):
        data.parse_query(resource, params)


def test_mutations_move_update_times_and_deleted_listings_disappear() -> None:
    account = data.HostawayAccount(9, 60)
    before = {r["id"]: r for r in reservations(account, limit="1000")}
    newest = max(r["updatedOn"] for r in before.values())
    changes = account.mutate(80, seed=3)
    assert changes.listings_updated and changes.listings_deleted and changes.reservations_updated
    for ident in set(changes.reservations_updated) - set(changes.reservations_inserted):
        now = orjson.loads(account.get_reservation(ident) or b"null")
        assert now["updatedOn"] > newest and now != before[ident]
        assert now["status"] in ("modified", "cancelled")
    for ident in changes.listings_deleted:
        assert account.get_listing(ident) is None
    listed = {r["id"] for r in listings(account, limit="1000")}
    assert (
        listed.isdisjoint(changes.listings_deleted)
        and set(changes.listings_inserted) - set(changes.listings_deleted) <= listed
    )
    assert {r["id"] for r in reservations(account, limit="1000")} >= set(changes.reservations_inserted)


def test_a_bulk_edit_stamps_every_record_with_one_second() -> None:
    account = data.HostawayAccount(10, 20)
    account.touch(listing_ids=(LISTING_ID0, LISTING_ID0 + 5), reservation_ids=(RESERVATION_ID0 + 3,))
    stamped = {r["latestActivityOn"] for r in listings(account) if r["id"] in (LISTING_ID0, LISTING_ID0 + 5)}
    [second] = stamped
    assert reservations(account)[0]["updatedOn"] == second  # newest first


def test_the_envelope_carries_count_and_page_numbers() -> None:
    account = data.HostawayAccount(11, 45)
    q = data.parse_query("listings", {"limit": "20", "offset": "40"})
    page, count = account.query_listings(q)
    body = orjson.loads(data.list_body(page, count, q))
    assert body["status"] == "success" and len(body["result"]) == 5
    assert (body["count"], body["limit"], body["offset"], body["page"], body["totalPages"]) == (
        45,
        20,
        40,
        3,
        3,
    )
    assert orjson.loads(data.record_body(page[0])) == {"status": "success", "result": orjson.loads(page[0])}


def test_the_ground_truth_covers_every_live_record() -> None:
    account = data.HostawayAccount(12, 80, 3)
    changes = account.mutate(120, seed=5)
    truth_ids = {int(values[0]) for values in oracle.truth_properties(account)}
    assert truth_ids == {r["id"] for r in listings(account, limit="1000")}
    assert truth_ids.isdisjoint(changes.listings_deleted)
    assert sum(1 for _ in oracle.truth_reservations(account)) == account.reservations.total


def test_a_large_account_serves_any_page_without_materialising_it() -> None:
    account = data.HostawayAccount(13, 10_000, 2)
    page = reservations(account, sortOrder="updatedOn", offset="19950", limit="100")
    assert [r["id"] for r in page] == list(range(RESERVATION_ID0 + 19_950, RESERVATION_ID0 + 20_000))
