"""Reclaiming a lapsed lease names the kind of each task it gives up, so that the engine
counts it as dead (syncd_tasks_ended_total{outcome="dead"}, which SyncdTasksDead watches)."""

from __future__ import annotations

import pytest

from syncd.store.postgres import Store
from syncd.store.tasks import NewTask, Priority, TaskQueue, fetch_key, sync_key

pytestmark = pytest.mark.anyio


async def test_a_reclaim_reports_the_kinds_it_gave_up(database_url: str) -> None:
    async with Store.open(database_url, min_size=1, max_size=3) as store:
        await store.migrate()
        await store.register_integration("acme", "guesty", True, {"properties": (3600.0, True)})
        queue = TaskQueue(store)
        now = await store.now()
        await queue.enqueue(
            [
                NewTask("acme", "properties", "fetch", Priority.WEBHOOK, fetch_key("acme", "properties", "1"),
                        {"ids": ["1"]}, max_attempts=1),
                NewTask("acme", "properties", "fetch", Priority.WEBHOOK, fetch_key("acme", "properties", "2"),
                        {"ids": ["2"]}, max_attempts=2),
                NewTask("acme", "properties", "sync", Priority.USER, sync_key("acme", "properties"),
                        max_attempts=1),
            ],
            now,
        )  # fmt: skip
        # Claimed under a liveness token nobody holds: as if the claiming process had died.
        claimed = await queue.claim(["acme"], now, 10, "gone:1", 60.0, process=987_654)
        assert len(claimed) == 3
        reclaimed = await queue.reclaim(["acme"])
    # Out of attempts: the first fetch is dead; the other fetch and the sync (a sync is
    # never given up: its schedule brings it back anyway) wait again.
    assert (reclaimed.dead, reclaimed.requeued, reclaimed.dead_kinds) == (1, 2, ("fetch",))
