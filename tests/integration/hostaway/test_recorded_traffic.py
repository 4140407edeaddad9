"""A Hostaway sync recorded from the simulator replays offline into the same rows, and a
request the recording never saw fails the run instead of being answered somehow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from syncd.connectors import registry
from syncd.crypto import Cipher, generate_key
from syncd.engine.runner import SyncRunner
from syncd.http.recording import RecordingTransport, ReplayTransport
from syncd.observability.metrics import Metrics
from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store
from tests.integration.http.scripted import partner_transport
from tests.support import daemon_config, db_rows, integration, settings_of, simulated_partner

pytestmark = pytest.mark.anyio

PARTNER = "hostaway"
RESOURCES = ("properties", "reservations")
# What the partner said, as stored; not when or by which integration it was stored.
_COMPARED = (
    "SELECT to_jsonb(t) - 'integration_id' - 'fetched_at' AS row FROM {table} t"
    " WHERE integration_id = $1 ORDER BY external_id"
)


@asynccontextmanager
async def synced_by(
    database_url: str, document: dict[str, Any], transport: httpx.AsyncBaseTransport
) -> AsyncIterator[SyncRunner]:
    """A runner over every integration of ``document``, its drivers on ``transport``."""
    settings = settings_of(document)
    async with Store.open(database_url) as store:
        tokens = CredentialStore(store, Cipher([generate_key()]))
        drivers = {}
        for integ in settings.integrations:
            await store.register_integration(integ.id, PARTNER, True, {r: (60.0, True) for r in RESOURCES})
            drivers[integ.id] = registry.build_connector(
                integ,
                settings.partner(PARTNER),
                transport=transport,
                tokens=tokens,
                metrics=Metrics(),
                log=structlog.get_logger(),
            )
        yield SyncRunner(store, drivers, settings, Metrics(), structlog.get_logger(), anyio.Event())


async def rows(database_url: str, integration_id: str) -> dict[str, list[str]]:
    return {
        table: [r[0] for r in await db_rows(database_url, _COMPARED.format(table=table), integration_id)]
        for table in RESOURCES
    }


async def test_a_recorded_sync_replays_offline_into_identical_rows(database_url: str, tmp_path: Path) -> None:
    cassette = tmp_path / "hostaway.jsonl"
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile(PARTNER)
    account_id, secret = profile.credentials(1)
    sim.add_account(PARTNER, account_id, secret, profile.dataset(5, 240, DatasetOptions()))
    credentials = profile.config_credentials(account_id, secret)

    def document(server: SimulatorServer, *ids: str) -> dict[str, Any]:
        partner = simulated_partner(server, PARTNER, page_size=50, max_attempts=1)
        integrations = [integration(i, PARTNER, credentials, RESOURCES) for i in ids]
        return daemon_config(database_url, {PARTNER: partner}, integrations, state_dir=tmp_path)

    async with SimulatorServer(sim) as server:
        recorder = RecordingTransport(partner_transport(), cassette)
        async with synced_by(database_url, document(server, "live"), recorder) as runner:
            assert [await runner.run("live", r) for r in RESOURCES] == ["ok", "ok"]
        await recorder.aclose()
        offline = document(server, "replayed", "unrecorded")
    # The simulator is gone: only the cassette answers now.
    replay = ReplayTransport(cassette)
    async with synced_by(database_url, offline, replay) as runner:
        assert [await runner.run("replayed", r) for r in RESOURCES] == ["ok", "ok"]
        assert replay.unused == 0
        with capture_logs() as logs:
            unrecorded = await runner.run("unrecorded", "properties")

    live, replayed = await rows(database_url, "live"), await rows(database_url, "replayed")
    assert len(live["properties"]) == 240 and len(live["reservations"]) == 480
    assert replayed == live
    assert unrecorded == "failed"
    failed = [e for e in logs if e["event"] == "sync_failed"]
    assert failed and "no recorded response" in str(failed[0]["error"])
    recorded = cassette.read_text()
    assert secret not in recorded and all(t not in recorded for t in sim.issued_credentials())
