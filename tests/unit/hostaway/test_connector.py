"""The Hostaway connector against the simulated dataset: full and incremental walks, changes
made during a walk, bulk edits larger than a page, single gets and the deletion sweep."""

from __future__ import annotations

import httpx
import pytest

from syncd import errors
from syncd.simulator.profiles.hostaway import data
from syncd.simulator.profiles.hostaway.records import LISTING_ID0, RESERVATION_ID0
from tests.unit.hostaway import oracle
from tests.unit.hostaway.simulated import Api, Store, connector, sync

pytestmark = pytest.mark.anyio
RESOURCES = ("properties", "reservations")


def truth(account: data.HostawayAccount, resource: str) -> dict[str, tuple[object, ...]]:
    rows = (
        oracle.truth_properties(account) if resource == "properties" else oracle.truth_reservations(account)
    )
    return {r[0]: r for r in rows}


@pytest.mark.parametrize("resource", RESOURCES)
async def test_a_full_then_an_incremental_sync_equal_the_ground_truth(resource: str) -> None:
    account = data.HostawayAccount(seed=3, listings=700, reservations_per_listing=2)
    api = Api(account)
    hostaway, store = connector(api), Store()
    checkpoint = await sync(hostaway, resource, store)
    assert store.rows == truth(account, resource)
    full_requests = len(api.requests)
    changes = account.mutate(300, seed=1)
    store.fetched = 0
    await sync(hostaway, resource, store, checkpoint)
    live = truth(account, resource)
    assert {k: v for k, v in store.rows.items() if k in live} == live
    if resource == "properties":  # deleted listings stay until the sweep
        assert set(store.rows) - set(live) == {str(i) for i in changes.listings_deleted} - set(live)
    # Incremental: the changes and the overlap window, not the account again.
    assert store.fetched < 400 and len(api.requests) - full_requests < 8


@pytest.mark.parametrize("resource", RESOURCES)
async def test_changes_made_during_a_walk_are_all_caught_by_the_next_run(resource: str) -> None:
    account = data.HostawayAccount(seed=5, listings=500, reservations_per_listing=2)
    rounds = iter(range(1_000))
    api = Api(account, before=lambda _: account.mutate(12, seed=next(rounds)))
    hostaway, store = connector(api, page_size=50), Store()
    checkpoint = await sync(hostaway, resource, store)
    api.before = None
    await sync(hostaway, resource, store, checkpoint)
    live = truth(account, resource)
    assert {k: v for k, v in store.rows.items() if k in live} == live


async def test_a_cursor_record_modified_mid_walk_forces_a_rescan_not_a_skip() -> None:
    account = data.HostawayAccount(seed=9, listings=100, reservations_per_listing=2)
    moved: list[int] = []

    def touch_the_cursor(request: httpx.Request) -> None:
        after = request.url.params.get("afterId")
        if after is not None and not moved:  # the record the cursor names is edited now
            moved.append(int(after))
            account.touch(reservation_ids=(int(after),))

    api = Api(account, before=touch_the_cursor)
    store = Store()
    await sync(connector(api, page_size=40), "reservations", store)
    assert moved and store.rows == truth(account, "reservations")
    restarts = [r for r in api.requests[1:] if "afterId" not in r.url.params]
    assert restarts  # the walk noticed and restarted at the anchor's second


@pytest.mark.parametrize("resource", RESOURCES)
async def test_a_bulk_edit_larger_than_a_page_is_walked_through_its_one_second_tie(resource: str) -> None:
    account = data.HostawayAccount(seed=11, listings=400, reservations_per_listing=2)
    hostaway, store = connector(Api(account), page_size=30), Store()
    checkpoint = await sync(hostaway, resource, store)
    if resource == "properties":
        account.touch(listing_ids=tuple(LISTING_ID0 + i for i in range(0, 400, 3)))
    else:
        account.touch(reservation_ids=tuple(RESERVATION_ID0 + j for j in range(0, 800, 5)))
    await sync(hostaway, resource, store, checkpoint)
    assert store.rows == truth(account, resource)


async def test_single_gets_return_the_record_or_none_once_deleted() -> None:
    account = data.HostawayAccount(seed=2, listings=50, reservations_per_listing=1)
    hostaway = connector(Api(account))
    deleted = account.mutate(60, seed=4).listings_deleted[0]
    assert await hostaway.fetch_one("properties", str(deleted)) is None
    raw = await hostaway.fetch_one("properties", str(LISTING_ID0 + 49))
    assert raw is not None and hostaway.normalizer("properties")(raw) == truth(account, "properties")["40049"]
    raw = await hostaway.fetch_one("reservations", str(RESERVATION_ID0 + 7))
    assert raw is not None and hostaway.external_id("reservations", raw) == str(RESERVATION_ID0 + 7)
    assert await hostaway.fetch_one("reservations", "99999999") is None


async def test_live_ids_list_every_live_listing_and_only_listings() -> None:
    account = data.HostawayAccount(seed=8, listings=230, reservations_per_listing=1)
    account.mutate(80, seed=2)
    hostaway = connector(Api(account), page_size=50)
    pages = hostaway.live_ids("properties")
    assert pages is not None
    ids = [i async for page in pages for i in page]
    assert ids == [v[0] for v in oracle.truth_properties(account)]
    assert hostaway.live_ids("reservations") is None


async def test_a_fail_status_on_a_200_is_a_refusal_not_data() -> None:
    body = b'{"status":"fail","result":"Listing is not found","message":"Listing is not found"}'
    hostaway = connector(lambda request: httpx.Response(200, content=body))
    with pytest.raises(errors.PartnerRejected, match="Listing is not found"):
        await hostaway.check_access()


async def test_check_access_is_one_small_authenticated_list_request() -> None:
    api = Api(data.HostawayAccount(seed=1, listings=5))
    await connector(api).check_access()
    [request] = api.requests
    assert request.url.path == "/v1/listings" and request.url.params["limit"] == "1"


async def test_a_listing_tie_group_that_shrinks_mid_walk_is_re_read_not_skipped() -> None:
    account = data.HostawayAccount(seed=12, listings=300, reservations_per_listing=0)
    hostaway, store = connector(Api(account), page_size=30), Store()
    checkpoint = await sync(hostaway, "properties", store)
    bulk = tuple(LISTING_ID0 + i for i in range(0, 300, 2))
    account.touch(listing_ids=bulk)  # 150 new versions in one second
    bulk_ms = account.listings.timestamp(0)
    edited: list[int] = []

    def edit_one_already_read(request: httpx.Request) -> None:
        query = data.parse_query("listings", dict(request.url.params))
        if query.lo_ms == bulk_ms and query.offset > 0 and not edited:
            [first] = account.listings.select(bulk_ms, bulk_ms + 1000, True, 0, 1)
            edited.append(first)
            account.touch(listing_ids=(LISTING_ID0 + first,))  # it leaves the tie group

    api = Api(account, before=edit_one_already_read)
    await sync(connector(api, page_size=30), "properties", store, checkpoint)
    assert edited and store.rows == truth(account, "properties")
