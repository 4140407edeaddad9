"""What the dropped foreign keys of properties and reservations guaranteed, on a real
PostgreSQL: a batch holds its integration's row, a batch for a missing integration writes
nothing, deleting an integration deletes its rows, and old databases lose the keys (and get
byte-ordered ids)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import orjson
import pytest

from syncd import errors
from syncd.models import Property, values_of
from syncd.store.postgres import Store
from syncd.store.queries import QUERIES
from syncd.store.types import TABLES, Batch, row_for
from tests.support import db_rows, schema_versions

PROPERTIES = TABLES["properties"]
pytestmark = pytest.mark.anyio
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def prop(ext: str) -> tuple[object, ...]:
    model = Property(external_id=ext, title=f"Listing {ext}", source_updated_at=T0)
    return row_for(PROPERTIES, values_of(model), orjson.dumps({"_id": ext}))


async def register(store: Store, *integration_ids: str) -> None:
    for integration_id in integration_ids:
        await store.register_integration(integration_id, "guesty", True, {"properties": (60.0, True)})


async def add_reservation(database_url: str, integration_id: str, ext: str) -> None:
    await db_rows(
        database_url,
        "INSERT INTO reservations (integration_id, external_id, property_external_id, status,"
        " partner_status, source_updated_at, raw, raw_type)"
        " VALUES ($1, $2, 'p', 'confirmed', 'confirmed', $3, '{}', 'application/json')",
        integration_id,
        ext,
        T0,
    )


async def test_deleting_an_integration_deletes_its_rows_and_then_its_batches_fail(database_url: str) -> None:
    async with Store.open(database_url) as store:
        await register(store, "acme", "other")
        for integration_id, ids in (("acme", ["a", "b"]), ("other", ["c"])):
            async with store.sync_session(integration_id, "properties") as session:
                assert session is not None
                await session.apply(Batch(rows=[prop(x) for x in ids], checkpoint={"p": 1}))
        await add_reservation(database_url, "acme", "r1")
        await add_reservation(database_url, "other", "r2")

        await db_rows(database_url, "DELETE FROM integrations WHERE id = 'acme'")

        left = await db_rows(
            database_url,
            "SELECT integration_id, external_id FROM properties UNION ALL "
            "SELECT integration_id, external_id FROM reservations ORDER BY 2",
        )
        assert [tuple(r) for r in left] == [("other", "c"), ("other", "r2")]
        # The daemon still runs acme (its config names it): its next batch writes nothing.
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            with pytest.raises(errors.StoreError, match="'acme' is not in the integrations table"):
                await session.apply(Batch(rows=[prop("d")], checkpoint={"p": 2}))
    assert await db_rows(database_url, "SELECT 1 FROM properties WHERE integration_id = 'acme'") == []
    assert await db_rows(database_url, "SELECT 1 FROM sync_state WHERE integration_id = 'acme'") == []


async def test_a_batch_holds_its_integration_row_as_a_foreign_key_check_would(database_url: str) -> None:
    async with Store.open(database_url) as store:
        await register(store, "acme")
    batch = await asyncpg.connect(database_url)
    other = await asyncpg.connect(database_url)
    try:
        await other.execute("SET lock_timeout = '300ms'")
        async with batch.transaction():
            assert await batch.fetchval(QUERIES["hold_integration"], "acme") == "acme"
            # Status changes (auth_failed, …) go on: only deleting or re-keying waits.
            await other.execute("UPDATE integrations SET status = 'auth_failed' WHERE id = 'acme'")
            with pytest.raises(asyncpg.LockNotAvailableError):
                await other.execute("DELETE FROM integrations WHERE id = 'acme'")
        assert await batch.fetchval(QUERIES["hold_integration"], "missing") is None
    finally:
        await batch.close()
        await other.close()


async def test_migrate_drops_the_old_foreign_keys_and_keeps_one_trigger(database_url: str) -> None:
    """A database made by an earlier schema.sql (per-row keys, ids in the database's
    collation): migrate removes the keys and makes the ids byte-ordered."""
    for table in ("properties", "reservations"):
        await db_rows(
            database_url,
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_integration_id_fkey FOREIGN KEY (integration_id)"
            " REFERENCES integrations (id) ON DELETE CASCADE, ALTER COLUMN external_id TYPE text"
            " COLLATE pg_catalog.default",
        )
    async with Store.open(database_url) as store:
        await store.migrate()
        await store.migrate()
    keys = await db_rows(
        database_url,
        "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f'"
        " AND conrelid IN ('properties'::regclass, 'reservations'::regclass)",
    )
    assert keys == []
    collations = await db_rows(
        database_url,
        "SELECT attrelid::regclass::text, attname, attcollation::regcollation::text FROM pg_attribute"
        " WHERE attrelid IN ('properties'::regclass, 'reservations'::regclass)"
        " AND attname IN ('integration_id', 'external_id', 'property_external_id') ORDER BY 1, 2",
    )
    assert [tuple(r) for r in collations] == [
        ("properties", "external_id", '"C"'),
        ("properties", "integration_id", '"C"'),
        ("reservations", "external_id", '"C"'),
        ("reservations", "integration_id", '"C"'),
        ("reservations", "property_external_id", '"C"'),
    ]
    triggers = await db_rows(
        database_url,
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'integrations'::regclass AND NOT tgisinternal",
    )
    assert [r["tgname"] for r in triggers] == ["integrations_delete_rows"]
    versions = await db_rows(database_url, "SELECT version FROM schema_migrations ORDER BY 1")
    assert [r["version"] for r in versions] == schema_versions()
    assert schema_versions()[:3] == [1, 2, 3]
