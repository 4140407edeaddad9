"""`syncd run --once` and a fetch that fails: it is tried once by this process and waits,
pending with its backoff, for the next one, instead of spending every attempt within
seconds (a run-once process claims everything pending, however far its start was pushed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.app import Daemon
from syncd.simulator import limits
from syncd.simulator.fault_spec import FaultSpec, Rule, StatusParams
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.postgres import Store
from syncd.store.tasks import NewTask, Priority, TaskQueue, fetch_key
from tests.support import db_rows, guesty_config, settings_of

pytestmark = pytest.mark.anyio


async def test_run_once_tries_a_failing_fetch_once_and_leaves_it_for_the_next_process(
    database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    data = sim.add_account("guesty", "acct-1", "sim-secret-1", GuestyAccount(seed=1, listings=5))
    async with SimulatorServer(sim) as server, Store.open(database_url, min_size=1, max_size=2) as store:
        document = guesty_config(
            server, database_url, [("acme", "acct-1", "sim-secret-1")], state_dir=tmp_path, sweep_every_s=None
        )
        await Daemon(settings_of(document), once=True).run()  # the first sync
        listing = data.listing_id(2)
        task = NewTask(
            "acme",
            "properties",
            "fetch",
            Priority.WEBHOOK,
            fetch_key("acme", "properties", listing),
            {"ids": [listing]},
        )
        await TaskQueue(store).enqueue([task], await store.now())
        # Every GET of a single listing is refused (400: the client does not retry it).
        sim.set_faults(FaultSpec((Rule("status", 1.0, ("/v1/listings/{id}",), params=StatusParams((400,))),)))
        sim.request_log.reset()
        await Daemon(settings_of(document), once=True).run()
        (row,) = await db_rows(
            database_url, "SELECT state, attempts, last_error FROM tasks WHERE kind = 'fetch'"
        )
        assert (row["state"], row["attempts"]) == ("pending", 1)
        assert "400" in str(row["last_error"]) or "Rejected" in str(row["last_error"])
        assert sim.request_log.count(method="GET", path="/guesty/v1/listings/{id}") == 1

        # The next process (the partner healthy again) fetches it once more and is done; it
        # does not wait for the backoff either: run-once takes what was pushed back.
        sim.set_faults(None)
        await Daemon(settings_of(document), once=True).run()
        (row,) = await db_rows(database_url, "SELECT state, attempts FROM tasks WHERE kind = 'fetch'")
        assert (row["state"], row["attempts"]) == ("done", 2)
