"""Child tasks against a real PostgreSQL: low priority, never in the urgent slots, and never
in the way of a user's sync-now (the claim order and the urgent slots)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from syncd.config import DaemonSettings
from syncd.engine.clock import DatabaseClock
from syncd.engine.workers import Engine
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.store.postgres import Store
from syncd.store.resources import CHILD_PRIORITY
from syncd.store.tasks import NewTask, Priority, Task, TaskQueue

pytestmark = pytest.mark.anyio
CHILDREN = 20


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with Store.open(database_url) as opened:
        await opened.register_integration(
            "acme", "guesty", True, {"properties": (3600.0, True), "photos": (3600.0, True)}
        )
        async with opened.connection() as conn:
            # No schedule is due: the only work is what each test enqueues.
            await conn.execute("UPDATE schedules SET next_due_at = now() + interval '1 hour'")
        yield opened


def child(n: int) -> NewTask:
    return NewTask("acme", "photos", "child", Priority.LOW, f"child:acme:photos:L{n}", {"ids": [f"L{n}"]})


def test_child_tasks_are_written_at_the_queue_s_low_priority() -> None:
    assert CHILD_PRIORITY == Priority.LOW  # the upsert's cascade writes the number itself


async def test_a_user_sync_is_claimed_before_child_tasks_queued_earlier(store: Store) -> None:
    queue = TaskQueue(store)
    now = await store.now()
    await queue.enqueue([child(n) for n in range(CHILDREN)], now)
    await store.sync_now("acme", "properties")
    owner, process = "test", 1
    [first] = await queue.claim(["acme"], await store.now(), 1, owner, 30.0, process)
    assert (first.kind, first.priority) == ("sync", Priority.USER)
    # The urgent slots never take a child task, however long it has waited.
    urgent = await queue.claim(["acme"], await store.now(), 5, owner, 30.0, process, int(Priority.WEBHOOK))
    assert urgent == []


async def test_child_tasks_coalesce_per_parent_and_are_not_folded_into_a_sync(store: Store) -> None:
    """The per-integration bound folds fetches into one sync; child tasks have no sync to
    fold into (and do not count against the bound)."""
    queue = TaskQueue(store, max_pending_per_integration=5)
    now = await store.now()
    enqueued = await queue.enqueue([child(n) for n in range(CHILDREN)] + [child(0)], now)
    assert (enqueued.inserted, enqueued.coalesced, enqueued.folded) == (CHILDREN, 1, 0)
    fetch = NewTask(
        "acme", "properties", "fetch", Priority.WEBHOOK, "fetch:acme:properties:L1", {"ids": ["L1"]}
    )
    assert (await queue.enqueue([fetch], now)).folded == 0  # 20 child tasks pending, bound 5


async def test_a_sync_now_starts_at_once_while_child_tasks_hold_every_general_slot(store: Store) -> None:
    queue = TaskQueue(store)
    await queue.enqueue([child(n) for n in range(CHILDREN)], await store.now())
    started: list[Task] = []
    release, sync_started, stop = anyio.Event(), anyio.Event(), anyio.Event()

    async def execute(task: Task) -> None:
        started.append(task)
        if task.kind == "child":
            await release.wait()  # a slow partner: child tasks run until the test says
        else:
            sync_started.set()
        await queue.finish(task, "done")

    settings = DaemonSettings(worker_concurrency=2, urgent_workers=1, scheduler_tick_s=0.05)
    engine = Engine(
        queue,
        execute,
        owned=["acme"],
        clock=DatabaseClock(store),
        settings=settings,
        metrics=Metrics(),
        log=get_logger(),
        stop=stop,
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.run)
        with anyio.fail_after(30):
            while len(engine.slots.general) < 2:  # noqa: ASYNC110 - waiting for the engine's claims
                await anyio.sleep(0.02)
        assert [t.kind for t in started] == ["child", "child"]
        assert not engine.slots.urgent  # child tasks never take the urgent slots

        await store.sync_now("acme", "properties")
        engine.poke()
        with anyio.fail_after(30):
            await sync_started.wait()
        # It started while both child tasks still ran and 18 more waited: in an urgent slot.
        assert [t.kind for t in started] == ["child", "child", "sync"]
        assert started[2].priority == Priority.USER
        release.set()
        stop.set()
        engine.poke()
    async with store.connection() as conn:
        left = await conn.fetchval("SELECT count(*) FROM tasks WHERE kind = 'child' AND state = 'pending'")
    assert left > 0  # the engine stopped before the backlog: it never had to drain first


async def test_coalescing_targeted_tasks_unions_their_ids(store: Store) -> None:
    """A pending fetch absorbs a later one of the same key with the union of their ids (a
    core bug made this union NULL: ``->`` and ``||`` bind alike, left to right)."""
    queue = TaskQueue(store)
    now = await store.now()
    key = "fetch:acme:properties:batch"
    for ids in (["L2", "L1"], ["L3", "L1"]):
        await queue.enqueue(
            [NewTask("acme", "properties", "fetch", Priority.WEBHOOK, key, {"ids": ids})], now
        )
    [claimed] = await queue.claim(["acme"], now, 5, "test", 30.0, 1)
    assert claimed.ids == ["L1", "L2", "L3"]
