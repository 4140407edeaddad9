"""End to end over loopback HTTP: simulator -> daemon (run-once) -> PostgreSQL -> ground truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.app import Daemon
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import assert_matches_truth, db_rows, guesty_config, settings_of, versions

pytestmark = pytest.mark.anyio
ACCOUNT = ("acme", "guesty-acct-1", "sim-secret-1")


def simulator(listings: int, malformed: frozenset[int] = frozenset()) -> Simulator:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account(
        "guesty",
        ACCOUNT[1],
        ACCOUNT[2],
        GuestyAccount(seed=7, listings=listings, malformed_listings=malformed),
    )
    return sim


async def test_full_sync_then_300_mutations_apply_exactly(database_url: str, tmp_path: Path) -> None:
    sim = simulator(5000)
    account = sim.account(ACCOUNT[1])
    async with SimulatorServer(sim) as server:
        settings = settings_of(guesty_config(server, database_url, [ACCOUNT], state_dir=tmp_path))
        await Daemon(settings, once=True).run()
        await assert_matches_truth(database_url, "acme", account)
        before = await versions(database_url, "acme")
        assert sum(1 for r, _ in before if r == "properties") == 5000
        assert sum(1 for r, _ in before if r == "reservations") == 10_000
        assert set(before.values()) == {1}

        summary = account.mutate(300, seed=1)
        await Daemon(settings, once=True).run()

    await assert_matches_truth(database_url, "acme", account)
    after = await versions(database_url, "acme")
    changed = {key for key, v in after.items() if before.get(key) != v}
    expected = {
        ("properties", i)
        for i in (*summary.listings_updated, *summary.listings_deleted, *summary.listings_inserted)
    } | {("reservations", i) for i in (*summary.reservations_updated, *summary.reservations_inserted)}
    # Photos are not synced here: a listing whose only edit was to its pictures keeps its
    # version (no canonical field changed; its raw copy is the new one).
    assert changed <= expected
    assert {i for _, i in expected - changed} <= set(summary.listings_photos)
    # Updated or deleted records moved by exactly one version, however often they changed.
    for key in changed & before.keys():
        assert after[key] == before[key] + 1
    for key in changed - before.keys():
        assert after[key] == 1
    deleted = await db_rows(
        database_url,
        "SELECT external_id FROM properties WHERE integration_id = 'acme' AND deleted_at IS NOT NULL",
    )
    assert {r[0] for r in deleted} == set(summary.listings_deleted)
    # One change event per real change, none for re-read overlap records.
    events = await db_rows(database_url, "SELECT kind, count(*) FROM events GROUP BY kind")
    counts = {r[0]: r[1] for r in events}
    assert counts["created"] == 15_000 + len(summary.listings_inserted) + len(summary.reservations_inserted)
    assert counts["deleted"] == len(summary.listings_deleted)
    # Records inserted or deleted in the same round show as created/deleted, not updated.
    updated_only = (
        set(summary.listings_updated) - set(summary.listings_inserted) - set(summary.listings_deleted)
    ) | (set(summary.reservations_updated) - set(summary.reservations_inserted))
    photos_only = {i for _, i in expected - changed}
    assert counts["updated"] == len(updated_only - photos_only)


async def test_malformed_listing_is_dead_lettered_and_its_page_saved(
    database_url: str, tmp_path: Path
) -> None:
    sim = simulator(300, malformed=frozenset({3, 250}))
    account = sim.account(ACCOUNT[1])
    async with SimulatorServer(sim) as server:
        settings = settings_of(guesty_config(server, database_url, [ACCOUNT], state_dir=tmp_path))
        await Daemon(settings, once=True).run()
    await assert_matches_truth(database_url, "acme", account)
    bad = set(account.malformed_listing_ids())
    letters = await db_rows(
        database_url, "SELECT external_id, error_class, reason, payload FROM dead_letters"
    )
    assert {r["external_id"] for r in letters} == bad
    # The reason names the offending partner field (the simulator breaks two of them).
    assert all(r["error_class"] == "data" for r in letters)
    assert all("$.accommodates" in r["reason"] or "$.lastUpdatedAt" in r["reason"] for r in letters)
    assert all('"not-a-date"' in r["payload"] for r in letters)  # the partner's exact bytes, kept
    saved = await db_rows(database_url, "SELECT count(*) FROM properties WHERE integration_id = 'acme'")
    assert saved[0][0] == 298  # every neighbour on the same pages


async def test_ten_restarts_request_one_token(database_url: str, tmp_path: Path) -> None:
    sim = simulator(50)
    async with SimulatorServer(sim) as server:
        settings = settings_of(guesty_config(server, database_url, [ACCOUNT], state_dir=tmp_path))
        for _ in range(10):
            await Daemon(settings, once=True).run()
        assert sim.request_log.count(path="/guesty/oauth2/token") == 1
        assert sim.request_log.count(path="/guesty/v1/listings") >= 10
    audit = await db_rows(database_url, "SELECT outcome FROM token_requests")
    assert [r[0] for r in audit] == ["ok"]


async def test_a_record_the_partner_always_serves_as_broken_json_is_isolated(
    database_url: str, tmp_path: Path
) -> None:
    """Its page never decodes, on any retry: fetched one record per request, the broken
    record becomes a dead letter and every neighbour is saved (not a run failing forever)."""
    sim = simulator(300)
    account = sim.account(ACCOUNT[1])
    account.broken_json = frozenset({5, 150})
    async with SimulatorServer(sim) as server:
        document = guesty_config(server, database_url, [ACCOUNT], state_dir=tmp_path, sweep_every_s=None)
        document["partners"]["guesty"]["max_attempts"] = 2
        await Daemon(settings_of(document), once=True).run()
        one_by_one = sum(
            1 for e in sim.request_log.entries(path="/guesty/v1/listings") if e.param("limit") == "1"
        )
    await assert_matches_truth(database_url, "acme", account)  # 298 listings, the broken two excluded
    letters = await db_rows(database_url, "SELECT external_id, reason, payload FROM dead_letters")
    assert len(letters) == 2
    assert all("\\u0000" in r["payload"] and "JSON is malformed" in r["reason"] for r in letters)
    # Named by the id found in the broken bytes: identifiable, and replayable once fixed.
    assert {r["external_id"] for r in letters} == {account.listing_id(5), account.listing_id(150)}
    assert 0 < one_by_one <= 2 * 101  # only the two broken pages went one record at a time
    outcomes = await db_rows(database_url, "SELECT resource, last_outcome FROM schedules")
    assert {r["last_outcome"] for r in outcomes} == {"ok"}
