"""The connector's ``committed`` hook (queue partners acknowledge there): called once per
committed batch, only once its rows and checkpoint are visible to anyone in PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import asyncpg
import orjson
import pytest
import structlog

from syncd import pipeline
from syncd.config import ResourceSettings
from syncd.connectors.base import Page
from syncd.connectors.guesty.fakes import FakeGuesty, listing
from syncd.observability.metrics import Metrics
from syncd.store.postgres import Store

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Seen:
    resource: str
    checkpoint: dict[str, Any] | None
    rows: int  # visible from another connection when the hook ran
    stored_checkpoint: dict[str, Any] | None


@dataclass
class Acknowledging(FakeGuesty):
    """Looks at PostgreSQL from its own connection whenever a batch is reported durable."""

    database_url: str = ""
    seen: list[Seen] = field(default_factory=list)

    async def committed(self, resource: str, checkpoint: dict[str, Any] | None) -> None:
        conn = await asyncpg.connect(self.database_url)
        try:
            rows = await conn.fetchval("SELECT count(*) FROM properties")
            stored = await conn.fetchval(
                "SELECT checkpoint FROM sync_state WHERE integration_id = 'acme' AND resource = $1", resource
            )
        finally:
            await conn.close()
        self.seen.append(Seen(resource, checkpoint, rows, None if stored is None else orjson.loads(stored)))


@pytest.mark.parametrize("lanes", [1, 2])
async def test_the_hook_sees_each_batch_after_its_rows_are_committed(database_url: str, lanes: int) -> None:
    connector = Acknowledging([listing(i) for i in range(500)], page_size=50, database_url=database_url)
    async with Store.open(database_url) as store:
        await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            options = pipeline.PipelineOptions(batch_size=100, write_lanes=lanes, max_batch_delay_s=60.0)
            stats = await pipeline.run(
                session, connector, "properties", ResourceSettings(overlap_s=0), options, Metrics(),
                structlog.get_logger(), anyio.Event(),
            )  # fmt: skip
    assert stats.inserted == 500
    offsets = sorted(s.checkpoint["offset"] for s in connector.seen if s.checkpoint)
    assert offsets == [100, 200, 300, 400, 500]  # one call per batch, none for the sweep
    for seen in connector.seen:
        assert seen.resource == "properties" and seen.checkpoint is not None
        # Every record up to that batch's last page is durable, and so is its checkpoint.
        assert seen.rows >= seen.checkpoint["offset"]
        assert seen.stored_checkpoint is not None
        assert seen.stored_checkpoint["offset"] >= seen.checkpoint["offset"]


async def test_a_connector_without_the_hook_syncs_as_before(database_url: str) -> None:
    connector = FakeGuesty([listing(i) for i in range(30)], page_size=10)
    assert not hasattr(connector, "committed")
    async with Store.open(database_url) as store:
        await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            stats = await pipeline.run(
                session, connector, "properties", ResourceSettings(overlap_s=0), pipeline.PipelineOptions(),
                Metrics(), structlog.get_logger(), anyio.Event(),
            )  # fmt: skip
    assert stats.inserted == 30


@dataclass
class QueueLike(Acknowledging):
    """A queue: it fetches nothing more until the page it gave is acknowledged (committed),
    as a partner that redelivers what is unacknowledged demands."""

    acked: list[int] = field(default_factory=list)
    events: dict[int, anyio.Event] = field(default_factory=dict)

    async def stream(self, resource: str, checkpoint: Any, settings: ResourceSettings) -> Any:
        async for page in super().stream(resource, checkpoint, settings):
            acked = self.events[page.checkpoint["offset"]] = anyio.Event()
            yield Page(page.records, page.checkpoint, awaits_commit=True)
            with anyio.fail_after(10):  # without the pipeline's help this never returns
                await acked.wait()

    async def committed(self, resource: str, checkpoint: dict[str, Any] | None) -> None:
        await super().committed(resource, checkpoint)
        assert checkpoint is not None
        self.acked.append(checkpoint["offset"])
        self.events[checkpoint["offset"]].set()


async def test_a_page_that_awaits_its_commit_ends_its_batch_at_once(database_url: str) -> None:
    # A batch of 1,000 records and a minute's delay would otherwise hold the first page
    # until more came: none would, as the queue waits for that page's commit.
    connector = QueueLike([listing(i) for i in range(120)], page_size=50, database_url=database_url)
    async with Store.open(database_url) as store:
        await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            options = pipeline.PipelineOptions(batch_size=1000, max_batch_delay_s=60.0)
            with anyio.fail_after(30):
                stats = await pipeline.run(
                    session, connector, "properties", ResourceSettings(overlap_s=0), options, Metrics(),
                    structlog.get_logger(), anyio.Event(),
                )  # fmt: skip
    assert stats.inserted == 120
    assert connector.acked == [50, 100, 120]  # one batch, one acknowledgement, per page
    assert all(seen.rows >= seen.checkpoint["offset"] for seen in connector.seen if seen.checkpoint)
