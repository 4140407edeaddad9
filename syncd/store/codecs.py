"""How values cross the wire to PostgreSQL where asyncpg's own codecs cost too much.

Registered on every connection of the store's pool (``init_connection``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import orjson

# timestamptz in asyncpg's ``tuple`` format: microseconds since 2000-01-01 UTC, the value
# PostgreSQL's binary form carries. asyncpg's binary encoder gets there through Python
# objects (two comparisons with its infinity sentinels, ``astimezone``, a subtraction,
# three attribute reads), at a fifth of the COPY of a listing and more of a reservation's
# four times; this one is a subtraction and a division, about half the cost. What it
# accepts and how it reads it are asyncpg's: naive values and dates as local time,
# ``datetime.max``/``min`` as the infinities; so is what the decoder returns (aware UTC;
# the infinities as naive max/min).
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PG_INFINITY = 2**63 - 1
_PG_NEGATIVE_INFINITY = -(2**63)


def encode_timestamptz(value: datetime | date) -> tuple[int]:
    if type(value) is datetime and value.tzinfo is not None:
        return ((value - _PG_EPOCH) // _MICROSECOND,)
    if isinstance(value, datetime):
        if value == datetime.max:
            return (_PG_INFINITY,)
        if value == datetime.min:
            return (_PG_NEGATIVE_INFINITY,)
        return ((value.astimezone(UTC) - _PG_EPOCH) // _MICROSECOND,)
    if isinstance(value, date):
        local_midnight = datetime(value.year, value.month, value.day).astimezone(UTC)
        return ((local_midnight - _PG_EPOCH) // _MICROSECOND,)
    raise TypeError(f"expected a datetime.date or datetime.datetime instance, got {type(value).__name__!r}")


def decode_timestamptz(value: tuple[int]) -> datetime:
    (microseconds,) = value
    if microseconds == _PG_INFINITY:
        return datetime.max
    if microseconds == _PG_NEGATIVE_INFINITY:
        return datetime.min
    return _PG_EPOCH + timedelta(microseconds=microseconds)


def encode_json(value: Any) -> bytes:
    # JSON that is bytes already (bytes, or a msgspec.Raw slice, which asyncpg reads through
    # the buffer protocol) is sent as it is, never parsed and re-serialised.
    return value if isinstance(value, (bytes, msgspec.Raw)) else orjson.dumps(value)


def encode_jsonb(value: Any) -> bytes:
    return b"\x01" + encode_json(value)  # binary jsonb: a version byte, then the text


def decode_jsonb(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=encode_jsonb, decoder=decode_jsonb, format="binary"
    )
    await conn.set_type_codec(
        "json", schema="pg_catalog", encoder=encode_json, decoder=orjson.loads, format="binary"
    )
    await conn.set_type_codec(
        "timestamptz",
        schema="pg_catalog",
        encoder=encode_timestamptz,
        decoder=decode_timestamptz,
        format="tuple",
    )
