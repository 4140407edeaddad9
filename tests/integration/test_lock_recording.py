"""The lock provider's driver against recorded traffic: a run-once daemon's pushes to the
Seam simulator are recorded at the transport, then replayed with no server at all for a
second lock integration following the same stays, which must end with the very same
journal (partner ids, states, times). The cassette never holds the PINs or the API key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.app import Daemon
from syncd.http.recording import RecordingTransport, ReplayTransport
from syncd.http.transport import Transports
from syncd.simulator.server import SimulatorServer
from syncd.store.postgres import Store
from tests.integration.engine.test_push_outbox import document, registered, seam_simulator, stay, write
from tests.support import db_rows, settings_of

pytestmark = pytest.mark.anyio


def renamed(doc: dict[str, Any], lock_id: str) -> dict[str, Any]:
    doc["integrations"][1]["id"] = lock_id
    return doc


async def journal(database_url: str, lock_id: str) -> list[tuple[Any, ...]]:
    rows = await db_rows(
        database_url,
        "SELECT reservation_id, device_id, partner_code_id, state, starts_at, ends_at FROM access_codes"
        " WHERE integration_id = $1 ORDER BY reservation_id",
        lock_id,
    )
    return [tuple(r) for r in rows]


async def test_recorded_pushes_replay_offline_to_the_same_journal(database_url: str, tmp_path: Path) -> None:
    sim = seam_simulator(settle_s=0.0)
    cassette = tmp_path / "seam.jsonl"

    def recorder(name: str, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return RecordingTransport(inner, cassette)

    async with SimulatorServer(sim) as server:
        live = renamed(document(server, database_url, tmp_path), "live")
        live["partners"]["seam"]["max_attempts"] = 1
        await registered(database_url, tmp_path)
        async with Store.open(database_url) as store:
            await write(
                store, stay("R1"), stay("R2", listing="L2"), stay("R3", listing="L3", status="canceled")
            )
        await Daemon(settings_of(live), once=True, transports=Transports(wrap=recorder)).run()
    pins = [c.pin for c in sim.account("seam-acct-1").codes.values()]
    recorded = cassette.read_text()
    assert pins and not any(pin in recorded for pin in pins)
    assert "seam_sim_key_1" not in recorded

    replay = ReplayTransport(cassette)
    offline = renamed(live, "replayed")
    await Daemon(settings_of(offline), once=True, transports=Transports(wrap=lambda n, i: replay)).run()
    assert replay.replayed > 0 and replay.unused == 0
    expected = await journal(database_url, "live")
    assert [r[0] for r in expected] == ["R1", "R2"] and {r[3] for r in expected} == {"set"}
    assert await journal(database_url, "replayed") == expected
