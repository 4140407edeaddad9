"""Pipeline behaviour on a real database with a fake partner: deletion sweeps that never
mass-delete, drains that commit what was fetched, dead letters that resolve themselves,
raw records stored as they came."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncGenerator
from typing import Any

import anyio
import asyncpg
import orjson
import pytest
import structlog

from syncd import pipeline
from syncd.config import ResourceSettings, Settings, parse_settings
from syncd.connectors import registry
from syncd.connectors.base import Page
from syncd.connectors.guesty.fakes import FakeGuesty, listing
from syncd.observability.metrics import Metrics
from syncd.store.postgres import Store

pytestmark = pytest.mark.anyio
SETTINGS = ResourceSettings(overlap_s=0)


async def run(
    database_url: str, connector: FakeGuesty, sweep: bool = False, stop: anyio.Event | None = None
) -> pipeline.RunStats:
    async with Store.open(database_url) as store:
        await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            options = pipeline.PipelineOptions(batch_size=100, sweep=sweep)
            return await pipeline.run(
                session, connector, "properties", SETTINGS, options, Metrics(), structlog.get_logger(),
                stop or anyio.Event(),
            )  # fmt: skip


def _acme_settings() -> Settings:
    """One Guesty integration, ``acme``, syncing properties without deletion sweeps."""
    integration = {
        "id": "acme",
        "partner": "guesty",
        "credentials": {"client_id": "x", "client_secret": "y"},
        "resources": {"properties": {"deletion_sweep": False}},
    }
    return parse_settings({"integrations": [integration]}, {}, registry.schemas())


async def live_ids(database_url: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT external_id FROM properties WHERE deleted_at IS NULL")
        return {r[0] for r in rows}
    finally:
        await conn.close()


async def test_sweep_soft_deletes_only_what_a_direct_get_confirms_gone(database_url: str) -> None:
    records = [listing(i) for i in range(300)]
    await run(database_url, FakeGuesty(records))
    gone = {records[5]["_id"], records[150]["_id"]}
    shifted = records[7]["_id"]  # missing from the id listing, but a GET still finds it
    remaining = [r for r in records if r["_id"] not in gone]
    connector = FakeGuesty(
        remaining,
        listed_ids=[r["_id"] for r in remaining if r["_id"] != shifted],
        existing={r["_id"]: r for r in remaining},
    )
    stats = await run(database_url, connector, sweep=True)
    assert stats.deleted == 2 and stats.swept
    assert sorted(connector.fetch_one_calls) == sorted([*gone, shifted])
    assert await live_ids(database_url) == {r["_id"] for r in remaining}


async def test_a_sweep_that_would_delete_too_much_is_refused(database_url: str) -> None:
    records = [listing(i) for i in range(400)]
    await run(database_url, FakeGuesty(records))
    truncated = FakeGuesty(records, listed_ids=[r["_id"] for r in records[:200]], existing={})
    stats = await run(database_url, truncated, sweep=True)
    assert stats.deleted == 0 and not stats.swept
    assert truncated.fetch_one_calls == []
    assert len(await live_ids(database_url)) == 400


async def test_a_drain_commits_the_pages_already_fetched_and_stops(database_url: str) -> None:
    stop = anyio.Event()
    stop.set()  # stop requested before the run: it still commits the first page it fetched
    stats = await run(database_url, FakeGuesty([listing(i) for i in range(1000)]), stop=stop)
    assert stats.interrupted and 0 < stats.fetched < 1000
    assert len(await live_ids(database_url)) == stats.fetched


async def test_a_dead_letter_resolves_when_the_record_comes_back_clean(database_url: str) -> None:
    bad = listing(1, updated="not-a-date")
    await run(database_url, FakeGuesty([listing(0), bad]))
    fixed = listing(1, updated="2025-01-02T00:00:00.000Z")
    # The partner fixed it (a newer copy appears after the checkpoint).
    await run(database_url, FakeGuesty([listing(0), bad, fixed]))
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT external_id, resolved_at FROM dead_letters")
    finally:
        await conn.close()
    assert [(r[0], r[1] is not None) for r in rows] == [(bad["_id"], True)]


async def test_a_run_past_its_deadline_stops_keeping_what_it_committed(database_url: str) -> None:
    from syncd.engine.runner import SyncRunner

    settings = parse_settings(
        {
            "database": {"batch_size": 100},
            "integrations": [
                {
                    "id": "acme", "partner": "guesty",
                    "credentials": {"client_id": "x", "client_secret": "y"},
                    "resources": {"properties": {"run_deadline_s": 0.5, "deletion_sweep": False}},
                }
            ],
        },
        {},
        registry.schemas(),
    )  # fmt: skip
    slow = FakeGuesty([listing(i) for i in range(5000)], page_delay_s=0.05)
    async with Store.open(database_url) as store:
        await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})
        runner = SyncRunner(store, {"acme": slow}, settings, Metrics(), structlog.get_logger(), anyio.Event())
        with anyio.fail_after(10):
            assert await runner.run("acme", "properties") == "failed"
    saved = await live_ids(database_url)
    assert 0 < len(saved) < 5000
    conn = await asyncpg.connect(database_url)
    try:
        error = await conn.fetchval("SELECT last_error FROM sync_state WHERE resource = 'properties'")
        checkpoint = await conn.fetchval(
            "SELECT checkpoint::text FROM sync_state WHERE resource = 'properties'"
        )
    finally:
        await conn.close()
    assert "deadline" in error
    assert f'"offset": {len(saved)}' in checkpoint  # checkpoint and data agree


async def test_nul_characters_never_poison_a_batch(database_url: str) -> None:
    """PostgreSQL text cannot hold NUL; one such value used to fail its whole batch forever."""
    records = [listing(i) for i in range(20)]
    records[3]["title"] = "Loft\u0000 by the sea"
    records[4]["nickname"] = "\u0000"

    class WithGarbage(FakeGuesty):
        async def stream(
            self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
        ) -> AsyncGenerator[Page, None]:
            async for page in super().stream(resource, checkpoint, settings):
                # Invalid JSON with a raw NUL byte, as a broken partner could send it.
                page.records.append(b'{"_id":"zz","title":"a\x00b"')
                yield page

    stats = await run(database_url, WithGarbage(records))
    assert stats.inserted == 20 and stats.dead_lettered == 1
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT title, nickname, convert_from(raw, 'UTF8') AS raw FROM properties WHERE external_id = $1",
            records[3]["_id"],
        )
        assert row is not None and row["title"] == "Loft by the sea"
        assert "\\u0000" in row["raw"]  # the partner's bytes, escape included, kept in raw
        nickname = await conn.fetchval(
            "SELECT nickname FROM properties WHERE external_id = $1", records[4]["_id"]
        )
        assert nickname == ""
        payload = await conn.fetchval("SELECT payload FROM dead_letters")
        assert "\\u0000" in payload and "\x00" not in payload
    finally:
        await conn.close()


async def test_an_unexpected_error_fails_its_run_not_the_daemon(database_url: str) -> None:
    """A bug in a driver (or a library raising something unforeseen) is one failed run,
    logged with its traceback and retried; the other syncs of the process go on."""
    from syncd.engine.runner import SyncRunner

    settings = _acme_settings()

    class Buggy(FakeGuesty):
        async def stream(
            self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
        ) -> AsyncGenerator[Page, None]:
            yield Page([orjson.dumps(listing(1))], {"offset": 1})
            raise KeyError("a driver bug")

    async with Store.open(database_url) as store:
        await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})
        log = structlog.get_logger()
        runner = SyncRunner(store, {"acme": Buggy([])}, settings, Metrics(), log, anyio.Event())
        assert await runner.run("acme", "properties") == "failed"
        schedules = await store.list_schedules(["acme"])
    assert schedules[0].consecutive_failures == 1  # rescheduled like any failed run


async def test_values_beyond_their_columns_are_dead_letters_not_a_failed_batch(database_url: str) -> None:
    """numeric(14, 2) holds less than 10^12: a larger price used to fail its batch forever
    (and a time the driver cannot encode, its run)."""
    records = [listing(i) for i in range(10)]
    records[2]["prices"] = {"basePrice": 1e15, "currency": "EUR"}
    records[5]["prices"] = {"basePrice": "1E+400", "currency": "EUR"}
    records[7]["prices"] = {"basePrice": 999_999_999_999.99, "currency": "EUR"}  # the largest that fits
    # A time whose UTC value is before year 1: the driver could not encode it (OverflowError).
    records[8]["lastUpdatedAt"] = "0001-01-01T00:00:00+01:00"
    stats = await run(database_url, FakeGuesty(records))
    assert stats.inserted == 7 and stats.dead_lettered == 3
    assert await live_ids(database_url) == {r["_id"] for n, r in enumerate(records) if n not in (2, 5, 8)}
    conn = await asyncpg.connect(database_url)
    try:
        reasons = [r[0] for r in await conn.fetch("SELECT reason FROM dead_letters ORDER BY external_id")]
        assert [reason.split(":")[0] for reason in reasons] == [
            "base_price",
            "base_price",
            "source_updated_at",
        ]
    finally:
        await conn.close()


async def test_bytes_that_are_not_utf8_in_a_field_we_do_not_map_are_stored_as_sent(database_url: str) -> None:
    """Neither decoder reads the bytes of an unmapped field, and ``raw`` is bytea: such a
    record is a row like any other, its bytes kept exactly (a json column refused them,
    and the record became a dead letter)."""
    records = [listing(i) for i in range(6)]
    sent: dict[str, bytes] = {}

    class WithBadBytes(FakeGuesty):
        async def stream(
            self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
        ) -> AsyncGenerator[Page, None]:
            async for page in super().stream(resource, checkpoint, settings):
                page.records[2] = page.records[2][:-1] + b',"pictures":[{"caption":"caf\xe9"}]}'
                sent[records[2]["_id"]] = page.records[2]
                yield page

    stats = await run(database_url, WithBadBytes(records))
    assert stats.inserted == 6 and stats.dead_lettered == 0
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT title, raw, raw_type FROM properties WHERE external_id = $1", records[2]["_id"]
        )
    finally:
        await conn.close()
    assert row is not None and row["title"] == records[2]["title"]
    assert (row["raw"], row["raw_type"]) == (sent[records[2]["_id"]], "application/json")


async def test_records_of_any_format_are_stored_verbatim_with_their_media_type(database_url: str) -> None:
    """A connector whose partner answers in XML says so on its pages; the pipeline stores
    each record's bytes as they came, beside that media type, and reads nothing of them."""
    records = [listing(i, title=f"Loft {i}") for i in range(3)]

    def as_xml(record: dict[str, Any]) -> bytes:
        return (
            f'<?xml version="1.0"?><listing id="{record["_id"]}"><title>{record["title"]}</title>'
            f"<updated>{record['lastUpdatedAt']}</updated></listing>"
        ).encode()

    by_xml = {as_xml(r): orjson.dumps(r) for r in records}

    class XmlPartner(FakeGuesty):
        def normalizer(self, resource: str) -> Any:
            json_normalizer = super().normalizer(resource)
            return lambda raw: json_normalizer(by_xml[bytes(raw)])

        async def stream(
            self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
        ) -> AsyncGenerator[Page, None]:
            yield Page([as_xml(r) for r in records], {"offset": 3}, media_type="application/xml")

    stats = await run(database_url, XmlPartner(records))
    assert stats.inserted == 3
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT external_id, title, raw, raw_type FROM properties ORDER BY external_id"
        )
    finally:
        await conn.close()
    expected = sorted(records, key=lambda r: r["_id"])
    assert [(r["external_id"], r["raw"], r["raw_type"]) for r in rows] == [
        (r["_id"], as_xml(r), "application/xml") for r in expected
    ]
    assert [r["title"] for r in rows] == [r["title"] for r in expected]


async def test_an_id_too_long_to_index_is_an_unidentified_dead_letter(database_url: str) -> None:
    """A dead letter is keyed by the record's id; a 5,000-character id does not fit a btree
    entry, and the dead letter's insert used to fail the whole batch on every retry."""
    records = [listing(i) for i in range(4)]
    # Hex digests: a long id that does not compress (a repeated letter would, and fit).
    records[1]["_id"] = "".join(hashlib.sha256(b"%d" % i).hexdigest() for i in range(80))
    stats = await run(database_url, FakeGuesty(records))
    assert stats.inserted == 3 and stats.dead_lettered == 1
    conn = await asyncpg.connect(database_url)
    try:
        [(name, reason)] = [
            tuple(r) for r in await conn.fetch("SELECT external_id, reason FROM dead_letters")
        ]
    finally:
        await conn.close()
    assert name.startswith("unidentified:") and len(name) < 40
    assert reason.startswith("external_id:")


async def test_a_run_refused_by_an_open_circuit_goes_again_once_it_closes(database_url: str) -> None:
    """A run that failed fast on an open breaker (a sibling resource held the half-open
    probe) waits for the breaker's retry time; once a breaker closes it is due at once."""
    from syncd import errors
    from syncd.engine.runner import SyncRunner

    settings = _acme_settings()

    class Refused(FakeGuesty):
        async def stream(
            self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
        ) -> AsyncGenerator[Page, None]:
            raise errors.CircuitOpen("circuit guesty/acme is half_open", retry_in=15.0)
            yield  # an async generator

    async def due_in(store: Store) -> float:
        [schedule] = await store.list_schedules(["acme"])
        return (schedule.next_due_at - await store.now()).total_seconds()

    async with Store.open(database_url) as store:
        await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})
        runner = SyncRunner(
            store, {"acme": Refused([])}, settings, Metrics(), structlog.get_logger(), anyio.Event()
        )
        assert await runner.run("acme", "properties") == "failed"
        assert 14 < await due_in(store) <= 15 * 1.2  # the breaker's retry time, not sooner
        assert runner.take_circuit_waiting() == []  # nothing closed since
        runner.circuit_closed()
        assert runner.take_circuit_waiting() == [("acme", "properties")]
        assert runner.take_circuit_waiting() == []  # handed out once
        # Closed while a refused run was still finishing: it is rescheduled for now.
        runner.circuit_refused(("acme", "properties"), 15.0, time.monotonic())
        runner.circuit_closed()
        res = runner.resource_settings("acme", "properties")
        await runner._reschedule("acme", "properties", res, "failed", structlog.get_logger())
        assert await due_in(store) <= 1
