"""A long-running daemon keeps a queue partner drained as bookings, modifications and
cancellations arrive: runs follow one another on the schedule, the connector (and its
pace) lives across them, and the database ends equal to the partner's truth."""

from __future__ import annotations

from pathlib import Path

import anyio
import orjson
import pytest

from syncd.app import Daemon
from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.profiles.booking_com.data import BookingAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import daemon_config, db_rows, integration, poll_until, settings_of, simulated_partner

pytestmark = pytest.mark.anyio

PARTNER = "booking_com"


async def test_a_running_daemon_keeps_the_queue_drained(database_url: str, tmp_path: Path) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile(PARTNER)
    account_id, secret = profile.credentials(1)
    data: BookingAccount = sim.add_account(
        PARTNER, account_id, secret, profile.dataset(1, 150, DatasetOptions())
    )
    async with SimulatorServer(sim) as server:
        partner = simulated_partner(server, PARTNER, queue_empty_poll_s=0.3, queue_ack_pause_s=0.05)
        pinned = integration("r", PARTNER, profile.config_credentials(account_id, secret), ["reservations"])
        pinned["resources"]["reservations"]["interval_s"] = 0.2
        document = daemon_config(database_url, {PARTNER: partner}, [pinned], state_dir=tmp_path)
        daemon = Daemon(settings_of(document))

        async def matches_truth() -> bool:
            if data.pending() != {"new": 0, "modified": 0}:
                return False
            rows = await db_rows(database_url, "SELECT external_id, raw FROM reservations")
            truth = {t["id"]: t["payload"].encode() for t in map(orjson.loads, profile.truth(data, None))}
            return {r["external_id"]: bytes(r["raw"]) for r in rows} == truth

        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            for round_no in range(4):
                with anyio.fail_after(30):
                    await poll_until(matches_truth, 0.1)
                data.mutate(30, seed=round_no)
            with anyio.fail_after(30):
                await poll_until(matches_truth, 0.1)
            daemon.stop.set()
    assert data.acks > 150 and data.redeliveries == 0
