"""Queue observability on a running daemon: with one worker slot held by a slow sync and
other tasks due, /readyz fails naming the claim stall (with the figures in its detail),
/status shows the queue per priority, and both recover once the queue drains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from syncd.app import Daemon
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import db_rows, guesty_config, poll_until, settings_of

pytestmark = pytest.mark.anyio
ACCOUNTS = [("acme", "guesty-acct-1", "sim-secret-1"), ("umbrella", "guesty-acct-2", "sim-secret-2")]


async def test_a_claim_stall_fails_readiness_and_shows_on_the_status_page(
    database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False), latency_ms=(300.0, 300.0))
    for _, client_id, secret in ACCOUNTS:
        sim.add_account("guesty", client_id, secret, GuestyAccount(seed=5, listings=300))
    async with SimulatorServer(sim) as server, anyio.create_task_group() as tg:
        document = guesty_config(
            server, database_url, ACCOUNTS, state_dir=tmp_path, web=True, interval_s=3600
        )
        # One slot, no urgent ones: while a sync runs, the other three wait, unclaimed.
        document["daemon"] |= {
            "worker_concurrency": 1,
            "urgent_workers": 0,
            "claim_stall_s": 1.0,
            "scheduler_tick_s": 0.2,
        }
        daemon: Daemon = await tg.start(Daemon(settings_of(document)).run)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web_port}") as client:
            stalled: dict[str, Any] = {}

            async def readiness_fails() -> bool:
                ready = await client.get("/readyz")
                if ready.status_code == 503 and "scheduler" in ready.json()["failing"]:
                    stalled.update(ready.json())
                    return True
                return False

            with anyio.fail_after(30):
                await poll_until(readiness_fails)
            status = (await client.get("/status")).json()
            page = await client.get("/status", headers={"accept": "text/html"})

            async def all_synced() -> bool:
                rows = await db_rows(
                    database_url, "SELECT count(*) FROM sync_state WHERE last_success_at IS NOT NULL"
                )
                return bool(rows[0][0] == 4)

            with anyio.fail_after(60):
                await poll_until(all_synced)

            async def ready_again() -> bool:
                return (await client.get("/readyz")).status_code == 200

            with anyio.fail_after(10):
                await poll_until(ready_again)
            calm = (await client.get("/readyz")).json()
            calm_status = (await client.get("/status")).json()
        daemon.request_stop()

    assert stalled["failing"]["scheduler"].startswith("RuntimeError: tasks are due and none was claimed for")
    assert stalled["ok"] == ["database"]
    detail = stalled["detail"]
    assert detail["claim_stalled_s"] >= 1.0 and detail["claim_stall_s"] == 1.0
    assert 1 <= detail["tasks_due"] <= 3
    queue = status["queue"]
    assert queue["running"] == 1 and queue["due"] >= 1
    bands = {b["priority"]: b for b in queue["priorities"]}
    assert bands.keys() == {"user", "webhook", "scheduled", "low"}
    assert bands["scheduled"]["due"] == queue["due"] and bands["scheduled"]["oldest_s"] > 0
    assert bands["user"]["due"] == 0
    assert '<section id="queue">' in page.text and "scheduled due · oldest" in page.text
    # Drained: ready, no stall to report, nothing due.
    assert calm == {"ok": ["database", "scheduler"], "failing": {}}
    assert calm_status["queue"]["due"] == 0 and calm_status["queue"]["claim_stalled_s"] == 0
