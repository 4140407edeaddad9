"""A drifted field is one count per record and one log line per field; records the drift
breaks become dead letters beside their stored neighbours, and an unknown enum value is
stored with its default."""

from __future__ import annotations

import anyio
import asyncpg
import pytest
import structlog
from structlog.testing import capture_logs

from syncd import pipeline
from syncd.config import ResourceSettings
from syncd.connectors.guesty.fakes import FakeGuesty, listing
from syncd.observability.metrics import Metrics
from syncd.store.postgres import Store

pytestmark = pytest.mark.anyio


async def sync(
    database_url: str, resource: str, connector: FakeGuesty, metrics: Metrics
) -> pipeline.RunStats:
    async with Store.open(database_url) as store:
        await store.register_integration("acme", "guesty", True, {resource: (60.0, True)})
        async with store.sync_session("acme", resource) as session:
            assert session is not None
            options = pipeline.PipelineOptions(batch_size=50)
            return await pipeline.run(
                session, connector, resource, ResourceSettings(overlap_s=0), options,
                metrics, structlog.get_logger(), anyio.Event(),
            )  # fmt: skip


def drift_count(metrics: Metrics, resource: str, field: str, kind: str) -> float | None:
    labels = {"partner": "guesty", "resource": resource, "field": field, "kind": kind}
    return metrics.registry.get_sample_value("syncd_schema_drift_total", labels)


async def test_a_retyped_field_is_counted_per_record_and_logged_once(database_url: str) -> None:
    # The partner starts sending accommodates as a string on every other listing.
    records = [listing(i, accommodates="4" if i % 2 else 4) for i in range(200)]
    metrics = Metrics()
    with capture_logs() as logs:
        stats = await sync(database_url, "properties", FakeGuesty(records, page_size=25), metrics)

    assert (stats.inserted, stats.dead_lettered) == (100, 100)
    assert drift_count(metrics, "properties", "accommodates", "type") == 100
    drifts = [line for line in logs if line["event"] == "schema_drift"]
    assert [(d["field"], d["kind"]) for d in drifts] == [("accommodates", "type")]
    conn = await asyncpg.connect(database_url)
    try:
        letters = await conn.fetchval("SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL")
        stored = await conn.fetchval("SELECT count(*) FROM properties WHERE accommodates = 4")
    finally:
        await conn.close()
    assert (letters, stored) == (100, 100)


async def test_an_unknown_status_is_stored_as_other_and_counted(database_url: str) -> None:
    def reservation(i: int, status: str) -> dict[str, object]:
        return {
            "_id": f"r{i}",
            "listingId": "l1",
            "status": status,
            "lastUpdatedAt": "2025-01-01T00:00:00.000Z",
        }

    records = [reservation(i, "confirmed" if i < 10 else "teleported") for i in range(30)]
    metrics = Metrics()
    with capture_logs() as logs:
        stats = await sync(database_url, "reservations", FakeGuesty(records), metrics)

    assert (stats.inserted, stats.dead_lettered) == (30, 0)
    assert drift_count(metrics, "reservations", "status", "unknown_value") == 20
    assert [line["example"] for line in logs if line["event"] == "schema_drift"] == ["teleported"]
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT status, partner_status, count(*) FROM reservations GROUP BY 1, 2 ORDER BY 1"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [("confirmed", "confirmed", 10), ("other", "teleported", 20)]
