"""The cascade contract in the store: a parent batch writes its child tasks in its own
statement (so in its transaction), only for parents that are new, deleted, resurrected or
whose trigger fields changed, only when the integration syncs the child; a child batch
sweeps the children its parents no longer have."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from syncd import errors
from syncd.models import Photo, Property, values_of
from syncd.store.codecs import init_connection
from syncd.store.postgres import SyncSession
from syncd.store.types import TABLES, Batch, create_staging_tables, row_for

pytestmark = pytest.mark.anyio
T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    await init_connection(connection)
    await connection.execute(create_staging_tables())
    await connection.execute("INSERT INTO integrations (id, partner) VALUES ('acme', 'any')")
    await connection.execute(
        "INSERT INTO schedules (integration_id, resource, interval_s) VALUES ('acme', 'properties', 60),"
        " ('acme', 'photos', 3600)"
    )
    try:
        yield connection
    finally:
        await connection.close()


def listing(ext: str, at: datetime, fingerprint: int | None = 1, title: str = "Flat") -> tuple[Any, ...]:
    record = Property(external_id=ext, source_updated_at=at, title=title, photos_fingerprint=fingerprint)
    return row_for(
        TABLES["properties"], values_of(record), orjson.dumps({"_id": ext, "t": title, "f": fingerprint})
    )


def photo(parent: str, n: int, caption: str = "Pool") -> tuple[Any, ...]:
    record = Photo(
        external_id=f"{parent}:{n}",
        source_updated_at=T0,
        property_external_id=parent,
        position=n,
        url=f"https://img/{n}.jpg",
        caption=caption,
    )
    return row_for(TABLES["photos"], values_of(record), orjson.dumps({"_id": str(n), "caption": caption}))


async def child_keys(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT dedupe_key FROM tasks WHERE kind = 'child' ORDER BY dedupe_key")
    return [r[0] for r in rows]


async def test_parents_enqueue_child_tasks_only_when_new_or_their_triggers_changed(
    conn: asyncpg.Connection,
) -> None:
    session = SyncSession(conn, "acme", TABLES["properties"])
    await session.start_run()
    assert session.writer.first_sync  # the first batch takes the insert_new path
    await session.apply(Batch(rows=[listing("L1", T0), listing("L2", T0)]))
    assert await child_keys(conn) == ["child:acme:photos:L1", "child:acme:photos:L2"]
    row = await conn.fetchrow(
        "SELECT priority, params, state FROM tasks WHERE dedupe_key = 'child:acme:photos:L1'"
    )
    assert row is not None and (row["priority"], row["params"], row["state"]) == (
        30,
        {"ids": ["L1"]},
        "pending",
    )
    await conn.execute("UPDATE tasks SET state = 'done'")  # they ran

    later = T0 + timedelta(minutes=1)
    # L1: another title (its photos as they were); L2: the same copy again; L3: new.
    await session.apply(
        Batch(rows=[listing("L1", later, title="Loft"), listing("L2", T0), listing("L3", later)])
    )
    assert await child_keys(conn) == ["child:acme:photos:L1", "child:acme:photos:L2", "child:acme:photos:L3"]
    await session.apply(Batch(rows=[listing("L2", later, fingerprint=2)]))  # photos changed
    await session.apply(Batch(rows=[listing("L2", later + timedelta(1), fingerprint=2, title="X")]))
    pending = await conn.fetch("SELECT dedupe_key, coalesced FROM tasks WHERE state = 'pending' ORDER BY 1")
    assert [tuple(r) for r in pending] == [("child:acme:photos:L2", 0), ("child:acme:photos:L3", 0)]

    # A third photo change of L2 while its task still waits: absorbed, one task per parent.
    await session.apply(Batch(rows=[listing("L2", later + timedelta(2), fingerprint=3, title="X")]))
    pending = await conn.fetch("SELECT dedupe_key, coalesced FROM tasks WHERE state = 'pending' ORDER BY 1")
    assert [tuple(r) for r in pending] == [("child:acme:photos:L2", 1), ("child:acme:photos:L3", 0)]

    # A deleted parent's task deletes its children (it will find the parent gone).
    await conn.execute("UPDATE tasks SET state = 'done'")
    assert await session.soft_delete(["L1"]) == 1
    assert await child_keys(conn) == [
        "child:acme:photos:L1", "child:acme:photos:L1", "child:acme:photos:L2",
        "child:acme:photos:L2", "child:acme:photos:L3",
    ]  # fmt: skip


async def test_no_child_task_when_the_integration_does_not_sync_the_child(conn: asyncpg.Connection) -> None:
    await conn.execute("UPDATE schedules SET enabled = false WHERE resource = 'photos'")
    session = SyncSession(conn, "acme", TABLES["properties"])
    await session.start_run()
    await session.apply(Batch(rows=[listing("L1", T0)]))
    await session.apply(Batch(rows=[listing("L1", T0 + timedelta(1), fingerprint=9)]))
    assert await child_keys(conn) == []


async def test_child_tasks_commit_or_roll_back_with_their_batch(conn: asyncpg.Connection) -> None:
    """Written by the upsert itself: a batch whose transaction fails leaves no task behind
    (and one that commits cannot lose its tasks)."""
    session = SyncSession(conn, "acme", TABLES["properties"])
    await session.start_run()
    bad = Batch(rows=[listing("L1", T0)], checkpoint={"jsonb refuses": "\x00"})
    with pytest.raises(errors.StoreError, match="cannot be converted"):  # the checkpoint: after the upsert
        await session.apply(bad)
    assert await conn.fetchval("SELECT count(*) FROM properties") == 0
    assert await child_keys(conn) == []


async def test_a_child_batch_sweeps_the_children_its_parents_no_longer_have(conn: asyncpg.Connection) -> None:
    session = SyncSession(conn, "acme", TABLES["photos"])
    await session.apply(
        Batch(rows=[photo("L1", 0), photo("L1", 1), photo("L1", 2), photo("L2", 0)], parents=["L1", "L2"])
    )
    # L1 lost picture 1 and re-captioned 2; L2 is not in this batch: its photos stay.
    await session.apply(Batch(rows=[photo("L1", 0), photo("L1", 2, "Garden")], parents=["L1"]))
    rows = await conn.fetch("SELECT external_id, caption, deleted_at IS NULL AS live FROM photos ORDER BY 1")
    assert [tuple(r) for r in rows] == [
        ("L1:0", "Pool", True), ("L1:1", "Pool", False), ("L1:2", "Garden", True), ("L2:0", "Pool", True),
    ]  # fmt: skip
    # A parent the partner no longer has: no children left.
    await session.apply(Batch(parents=["L2"]))
    assert await conn.fetchval("SELECT deleted_at IS NOT NULL FROM photos WHERE external_id = 'L2:0'")
    events = await conn.fetch("SELECT external_id, kind FROM events WHERE kind = 'deleted' ORDER BY id")
    assert [tuple(e) for e in events] == [("L1:1", "deleted"), ("L2:0", "deleted")]
