"""The durable task queue in PostgreSQL: enqueue (coalescing), claim, lease, finish.

Why PostgreSQL and not a broker: the queue's rows commit in the same transactions as the
data they cause (a webhook's delivery and its fetch; later, a reservation and its lock-code
push), and the database is already the one thing every shard and operator command reaches.
``FOR UPDATE SKIP LOCKED`` lets shards claim without waiting on each other.

A lease is fenced, not trusted: the worker's connections hold advisory locks named by the
lease's token, and whoever reclaims a lapsed lease terminates those connections first. A
process frozen past its lease (SIGSTOP, a stalled VM) therefore wakes up to dead
connections, and every write it still had in flight rolls back.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio
import asyncpg

from syncd.store.postgres import (
    LEASE_PROCESS,
    LEASE_SESSION,
    LEASE_WRITER,
    Connection,
    Lease,
    Store,
    still_open,
    translate,
)
from syncd.store.queries import load

Q = load("task_queries.sql")


class Priority(enum.IntEnum):
    """Lower runs first: a person waiting, then a partner telling us, then the clock, then
    work nobody waits for (a listing's photos)."""

    USER = 0
    WEBHOOK = 10
    SCHEDULED = 20
    LOW = 30


KINDS = ("sync", "fetch", "child", "push")


def priority_name(priority: int) -> str:
    """The band a priority falls in, by name: a number between two bands takes the lower."""
    bands = [p for p in sorted(Priority, reverse=True) if priority >= p]
    return (bands[0] if bands else Priority.USER).name.lower()


def sync_key(integration_id: str, resource: str) -> str:
    """The dedupe key of an integration x resource's sync (task_queries.sql builds the same)."""
    return f"sync:{integration_id}:{resource}"


def fetch_key(integration_id: str, resource: str, external_id: str) -> str:
    return f"fetch:{integration_id}:{resource}:{external_id}"


@dataclass(frozen=True)
class NewTask:
    integration_id: str
    resource: str
    kind: str
    priority: int
    key: str
    params: dict[str, Any] = field(default_factory=dict)
    delay_s: float = 0.0
    expires_in_s: float | None = None
    max_attempts: int = 5

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"task kind must be one of {KINDS}, not {self.kind!r}")


@dataclass(frozen=True)
class Enqueued:
    inserted: int = 0
    coalesced: int = 0
    # Targeted work over the integration's bound became one sync (it covers them all).
    folded: int = 0


@dataclass(frozen=True)
class Task:
    id: int
    integration_id: str
    resource: str
    kind: str
    priority: int
    key: str
    params: dict[str, Any]
    attempts: int
    max_attempts: int
    lease_token: int
    enqueued_at: datetime
    started_at: datetime

    @property
    def lease(self) -> Lease:
        return Lease(self.id, self.lease_token)

    @property
    def ids(self) -> list[str]:
        return [str(i) for i in self.params.get("ids", [])]

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Task:
        return cls(
            row["id"],
            row["integration_id"],
            row["resource"],
            row["kind"],
            row["priority"],
            row["dedupe_key"],
            row["params"] or {},
            row["attempts"],
            row["max_attempts"],
            row["lease_token"],
            row["enqueued_at"],
            row["started_at"],
        )


@dataclass(frozen=True)
class Delivery:
    """A verified webhook delivery, as ``webhook_deliveries`` stores it."""

    integration_id: str
    partner: str
    delivery_id: str
    event: str
    body: bytes
    media_type: str | None
    targets: int


@dataclass(frozen=True)
class Reclaimed:
    requeued: int = 0
    dead: int = 0
    lost: int = 0
    terminated: int = 0
    # The kind of each task given up (out of attempts), for syncd_tasks_ended_total.
    dead_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Depth:
    priority: int
    due: int
    oldest_s: float


class TaskQueue:
    """The queue's operations for one database. ``now`` arguments are the engine's clock
    (``syncd.engine.clock``): tests move it hours ahead without waiting."""

    def __init__(self, store: Store, *, max_pending_per_integration: int = 10_000) -> None:
        self._store = store
        self.max_pending = max_pending_per_integration

    async def enqueue(
        self, tasks: Sequence[NewTask], now: datetime, conn: Connection | None = None
    ) -> Enqueued:
        """Inserts ``tasks`` (coalescing each into a pending twin), in ``conn``'s transaction
        when given so that the cause and its task commit together.

        Targeted work for an integration that already has ``max_pending`` tasks waiting
        becomes one sync of the resource instead: after an outage, thousands of webhooks
        for one account are cheaper as one incremental run than as thousands of fetches."""
        if conn is None:
            async with self._store.connection() as own, own.transaction():
                return await self.enqueue(tasks, now, own)
        inserted = coalesced = folded = 0
        pending: dict[str, int] = {}
        with translate():
            for task in tasks:
                # Only fetches fold: a child resource has no sync to fold into (its tasks are
                # bounded anyway, one pending per parent).
                if task.kind == "fetch":
                    if task.integration_id not in pending:
                        pending[task.integration_id] = await conn.fetchval(
                            Q["pending_for_integration"], task.integration_id
                        )
                    if pending[task.integration_id] >= self.max_pending:
                        task = NewTask(
                            task.integration_id,
                            task.resource,
                            "sync",
                            task.priority,
                            sync_key(task.integration_id, task.resource),
                        )
                        folded += 1
                row = await conn.fetchrow(
                    Q["enqueue"],
                    task.integration_id,
                    task.resource,
                    task.kind,
                    task.priority,
                    task.key,
                    task.params,
                    now + timedelta(seconds=task.delay_s),
                    None if task.expires_in_s is None else now + timedelta(seconds=task.expires_in_s),
                    task.max_attempts,
                    now,
                )
                assert row is not None
                if row["inserted"]:
                    inserted += 1
                    pending[task.integration_id] = pending.get(task.integration_id, 0) + 1
                else:
                    coalesced += 1
        return Enqueued(inserted, coalesced, folded)

    async def record_delivery(
        self, delivery: Delivery, tasks: Sequence[NewTask], now: datetime | None, wake_channel: str
    ) -> Enqueued | None:
        """Stores ``delivery`` and, when it is new, enqueues ``tasks`` and notifies
        ``wake_channel``, all in one transaction: a delivery is never stored without its
        work, nor its work queued twice. None for a delivery already stored. ``now`` is
        the engine's clock; None: the database's, read in the same transaction."""
        with translate():
            async with self._store.connection() as conn, conn.transaction():
                if now is None:
                    now = await conn.fetchval(Q["transaction_now"])
                    assert now is not None
                stored = await conn.fetchval(
                    Q["record_delivery"],
                    delivery.integration_id,
                    delivery.partner,
                    delivery.delivery_id,
                    delivery.event,
                    delivery.body,
                    delivery.media_type,
                    delivery.targets,
                )
                if stored is None:
                    return None
                enqueued = await self.enqueue(tasks, now, conn)
                # Delivered at commit: the owning shard claims the fetch at once.
                await conn.execute(Q["wake"], wake_channel, delivery.integration_id)
        return enqueued

    async def purge_deliveries(self, retention_s: float) -> int:
        with translate():
            async with self._store.connection() as conn:
                status: str = await conn.execute(Q["purge_deliveries"], retention_s)
        return int(status.split()[-1])

    async def enqueue_due_schedules(
        self, integration_ids: Sequence[str], now: datetime, spread_s: float
    ) -> list[tuple[str, str]]:
        with translate():
            async with self._store.connection() as conn:
                rows = await conn.fetch(
                    Q["enqueue_due_schedules"], list(integration_ids), now, int(Priority.SCHEDULED), spread_s
                )
        return [(r["integration_id"], r["resource"]) for r in rows]

    async def expire(self, integration_ids: Sequence[str], now: datetime) -> list[tuple[str, int]]:
        """(kind, priority) of each task that waited past its expiry and will not run."""
        with translate():
            async with self._store.connection() as conn:
                rows = await conn.fetch(Q["expire"], list(integration_ids), now)
        return [(r["kind"], r["priority"]) for r in rows]

    @contextlib.asynccontextmanager
    async def liveness(self) -> AsyncIterator[tuple[int, anyio.Event]]:
        """This process's liveness lock, held on a connection of its own for the block:
        yields its token (claims record it) and an event set when the connection is lost
        (the caller then takes a new one; tasks claimed under the old token are taken back
        as the dead process's)."""
        lost = anyio.Event()

        def terminated(_conn: Any) -> None:
            lost.set()

        with translate():
            async with self._store.connection() as conn:
                token: int = await conn.fetchval(Q["liveness_token"])
                await conn.execute(Q["lock_liveness"], LEASE_PROCESS, token)
                conn.add_termination_listener(terminated)
                try:
                    yield token, lost
                finally:
                    if still_open(conn):
                        conn.remove_termination_listener(terminated)
                        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                            await conn.execute("SELECT pg_advisory_unlock_all()")

    async def reclaim(self, integration_ids: Sequence[str]) -> Reclaimed:
        """Lapsed leases (and the tasks of processes that are gone) back to the queue,
        their holders' connections terminated first (in the same transaction: the tasks are
        not claimable before their holders are cut off)."""
        with translate():
            async with self._store.connection() as conn, conn.transaction():
                rows = await conn.fetch(Q["reclaim"], list(integration_ids), LEASE_PROCESS)
                if not rows:
                    return Reclaimed()
                tokens = [r["lease_token"] for r in rows if r["lease_token"] is not None]
                terminated = await conn.fetchval(Q["terminate_holders"], tokens, LEASE_SESSION, LEASE_WRITER)
        states = [r["state"] for r in rows]
        return Reclaimed(
            states.count("pending"),
            states.count("dead"),
            states.count("lost"),
            terminated or 0,
            tuple(r["kind"] for r in rows if r["state"] == "dead"),
        )

    async def claim(
        self,
        integration_ids: Sequence[str],
        now: datetime,
        limit: int,
        owner: str,
        lease_s: float,
        process: int,
        max_priority: int = int(Priority.LOW),
        horizon: timedelta = timedelta(0),
        not_started_since: datetime | None = None,
        aging_s: float | None = None,
        one_fetch_batch: bool = False,
    ) -> list[Task]:
        """Up to ``limit`` tasks due by ``now + horizon`` (run-once takes what was pushed
        back too), none expired by ``now``, none started since ``not_started_since`` (the
        database's clock) when given, leased to ``owner``; ``process`` is its liveness
        token. ``aging_s``: a band of priority gained per that many seconds waited (up to
        the webhook band). ``one_fetch_batch``: no fetch of an integration x resource that
        has one running, and at most one per claim (each becomes a batch of its siblings)."""
        if limit <= 0:
            return []
        with translate():
            async with self._store.connection() as conn:
                rows = await conn.fetch(
                    Q["claim"],
                    list(integration_ids),
                    now,
                    limit,
                    max_priority,
                    owner,
                    lease_s,
                    process,
                    horizon,
                    not_started_since,
                    int(Priority.WEBHOOK),
                    aging_s,
                    one_fetch_batch,
                )
        return sorted((Task.from_row(r) for r in rows), key=lambda t: (t.priority, t.id))

    async def claim_siblings(self, task: Task, now: datetime, limit: int) -> list[Task]:
        """Up to ``limit`` more pending tasks of ``task``'s kind, integration and resource,
        leased under ``task``'s lease: they are renewed, released and fenced with it."""
        if limit <= 0:
            return []
        with translate():
            async with self._store.connection() as conn:
                rows = await conn.fetch(
                    Q["claim_siblings"],
                    task.integration_id,
                    task.resource,
                    task.kind,
                    now,
                    limit,
                    task.id,
                    task.lease_token,
                )
        return sorted((Task.from_row(r) for r in rows), key=lambda t: (t.priority, t.id))

    async def renew(self, task: Task, lease_s: float) -> bool:
        """False when the lease is no longer this worker's (it lapsed and was reclaimed).
        Renews every task held under it."""
        with translate():
            async with self._store.connection() as conn:
                rows = await conn.fetch(Q["renew"], task.lease_token, lease_s)
        return bool(rows)

    async def finish(
        self,
        task: Task,
        state: str,
        error: str | None = None,
        *,
        next_in_s: float | None = None,
        outcome: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Ends ``task`` as ``state``; a sync's schedule moves ``next_in_s`` ahead of ``now``
        (the engine's clock; the database's when None) in the same statement. False when the
        lease was lost: nothing changed."""
        with translate():
            async with self._store.connection() as conn:
                count = await conn.fetchval(
                    Q["finish"], task.id, task.lease_token, state, error, next_in_s, outcome or state, now
                )
        return bool(count)

    async def finish_many(self, tasks: Sequence[Task], state: str, error: str | None = None) -> int:
        """Ends tasks held under one lease alike (not syncs: no schedule moves); how many
        were still this lease's."""
        if not tasks:
            return 0
        token = tasks[0].lease_token
        if any(t.lease_token != token for t in tasks):
            raise ValueError("finish_many takes the tasks of one lease")
        with translate():
            async with self._store.connection() as conn:
                rows = await conn.fetch(Q["finish_many"], [t.id for t in tasks], token, state, error)
        return len(rows)

    async def release(self, task: Task, delay_s: float, error: str | None) -> int:
        """Every task still running under ``task``'s lease back to pending after
        ``delay_s`` (its worker crashed or is stopping); how many."""
        with translate():
            async with self._store.connection() as conn:
                rows = await conn.fetch(Q["release"], task.lease_token, delay_s, error)
        return len(rows)

    async def retry(self, task: Task, delay_s: float, error: str | None) -> str | None:
        """Back to pending after ``delay_s``: 'pending', 'lost' (a twin waits), or None when
        the lease was lost."""
        with translate():
            async with self._store.connection() as conn:
                state: str | None = await conn.fetchval(Q["retry"], task.id, task.lease_token, delay_s, error)
        return state

    async def depth(
        self, integration_ids: Sequence[str], now: datetime, not_started_since: datetime | None = None
    ) -> list[Depth]:
        with translate():
            async with self._store.connection() as conn:
                rows = await conn.fetch(Q["queue_depth"], list(integration_ids), now, not_started_since)
        return [Depth(r["priority"], r["due"], max(0.0, r["oldest_s"] or 0.0)) for r in rows]

    async def database_now(self) -> datetime:
        """The database's clock, the one claims stamp ``started_at`` with."""
        return await self._store.now()

    async def purge(self, retention_s: float) -> int:
        with translate():
            async with self._store.connection() as conn:
                status: str = await conn.execute(Q["purge_finished"], retention_s)
        return int(status.split()[-1])

    async def list(
        self, integration_ids: Sequence[str], state: str | None, limit: int
    ) -> list[dict[str, Any]]:
        with translate():
            async with self._store.connection() as conn:
                rows = await conn.fetch(Q["list_tasks"], list(integration_ids), state, limit)
        return [dict(r) for r in rows]
