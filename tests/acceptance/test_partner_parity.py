"""Every partner, one promise: a full sync of 10,000 listings and their reservations, then
an incremental sync after inserts, edits and deletions, through 10 % faulted requests,
ends equal to the partner's ground truth.

Partner-neutral: it runs for every partner that has both a connector (the registry) and
a simulator profile, and for each API version the partner's connector declares (pinned
with ``api_version``; the truth is the records as that version renders them), through the
real daemon (``run --once``), over loopback HTTP, into PostgreSQL. A partner joins by
shipping those two packages; nothing here names one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from syncd.app import Daemon
from syncd.connectors import registry
from syncd.simulator import fault_presets, limits
from syncd.simulator.profile import DatasetOptions, discover
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.resources import RESOURCES
from tests.support import (
    assert_table_matches,
    daemon_config,
    db_rows,
    integration,
    settings_of,
    simulated_partner,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# Partners that sync resources (a push-only partner, a lock provider, has its own tests).
PARTNERS = sorted(p for p in set(discover()) & set(registry.partners()) if registry.partners()[p].resources)
VERSIONS = [(p, v) for p in PARTNERS for v in registry.partners()[p].versions]
LISTINGS = int(os.environ.get("SYNCD_TEST_PARITY_LISTINGS", "10000"))
MUTATIONS = 300
FAULT_PERCENT = 10
MAX_RUNS = 8


def truth(
    sim: Simulator, partner: str, account_id: str, resource: str, version: str
) -> list[tuple[str, Any]]:
    lines = sim.profile(partner).version_truth(sim.account(account_id), resource, version)
    records = [orjson.loads(line) for chunk in lines for line in chunk.splitlines() if line.strip()]
    return [(str(r["id"]), r["payload"]) for r in records]


async def sync_until_done(
    settings: dict[str, Any], database_url: str, integration_id: str, resources: int
) -> int:
    """Run-once daemons until every resource's last run succeeded (a faulted run may use up
    its retries, as in production; the next one resumes from its checkpoint)."""
    for n in range(1, MAX_RUNS + 1):
        await Daemon(settings_of(settings), once=True).run()
        rows = await db_rows(
            database_url,
            "SELECT count(*) FROM schedules WHERE integration_id = $1 AND last_outcome = 'ok'",
            integration_id,
        )
        if rows[0][0] == resources:
            return n
    raise AssertionError(f"not every resource synced after {MAX_RUNS} runs")


@pytest.mark.parametrize(("partner", "version"), VERSIONS)
async def test_full_then_incremental_sync_through_faults_equals_the_truth(
    partner: str, version: str, database_url: str, tmp_path: Path
) -> None:
    if registry.partners()[partner].queue:
        # Its records leave the partner once acknowledged, in the partner's own format and
        # pace: no list to re-read and compare as JSON. Its own acceptance test drains
        # such a queue through the same faults (tests/acceptance/test_queue_partner_drain.py).
        pytest.skip(f"{partner} is a queue partner (PartnerInfo.queue): held to its truth by its drain test")
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile(partner)
    account_id, secret = profile.credentials(1)
    sim.add_account(partner, account_id, secret, profile.dataset(7, LISTINGS, DatasetOptions()))
    sim.set_faults(fault_presets.dirty_network(FAULT_PERCENT, accounts=(account_id,), seed=3))
    # Listings and reservations: date-windowed child resources (a calendar: one request per
    # listing, a year of rows each) are held to their truth at a size they can afford, by
    # their partner's own tests (tests/integration/hostaway/test_calendar.py).
    resources = sorted(registry.partners()[partner].resources & {"properties", "reservations"})

    async with SimulatorServer(sim) as server:
        partner_settings = simulated_partner(server, partner, read_timeout_s=0.5)  # hangs wait 60 s
        pinned = integration("parity", partner, profile.config_credentials(account_id, secret), resources)
        pinned["api_version"] = version
        document = daemon_config(database_url, {partner: partner_settings}, [pinned], state_dir=tmp_path)
        document["daemon"]["retry_failed_after_s"] = 0
        await sync_until_done(document, database_url, "parity", len(resources))
        for resource in resources:
            await assert_table_matches(
                database_url,
                "parity",
                RESOURCES[resource].table,
                truth(sim, partner, account_id, resource, version),
            )

        summary = profile.mutate(sim.account(account_id), MUTATIONS, seed=11)
        await sync_until_done(document, database_url, "parity", len(resources))
        for resource in resources:
            await assert_table_matches(
                database_url,
                "parity",
                RESOURCES[resource].table,
                truth(sim, partner, account_id, resource, version),
            )

    faulted = sum(sim.request_log.fault_counters().values())
    assert faulted > 0, "no request was faulted: the test proved nothing about faults"
    assert summary, "the profile's mutation did nothing"
