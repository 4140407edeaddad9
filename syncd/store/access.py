"""Followers and pushed access codes in PostgreSQL.

A follower (a lock integration) names the integration whose rows it follows and the keys
(listings) it cares about; the followed resource's statements write its push tasks
(``resources.Follow``). ``access_codes`` is what the follower pushed for each reservation,
the push executor's journal: it writes its intent before a partner call and the outcome
after it, so a crash in between is recognised on the next attempt (``syncd.engine.access``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from syncd.store.postgres import Connection, Store, translate
from syncd.store.queries import load
from syncd.store.resource_sql import render
from syncd.store.resources import RESOURCES

Q = load("access_queries.sql")
STATES = ("setting", "set", "failed", "removing", "removed")
# The dead letters of refused codes (one per '<source>:<reservation>').
DEAD_LETTER_RESOURCE = "access_codes"


@dataclass(frozen=True)
class SourceRow:
    """A followed reservation as it is now (the desired state's inputs)."""

    external_id: str
    property_external_id: str
    status: str
    check_in: datetime | None
    check_out: datetime | None
    check_in_date: date | None
    check_out_date: date | None
    deleted: bool
    version: int
    timezone: str | None


@dataclass(frozen=True)
class CodeRow:
    """What the follower pushed for one reservation (table access_codes); never the code."""

    device_id: str
    partner_code_id: str | None
    idempotency_key: str
    state: str
    starts_at: datetime
    ends_at: datetime
    last_error: str | None = None
    # Seconds since the provider was first asked for this desired state (read, never written).
    pending_s: float = 0.0


async def register_follower(
    store: Store, follower_id: str, source_id: str, resource: str, keys: Sequence[str]
) -> int:
    """Makes ``follower_id`` follow ``source_id``'s ``resource`` rows of ``keys``; when that is
    new or changed, enqueues a push for every row of the old and new keys (their codes made
    or revoked). How many push tasks that wrote."""
    sql = render(RESOURCES[resource]).follow_backfill
    if sql is None:
        raise ValueError(f"{resource!r} cannot be followed")
    wanted = sorted(set(keys))
    with translate():
        async with store.connection() as conn, conn.transaction():
            old = await conn.fetchrow(Q["follower_keys"], follower_id, resource)
            if old is not None and old["source_id"] == source_id and sorted(old["keys"]) == wanted:
                return 0
            await conn.execute(Q["upsert_follower"], follower_id, source_id, resource, wanted)
            touched = set(wanted)
            if old is not None and old["source_id"] == source_id:
                touched |= set(old["keys"])
            status: str = await conn.execute(sql, source_id, follower_id, sorted(touched))
    return int(status.split()[-1])


async def drop_follower(store: Store, follower_id: str) -> None:
    with translate():
        async with store.connection() as conn:
            await conn.execute(Q["drop_follower"], follower_id)


async def source_row(conn: Connection, source_id: str, external_id: str) -> SourceRow | None:
    row = await conn.fetchrow(Q["reservation"], source_id, external_id)
    if row is None:
        return None
    return SourceRow(
        row["external_id"],
        row["property_external_id"],
        row["status"],
        row["check_in"],
        row["check_out"],
        row["check_in_date"],
        row["check_out_date"],
        row["deleted_at"] is not None,
        row["version"],
        row["timezone"],
    )


def _code(row: Any) -> CodeRow:
    return CodeRow(
        row["device_id"],
        row["partner_code_id"],
        row["idempotency_key"],
        row["state"],
        row["starts_at"],
        row["ends_at"],
        row["last_error"],
        row["pending_s"],
    )


async def code_row(
    conn: Connection, integration_id: str, source_id: str, reservation_id: str
) -> CodeRow | None:
    row = await conn.fetchrow(Q["code"], integration_id, source_id, reservation_id)
    return None if row is None else _code(row)


async def code_by_partner_id(
    conn: Connection, integration_id: str, partner_code_id: str
) -> tuple[str, str, CodeRow] | None:
    """(source integration, reservation, the journal row) of the code the partner calls
    ``partner_code_id``, or None when no reservation's row holds it now."""
    row = await conn.fetchrow(Q["code_by_partner_id"], integration_id, partner_code_id)
    return None if row is None else (row["source_id"], row["reservation_id"], _code(row))


async def save_code(
    conn: Connection, integration_id: str, source_id: str, reservation_id: str, code: CodeRow
) -> None:
    if code.state not in STATES:
        raise ValueError(f"access code state must be one of {STATES}, not {code.state!r}")
    await conn.execute(
        Q["save_code"],
        integration_id,
        source_id,
        reservation_id,
        code.device_id,
        code.partner_code_id,
        code.idempotency_key,
        code.state,
        code.starts_at,
        code.ends_at,
        code.last_error,
    )


async def dead_letter(conn: Connection, integration_id: str, ref: str, reason: str) -> None:
    await conn.execute(Q["record_push_dead_letter"], integration_id, ref, reason[:2000])


async def resolve_dead_letter(conn: Connection, integration_id: str, ref: str) -> None:
    await conn.execute(Q["resolve_push_dead_letter"], integration_id, ref)


async def replay_push_letters(
    store: Store, integration_id: str, only: Sequence[str] | None, limit: int
) -> int:
    """A push task per open dead letter of a refused code (``only``: those refs), told to
    delete the refused code and ask for a new one; how many."""
    from syncd.store.resources import PUSH_PRIORITY

    with translate():
        async with store.connection() as conn, conn.transaction():
            rows = await conn.fetch(
                Q["replay_push_letters"], integration_id, list(only) if only else None, PUSH_PRIORITY, limit
            )
            await conn.execute("SELECT pg_notify('syncd_wake', $1)", integration_id)
    return len(rows)


async def counts(store: Store, integration_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Access codes per integration, by state (the status page, ``syncd status``, the gauge)."""
    out: dict[str, dict[str, int]] = {}
    with translate():
        async with store.connection() as conn:
            for r in await conn.fetch(Q["count_by_state"], list(integration_ids)):
                out.setdefault(r["integration_id"], {})[r["state"]] = r["codes"]
    return out


async def failures(store: Store, integration_ids: Sequence[str], limit: int = 10) -> list[dict[str, Any]]:
    """The latest refused codes: which reservation, which device, why (never the code)."""
    with translate():
        async with store.connection() as conn:
            rows = await conn.fetch(Q["recent_failures"], list(integration_ids), limit)
    return [dict(r) for r in rows]
