"""Workers down for three simulated hours of schedule (an injected clock, not a real wait):
on recovery each integration x resource runs once, expired work is counted and not run,
and the backlog starts spread over ``recovery_spread_s`` rather than all in one second."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from syncd.app import Daemon
from syncd.engine.clock import DatabaseClock, ShiftedClock
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.postgres import Store
from syncd.store.tasks import NewTask, Priority, TaskQueue, fetch_key, sync_key
from tests.support import assert_matches_truth, db_rows, guesty_config, poll_until, settings_of

pytestmark = pytest.mark.anyio
INTEGRATIONS = 4
RESOURCES = ("properties", "reservations")
LISTINGS = 20
INTERVAL_S = 600.0
OUTAGE = timedelta(hours=3)
# Webhooks arrive every STEP of the outage; each fetch is worth doing for EXPIRY.
STEP = timedelta(minutes=7)
EXPIRY = timedelta(minutes=30)
SPREAD_S = 2.0


def accounts() -> list[tuple[str, str, str]]:
    return [(f"int{n}", f"guesty-acct-{n}", f"sim-secret-{n}") for n in range(INTEGRATIONS)]


def document_for(server: SimulatorServer, database_url: str, state_dir: Path) -> dict[str, Any]:
    document = guesty_config(
        server, database_url, accounts(), state_dir=state_dir, sweep_every_s=None, interval_s=INTERVAL_S
    )
    document["daemon"] |= {
        "scheduler_tick_s": 0.2,
        "recovery_spread_s": SPREAD_S,
        "worker_concurrency": 3,
        "urgent_workers": 1,
    }
    return document


def sample(daemon: Daemon, name: str, **labels: str) -> float:
    return daemon.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_three_hours_down_then_each_sync_runs_once_and_stale_work_is_counted(
    database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    data = {
        integration_id: sim.add_account("guesty", client, secret, GuestyAccount(seed=n, listings=LISTINGS))
        for n, (integration_id, client, secret) in enumerate(accounts())
    }
    async with SimulatorServer(sim) as server, Store.open(database_url, min_size=1, max_size=4) as store:
        document = document_for(server, database_url, tmp_path)
        # Everything synced once, then the workers go down: every schedule is next due in 10 min.
        await Daemon(settings_of(document), once=True).run()
        queue = TaskQueue(store)
        down_at = await store.now()

        # Three hours pass on the enqueue side only: webhooks name listings (some again and
        # again), and a user asks for a sync-now an hour in. No worker runs.
        offset = timedelta(0)
        step = 0
        while offset < OUTAGE - STEP:
            integration_id = f"int{step % INTEGRATIONS}"
            listing = data[integration_id].listing_id((step // INTEGRATIONS) % 3)
            key = fetch_key(integration_id, "properties", listing)
            task = NewTask(
                integration_id, "properties", "fetch", Priority.WEBHOOK, key, {"ids": [listing]},
                expires_in_s=EXPIRY.total_seconds(),
            )  # fmt: skip
            await queue.enqueue([task], down_at + offset)
            if step == 9:
                assert await store.sync_now("int0", "properties") == ["properties"]
            offset += STEP
            step += 1
        backlog = await db_rows(
            database_url, "SELECT kind, expires_at, coalesced FROM tasks WHERE state = 'pending'"
        )
        recovery_at = down_at + OUTAGE
        fetches = [r for r in backlog if r["kind"] == "fetch"]
        stale = sum(1 for r in fetches if r["expires_at"] <= recovery_at)
        # Coalesced (the same listing again), some stale and some not, far from the line.
        assert any(r["coalesced"] for r in fetches)
        assert 0 < stale < len(fetches)
        assert all(abs(r["expires_at"] - recovery_at) > timedelta(minutes=2) for r in fetches)

        # The workers come back three hours later (on the injected clock).
        started = await store.now()
        clock = ShiftedClock(DatabaseClock(store), recovery_at - started)
        async with anyio.create_task_group() as tg:
            daemon: Daemon = await tg.start(Daemon(settings_of(document), clock=clock).run)

            async def drained() -> bool:
                left = await db_rows(
                    database_url, "SELECT count(*) FROM tasks WHERE state IN ('pending', 'running')"
                )
                return bool(left[0][0] == 0)

            with anyio.fail_after(60):
                await poll_until(drained)
            # A few more ticks: nothing else becomes due (schedules moved on the same clock).
            await anyio.sleep(1.0)
            assert await drained()
            daemon.request_stop()

    runs = await db_rows(
        database_url,
        "SELECT integration_id, resource, priority, state, enqueued_at, not_before, attempts FROM tasks"
        " WHERE kind = 'sync' AND started_at >= $1 ORDER BY integration_id, resource",
        started,
    )
    keys = [(r["integration_id"], r["resource"]) for r in runs]
    assert keys == [(i, res) for i, *_ in accounts() for res in RESOURCES], "one run each, no more"
    assert all(r["state"] == "done" and r["attempts"] == 1 for r in runs)
    assert sample(daemon, "syncd_sync_runs_total", partner="guesty", resource="properties", outcome="ok") == 4
    assert (
        sample(daemon, "syncd_sync_runs_total", partner="guesty", resource="reservations", outcome="ok") == 4
    )
    # The user's sync-now stood for its schedule's run; the others were spread, not bunched.
    (user,) = [r for r in runs if r["priority"] == Priority.USER]
    assert (user["integration_id"], user["resource"]) == ("int0", "properties")
    scheduled = [r for r in runs if r["priority"] == Priority.SCHEDULED]
    assert len(scheduled) == 2 * INTEGRATIONS - 1
    delays = [(r["not_before"] - r["enqueued_at"]).total_seconds() for r in scheduled]
    assert all(0 <= d <= SPREAD_S for d in delays)
    assert len({r["not_before"] for r in scheduled}) > 1
    # Stale work was counted, not run; the rest ran.
    assert sample(daemon, "syncd_tasks_ended_total", kind="fetch", outcome="expired") == stale
    assert sample(daemon, "syncd_tasks_ended_total", kind="fetch", outcome="done") == len(fetches) - stale
    ended = await db_rows(database_url, "SELECT state, count(*) FROM tasks WHERE kind = 'fetch' GROUP BY 1")
    assert {r[0]: r[1] for r in ended} == {"expired": stale, "done": len(fetches) - stale}
    # The next runs are an interval after these, on the clock that found them due.
    schedules = await db_rows(database_url, "SELECT next_due_at FROM schedules")
    assert all(s["next_due_at"] > recovery_at + timedelta(seconds=INTERVAL_S - 60) for s in schedules)
    for integration_id, account in data.items():
        await assert_matches_truth(database_url, integration_id, account)


async def test_a_scheduler_ticking_without_workers_keeps_one_task_per_schedule(database_url: str) -> None:
    """Three hours of ticks every five minutes with nobody claiming: one pending sync per
    integration x resource, not one per missed interval."""
    async with Store.open(database_url, min_size=1, max_size=2) as store:
        owned = [f"int{n}" for n in range(INTEGRATIONS)]
        for integration_id in owned:
            await store.register_integration(
                integration_id, "guesty", True, dict.fromkeys(RESOURCES, (INTERVAL_S / 10, True))
            )
        queue = TaskQueue(store)
        start: datetime = await store.now()
        made = 0
        for minute in range(0, 180, 5):
            made += len(await queue.enqueue_due_schedules(owned, start + timedelta(minutes=minute), SPREAD_S))
        assert made == INTEGRATIONS * len(RESOURCES)
        pending = await db_rows(database_url, "SELECT dedupe_key, state FROM tasks ORDER BY dedupe_key")
        assert [r["dedupe_key"] for r in pending] == sorted(
            sync_key(i, res) for i in owned for res in RESOURCES
        )
        assert {r["state"] for r in pending} == {"pending"}
