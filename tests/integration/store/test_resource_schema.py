"""Canonical resources against a real PostgreSQL: schema.sql's tables agree with the
models, every resource table is one the schema's shared statements know, a resource
declared only as a model and a table syncs like the others, and databases made before
``raw`` was bytea keep their payloads' bytes."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
import orjson
import pytest
from pydantic import BaseModel, ConfigDict, Field

from syncd import errors
from syncd.models import MAX_MONEY, ExternalId, SqlType, Timestamp, canonical_check, values_of
from syncd.store.codecs import init_connection
from syncd.store.postgres import Store, SyncSession
from syncd.store.queries import QUERIES
from syncd.store.resource_sql import expected_table
from syncd.store.resources import RESOURCES, Resource
from syncd.store.types import Batch, TableSpec, row_for
from tests.support import db_rows, schema_versions

pytestmark = pytest.mark.anyio
T0 = datetime(2025, 1, 1, tzinfo=UTC)

# name -> (type, NOT NULL, collation): what a column is, as PostgreSQL reports it.
_SHAPE = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, c.collname
FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""
Shape = dict[str, tuple[str, bool, str | None]]


async def shape(conn: asyncpg.Connection, table: str) -> Shape:
    return {r[0]: (r[1], r[2], r[3]) for r in await conn.fetch(_SHAPE, table)}


async def disagreement(conn: asyncpg.Connection, resource: Resource) -> dict[str, Any]:
    """Columns where ``resource``'s table differs from what its model implies: name ->
    (in the table, implied); None where a column is missing on one side."""
    expected_name = f"pg_temp.expected_{resource.table}"
    await conn.execute(f"DROP TABLE IF EXISTS {expected_name}")
    await conn.execute(expected_table(resource, expected_name))
    actual, expected = await shape(conn, resource.table), await shape(conn, expected_name)
    return {
        name: (actual.get(name), expected.get(name))
        for name in actual.keys() | expected.keys()
        if actual.get(name) != expected.get(name)
    }


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    await init_connection(connection)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.mark.parametrize("name", sorted(RESOURCES))
async def test_every_resource_table_in_schema_sql_agrees_with_its_model(
    conn: asyncpg.Connection, name: str
) -> None:
    """Names, types, NOT NULL and collations, bookkeeping columns included: a field added
    to a model without its column (or a column without its field) fails here."""
    resource = RESOURCES[name]
    assert await disagreement(conn, resource) == {}
    assert len(await shape(conn, resource.table)) == len(resource.columns) + 8  # the bookkeeping


async def test_the_schema_s_shared_statements_know_every_resource_table(conn: asyncpg.Connection) -> None:
    """The trigger that deletes an integration's rows and the migrations loop over
    syncd_resource_tables(): a resource missing from it would keep rows of deleted
    integrations (and miss migrations) silently."""
    listed = await conn.fetchval(
        "SELECT array_agg(t::text ORDER BY t::text) FROM unnest(syncd_resource_tables()) t"
    )
    assert listed == sorted(r.table for r in RESOURCES.values())


async def test_migrate_keeps_the_bytes_of_payloads_stored_as_json(database_url: str) -> None:
    """A database from before schema version 3 (``raw json``, no media type): migrate makes
    ``raw`` the bytes of the text json kept (the partner's, spacing and key order
    included) and names them JSON; a second migrate changes nothing."""
    sent = '{"_id":"a",  "title": "Loft", "b": [1, 2.50]}'
    conn = await asyncpg.connect(database_url)
    try:
        for resource in RESOURCES.values():
            await conn.execute(
                f"ALTER TABLE {resource.table} DROP COLUMN raw_type,"
                " ALTER COLUMN raw TYPE json USING convert_from(raw, 'UTF8')::json"
            )
        await conn.execute("DELETE FROM schema_migrations WHERE version = 3")
        await conn.execute("INSERT INTO integrations (id, partner) VALUES ('acme', 'guesty')")
        await conn.execute(
            "INSERT INTO properties (integration_id, external_id, title, active, listed,"
            " source_updated_at, raw) VALUES ('acme', 'a', 'Loft', true, true, $1, $2::text::json)",
            T0,
            sent,
        )
    finally:
        await conn.close()
    async with Store.open(database_url) as store:
        await store.migrate()
        await store.migrate()
    [row] = await db_rows(database_url, "SELECT raw, raw_type FROM properties")
    assert (row["raw"], row["raw_type"]) == (sent.encode(), "application/json")
    versions = await db_rows(database_url, "SELECT version FROM schema_migrations ORDER BY 1")
    assert [r["version"] for r in versions] == schema_versions()
    assert schema_versions()[:3] == [1, 2, 3]
    conn = await asyncpg.connect(database_url)
    try:
        for resource in RESOURCES.values():
            assert await disagreement(conn, resource) == {}
    finally:
        await conn.close()


async def test_migrate_adds_the_calendar_days_table_to_a_version_3_database(database_url: str) -> None:
    """Schema version 4 is one new table: a database without it gets it, matching its model,
    and keeps its other rows."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DROP TABLE calendar_days")
        await conn.execute("DELETE FROM schema_migrations WHERE version = 4")
        await conn.execute(
            "CREATE OR REPLACE FUNCTION syncd_resource_tables() RETURNS regclass[] LANGUAGE sql STABLE"
            " AS $$ SELECT ARRAY['properties'::regclass, 'reservations'::regclass] $$"
        )
    finally:
        await conn.close()
    async with Store.open(database_url) as store:
        await store.migrate()
    versions = await db_rows(database_url, "SELECT version FROM schema_migrations ORDER BY 1")
    assert [r["version"] for r in versions] == schema_versions()
    assert 4 in schema_versions()
    conn = await asyncpg.connect(database_url)
    try:
        assert await disagreement(conn, RESOURCES["calendar"]) == {}
        listed = await conn.fetchval("SELECT array_length(syncd_resource_tables(), 1)")
        assert listed == len(RESOURCES)
    finally:
        await conn.close()


# --- a resource declared in this test only: its model, its table, nothing else ----------


class GadgetKind(enum.StrEnum):
    LAMP = "lamp"
    DESK = "desk"


class Gadget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    external_id: ExternalId
    source_updated_at: Timestamp
    kind: GadgetKind
    name: str = Field(min_length=1)
    weight: Annotated[float | None, SqlType("real")] = Field(default=None, ge=0)
    price: Decimal | None = Field(default=None, ge=0, le=MAX_MONEY)
    made_on: date | None = None
    in_stock: bool = True
    parts: int | None = None


GADGETS = Resource("gadgets", Gadget, "gadgets", sweep=True)
# As schema.sql would declare it, in the columns' order an operator would choose.
GADGETS_TABLE = """
CREATE TABLE gadgets (
    integration_id     text COLLATE "C" NOT NULL,
    external_id        text COLLATE "C" NOT NULL,
    kind               text NOT NULL,
    name               text NOT NULL,
    weight             real,
    price              numeric(14, 2),
    made_on            date,
    in_stock           boolean NOT NULL,
    parts              integer,
    source_updated_at  timestamptz NOT NULL,
    fetched_at         timestamptz NOT NULL DEFAULT now(),
    version            integer NOT NULL DEFAULT 1,
    last_changed_fields text[],
    last_changes       json,
    deleted_at         timestamptz,
    raw                bytea NOT NULL,
    raw_type           text NOT NULL,
    PRIMARY KEY (integration_id, external_id)
)
"""


def gadget(ext: str, at: datetime, **fields: Any) -> Gadget:
    return Gadget(external_id=ext, source_updated_at=at, **{"kind": "lamp", "name": ext, **fields})


async def test_a_new_resource_costs_its_model_and_its_table(conn: asyncpg.Connection) -> None:
    """Every statement of the resource's sync (first-sync insert, upsert with its change
    events, sweep) is rendered from the model and runs against the table declared for it."""
    await conn.execute(GADGETS_TABLE)
    assert await disagreement(conn, GADGETS) == {}
    spec = TableSpec(GADGETS)
    await conn.execute(spec.sql.fields_ddl)  # Store.migrate's part for a resource: generated
    await conn.execute(spec.sql.create_staging)
    await conn.execute(QUERIES["create_seen_ids"])
    await conn.execute("INSERT INTO integrations (id, partner) VALUES ('acme', 'any')")
    session = SyncSession(conn, "acme", spec)

    def rows(*records: Gadget) -> list[tuple[Any, ...]]:
        return [
            row_for(spec, values_of(g), orjson.dumps({"id": g.external_id}), "text/x-test") for g in records
        ]

    first = [
        gadget("g1", T0, weight=1.5, price=Decimal("12.30"), made_on=date(2024, 5, 1), parts=3),
        gadget("g2", T0, kind="desk"),
    ]
    assert all(canonical_check(Gadget)(values_of(g)) for g in first)
    await session.start_run()
    assert session.writer.first_sync
    created = await session.apply(Batch(rows=rows(*first), checkpoint={"n": 1}))
    assert (created.inserted, created.updated) == (2, 0)

    later = T0 + timedelta(minutes=1)
    result = await session.apply(
        Batch(
            rows=rows(
                gadget("g1", later, weight=1.5, price=Decimal("15"), parts=3), gadget("g2", T0 - timedelta(1))
            )
        )
    )
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 1)
    stored = await conn.fetchrow("SELECT * FROM gadgets WHERE external_id = 'g1'")
    assert stored is not None
    assert (stored["price"], stored["made_on"], stored["version"]) == (Decimal("15.00"), None, 2)
    assert sorted(stored["last_changed_fields"]) == ["made_on", "price"]
    assert (stored["raw"], stored["raw_type"]) == (b'{"id":"g1"}', "text/x-test")

    started = await session.sweep_begin()
    await session.sweep_mark(["g1"])
    assert await session.live_count() == 2
    assert await session.sweep_candidates(started, 10) == ["g2"]
    assert await session.soft_delete(["g2"]) == 1
    assert await session.live_count() == 1
    events = await conn.fetch(
        "SELECT resource, external_id, kind, version, changed_fields FROM events ORDER BY id"
    )
    assert [tuple(e) for e in events] == [
        ("gadgets", "g1", "created", 1, None),
        ("gadgets", "g2", "created", 1, None),
        ("gadgets", "g1", "updated", 2, ["price", "made_on"]),
        ("gadgets", "g2", "deleted", 2, ["deleted_at"]),
    ]
    if conn.get_server_version().major >= 18:
        # The update's values, typed: the changed fields' old and new, NULL elsewhere.
        values = await conn.fetchrow(
            "SELECT to_json(old_gadgets)::text, to_json(new_gadgets)::text FROM events WHERE kind = 'updated'"
        )
        assert values is not None
        old, new = values
        assert orjson.loads(old)["price"] == 12.30 and orjson.loads(new)["price"] == 15.00
        assert orjson.loads(old)["made_on"] == "2024-05-01" and orjson.loads(new)["made_on"] is None
        assert orjson.loads(old)["weight"] is None and orjson.loads(new)["weight"] is None


async def test_a_table_missing_a_field_s_column_disagrees_with_its_model(conn: asyncpg.Connection) -> None:
    await conn.execute(GADGETS_TABLE)
    await conn.execute("ALTER TABLE gadgets DROP COLUMN parts, ALTER COLUMN kind DROP NOT NULL")
    await conn.execute("ALTER TABLE gadgets ADD COLUMN colour text")
    assert await disagreement(conn, GADGETS) == {
        "parts": (None, ("integer", False, None)),
        "kind": (("text", False, "default"), ("text", True, "default")),
        "colour": (("text", False, "default"), None),
    }


async def test_migrate_makes_each_history_type_and_appends_fields_the_model_gained(database_url: str) -> None:
    """A database from before the typed change values (schema version 9) gets each
    resource's composite and events columns; a field the model gained since is appended;
    a composite whose fields are in another order than the model's (a field inserted
    mid-model) stops migrate with the type's name, since the upsert fills it by position."""
    spec = TableSpec(RESOURCES["properties"])
    conn = await asyncpg.connect(database_url)
    try:
        for resource in RESOURCES.values():
            await conn.execute(
                f"ALTER TABLE events DROP COLUMN old_{resource.table}, DROP COLUMN new_{resource.table};"
                f" DROP TYPE {resource.table}_fields"
            )
        await conn.execute("CREATE TYPE properties_fields AS (deleted_at timestamptz, title text)")
        async with Store.open(database_url, min_size=1, max_size=2) as store:
            await store.migrate()
        fields = await conn.fetchval(QUERIES["composite_fields"], "properties_fields")
        assert tuple(fields) == spec.sql.fields and len(fields) > 2
        for resource in RESOURCES.values():
            columns = await shape(conn, "events")
            assert f"old_{resource.table}" in columns and f"new_{resource.table}" in columns

        await conn.execute("ALTER TABLE events DROP COLUMN old_properties, DROP COLUMN new_properties")
        await conn.execute("DROP TYPE properties_fields")
        await conn.execute(
            "CREATE TYPE properties_fields AS (deleted_at timestamptz, nickname text, title text)"
        )
        async with Store.open(database_url, min_size=1, max_size=2) as store:
            with pytest.raises(errors.StoreError, match="properties_fields has its fields in another order"):
                await store.migrate()
    finally:
        await conn.close()
