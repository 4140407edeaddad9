"""SIGTERM mid-sync drains a real ``syncd run``: it exits 0 within its grace, the running
task goes back to the queue as it was (a user's sync-now stays a user's), no task is left
running, and the next process resumes from the committed checkpoint."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.postgres import Store
from syncd.store.tasks import Priority
from tests.support import assert_table_matches, db_rows, guesty_config, open_daemon, poll_until, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
ACCOUNT = ("acme", "guesty-acct-1", "sim-secret-1")
PAGES = 40


async def test_sigterm_mid_sync_puts_the_task_back_and_exits_0(database_url: str, tmp_path: Path) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False), latency_ms=(60.0, 90.0))
    account = sim.add_account("guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=3, listings=PAGES * 100))
    async with SimulatorServer(sim) as server:
        document = guesty_config(
            server, database_url, [ACCOUNT], state_dir=tmp_path, sweep_every_s=None, batch_size=200,
            interval_s=3600,
        )  # fmt: skip
        del document["integrations"][0]["resources"]["reservations"]
        document["daemon"] |= {"scheduler_tick_s": 0.2}
        config = write_config(document, tmp_path)
        async with Store.open(database_url, min_size=1, max_size=2) as store:
            await store.register_integration("acme", "guesty", True, {"properties": (3600.0, True)})
            # A user asked before the daemon started: the run is theirs, at their priority.
            assert await store.sync_now("acme", "properties") == ["properties"]
        log_path = tmp_path / "daemon.log"
        with log_path.open("wb") as log:
            daemon = await open_daemon(config, stderr=log)
        try:

            async def some_pages() -> bool:
                rows = await db_rows(database_url, "SELECT run_pages FROM sync_state")
                return bool(rows and rows[0][0] >= 6)

            with anyio.fail_after(60):
                await poll_until(some_pages)
            daemon.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                assert await daemon.wait() == 0, log_path.read_text()[-3000:]
        finally:
            if daemon.returncode is None:
                daemon.kill()
                await daemon.wait()

        (task,) = await db_rows(database_url, "SELECT * FROM tasks")
        assert task["state"] == "pending" and task["priority"] == Priority.USER
        assert task["attempts"] == 1 and "interrupted" in task["last_error"]
        (state,) = await db_rows(database_url, "SELECT run_pages, checkpoint FROM sync_state")
        assert 6 <= state["run_pages"] < PAGES and state["checkpoint"] is not None
        before = len(sim.request_log.entries(path="/guesty/v1/listings"))

        # The next process takes the same task back and resumes from the checkpoint.
        once = [sys.executable, "-m", "syncd", "run", "--once", "--config", str(config)]
        with anyio.fail_after(120):
            done = await anyio.run_process(once, check=False, stdout=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        resumed = len(sim.request_log.entries(path="/guesty/v1/listings")) - before
        assert resumed <= PAGES - state["run_pages"] + 3

    (again,) = await db_rows(database_url, "SELECT id, state, attempts FROM tasks")
    assert (again["id"], again["state"], again["attempts"]) == (task["id"], "done", 2)
    await assert_table_matches(
        database_url, "acme", "properties", ((t.id, t.payload) for t in account.truth_listings())
    )
