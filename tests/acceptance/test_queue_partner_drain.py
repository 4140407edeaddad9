"""A queue partner's whole queue drained through 10 % faulted requests equals its truth.

Booking.com's reservations queue (``syncd/connectors/booking_com``): 10,000 reservations
waiting (``SYNCD_TEST_QUEUE_SIZE``), then a round of bookings, modifications and
cancellations, all drained by run-once daemons over loopback HTTP into PostgreSQL while
the simulator faults 10 % of the requests (RELIABILITY row 6's mix: 5xx, hangs, resets,
truncated and garbled bodies). The database must hold every reservation exactly as the
partner now renders it (its exact XML bytes), one row each; the deliberately broken ones
as dead letters, acknowledged with an error; and the queues must be empty: everything
was acknowledged, and only after it was committed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from syncd.app import Daemon
from syncd.simulator import fault_presets, limits
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.profiles.booking_com.data import BookingAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import daemon_config, db_rows, integration, settings_of, simulated_partner

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PARTNER = "booking_com"
SIZE = int(os.environ.get("SYNCD_TEST_QUEUE_SIZE", "10000"))
MUTATIONS = 300
BAD_EVERY = 97  # about 1 % rendered broken: dead letters, their neighbours saved
MAX_RUNS = 10


def truth(sim: Simulator, account_id: str) -> list[dict[str, Any]]:
    lines = sim.profile(PARTNER).truth(sim.account(account_id), "reservations")
    return [orjson.loads(line) for line in lines]


async def drain(document: dict[str, Any], data: BookingAccount) -> int:
    """Run-once daemons until both queues are empty (a faulted run may use up its retries,
    as in production; the next one goes on from the queue)."""
    for n in range(1, MAX_RUNS + 1):
        await Daemon(settings_of(document), once=True).run()
        if data.pending() == {"new": 0, "modified": 0}:
            return n
    raise AssertionError(f"queues not drained after {MAX_RUNS} runs: {data.pending()}")


async def assert_matches(database_url: str, sim: Simulator, account_id: str) -> None:
    expected = truth(sim, account_id)
    good = {t["id"]: t["payload"].encode() for t in expected if not t["bad"]}
    bad = {t["id"] for t in expected if t["bad"]}
    rows = await db_rows(
        database_url, "SELECT external_id, raw, raw_type FROM reservations WHERE integration_id = 'q'"
    )
    stored = {r["external_id"]: bytes(r["raw"]) for r in rows}
    assert len(rows) == len(stored), "a reservation has two rows"
    assert {r["raw_type"] for r in rows} == {"application/xml"}
    missing, extra = good.keys() - stored.keys(), stored.keys() - good.keys()
    assert not missing, f"{len(missing)} reservations missing, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} rows the partner does not have as good records: {sorted(extra)[:3]}"
    stale = [k for k, payload in good.items() if stored[k] != payload]
    assert not stale, f"{len(stale)} rows not byte-equal to the partner's reservation, e.g. {stale[:3]}"
    letters = await db_rows(
        database_url,
        "SELECT external_id FROM dead_letters WHERE integration_id = 'q' AND resolved_at IS NULL",
    )
    assert {r[0] for r in letters} == bad


async def test_a_faulted_drain_of_the_whole_queue_equals_the_truth(database_url: str, tmp_path: Path) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile(PARTNER)
    account_id, secret = profile.credentials(1)
    options = DatasetOptions(extra={"per_poll": 100, "bad_every": BAD_EVERY})
    data: BookingAccount = sim.add_account(PARTNER, account_id, secret, profile.dataset(7, SIZE, options))
    sim.set_faults(fault_presets.dirty_network(10, accounts=(account_id,), seed=3))
    async with SimulatorServer(sim) as server:
        partner = simulated_partner(
            server, PARTNER, read_timeout_s=0.5, queue_empty_poll_s=0, queue_ack_pause_s=0
        )
        pinned = integration("q", PARTNER, profile.config_credentials(account_id, secret), ["reservations"])
        document = daemon_config(database_url, {PARTNER: partner}, [pinned], state_dir=tmp_path)
        document["daemon"]["retry_failed_after_s"] = 0
        await drain(document, data)
        await assert_matches(database_url, sim, account_id)

        summary = profile.mutate(data, MUTATIONS, seed=11)
        assert summary["modified"] and summary["canceled"] and summary["booked"]
        await drain(document, data)
        await assert_matches(database_url, sim, account_id)

    bad = {int(t["id"]) for t in truth(sim, account_id) if t["bad"]}
    assert bad and data.error_acked == bad, "each dead letter is acknowledged with an error, only they are"
    faulted = sum(sim.request_log.fault_counters().values())
    assert faulted > 0, "no request was faulted: the test proved nothing about faults"
    canceled = await db_rows(
        database_url, "SELECT count(*) FROM reservations WHERE integration_id = 'q' AND status = 'canceled'"
    )
    expected = [t for t in truth(sim, account_id) if 'ResStatus="Cancel"' in t["payload"] and not t["bad"]]
    assert canceled[0][0] == len(expected) > 0
