"""Batches of one run written on two connections at once (``write_lanes``), on a real
PostgreSQL: they still commit in order, a failed batch takes the later ones with it, and
the extra connection stops writing once the run's lock is gone."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import asyncpg
import orjson
import pytest
import structlog

from syncd import errors, pipeline
from syncd.config import ResourceSettings
from syncd.connectors.guesty.fakes import FakeGuesty, listing
from syncd.models import Property, values_of
from syncd.observability.metrics import Metrics
from syncd.store.postgres import BatchWriter, Store, SyncSession, Turn, fence_keys, lock_key
from syncd.store.types import TABLES, Batch, row_for
from tests.support import db_rows, poll_until

pytestmark = pytest.mark.anyio
T0 = datetime(2025, 1, 1, tzinfo=UTC)
SPEC = TABLES["properties"]


def prop(ext: str, title: str, at: datetime = T0) -> tuple[Any, ...]:
    model = Property(external_id=ext, title=title, source_updated_at=at)
    return row_for(SPEC, values_of(model), orjson.dumps({"_id": ext, "title": title}))


async def state(database_url: str) -> tuple[dict[str, str], Any]:
    rows = await db_rows(database_url, "SELECT external_id, title FROM properties")
    saved = await db_rows(database_url, "SELECT checkpoint FROM sync_state WHERE resource = 'properties'")
    checkpoint = saved[0][0] if saved else None
    return {r[0]: r[1] for r in rows}, orjson.loads(checkpoint) if checkpoint else None


@contextlib.asynccontextmanager
async def session_of(database_url: str) -> Any:
    async with Store.open(database_url) as store:
        await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            yield session


async def test_a_later_batch_never_commits_before_the_one_before_it(database_url: str) -> None:
    async with session_of(database_url) as session:
        await session.apply(Batch(rows=[prop("a", "Old")], checkpoint={"page": 0}))
        blocker = await asyncpg.connect(database_url)
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM properties WHERE external_id = 'a' FOR UPDATE")
        first, second = Turn(), Turn()
        async with session.extra_writer() as other, anyio.create_task_group() as tg:
            # The first batch's upsert waits on the row lock held above.
            new_a = Batch(rows=[prop("a", "New", T0 + timedelta(seconds=1))], checkpoint={"page": 1})
            tg.start_soon(session.writer.apply, new_a, first, None)
            tg.start_soon(other.apply, Batch(rows=[prop("b", "B")], checkpoint={"page": 2}), second, first)
            try:
                await anyio.sleep(0.5)  # far longer than the second batch needs on its own
                early = (second.finished.is_set(), await state(database_url))
            finally:
                await tx.rollback()
        await blocker.close()
        assert early == (False, ({"a": "Old"}, {"page": 0}))
        assert first.committed and second.committed
    assert await state(database_url) == ({"a": "New", "b": "B"}, {"page": 2})


async def test_a_failed_batch_rolls_back_the_next_one_on_the_other_connection(database_url: str) -> None:
    # numeric(14, 2) cannot hold this price: the first batch's upsert fails.
    too_big = tuple(
        "1E+15" if c == "base_price" else v for c, v in zip(SPEC.columns, prop("a", "A"), strict=True)
    )
    first, second = Turn(), Turn()
    outcome: dict[str, BaseException] = {}

    async def attempt(name: str, apply: Any, *args: Any) -> None:
        try:
            await apply(*args)
        except Exception as exc:
            outcome[name] = exc

    async with session_of(database_url) as session:
        async with session.extra_writer() as other, anyio.create_task_group() as tg:
            tg.start_soon(
                attempt,
                "first",
                session.writer.apply,
                Batch(rows=[too_big], checkpoint={"page": 1}),
                first,
                None,
            )
            tg.start_soon(
                attempt,
                "second",
                other.apply,
                Batch(rows=[prop("b", "B")], checkpoint={"page": 2}),
                second,
                first,
            )
    assert isinstance(outcome["first"], errors.StoreError)
    assert isinstance(outcome["second"], errors.BatchAbandoned)
    assert not first.committed and not second.committed
    assert await state(database_url) == ({}, None)  # no page 2 without page 1


async def test_an_extra_writer_stops_committing_once_the_runs_lock_is_lost(database_url: str) -> None:
    with contextlib.suppress(errors.StoreUnavailable):  # the session's own close then fails too
        async with session_of(database_url) as session:
            assert isinstance(session, SyncSession)
            async with session.extra_writer() as other:
                lock_pid = session.writer._conn.get_server_pid()
                # With a timeout, the call returns once the process has exited and so
                # released its locks; without one it returns when the signal is sent.
                await db_rows(database_url, "SELECT pg_terminate_backend($1, 10000)", lock_pid)
                with pytest.raises(errors.StoreUnavailable, match="lock was lost"):
                    await other.apply(Batch(rows=[prop("b", "B")], checkpoint={"page": 1}))
    assert await state(database_url) == ({}, None)


async def test_a_new_owner_of_the_run_waits_for_the_old_owners_open_batch(database_url: str) -> None:
    # The owner's connection dies while its extra writer is mid-batch. Were the new owner
    # to start (and read the checkpoint) before that batch ends, a commit slipping in
    # between the batch's lock check and its COMMIT would go unseen by the new run.
    before, mine = Turn(), Turn()
    events: list[str] = []

    async def old_batch(other: BatchWriter) -> None:
        with pytest.raises(errors.StoreUnavailable, match="lock was lost"):
            await other.apply(Batch(rows=[prop("b", "B")], checkpoint={"page": 2}), mine, before)
        events.append("old owner's batch ended")

    async def new_owner() -> None:
        async with Store.open(database_url) as store, store.sync_session("acme", "properties") as session:
            assert session is not None
            events.append("new owner started")

    with contextlib.suppress(errors.StoreUnavailable):  # the old session's own close fails
        async with session_of(database_url) as session, session.extra_writer() as other:
            assert isinstance(session, SyncSession)
            async with anyio.create_task_group() as tg:
                tg.start_soon(old_batch, other)
                with anyio.fail_after(10):
                    await poll_until(lambda: fence_held(database_url), interval_s=0.01)
                lock_pid = session.writer._conn.get_server_pid()
                await db_rows(database_url, "SELECT pg_terminate_backend($1, 10000)", lock_pid)
                tg.start_soon(new_owner)
                await anyio.sleep(0.5)  # far longer than taking a free lock needs
                waited = list(events)
                before.committed = True
                before.upserted.set()
                before.finished.set()
    assert waited == []
    assert events == ["old owner's batch ended", "new owner started"]
    assert await state(database_url) == ({}, None)


async def test_a_new_owner_gives_up_on_a_fence_held_too_long_and_leaves_the_run_free(
    database_url: str,
) -> None:
    # A frozen process whose lock connection died but whose extra writer's transaction is
    # still open: the run is skipped (tried again later), not waited on for ever.
    frozen = await asyncpg.connect(database_url)
    try:
        tx = frozen.transaction()
        await tx.start()
        await frozen.execute(
            "SELECT pg_advisory_xact_lock_shared($1, $2)", *fence_keys(lock_key("acme", "properties"))
        )
        async with Store.open(database_url) as store:
            await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})
            store.fence_wait_s = 0.2
            with anyio.fail_after(10):
                async with store.sync_session("acme", "properties") as session:
                    assert session is None
            await tx.rollback()
            async with store.sync_session("acme", "properties") as session:
                assert session is not None  # the run's lock was let go with the skip
    finally:
        await frozen.close()


async def fence_held(database_url: str) -> bool:
    """Is some extra writer's transaction holding its run's fence (two int4 keys)?"""
    query = "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND mode = 'ShareLock'"
    return bool(await db_rows(database_url, query + " AND granted"))


async def run_lanes(database_url: str, connector: FakeGuesty, lanes: int) -> pipeline.RunStats:
    async with session_of(database_url) as session:
        options = pipeline.PipelineOptions(batch_size=100, write_lanes=lanes)
        return await pipeline.run(
            session, connector, "properties", ResourceSettings(overlap_s=0), options, Metrics(),
            structlog.get_logger(), anyio.Event(),
        )  # fmt: skip


async def test_a_run_on_two_connections_writes_every_record_once_and_ends_at_its_checkpoint(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = 0
    real = SyncSession.extra_writer

    def counting(self: SyncSession) -> Any:
        nonlocal taken
        taken += 1
        return real(self)

    monkeypatch.setattr(SyncSession, "extra_writer", counting)
    records = [listing(i) for i in range(1_000)]
    # Record 3 again near the end, newer: the two copies land in batches on different lanes.
    records.append(listing(3, title="Renamed", updated="2025-01-02T00:00:00.000Z"))
    stats = await run_lanes(database_url, FakeGuesty(records, page_size=50), lanes=2)
    assert taken == 1
    assert (stats.inserted, stats.updated, stats.fetched) == (1_000, 1, 1_001)
    rows, checkpoint = await state(database_url)
    assert len(rows) == 1_000 and rows[f"{3:024x}"] == "Renamed"
    assert checkpoint == {"offset": 1_001}
    events = await db_rows(database_url, "SELECT external_id, kind FROM events ORDER BY id")
    assert len(events) == 1_001 and events[-1]["kind"] == "updated"


async def test_a_one_batch_run_takes_no_second_connection(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: SyncSession) -> Any:
        raise AssertionError("a one-batch run took an extra writer")

    monkeypatch.setattr(SyncSession, "extra_writer", refuse)
    stats = await run_lanes(database_url, FakeGuesty([listing(i) for i in range(60)]), lanes=2)
    assert stats.inserted == 60


async def test_a_record_dead_lettered_and_seen_clean_later_in_the_same_run_is_resolved(
    database_url: str,
) -> None:
    bad = listing(1, updated="not-a-date")
    fixed = listing(1, updated="2025-01-02T00:00:00.000Z")
    records = [listing(0), bad, *[listing(i) for i in range(2, 300)], fixed]
    await run_lanes(database_url, FakeGuesty(records), lanes=2)
    rows = await db_rows(database_url, "SELECT external_id, resolved_at FROM dead_letters")
    assert [(r[0], r[1] is not None) for r in rows] == [(bad["_id"], True)]


async def test_a_run_refused_a_second_connection_goes_on_with_one(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    @contextlib.asynccontextmanager
    async def refused(self: SyncSession) -> Any:
        raise errors.StoreError("TooManyConnectionsError: sorry, too many clients already")
        yield  # pragma: no cover - a generator, for asynccontextmanager

    monkeypatch.setattr(SyncSession, "extra_writer", refused)
    stats = await run_lanes(database_url, FakeGuesty([listing(i) for i in range(1_000)], page_size=50), 2)
    assert (stats.inserted, stats.fetched) == (1_000, 1_000)
    rows, checkpoint = await state(database_url)
    assert len(rows) == 1_000 and checkpoint == {"offset": 1_000}


class CountingConnector(FakeGuesty):
    yielded = 0

    async def stream(self, *args: Any) -> Any:
        async for page in super().stream(*args):
            self.yielded += len(page.records)
            yield page


@pytest.mark.parametrize("depth", [0, 1])
async def test_a_stalled_database_stops_the_fetching_at_the_pipelines_bound(
    database_url: str, depth: int
) -> None:
    """Backpressure: with PostgreSQL stuck, a run holds at most batch_size x (pipeline_depth
    + write_lanes + 1) records, plus the pages prefetched, and asks the partner for no more."""
    connector = CountingConnector([listing(i) for i in range(2_000)], page_size=50)
    options = pipeline.PipelineOptions(batch_size=100, write_lanes=2, pipeline_depth=depth)
    blocker = await asyncpg.connect(database_url)
    try:
        async with session_of(database_url) as session:
            tx = blocker.transaction()
            await tx.start()
            # Inserts wait (ROW EXCLUSIVE conflicts with SHARE); reads and staging do not.
            await blocker.execute("LOCK TABLE properties IN SHARE MODE")
            async with anyio.create_task_group() as tg:

                async def sync() -> None:
                    await pipeline.run(
                        session, connector, "properties", ResourceSettings(overlap_s=0), options,
                        Metrics(), structlog.get_logger(), anyio.Event(),
                    )  # fmt: skip

                tg.start_soon(sync)
                seen, steady = -1, 0
                while steady < 10:  # unchanged for 0.5 s: the pipeline is full
                    await anyio.sleep(0.05)
                    steady = steady + 1 if connector.yielded == seen else 0
                    seen = connector.yielded
                # Two lanes' batches copied to the server (released), the batches held for a
                # lane (one in the producer, `depth` queued), pages prefetched plus the one in hand.
                assert seen == 2 * 100 + (depth + 1) * 100 + (pipeline.PAGE_PREFETCH + 1) * 50
                await tx.rollback()
    finally:
        await blocker.close()
    assert connector.yielded == 2_000
    assert len(await db_rows(database_url, "SELECT 1 FROM properties")) == 2_000
