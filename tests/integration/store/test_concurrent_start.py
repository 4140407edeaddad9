"""Daemons starting together against one database (a deployment's replicas, a test's
processes): each applies schema.sql and registers its integrations while a sibling that
started a moment earlier already writes. schema.sql's DDL locks tables in its own order,
so PostgreSQL may abort the starting one as a deadlock victim: it retries instead of
exiting (which left three of four processes dead in a run of the Airbnb contention test)."""

from __future__ import annotations

from pathlib import Path

import anyio
import asyncpg
import pytest

from syncd.app import open_store
from tests.support import daemon_config, integration, poll_until, settings_of

pytestmark = pytest.mark.anyio


async def test_a_start_that_deadlocks_with_a_running_sibling_retries(
    database_url: str, tmp_path: Path
) -> None:
    document = daemon_config(
        database_url,
        {},
        [integration("acme", "hostaway", {"client_id": "1", "client_secret": "s"}, ["properties"])],
        state_dir=tmp_path,
    )
    settings = settings_of(document)
    sibling = await asyncpg.connect(database_url)
    watcher = await asyncpg.connect(database_url)
    started = anyio.Event()
    try:
        # The sibling's open transaction writes a table schema.sql indexes late (tasks)...
        await sibling.execute("SET deadlock_timeout = '30s'")  # the starting process detects it
        transaction = sibling.transaction()
        await transaction.start()
        await sibling.execute("LOCK TABLE tasks IN ROW EXCLUSIVE MODE")

        async def start() -> None:
            async with open_store(settings, database_url):
                started.set()

        async def migration_waits_for_the_sibling() -> bool:
            blocked = await watcher.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE NOT l.granted AND c.relname = 'tasks'"
            )
            return bool(blocked)

        async with anyio.create_task_group() as tg:
            tg.start_soon(start)
            with anyio.fail_after(30):
                await poll_until(migration_waits_for_the_sibling)
                # ... then a table the migration already altered (credentials): a cycle.
                await sibling.execute("LOCK TABLE credentials IN ROW EXCLUSIVE MODE")
                await transaction.rollback()
                await started.wait()
    finally:
        await sibling.close()
        await watcher.close()
    assert started.is_set()
