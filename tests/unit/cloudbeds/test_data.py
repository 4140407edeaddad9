"""The Cloudbeds dataset: determinism, the documented query semantics, mutations, and
ground truth that the adapter reproduces from every record the dataset renders."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.connectors.cloudbeds import adapter, wire
from syncd.simulator.profiles.cloudbeds.data import CloudbedsAccount
from tests.unit.cloudbeds.truth import truth_properties, truth_reservations


def body(raw: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = orjson.loads(raw)
    return decoded


def ids_of(account: CloudbedsAccount, hotels: range) -> str:
    return ",".join(account.hotel(i).id for i in hotels)


def reservations(account: CloudbedsAccount, **params: str) -> dict[str, Any]:
    return body(account.get_reservations(params))


def hotels_of(account: CloudbedsAccount) -> dict[str, adapter.Local]:
    """The property map the connector builds, from the dataset's own getHotels pages."""
    out: dict[str, adapter.Local] = {}
    number = 1
    while items := body(account.get_hotels({"pageNumber": str(number), "pageSize": "100"}))["data"]:
        for item in items:
            out[item["propertyID"]] = adapter.local_of(wire.HOTEL.decode(orjson.dumps(item)))
        number += 1
    return out


def test_same_seed_same_bytes_and_ids_are_strings_holding_numbers() -> None:
    a, b = CloudbedsAccount(7, 50), CloudbedsAccount(7, 50)
    a.mutate(30, seed=1)
    b.mutate(30, seed=1)
    ids = ids_of(a, range(50))
    assert a.get_reservations({"propertyID": ids}) == b.get_reservations({"propertyID": ids})
    assert a.get_hotels({}) == b.get_hotels({})
    first = reservations(a, propertyID=ids)["data"][0]
    assert isinstance(first["reservationID"], str) and first["reservationID"].isdigit()
    assert isinstance(first["adults"], str)  # as documented
    assert CloudbedsAccount(8, 50).get_hotels({}) != a.get_hotels({})


def test_pages_are_numbered_from_one_and_capped_at_100() -> None:
    account = CloudbedsAccount(1, 120, reservations_per_listing=2)
    ids = ids_of(account, range(120))
    pages = [reservations(account, propertyID=ids, pageNumber=str(n), pageSize="100") for n in (1, 2, 3)]
    assert [(p["count"], p["total"]) for p in pages] == [(100, 240), (100, 240), (40, 240)]
    assert len({r["reservationID"] for p in pages for r in p["data"]}) == 240
    assert reservations(account, propertyID=ids, pageSize="500")["count"] == 100
    assert body(account.get_hotels({}))["count"] == 20  # getHotels' default page size


def test_requests_must_name_their_properties() -> None:
    account = CloudbedsAccount(1, 5)
    assert reservations(account) == {"success": False, "message": reservations(account)["message"]}
    assert not reservations(account, propertyID=ids_of(account, range(5)), pageNumber="0")["success"]
    only = reservations(account, propertyID=account.hotel(3).id)["data"]
    assert {r["propertyID"] for r in only} == {account.hotel(3).id}


def test_modified_bounds_are_inclusive_wall_times_and_sort_by_recent_is_newest_first() -> None:
    account = CloudbedsAccount(2, 90, reservations_per_listing=2)
    ids = ids_of(account, range(90))
    everything = reservations(account, propertyID=ids, sortByRecent="true")["data"]
    stamps = [r["dateModified"] for r in everything]
    pivot = everything[40]
    zone_of = {account.hotel(i).id: account.hotel(i).zone for i in range(90)}
    same_zone = [r for r in everything if zone_of[r["propertyID"]] == zone_of[pivot["propertyID"]]]
    subset = ",".join(sorted({r["propertyID"] for r in same_zone}))
    upto = reservations(account, propertyID=subset, modifiedTo=pivot["dateModified"], sortByRecent="true")
    assert all(r["dateModified"] <= pivot["dateModified"] for r in upto["data"])
    assert pivot["reservationID"] in {r["reservationID"] for r in upto["data"]}  # inclusive
    since = reservations(account, propertyID=subset, modifiedFrom=pivot["dateModified"])
    assert all(r["dateModified"] >= pivot["dateModified"] for r in since["data"])
    assert upto["total"] + since["total"] - len(
        [r for r in same_zone if r["dateModified"] == pivot["dateModified"]]
    ) == len(same_zone)
    truth = truth_reservations(account)
    instants = [truth[r["reservationID"]][1] for r in everything]
    assert instants == sorted(instants, reverse=True) and len(stamps) == 100


def test_mutations_move_timestamps_cancel_and_disconnect() -> None:
    account = CloudbedsAccount(3, 40, reservations_per_listing=3)
    before = truth_reservations(account)
    m = account.mutate(120, seed=2)
    after = truth_reservations(account)
    assert m.updated and m.inserted and m.canceled and m.hotels_inserted and m.hotels_renamed
    assert m.hotels_deleted
    for canceled in m.canceled:
        assert after[canceled][4] == "canceled" and after[canceled][1] > before[canceled][1]
    for hotel in m.hotels_deleted:  # its reservations are no longer served
        theirs = [r for r, values in after.items() if values[2] == hotel]
        assert all(account.get_reservation(r) is None for r in theirs)
    for changed in set(m.updated) & set(after) & set(before):
        assert after[changed][1] > before[changed][1]  # dateModified moved
    for new in m.inserted:
        assert new not in before and (new in after or account.get_reservation(new) is None)
    listed = {
        r["reservationID"]
        for r in reservations(account, propertyID=",".join(after_p for after_p in truth_properties(account)))[
            "data"
        ]
    }
    assert listed <= set(after)


def test_an_account_of_10000_listings_is_cheap_to_ask() -> None:
    account = CloudbedsAccount(5, 10_000, reservations_per_listing=2)
    page = reservations(account, propertyID=ids_of(account, range(9_900, 10_000)), sortByRecent="true")
    assert page["total"] == 200 and page["count"] == 100
    assert body(account.get_hotels({"pageNumber": "100", "pageSize": "100"}))["count"] == 100
    assert len(truth_reservations(account)) == 20_000 and len(truth_properties(account)) == 10_000


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 40), st.integers(0, 3), st.lists(st.integers(0, 99), max_size=3))
def test_every_rendered_record_normalizes_to_its_ground_truth(
    seed: int, listings: int, per_listing: int, mutations: list[int]
) -> None:
    account = CloudbedsAccount(seed, listings, per_listing)
    for n, rounds in enumerate(mutations):
        account.mutate(rounds, seed=n, silent=n % 2 == 1)
    hotels = hotels_of(account)
    truth = {k: v for k, v in truth_reservations(account).items() if v[2] in hotels}  # served
    if not hotels:  # every property deleted: there is nothing to ask reservations of
        assert truth == {} and truth_properties(account) == {}
        return
    listed = reservations(account, propertyID=",".join(hotels), pageSize="100")
    seen: dict[str, tuple[Any, ...]] = {}
    number = 1
    while listed["data"]:
        for item in listed["data"]:
            values = adapter.reservation_values(orjson.dumps(item), hotels)
            seen[values[0]] = values
        number += 1
        listed = reservations(account, propertyID=",".join(hotels), pageNumber=str(number))
    assert seen == truth
    for reservation_id in list(truth)[:5]:
        single = account.get_reservation(reservation_id)
        assert single is not None
        raw = orjson.dumps(body(single)["data"])
        assert adapter.reservation_values(raw, hotels) == truth[reservation_id]
    properties = truth_properties(account)
    assert set(hotels) == set(properties)
    for item in body(account.get_hotels({"pageSize": "100"}))["data"]:
        # The API has no update time for a property: the truth leaves it out (None).
        values = adapter.hotel_values(orjson.dumps(item), datetime(2026, 6, 1, tzinfo=UTC))
        assert (values[0], None, *values[2:]) == properties[item["propertyID"]]
