"""The store's timestamptz codec means what asyncpg's own does, on a real server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import asyncpg
import pytest

from syncd.store.codecs import init_connection
from syncd.store.postgres import Store

pytestmark = pytest.mark.anyio

PARIS_SUMMER = timezone(timedelta(hours=2))
VALUES = [
    datetime(2025, 1, 1, tzinfo=UTC),
    datetime(2025, 6, 30, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2025, 6, 30, 12, 0, 0, 1, tzinfo=PARIS_SUMMER),  # another zone: same instant in UTC
    datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),  # just before PostgreSQL's epoch
    datetime(1, 1, 2, tzinfo=UTC),  # models.MIN_TIME
    datetime(9999, 12, 30, tzinfo=UTC),  # models.MAX_TIME
    datetime(2025, 3, 4, 5, 6, 7),  # naive: local time, as asyncpg reads it
    date(2025, 3, 4),  # a date: local midnight, as asyncpg reads it
    datetime.max,  # infinity
    datetime.min,  # -infinity
]


async def test_every_kind_of_value_is_stored_and_read_back_as_asyncpg_would(database_url: str) -> None:
    plain = await asyncpg.connect(database_url)  # asyncpg's own codec, for reference
    ours = await asyncpg.connect(database_url)
    await init_connection(ours)
    try:
        for value in VALUES:
            sent_ours = await ours.fetchval("SELECT $1::timestamptz::text", value)
            sent_plain = await plain.fetchval("SELECT $1::timestamptz::text", value)
            assert sent_ours == sent_plain, value
            stored = await plain.fetchval("SELECT $1::timestamptz", value)
            assert await ours.fetchval("SELECT $1::timestamptz", stored) == stored
            assert await ours.fetchval("SELECT $1::text::timestamptz", sent_plain) == stored
        assert await ours.fetchval("SELECT 'infinity'::timestamptz") == datetime.max
        read = await ours.fetchval("SELECT '2025-01-01 00:00:00.000001+00'::timestamptz")
        assert read == datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC) and read.tzinfo is UTC
        with pytest.raises(asyncpg.DataError, match="expected a datetime"):
            await ours.fetchval("SELECT $1::timestamptz", "2025-01-01")
    finally:
        await plain.close()
        await ours.close()


async def test_the_store_s_connections_use_it(database_url: str) -> None:
    async with Store.open(database_url) as store, store.connection() as conn:
        value = datetime(2025, 1, 1, 12, tzinfo=UTC)
        sent = await conn.fetchval("SELECT ($1::timestamptz AT TIME ZONE 'UTC')::text", value)
        assert sent == "2025-01-01 12:00:00"
