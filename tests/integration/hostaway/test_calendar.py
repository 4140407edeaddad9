"""Hostaway's calendar end to end: the real daemon (``run --once``) over loopback HTTP
against the simulator profile, into PostgreSQL.

* a calendar sync of 200 listings x 60 days equals the simulator's truth;
* after calendar edits and reservation changes, the next run equals the truth again, and
  only the days that changed were written (the others kept their version and fetch time);
* through 10 % faulted requests it still ends equal;
* a run that dies mid-walk leaves a checkpoint after the last listing committed, and the
  next run resumes there instead of walking every listing again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from syncd.app import Daemon
from syncd.models import UNTIMED
from syncd.simulator import fault_presets, limits
from syncd.simulator.encoding import format_date
from syncd.simulator.faults import Fault, FaultContext
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import (
    assert_table_matches,
    daemon_config,
    db_rows,
    integration,
    settings_of,
    simulated_partner,
)

pytestmark = pytest.mark.anyio

PARTNER = "hostaway"
LISTINGS = 200
DAYS = 60


def account(listings: int = LISTINGS) -> tuple[Simulator, str, dict[str, str], Any]:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile(PARTNER)
    account_id, secret = profile.credentials(1)
    data = profile.dataset(3, listings, DatasetOptions())
    sim.add_account(PARTNER, account_id, secret, data)
    return sim, account_id, profile.config_credentials(account_id, secret), data


def config(server: SimulatorServer, database_url: str, credentials: dict[str, str], data: Any, tmp: Path,
           **partner: Any) -> dict[str, Any]:  # fmt: skip
    """A calendar-only integration whose window is the account's truth window."""
    first, days = data.calendar_window
    pinned = integration("cal", PARTNER, credentials, ("calendar",), sweep_every_s=None)
    pinned["resources"]["calendar"] |= {"window_start": format_date(first), "window_days": days}
    settings = simulated_partner(server, PARTNER, **partner)
    document = daemon_config(database_url, {PARTNER: settings}, [pinned], state_dir=tmp)
    document["daemon"]["retry_failed_after_s"] = 0
    return document


def truth(sim: Simulator, account_id: str) -> list[tuple[str, Any]]:
    lines = sim.profile(PARTNER).truth(sim.account(account_id), "calendar")
    return [(r["id"], r["payload"]) for r in map(orjson.loads, lines)]


async def assert_days_match(database_url: str, expected: list[tuple[str, Any]]) -> None:
    """The stored days of every listing the partner still has are exactly its days; a
    deleted listing's days stay as last seen (the calendar has no sweep)."""
    listings = {key.split(":")[0] for key, _ in expected}
    found = await db_rows(
        database_url, "SELECT external_id, raw FROM calendar_days WHERE integration_id = 'cal'"
    )
    stored = {r[0]: orjson.loads(r[1]) for r in found if r[0].split(":")[0] in listings}
    assert stored == dict(expected)


async def outcome(database_url: str) -> str:
    rows = await db_rows(database_url, "SELECT last_outcome FROM schedules WHERE integration_id = 'cal'")
    return str(rows[0][0])


async def rows(database_url: str) -> dict[str, tuple[Any, ...]]:
    found = await db_rows(
        database_url,
        "SELECT external_id, version, fetched_at, raw, status, price, source_updated_at"
        " FROM calendar_days WHERE integration_id = 'cal'",
    )
    return {r[0]: tuple(r)[1:] for r in found}


def calendar_requests(sim: Simulator) -> int:
    """Calendar requests answered 200 (the log keeps the route template, not the id)."""
    return sum(1 for e in sim.request_log.entries() if e.path.endswith("/calendar") and e.status == 200)


async def test_a_calendar_sync_equals_the_truth_and_a_rerun_writes_only_the_changed_days(
    database_url: str, tmp_path: Path
) -> None:
    sim, account_id, credentials, data = account()
    async with SimulatorServer(sim) as server:
        document = config(server, database_url, credentials, data, tmp_path)
        await Daemon(settings_of(document), once=True).run()
        assert await outcome(database_url) == "ok"
        expected = truth(sim, account_id)
        assert len(expected) == LISTINGS * DAYS
        await assert_table_matches(database_url, "cal", "calendar_days", expected)
        first = await rows(database_url)
        statuses = {r[3] for r in first.values()}
        assert {"available", "reserved", "unavailable"} <= statuses, statuses

        # Nothing changed: a second run reads every day again and writes none.
        await Daemon(settings_of(document), once=True).run()
        assert await rows(database_url) == first

        changes = sim.profile(PARTNER).mutate(data, 300, seed=5)
        assert changes["calendar_days_edited"] and changes["reservations_updated"]
        await Daemon(settings_of(document), once=True).run()
        assert await outcome(database_url) == "ok"
        after = truth(sim, account_id)
        await assert_days_match(database_url, after)

    second = await rows(database_url)
    changed = {k for k, payload in after if k in first and orjson.loads(first[k][2]) != payload}
    assert changed, "the mutations changed no day in the window"
    for key, (version, fetched_at, raw, *_rest) in second.items():
        if key not in first:
            continue  # a new listing's
        if key in changed:
            assert fetched_at != first[key][1]
        else:  # unchanged bytes: not written at all
            assert (version, fetched_at, raw) == first[key][:3], key
    # A changed price or status is a new version; every day has the untimed stamp.
    assert any(second[k][0] == 2 for k in changed)
    assert {r[5] for r in second.values()} == {UNTIMED}


async def test_a_calendar_sync_through_ten_percent_faults_equals_the_truth(
    database_url: str, tmp_path: Path
) -> None:
    sim, account_id, credentials, data = account(listings=120)
    sim.set_faults(fault_presets.dirty_network(10, accounts=(account_id,), seed=3))
    async with SimulatorServer(sim) as server:
        document = config(server, database_url, credentials, data, tmp_path, read_timeout_s=0.5)
        for _ in range(8):
            await Daemon(settings_of(document), once=True).run()
            if await outcome(database_url) == "ok":
                break
        assert await outcome(database_url) == "ok"
        sim.profile(PARTNER).mutate(data, 200, seed=7)
        for _ in range(8):
            await Daemon(settings_of(document), once=True).run()
            if await outcome(database_url) == "ok":
                break
        await assert_days_match(database_url, truth(sim, account_id))
    assert sum(sim.request_log.fault_counters().values()) > 0


@dataclass
class FailFrom:
    """Every calendar request from the ``nth`` (1-based) on fails with a 500."""

    nth: int
    seen: int = 0

    def decide(self, ctx: FaultContext) -> Fault | None:
        if ctx.role != "api" or not ctx.path.endswith("/calendar"):
            return None
        self.seen += 1
        return Fault(status=500, kind="e500") if self.seen >= self.nth else None


async def test_a_run_that_dies_mid_walk_resumes_after_the_last_listing_committed(
    database_url: str, tmp_path: Path
) -> None:
    sim, account_id, credentials, data = account()
    sim.set_faults(FailFrom(120))
    async with SimulatorServer(sim) as server:
        document = config(server, database_url, credentials, data, tmp_path, max_attempts=1)
        document["database"]["batch_size"] = DAYS * 10  # a batch commits every ten listings
        await Daemon(settings_of(document), once=True).run()
        assert await outcome(database_url) == "failed"
        [(checkpoint,)] = await db_rows(
            database_url, "SELECT checkpoint::text FROM sync_state WHERE integration_id = 'cal'"
        )
        after = orjson.loads(checkpoint)["after_parent"]
        served_before = calendar_requests(sim)
        assert served_before == 119  # listings 40000 to 40118, by id
        committed = int(after) - 40_000 + 1  # listings committed, in the walk's order
        assert 0 < committed <= served_before
        stored = await db_rows(
            database_url, "SELECT count(*) FROM calendar_days WHERE integration_id = 'cal'"
        )

        sim.set_faults(None)
        await Daemon(settings_of(document), once=True).run()
        assert await outcome(database_url) == "ok"
        resumed = calendar_requests(sim) - served_before
        await assert_table_matches(database_url, "cal", "calendar_days", truth(sim, account_id))

    # The second run asked only for the listings after the checkpoint.
    assert resumed == LISTINGS - committed
    assert stored[0][0] == committed * DAYS


@dataclass
class OnFirstCalendar:
    """The first calendar request is answered ``body`` instead."""

    body: bytes
    done: bool = False

    def decide(self, ctx: FaultContext) -> Fault | None:
        if self.done or ctx.role != "api" or not ctx.path.endswith("/calendar"):
            return None
        self.done = True
        return Fault(status=200, body=self.body, kind="drifted_days")


async def test_a_malformed_day_is_a_dead_letter_and_an_unknown_status_is_stored_as_other(
    database_url: str, tmp_path: Path
) -> None:
    sim, _, credentials, data = account(listings=3)
    first = format_date(data.calendar_window[0])
    days = [
        {"id": 1, "date": first, "status": "available", "price": 120, "minimumStay": 2},
        {"id": 2, "date": "2025-01-02", "status": "blocked", "price": "cheap", "minimumStay": 2},
        {"id": 3, "date": "2025-01-03", "status": "superBlocked", "price": 130, "minimumStay": 2},
    ]
    sim.set_faults(OnFirstCalendar(orjson.dumps({"status": "success", "result": days})))
    async with SimulatorServer(sim) as server:
        document = config(server, database_url, credentials, data, tmp_path)
        await Daemon(settings_of(document), once=True).run()
    assert await outcome(database_url) == "ok"
    stored = await db_rows(
        database_url,
        "SELECT external_id, status, partner_status FROM calendar_days"
        " WHERE integration_id = 'cal' AND external_id LIKE '40000:%' ORDER BY external_id",
    )
    assert [tuple(r) for r in stored] == [
        (f"40000:{first}", "available", "available"),
        ("40000:2025-01-03", "other", "superBlocked"),
    ]
    letters = await db_rows(
        database_url, "SELECT external_id, reason FROM dead_letters WHERE integration_id = 'cal'"
    )
    assert [r[0] for r in letters] == ["40000:2025-01-02"]
    assert "price" in letters[0][1]
    # The other listings' days are all there.
    [(others,)] = await db_rows(
        database_url, "SELECT count(*) FROM calendar_days WHERE external_id NOT LIKE '40000:%'"
    )
    assert others == 2 * DAYS
