"""Every connector against recorded traffic: a daemon's sync of a simulator account is
recorded at the transport, then replayed with no server at all into another integration,
which must end with the very same rows. A request the recording never saw fails the run.

Partner-neutral: it runs for every partner with a connector and a simulator profile, and
for each API version its connector declares.
Replay exercises everything above the wire (auth, limits, retries, decompression,
pagination, adapters, the store) against bytes that no longer depend on the simulator,
so a connector change that alters its traffic or its reading of it shows here.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from syncd.app import Daemon
from syncd.connectors import registry
from syncd.http.recording import RecordingTransport, ReplayTransport
from syncd.http.transport import Transports
from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions, discover
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.resources import RESOURCES
from tests.support import daemon_config, db_rows, integration, settings_of, simulated_partner

pytestmark = pytest.mark.anyio

# Partners that sync resources (a lock provider's pushes: tests/integration/test_lock_recording.py).
PARTNERS = sorted(p for p in set(discover()) & set(registry.partners()) if registry.partners()[p].resources)
VERSIONS = [(p, v) for p in PARTNERS for v in registry.partners()[p].versions]
LISTINGS = 250


async def stored(database_url: str, integration_id: str, table: str) -> dict[str, tuple[Any, ...]]:
    rows = await db_rows(
        database_url,
        f"SELECT external_id, raw, raw_type, version, deleted_at FROM {table} WHERE integration_id = $1",
        integration_id,
    )
    return {r["external_id"]: tuple(r)[1:] for r in rows}


@pytest.mark.parametrize(("partner", "version"), VERSIONS)
async def test_a_recorded_sync_replays_offline_to_the_same_rows(
    partner: str, version: str, database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile(partner)
    account_id, secret = profile.credentials(1)
    sim.add_account(partner, account_id, secret, profile.dataset(5, LISTINGS, DatasetOptions()))
    resources = sorted(registry.partners()[partner].resources)
    credentials = profile.config_credentials(account_id, secret)
    cassette = tmp_path / f"{partner}.jsonl"

    def document(integration_id: str, partner_settings: dict[str, Any]) -> dict[str, Any]:
        pinned = integration(integration_id, partner, credentials, resources)
        pinned["api_version"] = version
        return daemon_config(
            database_url, {partner: partner_settings}, [pinned], state_dir=tmp_path / integration_id
        )

    def recorder(name: str, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return RecordingTransport(inner, cassette)

    async with SimulatorServer(sim) as server:
        settings = simulated_partner(server, partner, max_attempts=1)
        await Daemon(
            settings_of(document("live", settings)), once=True, transports=Transports(wrap=recorder)
        ).run()
    lines = [orjson.loads(line) for line in cassette.read_bytes().splitlines()]
    recorded = "".join(
        f"{x['headers']}{x['body']}{base64.b64decode(x['response']).decode(errors='replace')}" for x in lines
    )
    leaked = [token for token in sim.issued_credentials() if token in recorded]
    assert not leaked, f"{len(leaked)} live credentials written to the recording"
    # The simulator is gone: replay alone answers, at the same (now closed) URLs.
    replay = ReplayTransport(cassette)
    offline = Transports(wrap=lambda name, inner: replay)
    await Daemon(settings_of(document("replayed", settings)), once=True, transports=offline).run()

    assert replay.replayed > 0
    for resource in resources:
        table = RESOURCES[resource].table
        live = await stored(database_url, "live", table)
        assert live, f"the live sync stored no {resource}"
        assert await stored(database_url, "replayed", table) == live

    # A second run asks for what the recording never held where its checkpoint moved on
    # (a walk that restarts from the beginning each run asks the same again, and may pass).
    # A queue partner's position is the partner's (what it was not acknowledged), not a
    # checkpoint: the same requests replay the same answers.
    if registry.partners()[partner].queue:
        return
    again = ReplayTransport(cassette)
    await Daemon(
        settings_of(document("replayed", settings)), once=True, transports=Transports(wrap=lambda n, i: again)
    ).run()
    failed = await db_rows(
        database_url,
        "SELECT st.last_error FROM schedules s JOIN sync_state st USING (integration_id, resource)"
        " WHERE s.integration_id = 'replayed' AND s.last_outcome = 'failed'",
    )
    assert failed and all("no recorded response" in (r[0] or "") for r in failed), failed
