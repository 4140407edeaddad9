"""The Engine's claim-stall signal (/readyz, syncd_task_claim_stalled_seconds) against a real
PostgreSQL: due work that a free slot never claims is a stall (tests/acceptance/
test_queue_observability.py shows the same for every slot busy, on a running daemon)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import anyio
import pytest

from syncd.config import DaemonSettings
from syncd.engine.clock import DatabaseClock
from syncd.engine.workers import Engine
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.store.postgres import Store
from syncd.store.tasks import NewTask, Priority, Task, TaskQueue, fetch_key
from tests.support import poll_until

pytestmark = pytest.mark.anyio
OWNED = ["acme"]
SETTINGS = DaemonSettings(worker_concurrency=1, urgent_workers=1, scheduler_tick_s=0.05, task_lease_s=30)


class NeverClaims(TaskQueue):
    """A claimer broken in the way a stall means: due work, free slots, nothing claimed."""

    async def claim(
        self,
        integration_ids: Sequence[str],
        now: datetime,
        limit: int,
        owner: str,
        lease_s: float,
        process: int,
        max_priority: int = int(Priority.LOW),
        horizon: timedelta = timedelta(0),
        not_started_since: datetime | None = None,
        aging_s: float | None = None,
    ) -> list[Task]:
        return []


def low(ext: str) -> NewTask:
    return NewTask(
        "acme", "properties", "fetch", Priority.LOW, fetch_key("acme", "properties", ext), {"ids": [ext]}
    )


async def test_due_work_that_a_free_slot_never_claims_is_a_stall(database_url: str) -> None:
    async with Store.open(database_url, min_size=1, max_size=6) as store:
        await store.register_integration("acme", "guesty", True, {"properties": (3600.0, False)})
        queue = NeverClaims(store)

        async def execute(task: Task) -> None:
            raise AssertionError("nothing is claimed")

        metrics, stop = Metrics(), anyio.Event()
        engine = Engine(
            queue, execute, owned=OWNED, clock=DatabaseClock(store), settings=SETTINGS, metrics=metrics,
            log=get_logger(), stop=stop,
        )  # fmt: skip
        await queue.enqueue([low("a")], await store.now())
        async with anyio.create_task_group() as tg:
            tg.start_soon(engine.run)

            async def stalled() -> bool:
                return engine.stalled_s() > 0.3

            with anyio.fail_after(10):
                await poll_until(stalled)
            gauge = metrics.registry.get_sample_value("syncd_task_claim_stalled_seconds")
            assert gauge is not None and gauge > 0.3
            stop.set()
            engine.poke()
