"""The queue's side of webhooks: a delivery and its fetch commit together, a redelivery
queues nothing, and targeted fetches of one key coalesce into one task with both ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from syncd.store.postgres import Store
from syncd.store.tasks import Delivery, NewTask, Priority, TaskQueue, fetch_key

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def fetch(external_id: str, key: str | None = None) -> NewTask:
    return NewTask(
        "acme",
        "properties",
        "fetch",
        int(Priority.WEBHOOK),
        key or fetch_key("acme", "properties", external_id),
        {"ids": [external_id]},
        expires_in_s=60,
    )


async def test_fetches_of_one_key_coalesce_into_one_task_with_every_id(database_url: str) -> None:
    async with Store.open(database_url) as store:
        await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})
        queue = TaskQueue(store)
        first = await queue.enqueue([fetch("b", "shared")], NOW)
        second = await queue.enqueue([fetch("a", "shared"), fetch("b", "shared")], NOW)
        assert (first.inserted, second.inserted, second.coalesced) == (1, 0, 2)
        (task,) = await queue.list(["acme"], "pending", 10)
        assert task["params"] == {"ids": ["a", "b"]}
        assert task["coalesced"] == 2


async def test_a_delivery_is_stored_with_its_tasks_once(database_url: str) -> None:
    async with Store.open(database_url) as store:
        await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})
        queue = TaskQueue(store)
        delivery = Delivery("acme", "guesty", "msg_1", "listing.updated", b"{}", "application/json", 1)
        stored = await queue.record_delivery(delivery, [fetch("x")], NOW, "syncd_wake")
        assert stored is not None and stored.inserted == 1
        assert await queue.record_delivery(delivery, [fetch("x")], NOW, "syncd_wake") is None
        assert len(await queue.list(["acme"], None, 10)) == 1
        assert await queue.purge_deliveries(0) == 1
