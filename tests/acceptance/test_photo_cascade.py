"""Cascades end to end (issue 23, "photos fetched only for listings whose photos changed"):
simulator -> run-once daemon -> PostgreSQL, API calls counted at the simulator.

A listing sync notices changed photos by the list page's pictures digest and enqueues a
low-priority child task per such listing, in the batch's transaction; the child task reads
``GET /listings/{id}?fields=...pictures...`` and the photos table follows the partner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from syncd.app import Daemon
from syncd.config import Settings
from syncd.simulator import fault_presets, limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import assert_matches_truth, db_rows, guesty_config, settings_of

pytestmark = pytest.mark.anyio
ACCOUNT = ("acme", "guesty-acct-1", "sim-secret-1")
LISTINGS = 300


def simulator(listings: int = LISTINGS) -> Simulator:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account("guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=7, listings=listings))
    return sim


def photo_settings(
    server: SimulatorServer, database_url: str, tmp_path: Path, *, sweep_every_s: float | None = None
) -> Settings:
    document = guesty_config(server, database_url, [ACCOUNT], state_dir=tmp_path, sweep_every_s=sweep_every_s)
    # Syncing photos is what turns the cascade on; its own schedule does nothing.
    document["integrations"][0]["resources"]["photos"] = {"interval_s": 3600.0}
    document["partners"]["guesty"]["read_timeout_s"] = 0.5  # the hang fault waits for 60 s
    document["daemon"]["retry_failed_after_s"] = 0
    return settings_of(document)


def picture_requests(sim: Simulator) -> int:
    """Answered GET /listings/{id} requests that asked for pictures (the log keeps the path
    template, not the id: which listings were asked for shows in the child tasks)."""
    return sum(
        1
        for e in sim.request_log.entries(path="/guesty/v1/listings/{id}")
        if e.method == "GET"
        and "pictures" in (e.param("fields") or "").split()
        and e.status == 200
        and e.fault is None
    )


async def assert_photos_match(database_url: str, account: GuestyAccount) -> None:
    """The live photo rows are exactly the partner's pictures: ids, listing, position, the
    picture's bytes, and the columns read from them."""
    truth: dict[str, tuple[Any, ...]] = {}
    for line in account.truth_photos_ndjson():
        t = orjson.loads(line)
        p = t["payload"]
        truth[t["id"]] = (t["listing"], t["position"], p, p["original"], p.get("thumbnail"), p.get("caption"))
    rows = await db_rows(
        database_url,
        "SELECT external_id, property_external_id, position, raw, url, thumbnail_url, caption FROM photos"
        " WHERE integration_id = $1 AND deleted_at IS NULL",
        ACCOUNT[0],
    )
    stored = {
        r["external_id"]: (
            r["property_external_id"],
            r["position"],
            orjson.loads(r["raw"]),
            r["url"],
            r["thumbnail_url"],
            r["caption"],
        )
        for r in rows
    }
    missing, extra = sorted(truth.keys() - stored.keys()), sorted(stored.keys() - truth.keys())
    assert not missing and not extra, f"missing {missing[:3]}, extra {extra[:3]}"
    stale = [k for k in truth if stored[k] != truth[k]]
    assert not stale, f"{len(stale)} stale photos, e.g. {stale[:3]}"


async def child_tasks(database_url: str, after_id: int = 0) -> list[Any]:
    return await db_rows(
        database_url,
        "SELECT id, resource, priority, dedupe_key, params, state FROM tasks"
        " WHERE kind = 'child' AND id > $1 ORDER BY id",
        after_id,
    )


async def test_photos_are_fetched_only_for_listings_whose_photos_changed(
    database_url: str, tmp_path: Path
) -> None:
    sim = simulator()
    account = sim.account(ACCOUNT[1])
    live = [t.id for t in account.truth_listings()]
    async with SimulatorServer(sim) as server:
        settings = photo_settings(server, database_url, tmp_path)
        await Daemon(settings, once=True).run()

        # First sync: every listing is new, so every listing's photos are read, once.
        first = await child_tasks(database_url)
        assert len(first) == LISTINGS
        assert {r["state"] for r in first} == {"done"}
        assert {r["priority"] for r in first} == {30}  # Priority.LOW
        assert sorted(orjson.loads(r["params"])["ids"][0] for r in first) == sorted(live)
        assert picture_requests(sim) == LISTINGS
        await assert_photos_match(database_url, account)
        high = first[-1]["id"]

        # K listings get photo edits, M others edits of other fields only.
        photo_edited, other_edited = live[10:22], live[100:130]
        for listing_id in photo_edited:
            account.edit_listing(listing_id, photos=True)
        for listing_id in other_edited:
            account.edit_listing(listing_id, photos=False)
        sim.request_log.reset()
        await Daemon(settings, once=True).run()

        second = await child_tasks(database_url, high)
        assert len(second) == len(photo_edited)  # exactly K child tasks
        assert sorted(orjson.loads(r["params"])["ids"][0] for r in second) == sorted(photo_edited)
        assert picture_requests(sim) == len(photo_edited)  # exactly K calls
        await assert_photos_match(database_url, account)

    # The other edits reached the listings (the sync did see them), without a photo fetch.
    versions = await db_rows(
        database_url,
        "SELECT external_id, version, photos_fingerprint IS NOT NULL AS fingerprinted FROM properties",
    )
    by_id = {r["external_id"]: r["version"] for r in versions}
    assert all(by_id[i] == 2 for i in (*photo_edited, *other_edited))
    assert all(r["fingerprinted"] for r in versions)
    await assert_matches_truth(database_url, ACCOUNT[0], account)


async def test_photo_cascade_converges_to_the_truth_under_ten_percent_faults(
    database_url: str, tmp_path: Path
) -> None:
    """Random mutations (listings inserted, deleted, edited; photos added, removed and
    re-captioned) through a network that faults one request in ten: the photos table still
    ends equal to the partner's, deleted listings' photos included (deleted with them)."""
    sim = simulator(200)
    account = sim.account(ACCOUNT[1])
    sim.set_faults(fault_presets.dirty_network(10, paths=("/v1/*",), seed=3))
    async with SimulatorServer(sim) as server:
        settings = photo_settings(server, database_url, tmp_path, sweep_every_s=0.0)
        await converge(settings, database_url)
        await assert_photos_match(database_url, account)
        summary = account.mutate(80, seed=4)  # 7 deletions: within the sweep's allowance (10)
        assert summary.listings_photos and summary.listings_deleted
        await converge(settings, database_url)
        await assert_photos_match(database_url, account)
        faulted = [e for e in sim.request_log.entries(path="/guesty/v1/listings/{id}") if e.fault]
        assert faulted, "the photo requests went through the faults too"
    await assert_matches_truth(database_url, ACCOUNT[0], account)
    deleted = await db_rows(
        database_url,
        "SELECT count(*) FROM photos WHERE deleted_at IS NOT NULL AND property_external_id = ANY($1::text[])",
        list(summary.listings_deleted),
    )
    assert deleted[0][0] > 0


async def converge(settings: Settings, database_url: str) -> None:
    """Run-once daemons until every sync succeeded and no child task waits or died."""
    for _ in range(5):
        await Daemon(settings, once=True).run()
        synced = await db_rows(
            database_url,
            "SELECT count(*) FROM sync_state WHERE integration_id = $1 AND last_error IS NULL"
            " AND last_success_at IS NOT NULL",
            ACCOUNT[0],
        )
        open_children = await db_rows(
            database_url, "SELECT count(*) FROM tasks WHERE kind = 'child' AND state NOT IN ('done', 'lost')"
        )
        if synced[0][0] == 2 and open_children[0][0] == 0:
            return
    raise AssertionError("not converged after 5 runs")
