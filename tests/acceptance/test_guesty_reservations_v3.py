"""Guesty reservations on API v3 end to end (simulator -> daemon -> PostgreSQL): a rollout
moving an integration from legacy to v3 converges on v3's records (guest and money become
None), an unchanged walk writes nothing, edits land on the next run, and a deleted
reservation is swept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from syncd.app import Daemon
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import (
    assert_table_matches,
    daemon_config,
    db_rows,
    integration,
    settings_of,
    simulated_partner,
    versions,
)

pytestmark = pytest.mark.anyio
CLIENT_ID, SECRET = "guesty-acct-1", "sim-secret-1"


def truth(sim: Simulator, version: str) -> list[tuple[str, Any]]:
    lines = sim.profile("guesty").version_truth(sim.account(CLIENT_ID), "reservations", version)
    return [(r["id"], r["payload"]) for r in map(orjson.loads, lines)]


async def test_moving_to_v3_converges_and_unchanged_walks_write_nothing(
    database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    account = GuestyAccount(seed=9, listings=600)
    sim.add_account("guesty", CLIENT_ID, SECRET, account)
    async with SimulatorServer(sim) as server:
        acme = integration(
            "acme",
            "guesty",
            {"client_id": CLIENT_ID, "client_secret": SECRET},
            ("properties", "reservations"),
        )
        partner = simulated_partner(server, "guesty")
        document = daemon_config(database_url, {"guesty": partner}, [acme], state_dir=tmp_path)
        await Daemon(settings_of(document), once=True).run()
        await assert_table_matches(database_url, "acme", "reservations", truth(sim, "legacy"))
        guests = await db_rows(
            database_url, "SELECT count(guest_name) FROM reservations WHERE integration_id = 'acme'"
        )
        assert guests[0][0] == 1200

        # The partner's rollout at 100 % moves the integration to v3.
        partner["rollout"] = {"version": "v3", "percent": 100}
        await Daemon(settings_of(document), once=True).run()
        await assert_table_matches(database_url, "acme", "reservations", truth(sim, "v3"))
        rows = await db_rows(
            database_url,
            "SELECT count(*), count(guest_name), count(total_paid) FROM reservations"
            " WHERE integration_id = 'acme'",
        )
        assert tuple(rows[0]) == (1200, 0, 0)
        settled = await versions(database_url, "acme", ("reservations",))

        # A walk over unchanged reservations changes no row.
        await Daemon(settings_of(document), once=True).run()
        assert await versions(database_url, "acme", ("reservations",)) == settled

        # Edits land on the next walk; a reservation the partner deleted is swept.
        summary = account.mutate(100, seed=5)
        gone = account.reservation_id(3)
        account.reservation_table.delete(3, account.reservation_table.timestamp(3) + 1)
        await Daemon(settings_of(document), once=True).run()
        await assert_table_matches(database_url, "acme", "reservations", truth(sim, "v3"))
        after = await versions(database_url, "acme", ("reservations",))
        touched = {k for k, v in after.items() if settled.get(k) != v}
        expected = {
            ("reservations", i) for i in (*summary.reservations_updated, *summary.reservations_inserted)
        }
        assert touched == expected | {("reservations", gone)}
