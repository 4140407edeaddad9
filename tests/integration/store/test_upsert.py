"""Batch upserts on a real PostgreSQL: last write wins by partner timestamp, versions, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio
import asyncpg
import orjson
import pytest

from syncd.models import Property, Reservation, ReservationStatus, values_of
from syncd.store.postgres import Store
from syncd.store.types import TABLES, Batch, DeadLetter, row_for
from tests.support import db_rows

PROPERTIES = TABLES["properties"]
pytestmark = pytest.mark.anyio
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def prop(ext: str, title: str, at: datetime, **kw: Any) -> tuple[Any, ...]:
    model = Property(external_id=ext, title=title, source_updated_at=at, **kw)
    return row_for(PROPERTIES, values_of(model), orjson.dumps({"_id": ext, "title": title}))


async def setup(store: Store) -> None:
    await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})


async def test_newer_wins_older_never_overwrites_and_versions_count_real_changes(database_url: str) -> None:
    async with Store.open(database_url) as store:
        await setup(store)
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            r1 = await session.apply(
                Batch(rows=[prop("a", "Beach", T0), prop("b", "Hill", T0)], checkpoint={"k": 1})
            )
            assert (r1.inserted, r1.updated, r1.unchanged) == (2, 0, 0)
            # An older copy of "a" arrives late: ignored.
            r2 = await session.apply(Batch(rows=[prop("a", "Stale", T0 - timedelta(seconds=5))]))
            assert (r2.inserted, r2.updated, r2.unchanged) == (0, 0, 1)
            # Same timestamp again (overlap re-read): not a change.
            r3 = await session.apply(Batch(rows=[prop("a", "Beach", T0)]))
            assert r3.unchanged == 1
            # Newer timestamp, same content: timestamp advances, version does not.
            r4 = await session.apply(Batch(rows=[prop("b", "Hill", T0 + timedelta(seconds=1))]))
            assert (r4.updated, r4.unchanged) == (0, 1)
            # Newer and different: version 2, one event naming the field.
            r5 = await session.apply(
                Batch(rows=[prop("a", "Ocean", T0 + timedelta(seconds=2), accommodates=4)])
            )
            assert r5.updated == 1
            assert await session.checkpoint() == {"k": 1}
    conn = await asyncpg.connect(database_url)
    try:
        rows = {r["external_id"]: r for r in await conn.fetch("SELECT * FROM properties ORDER BY 1")}
        assert rows["a"]["title"] == "Ocean" and rows["a"]["version"] == 2
        assert rows["b"]["version"] == 1 and rows["b"]["source_updated_at"] == T0 + timedelta(seconds=1)
        events = await conn.fetch("SELECT external_id, kind, version, changed_fields FROM events ORDER BY id")
        assert [(e["external_id"], e["kind"], e["version"]) for e in events] == [
            ("a", "created", 1),
            ("b", "created", 1),
            ("a", "updated", 2),
        ]
        assert sorted(events[2]["changed_fields"]) == ["accommodates", "title"]
    finally:
        await conn.close()


async def test_a_second_edit_within_the_partners_timestamp_granularity_is_applied(database_url: str) -> None:
    """Partners with whole-second timestamps can change a record twice in one second: the
    same timestamp with other bytes is the partner's later copy, not a re-read."""
    async with Store.open(database_url) as store:
        await setup(store)
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            await session.apply(Batch(rows=[prop("a", "Beach", T0)]))
            await session.apply(Batch(rows=[prop("a", "Beach", T0 - timedelta(seconds=1))]))  # older
            edited = await session.apply(Batch(rows=[prop("a", "Dune", T0)]))
            again = await session.apply(Batch(rows=[prop("a", "Dune", T0)]))  # overlap re-read
    assert (edited.updated, again.unchanged) == (1, 1)
    rows = await db_rows(database_url, "SELECT title, version FROM properties WHERE external_id = 'a'")
    assert (rows[0]["title"], rows[0]["version"]) == ("Dune", 2)
    events = await db_rows(database_url, "SELECT kind, changed_fields FROM events ORDER BY id")
    assert [(e["kind"], e["changed_fields"]) for e in events] == [("created", None), ("updated", ["title"])]


async def test_dead_letters_are_saved_with_the_rest_of_the_page(database_url: str) -> None:
    async with Store.open(database_url) as store:
        await setup(store)
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            bad = DeadLetter("x", "data", "accommodates: not an int", '{"_id":"x"}')
            result = await session.apply(
                Batch(rows=[prop("a", "A", T0)], dead_letters=[bad], checkpoint={"p": 1})
            )
            assert result.dead_lettered == 1 and result.inserted == 1
            await session.apply(Batch(dead_letters=[bad]))
    conn = await asyncpg.connect(database_url)
    try:
        dl = await conn.fetch("SELECT external_id, attempts, reason FROM dead_letters")
        assert [(r["external_id"], r["attempts"]) for r in dl] == [("x", 2)]
        assert await conn.fetchval("SELECT count(*) FROM properties") == 1
    finally:
        await conn.close()


async def test_a_failed_batch_leaves_neither_rows_nor_checkpoint(database_url: str) -> None:
    async with Store.open(database_url) as store:
        await setup(store)
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            await session.apply(Batch(rows=[prop("a", "A", T0)], checkpoint={"page": 1}))
            # Duplicate key in one statement makes PostgreSQL refuse the whole batch.
            dup = [prop("b", "B", T0), prop("b", "B2", T0)]
            with pytest.raises(Exception):  # noqa: B017 - any store error; the point is atomicity
                await session.apply(Batch(rows=dup, checkpoint={"page": 2}))
            assert await session.checkpoint() == {"page": 1}
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM properties") == 1
    finally:
        await conn.close()


async def test_a_run_failing_while_a_batch_is_written_still_records_its_failure(database_url: str) -> None:
    """The run's error cancels the batch being written, rollback included; the failure
    must still be recorded on the run's connection, with nothing of the batch kept."""
    rows = [prop(f"p{i}", "Home", T0) for i in range(20_000)]
    async with Store.open(database_url) as store:
        await setup(store)
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            await session.start_run()
            with anyio.move_on_after(0.05):
                await session.apply(Batch(rows=rows, checkpoint={"page": 1}))
            await session.finish_failed("PartnerRejected: the partner said no")
    state = await db_rows(database_url, "SELECT last_error, checkpoint FROM sync_state")
    assert (state[0]["last_error"], state[0]["checkpoint"]) == ("PartnerRejected: the partner said no", None)
    assert (await db_rows(database_url, "SELECT count(*) FROM properties"))[0][0] == 0


async def test_second_session_on_the_same_resource_is_refused(database_url: str) -> None:
    async with Store.open(database_url) as store:
        await setup(store)
        async with store.sync_session("acme", "properties") as first:
            assert first is not None
            async with store.sync_session("acme", "properties") as second:
                assert second is None
        async with store.sync_session("acme", "properties") as again:
            assert again is not None


async def test_error_texts_with_nul_are_stored_escaped(database_url: str) -> None:
    """A partner's body quoted in an error can carry NUL, which text columns refuse: the
    failed run's error (and an integration's status reason) are stored escaped instead."""
    async with Store.open(database_url) as store:
        await setup(store)
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            await session.start_run()
            await session.finish_failed("422 from partner: bad\x00filter")
        await store.set_integration_status("acme", "auth_failed", "refused: \x00")
    [(error,)] = await db_rows(
        database_url, "SELECT last_error FROM sync_state WHERE integration_id = 'acme'"
    )
    [(reason,)] = await db_rows(database_url, "SELECT status_reason FROM integrations WHERE id = 'acme'")
    assert error == "422 from partner: bad\\u0000filter"
    assert reason == "refused: \\u0000"


async def test_a_first_sync_inserts_and_turns_to_upserts_when_a_record_comes_again(database_url: str) -> None:
    async with Store.open(database_url) as store:
        await setup(store)
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            await session.start_run()
            assert session.writer.first_sync  # no properties yet: plain inserts
            first = await session.apply(Batch(rows=[prop("a", "Beach", T0), prop("b", "Hill", T0)]))
            assert session.writer.first_sync
            # "a" again, newer: the insert meets it, the batch is upserted instead.
            again = await session.apply(
                Batch(rows=[prop("a", "Beach house", T0 + timedelta(seconds=1)), prop("c", "Lake", T0)])
            )
            assert not session.writer.first_sync
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            await session.start_run()
            assert not session.writer.first_sync  # the integration has rows now
    assert (first.inserted, first.updated) == (2, 0)
    assert (again.inserted, again.updated) == (1, 1)
    rows = await db_rows(database_url, "SELECT external_id, title, version FROM properties ORDER BY 1")
    events = await db_rows(database_url, "SELECT external_id, kind, version FROM events ORDER BY id")
    assert [tuple(r) for r in rows] == [("a", "Beach house", 2), ("b", "Hill", 1), ("c", "Lake", 1)]
    assert [tuple(r) for r in events] == [
        ("a", "created", 1), ("b", "created", 1), ("a", "updated", 2), ("c", "created", 1)
    ]  # fmt: skip


async def test_money_is_stored_exactly_on_both_write_paths(database_url: str) -> None:
    # Money travels to the staging tables as text (store.types.staging_row); the tables
    # hold numeric(14, 2), rounded as PostgreSQL rounds, the same on insert and upsert.
    prices = {"p": Decimal("1234.5"), "q": Decimal("1E+2"), "r": Decimal("0.005"), "s": None}
    stored = {"p": Decimal("1234.50"), "q": Decimal("100.00"), "r": Decimal("0.01"), "s": None}
    reservation = Reservation(
        external_id="x", source_updated_at=T0, property_external_id="p", status=ReservationStatus.CONFIRMED,
        partner_status="confirmed", total_paid=Decimal("-12.3"), balance_due=None,
    )  # fmt: skip
    async with Store.open(database_url) as store:
        await store.register_integration(
            "acme", "guesty", True, {"properties": (60.0, True), "reservations": (60.0, True)}
        )
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            first = [prop(k, "T", T0, base_price=v) for k, v in prices.items()]
            assert (await session.apply(Batch(rows=first))).inserted == 4
            again = await session.apply(
                Batch(rows=[prop("p", "T", T0 + timedelta(seconds=1), base_price=Decimal("1234.50"))])
            )
            moved = await session.apply(
                Batch(rows=[prop("q", "T", T0 + timedelta(seconds=1), base_price=Decimal("99.99"))])
            )
            assert (again.unchanged, moved.updated) == (1, 1)
        async with store.sync_session("acme", "reservations") as session:
            assert session is not None
            raw = orjson.dumps({"_id": "x"})
            assert (
                await session.apply(
                    Batch(rows=[row_for(TABLES["reservations"], values_of(reservation), raw)])
                )
            ).inserted == 1
    got = {r[0]: r[1] for r in await db_rows(database_url, "SELECT external_id, base_price FROM properties")}
    assert got == {**stored, "q": Decimal("99.99")}
    fields = await db_rows(database_url, "SELECT changed_fields FROM events WHERE kind = 'updated'")
    assert [f[0] for f in fields] == [["base_price"]]
    money = await db_rows(database_url, "SELECT total_paid, balance_due FROM reservations")
    assert [tuple(r) for r in money] == [(Decimal("-12.30"), None)]
