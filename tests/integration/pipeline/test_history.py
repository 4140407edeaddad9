"""Entity history and id merges on a real PostgreSQL, through the real pipeline with a
fake partner: a scripted series of partner edits, a deletion, a reappearance and an id
merge, then `syncd history` (in process and as a real process) lists exactly those events
with their exact old and new values."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog

from syncd import pipeline
from syncd.config import ResourceSettings
from syncd.connectors.guesty.fakes import FakeGuesty, listing
from syncd.observability.metrics import Metrics
from syncd.store import postgres
from syncd.store.postgres import Store
from tests.support import daemon_config, db_rows, integration, write_config

SETTINGS = ResourceSettings(overlap_s=0)
OLD = f"{1:024x}"
NEW = f"{2:024x}"


@pytest.fixture(params=["as_the_server_allows", "set_clause"])
def upsert_statement(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both upserts: RETURNING OLD on PostgreSQL 18 (the embedded server) and the SET
    clause's last_changes (older servers, as CI's system one), whatever the server is."""
    if request.param == "set_clause":
        monkeypatch.setattr(postgres, "RETURNING_OLD_SINCE", 1_000)
    return str(request.param)


pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("upsert_statement")]


def at(second: int) -> str:
    return f"2025-01-01T00:00:{second:02d}.000Z"


def ts(second: int) -> str:
    """The partner's timestamp as the history prints it."""
    return datetime(2025, 1, 1, 0, 0, second, tzinfo=UTC).isoformat()


def copy(i: int, second: int, **fields: Any) -> dict[str, Any]:
    """One copy of listing ``i`` as the partner serves it at ``second``."""
    values = {"title": "Beach", "accommodates": 2, "nickname": "B1", **fields}
    return listing(i, values.pop("title"), at(second), **values)


class Partner:
    """The partner's listing feed over time: every copy it ever served, in order (the fake
    resumes from its offset checkpoint, so each run reads the copies added since)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.records: list[dict[str, Any]] = []

    async def sync(
        self,
        *new_copies: dict[str, Any],
        merged_from: dict[str, str] | None = None,
        gone: frozenset[str] = frozenset(),
    ) -> pipeline.RunStats:
        """One run serving ``new_copies``; with ``gone``, a deletion sweep in which those ids
        are neither listed nor found by a direct GET."""
        self.records.extend(new_copies)
        connector = FakeGuesty(list(self.records), merged_from=dict(merged_from or {}))
        if gone:
            live = {r["_id"]: r for r in self.records if r["_id"] not in gone}
            connector.listed_ids = list(live)
            connector.existing = live
        async with Store.open(self.database_url) as store:
            await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})
            async with store.sync_session("acme", "properties") as session:
                assert session is not None
                options = pipeline.PipelineOptions(batch_size=100, sweep=bool(gone))
                return await pipeline.run(
                    session, connector, "properties", SETTINGS, options, Metrics(),
                    structlog.get_logger(), anyio.Event(),
                )  # fmt: skip


async def history(database_url: str, external_id: str) -> list[tuple[Any, ...]]:
    """(id, kind, version, partner timestamp, changes) of each event, oldest first."""
    async with Store.open(database_url) as store:
        events = await store.history("acme", "properties", external_id)
    return [
        (e["external_id"], e["kind"], e["version"], e["source_updated_at"].isoformat(), e["changes"])
        for e in events
    ]


async def scripted_series(database_url: str) -> tuple[Partner, str]:
    """Create, three edits of different fields, an edit that changes nothing, a deletion by
    the sweep, a reappearance, an id merge, a late copy under the old id, an edit after the
    merge. Returns the partner and when the sweep deleted the record."""
    partner = Partner(database_url)
    other = copy(9, 1, title="Neighbour")  # a second listing, untouched throughout
    await partner.sync(copy(1, 1), other)
    await partner.sync(copy(1, 2, title="Ocean"))
    await partner.sync(copy(1, 3, title="Ocean", accommodates=4))
    await partner.sync(copy(1, 4, title="Ocean", accommodates=4, nickname=None))
    stats = await partner.sync(copy(1, 5, title="Ocean", accommodates=4, nickname=None))
    assert (stats.updated, stats.unchanged) == (0, 1)  # a newer copy, the same content
    stats = await partner.sync(gone=frozenset({OLD}))
    assert stats.deleted == 1
    # As PostgreSQL writes a timestamp in JSON (fractional seconds without trailing zeros).
    [row] = await db_rows(
        database_url, "SELECT to_jsonb(deleted_at) #>> '{}' FROM properties WHERE external_id = $1", OLD
    )
    deleted_at = row[0]
    await partner.sync(copy(1, 6, title="Ocean", accommodates=4, nickname=None))
    # The partner re-identifies the listing: same content under a new id, saying its old id.
    await partner.sync(copy(2, 7, title="Ocean", accommodates=4, nickname=None), merged_from={NEW: OLD})
    # An overlap re-read of the old id's last copy lands on the new id, and is older.
    stats = await partner.sync(copy(1, 6, title="Ocean", accommodates=4, nickname=None))
    assert (stats.inserted, stats.updated, stats.unchanged) == (0, 0, 1)
    await partner.sync(copy(2, 8, title="Harbour", accommodates=4, nickname=None))
    return partner, deleted_at


async def test_the_history_of_an_entity_is_exact_across_edits_a_deletion_and_an_id_merge(
    database_url: str, upsert_statement: str
) -> None:
    _, deleted_at = await scripted_series(database_url)
    expected = [
        (OLD, "created", 1, ts(1), None),
        (OLD, "updated", 2, ts(2), {"title": ["Beach", "Ocean"]}),
        (OLD, "updated", 3, ts(3), {"accommodates": [2, 4]}),
        (OLD, "updated", 4, ts(4), {"nickname": ["B1", None]}),
        (OLD, "deleted", 5, ts(5), {"deleted_at": [None, deleted_at]}),
        (OLD, "restored", 6, ts(6), {"deleted_at": [deleted_at, None]}),
        (NEW, "merged", 7, ts(6), {"external_id": [OLD, NEW]}),
        (NEW, "updated", 8, ts(8), {"title": ["Ocean", "Harbour"]}),
    ]
    assert await history(database_url, NEW) == expected
    # Asked by its former id, the entity's history is the same.
    assert await history(database_url, OLD) == expected
    rows = await db_rows(
        database_url, "SELECT external_id, version, title, deleted_at FROM properties ORDER BY 1"
    )
    assert [tuple(r) for r in rows] == [(NEW, 8, "Harbour", None), (f"{9:024x}", 1, "Neighbour", None)]
    # The neighbour's history is its own.
    assert [e[1] for e in await history(database_url, f"{9:024x}")] == ["created"]
    # The row keeps its last change's values only where the upsert needs them to reach
    # the event (before PostgreSQL 18).
    [row] = await db_rows(
        database_url,
        "SELECT last_changes::text, current_setting('server_version_num')::int FROM properties"
        " WHERE external_id = $1",
        NEW,
    )
    if upsert_statement == "set_clause" or row[1] < postgres.RETURNING_OLD_SINCE * 10_000:
        assert json.loads(row[0]) == {"title": ["Ocean", "Harbour"]}
    else:
        assert row[0] is None


async def test_syncd_history_prints_the_series_as_a_real_process(database_url: str, tmp_path: Path) -> None:
    _, deleted_at = await scripted_series(database_url)
    config = write_config(
        daemon_config(
            database_url,
            {},
            [integration("acme", "guesty", {"client_id": "x", "client_secret": "y"}, ["properties"])],
            state_dir=tmp_path,
        ),
        tmp_path,
    )
    command = [sys.executable, "-m", "syncd", "history", "acme", "properties", NEW, "--config", str(config)]
    text = await anyio.run_process(command, check=False)
    assert text.returncode == 0, text.stderr.decode()
    header, *lines = text.stdout.decode().splitlines()
    assert header.split() == ["OCCURRED_AT", "EXTERNAL_ID", "KIND", "VERSION", "SOURCE_UPDATED_AT", "CHANGES"]
    fields = [line.split(maxsplit=5) for line in lines]
    assert [(f[1], f[2], f[3], f[4]) for f in fields] == [
        (OLD, "created", "1", ts(1)),
        (OLD, "updated", "2", ts(2)),
        (OLD, "updated", "3", ts(3)),
        (OLD, "updated", "4", ts(4)),
        (OLD, "deleted", "5", ts(5)),
        (OLD, "restored", "6", ts(6)),
        (NEW, "merged", "7", ts(6)),
        (NEW, "updated", "8", ts(8)),
    ]
    assert [f[5] if len(f) > 5 else "" for f in fields] == [
        "",
        'title: "Beach" -> "Ocean"',
        "accommodates: 2 -> 4",
        'nickname: "B1" -> null',
        f'deleted_at: null -> "{deleted_at}"',
        f'deleted_at: "{deleted_at}" -> null',
        f'external_id: "{OLD}" -> "{NEW}"',
        'title: "Ocean" -> "Harbour"',
    ]

    as_json = await anyio.run_process([*command, "--json"], check=False)
    assert as_json.returncode == 0, as_json.stderr.decode()
    events = [json.loads(line) for line in as_json.stdout.decode().splitlines()]
    assert [(e["kind"], e["version"], e["source_updated_at"], e["changes"]) for e in events] == [
        ("created", 1, ts(1), None),
        ("updated", 2, ts(2), {"title": ["Beach", "Ocean"]}),
        ("updated", 3, ts(3), {"accommodates": [2, 4]}),
        ("updated", 4, ts(4), {"nickname": ["B1", None]}),
        ("deleted", 5, ts(5), {"deleted_at": [None, deleted_at]}),
        ("restored", 6, ts(6), {"deleted_at": [deleted_at, None]}),
        ("merged", 7, ts(6), {"external_id": [OLD, NEW]}),
        ("updated", 8, ts(8), {"title": ["Ocean", "Harbour"]}),
    ]

    # Bad arguments: exit 2 with the problem on stderr; a record never synced: exit 1.
    for args, code, message in [
        (["nowhere", "properties", NEW], 2, "INTEGRATION: unknown integration 'nowhere'"),
        (["acme", "gadgets", NEW], 2, "RESOURCE: unknown resource 'gadgets'"),
        (["acme", "properties", "never-seen"], 1, "no history"),
    ]:
        failed = await anyio.run_process(
            [sys.executable, "-m", "syncd", "history", *args, "--config", str(config)], check=False
        )
        assert failed.returncode == code
        assert message in failed.stderr.decode() and failed.stdout == b""


async def test_a_merge_into_a_record_that_exists_deletes_the_old_one_and_tells_both(
    database_url: str,
) -> None:
    partner = Partner(database_url)
    await partner.sync(copy(1, 1), copy(2, 1, title="Villa"))
    await partner.sync(copy(2, 2, title="Villa"), merged_from={NEW: OLD})
    [row] = await db_rows(
        database_url,
        "SELECT version, to_jsonb(deleted_at) #>> '{}' FROM properties WHERE external_id = $1",
        OLD,
    )
    version, deleted_at = row
    assert version == 2 and deleted_at is not None
    expected = [
        (OLD, "created", 1, ts(1), None),
        (NEW, "created", 1, ts(1), None),
        (OLD, "merged", 2, ts(1), {"external_id": [OLD, NEW], "deleted_at": [None, deleted_at]}),
        (NEW, "merged", 1, ts(1), {"external_id": [OLD, NEW]}),
    ]
    assert await history(database_url, NEW) == expected
    # The partner says it again (an overlap re-read): nothing more happens.
    await partner.sync(copy(2, 2, title="Villa"), merged_from={NEW: OLD})
    # A newer copy still sent under the old id (a webhook, a late page) updates the entity
    # under its id now instead of bringing a second one back.
    stats = await partner.sync(copy(1, 3, title="Villa", accommodates=6))
    assert (stats.inserted, stats.updated) == (0, 1)
    assert await history(database_url, OLD) == [
        *expected,
        (NEW, "updated", 2, ts(3), {"accommodates": [2, 6]}),
    ]
    live = await db_rows(database_url, "SELECT external_id FROM properties WHERE deleted_at IS NULL")
    assert [r[0] for r in live] == [NEW]


async def test_a_chain_of_merges_is_one_entity_under_its_last_id(database_url: str) -> None:
    third = f"{3:024x}"
    partner = Partner(database_url)
    await partner.sync(copy(1, 1))
    await partner.sync(copy(2, 2), merged_from={NEW: OLD})
    await partner.sync(copy(3, 3, title="Loft"), merged_from={third: NEW})
    expected = [
        (OLD, "created", 1, ts(1), None),
        (NEW, "merged", 2, ts(1), {"external_id": [OLD, NEW]}),
        (third, "merged", 3, ts(2), {"external_id": [NEW, third]}),
        (third, "updated", 4, ts(3), {"title": ["Beach", "Loft"]}),
    ]
    for asked in (OLD, NEW, third):
        assert await history(database_url, asked) == expected
    aliases = await db_rows(database_url, "SELECT old_id, new_id FROM entity_aliases ORDER BY 1")
    assert [tuple(r) for r in aliases] == [(OLD, third), (NEW, third)]  # flat: one lookup each
    # Copies under either former id land on the entity.
    await partner.sync(copy(1, 4, title="Loft", accommodates=3), copy(2, 5, title="Loft", accommodates=5))
    rows = await db_rows(database_url, "SELECT external_id, accommodates, version FROM properties")
    assert [tuple(r) for r in rows] == [(third, 5, 5)]


async def test_migrate_adds_the_history_columns_and_the_alias_table_to_an_older_database(
    database_url: str,
) -> None:
    for statement in (
        "ALTER TABLE properties DROP COLUMN last_changes",
        "ALTER TABLE reservations DROP COLUMN last_changes",
        "ALTER TABLE events DROP COLUMN changes",
        "DROP TABLE entity_aliases",
        "DELETE FROM schema_migrations WHERE version = 5",
    ):
        await db_rows(database_url, statement)
    async with Store.open(database_url) as store:
        await store.migrate()
        await store.migrate()
    columns = await db_rows(
        database_url,
        "SELECT attrelid::regclass::text, attname FROM pg_attribute"
        " WHERE attname IN ('last_changes', 'changes') AND NOT attisdropped"
        " AND attrelid IN ('properties'::regclass, 'reservations'::regclass, 'events'::regclass) ORDER BY 1",
    )
    assert [tuple(r) for r in columns] == [
        ("events", "changes"),
        ("properties", "last_changes"),
        ("reservations", "last_changes"),
    ]
    assert await db_rows(database_url, "SELECT 1 FROM schema_migrations WHERE version = 5")
    await scripted_series(database_url)  # and the history works there
    assert [e[1] for e in await history(database_url, NEW)][-2:] == ["merged", "updated"]
