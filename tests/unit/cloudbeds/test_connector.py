"""The Cloudbeds connector against the dataset over loopback HTTP: full and incremental
runs hold exactly the ground truth, records changing during a walk are never skipped, a
run resumes from any page's checkpoint, and ``success: false`` is never an empty page."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from syncd import errors
from syncd.config import ResourceSettings
from syncd.connectors.base import Page
from syncd.connectors.cloudbeds.connector import CloudbedsConnector, _head
from syncd.simulator.profiles.cloudbeds.data import CloudbedsAccount
from tests.unit.cloudbeds.loopback import Served, pages, serving
from tests.unit.cloudbeds.truth import truth_properties, truth_reservations

pytestmark = pytest.mark.anyio
Rows = dict[str, tuple[Any, ...]]


def apply(connector: CloudbedsConnector, resource: str, got: list[Page], rows: Rows) -> Rows:
    """What the store does with pages: last write wins by ``source_updated_at``."""
    normalize = connector.normalizer(resource)
    for page in got:
        for raw in page.records:
            values = normalize(raw)
            old = rows.get(values[0])
            if old is None or old[1] <= values[1]:
                rows[values[0]] = values
    return rows


async def sweep(connector: CloudbedsConnector, resource: str, rows: Rows) -> None:
    """The deletion sweep: ids no longer listed are confirmed gone by ``fetch_one``."""
    live_ids = connector.live_ids(resource)
    assert live_ids is not None
    live = {i async for ids in live_ids for i in ids}
    for gone in set(rows) - live:
        assert await connector.fetch_one(resource, gone) is None
        del rows[gone]


def without_fetch_time(rows: Rows) -> Rows:
    return {k: (v[0], None, *v[2:]) for k, v in rows.items()}


def ids(got: list[Page]) -> list[str]:
    return [str(_head(r).reservationID) for p in got for r in p.records]


async def test_a_full_run_then_incremental_runs_hold_the_ground_truth() -> None:
    account = CloudbedsAccount(seed=11, listings=350, reservations_per_listing=2)
    async with serving(Served(account)) as connector:
        properties = apply(connector, "properties", await pages(connector, "properties", None), {})
        first = await pages(connector, "reservations", None)
        assert len(ids(first)) == len(set(ids(first))) == 700  # each once
        rows = apply(connector, "reservations", first, {})
        assert without_fetch_time(properties) == truth_properties(account)
        assert rows == truth_reservations(account)
        checkpoint = first[-1].checkpoint
        assert checkpoint["before"] is None and None not in checkpoint["marks"].values()  # complete
        for round_ in range(3):
            account.mutate(60, seed=round_)
            apply(connector, "properties", await pages(connector, "properties", None), properties)
            await sweep(connector, "properties", properties)
            got = await pages(connector, "reservations", checkpoint, overlap_s=5)
            assert len(ids(got)) < 300  # incremental: the window, not the account
            apply(connector, "reservations", got, rows)
            checkpoint = got[-1].checkpoint
            assert without_fetch_time(properties) == truth_properties(account)
            assert rows == truth_reservations(account)


async def test_records_changing_during_a_walk_skip_nothing() -> None:
    """Newest first, numbered pages would shift under edits; anchored requests do not."""
    account = CloudbedsAccount(seed=5, listings=60, reservations_per_listing=20)  # one zone batch or so
    changed: list[str] = []
    gone: list[str] = []  # properties disconnected mid-walk: their reservations are not served

    def between_pages(method: str, n: int) -> None:
        if method == "getReservations" and n in (2, 4, 6):
            m = account.mutate(40, seed=n)
            changed.extend(m.updated + m.canceled + m.inserted)
            gone.extend(m.hotels_deleted)

    def served(rows: Rows) -> Rows:
        return {k: v for k, v in rows.items() if v[2] not in gone}

    async with serving(Served(account, before=between_pages)) as connector:
        await connector.check_access()
        first = await pages(connector, "reservations", None)
        seen = set(ids(first))
        untouched = set(served(truth_reservations(account))) - set(changed)
        assert untouched <= seen
        rows = apply(connector, "reservations", first, {})
        rows = apply(
            connector, "reservations", await pages(connector, "reservations", first[-1].checkpoint, 5), rows
        )
        assert served(rows) == served(truth_reservations(account))


async def test_a_run_resumes_from_any_page_s_checkpoint() -> None:
    account = CloudbedsAccount(seed=3, listings=240, reservations_per_listing=3)
    async with serving(Served(account)) as connector:
        whole = await pages(connector, "reservations", None)
        assert len(whole) > 6
        for cut in (1, 3, len(whole) // 2):
            resumed = await pages(connector, "reservations", whole[cut - 1].checkpoint)
            assert set(ids(whole[:cut])) | set(ids(resumed)) == set(truth_reservations(account))
            assert not set(ids(whole[:cut])) & set(ids(resumed))  # no page read twice


async def test_silent_edits_are_found_by_the_periodic_full_walk() -> None:
    """``dateModified`` "may not reflect some modifications": incremental runs miss them,
    the run after ``full_resync_interval_s`` walks everything and finds them."""
    account = CloudbedsAccount(seed=9, listings=600, reservations_per_listing=2)
    async with serving(Served(account)) as connector:
        first = await pages(connector, "reservations", None)
        rows = apply(connector, "reservations", first, {})
        silent = account.mutate(200, seed=1, silent=True).silent
        assert silent
        hourly = ResourceSettings(overlap_s=1, full_resync_interval_s=3600)
        incremental = await pages(connector, "reservations", first[-1].checkpoint, settings=hourly)
        apply(connector, "reservations", incremental, rows)
        truth = truth_reservations(account)
        stale = [i for i in silent if i in truth and rows[i] != truth[i]]
        assert stale  # missed by the incremental run (their timestamp did not move) ...
        due = ResourceSettings(overlap_s=1, full_resync_interval_s=1e-6)
        full = await pages(connector, "reservations", incremental[-1].checkpoint, settings=due)
        apply(connector, "reservations", full, rows)
        assert all(rows[i] == truth[i] for i in stale)  # ... and found by the full one
        assert full[-1].checkpoint["full_at"] > first[-1].checkpoint["full_at"]


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("User who approved this connection is not active anymore", errors.AuthFailed),
        ("Invalid value for status", errors.PartnerRejected),
    ],
)
async def test_success_false_is_the_partner_s_error_not_an_empty_page(
    message: str, error: type[errors.PartnerError]
) -> None:
    body = orjson.dumps({"success": False, "message": message})
    account = CloudbedsAccount(seed=1, listings=3)
    served = Served(account, body=lambda method: body if method == "getReservations" else None)
    async with serving(served) as connector:
        with pytest.raises(error):
            await pages(connector, "reservations", None)


async def test_every_request_names_its_properties_and_stays_within_page_limits() -> None:
    account = CloudbedsAccount(seed=2, listings=450, reservations_per_listing=1)
    served = Served(account)
    async with serving(served) as connector:
        await pages(connector, "reservations", None)
    listed = [p for m, p in served.calls if m == "getReservations"]
    assert listed and all(p["propertyID"] and len(p["propertyID"].split(",")) <= 100 for p in listed)
    assert all(int(p["pageSize"]) <= 100 for _, p in served.calls)


async def test_fetch_one_returns_the_record_or_none_once_not_served() -> None:
    account = CloudbedsAccount(seed=4, listings=20, reservations_per_listing=2)
    truth = truth_reservations(account)
    async with serving(Served(account)) as connector:
        some = sorted(truth)[5]
        raw = await connector.fetch_one("reservations", some)
        assert raw is not None
        assert connector.normalizer("reservations")(raw) == truth[some]
        prop = sorted(truth_properties(account))[2]
        raw = await connector.fetch_one("properties", prop)
        assert raw is not None and connector.external_id("properties", raw) == prop
        gone = account.mutate(40, seed=3).hotels_deleted
        assert gone and await connector.fetch_one("properties", gone[0]) is None
        theirs = next(r for r, values in truth.items() if values[2] == gone[0])
        assert await connector.fetch_one("reservations", theirs) is None  # disconnected


async def test_a_property_list_changing_on_every_page_is_still_read_to_its_end() -> None:
    """A busy account's list may change faster than it can be read: after one restart the
    walk goes to the end anyway (what a shift hid comes next run), so reservations, which
    need the property map, still sync."""
    account = CloudbedsAccount(seed=5, listings=350, reservations_per_listing=1)

    def churn(method: str, n: int) -> None:
        if method == "getHotels":
            account.hotels += 1  # a property joins the account: the total moves

    async with serving(Served(account, before=churn)) as connector:
        listed = await pages(connector, "properties", None)
        reservations = await pages(connector, "reservations", None)
    assert sum(len(p.records) for p in listed) >= 350
    assert ids(reservations)


async def test_a_walk_keeps_its_batches_when_the_property_map_is_rebuilt_under_it() -> None:
    """A properties run (or the map's expiry) rebuilds the property map in place while a
    reservations walk is between pages; the walk goes on over the batches it started with
    (the map shrank: indexing the new one ran past its end) and the next run starts over
    on the new map."""
    account = CloudbedsAccount(seed=5, listings=60, reservations_per_listing=1)
    async with serving(Served(account, batch=10)) as connector:
        walk = connector.stream("reservations", None, ResourceSettings(overlap_s=0))
        first = await anext(walk)
        started_on = first.checkpoint["hotels"]
        # Most properties leave the account; a properties run rebuilds the map mid-walk.
        account.hotels_gone.update(range(5, 60))
        await pages(connector, "properties", None)
        rest = [page async for page in walk]
        assert all(page.checkpoint["hotels"] == started_on for page in rest)
        again = await pages(connector, "reservations", rest[-1].checkpoint)
        assert again[-1].checkpoint["hotels"] != started_on
