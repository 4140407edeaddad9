"""The PostgreSQL store: pool, migration, sync sessions, batch upserts.

Only this module talks to asyncpg; its errors are translated at this boundary into the
``StoreError`` branch of ``syncd.errors``.
"""

from __future__ import annotations

import contextlib
import hashlib
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import anyio
import asyncpg
from asyncpg.pool import PoolConnectionProxy

from syncd import errors
from syncd.store.codecs import init_connection
from syncd.store.queries import QUERIES, schema_sql
from syncd.store.types import (
    TABLES,
    ApplyResult,
    Batch,
    Schedule,
    TableSpec,
    create_staging_tables,
    storable_text,
    without_nul,
)

Q = QUERIES
# Rendered once: every resource's staging table (resource_queries.sql) and the sweep's ids.
_CREATE_STAGING = create_staging_tables()
if TYPE_CHECKING:  # asyncpg's classes are generic only in its stubs
    Connection: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]
else:
    Connection = Any
_MIGRATION_LOCK = 0x5F5D_0001  # advisory lock key: one migrator at a time across shards
# The first PostgreSQL major version with RETURNING OLD: its upsert hands each event the
# changed fields' old values without storing them in the row (resource_queries.sql).
RETURNING_OLD_SINCE = 18


@contextlib.contextmanager
def translate() -> Iterator[None]:
    """Map asyncpg/OS errors to the store branch of the error tree."""
    try:
        yield
    except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError) as exc:
        raise errors.Conflict(str(exc)) from exc
    except (
        asyncpg.PostgresConnectionError,
        asyncpg.ConnectionDoesNotExistError,
        asyncpg.InterfaceError,
        # The protocol's own state after its connection was cut mid-operation.
        asyncpg.InternalClientError,
        asyncpg.CannotConnectNowError,
        # The server shut down, crashed, or dropped an idle session (57P01, 57P02, 57P05).
        asyncpg.AdminShutdownError,
        asyncpg.CrashShutdownError,
        asyncpg.IdleSessionTimeoutError,
        OSError,
        TimeoutError,
    ) as exc:
        raise errors.StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise errors.StoreError(f"{type(exc).__name__}: {exc}") from exc


def lock_key(*parts: str) -> int:
    """Stable signed 64-bit advisory-lock key for a tuple of names."""
    digest = hashlib.blake2b(":".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# Two-int4 advisory-lock namespaces for a task lease's token (syncd.store.tasks): the
# worker's session connection holds (LEASE_SESSION, token) while it runs the task, an extra
# writer holds (LEASE_WRITER, token) shared in each transaction. Reclaiming a lapsed lease
# terminates every holder, so nothing the old worker had in flight can commit.
LEASE_SESSION = 0x73796E64
LEASE_WRITER = 0x73796E65
# Each claiming process holds (LEASE_PROCESS, its token) on one connection for its life: a
# process that died (SIGKILL, OOM) lets go of it at once, and its tasks need not wait for
# their leases to lapse.
LEASE_PROCESS = 0x73796E66


@dataclass(frozen=True)
class Lease:
    """A claimed task's fence: its id and the token its claim drew."""

    task_id: int
    token: int


def _names_itself(dsn: str) -> bool:
    return "application_name" in urllib.parse.parse_qs(urllib.parse.urlsplit(dsn).query)


def still_open(conn: Connection) -> bool:
    """Whether a pooled connection can still be used for clean-up. One that was lost (a
    reclaim terminated it, the server restarted) is already detached from its pool handle,
    which then refuses every call, ``is_closed()`` included."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False


def fence_keys(key: int) -> tuple[int, int]:
    """The two signed int4 halves of a run's lock key, for the fence beside it."""
    low = key & 0xFFFF_FFFF
    return key >> 32, low - (1 << 32) if low >= 1 << 31 else low


class Store:
    """Pool-level operations; a sync run works through a ``SyncSession``."""

    # How long a run's new owner waits for the previous owner's extra writers (seconds).
    fence_wait_s = 30.0

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, dsn: str, *, min_size: int = 2, max_size: int = 10, command_timeout: float = 60.0
    ) -> AsyncIterator[Store]:
        with translate():
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min(min_size, max_size),
                max_size=max_size,
                init=init_connection,
                command_timeout=command_timeout,
                # A URL's own application_name (``?application_name=syncd-shard-2``) names
                # this process's sessions in pg_stat_activity; asyncpg lets ours win over it.
                server_settings={} if _names_itself(dsn) else {"application_name": "syncd"},
            )
        try:
            yield cls(pool)
        finally:
            await pool.close()

    async def migrate(self) -> None:
        """Apply schema.sql idempotently, one process at a time."""
        with translate():
            async with self._pool.acquire() as conn:
                await conn.execute(Q["lock"], _MIGRATION_LOCK)
                try:
                    await conn.execute(schema_sql())
                    for spec in TABLES.values():
                        await conn.execute(spec.sql.fields_ddl)
                        found = await conn.fetchval(Q["composite_fields"], spec.sql.fields_type)
                        if tuple(found) != spec.sql.fields:
                            raise errors.StoreError(
                                f"the type {spec.sql.fields_type} has its fields in another order than the "
                                f"model's ({', '.join(found)}; expected {', '.join(spec.sql.fields)}): "
                                "a model field was inserted before existing ones instead of appended"
                            )
                finally:
                    await conn.execute(Q["unlock"], _MIGRATION_LOCK)
                await conn.execute(_CREATE_STAGING)

    async def ping(self) -> None:
        with translate():
            await self._pool.fetchval(Q["ping"], timeout=5)

    @property
    def pool_max_size(self) -> int:
        return self._pool.get_max_size()

    @property
    def pool_open(self) -> int:
        return self._pool.get_size()

    async def connection_headroom(self) -> int:
        """Connections the server still accepts from anyone (see queries.sql)."""
        with translate():
            return int(await self._pool.fetchval(Q["connection_headroom"]))

    async def now(self) -> datetime:
        """The database clock: schedules and leases never trust a process's wall clock."""
        with translate():
            value: datetime = await self._pool.fetchval(Q["db_now"])
            return value

    async def register_integration(
        self, integration_id: str, partner: str, enabled: bool, resources: dict[str, tuple[float, bool]]
    ) -> None:
        with translate():
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(Q["upsert_integration"], integration_id, partner, enabled)
                await conn.execute(Q["ensure_credentials_row"], integration_id)
                for resource, (interval_s, res_enabled) in resources.items():
                    await conn.execute(
                        Q["upsert_schedule"], integration_id, resource, interval_s, res_enabled
                    )

    async def list_schedules(self, integration_ids: Sequence[str]) -> list[Schedule]:
        with translate():
            rows = await self._pool.fetch(Q["list_schedules"], list(integration_ids))
        return [Schedule(*row) for row in rows]

    async def finish_schedule(
        self, integration_id: str, resource: str, outcome: str, next_in_s: float
    ) -> None:
        with translate():
            await self._pool.execute(Q["finish_schedule"], integration_id, resource, outcome, next_in_s)

    async def progress(self, integration_ids: Sequence[str]) -> list[dict[str, Any]]:
        with translate():
            rows = await self._pool.fetch(Q["progress"], list(integration_ids))
        return [dict(r) for r in rows]

    async def sync_now(
        self, integration_id: str, resource: str | None = None, priority: int = 0
    ) -> list[str]:
        """Queue a sync of the integration's resources (or one of them) now, at ``priority``
        (``tasks.Priority``; a user's by default), and wake the daemons."""
        with translate():
            async with self._pool.acquire() as conn, conn.transaction():
                resources: list[str] | None = await conn.fetchval(
                    Q["sync_now"], integration_id, resource, priority
                )
        return resources or []

    @contextlib.asynccontextmanager
    async def listen(self, channel: str, on_notify: Callable[[str], None]) -> AsyncIterator[anyio.Event]:
        """LISTEN on ``channel`` over a pooled connection held for the block; yields an event
        that is set when that connection is lost (the caller then listens again)."""
        lost = anyio.Event()

        def notified(_conn: Any, _pid: int, _channel: str, payload: object) -> None:
            on_notify(str(payload))

        def terminated(_conn: Any) -> None:
            lost.set()

        with translate():
            async with self._pool.acquire() as conn:
                await conn.add_listener(channel, notified)
                conn.add_termination_listener(terminated)
                try:
                    yield lost
                finally:
                    if still_open(conn):
                        conn.remove_termination_listener(terminated)
                        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                            await conn.remove_listener(channel, notified)

    async def sync_status(self, integration_ids: Sequence[str]) -> list[dict[str, Any]]:
        with translate():
            rows = await self._pool.fetch(Q["sync_status"], list(integration_ids))
        return [dict(r) for r in rows]

    async def integration_ids(self) -> list[str]:
        with translate():
            rows = await self._pool.fetch(Q["integration_ids"])
        return [r["id"] for r in rows]

    async def dead_letters(
        self, integration_ids: Sequence[str], resource: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Open dead letters, newest first."""
        with translate():
            rows = await self._pool.fetch(Q["list_dead_letters"], list(integration_ids), resource, limit)
        return [dict(r) for r in rows]

    async def history(self, integration_id: str, resource: str, external_id: str) -> list[dict[str, Any]]:
        """The entity's change events, oldest first, across the ids it had (merges): asked
        by an old id, the answer is the entity's whole history under its id now."""
        with translate():
            async with self._pool.acquire() as conn:
                current = await conn.fetchval(Q["current_id"], integration_id, resource, external_id)
                rows = await conn.fetch(TABLES[resource].sql.history, integration_id, current)
        return [_with_changes(dict(r)) for r in rows]

    async def set_integration_status(self, integration_id: str, status: str, reason: str | None) -> None:
        # Reasons and errors are shown by `syncd status` and /status: never a secret there.
        reason = storable_text(reason) if reason is not None else None
        with translate():
            await self._pool.execute(Q["set_integration_status"], integration_id, status, reason)

    @contextlib.asynccontextmanager
    async def sync_session(
        self, integration_id: str, resource: str, lease: Lease | None = None
    ) -> AsyncIterator[SyncSession | None]:
        """A connection holding the session advisory lock of (integration, resource).

        Yields None when another process holds it. The lock lives and dies with the
        connection, so a SIGKILLed owner releases it as soon as PostgreSQL notices. Its
        extra writers' connections may outlive it: a new owner first waits for their open
        transactions to end (see ``BatchWriter``'s fence), and yields None too if they
        have not within ``fence_wait_s`` (a frozen process: the run is tried again later).
        ``lease``: the task's lease token, held by this connection and the extra writers'
        transactions (``LEASE_SESSION``), so that reclaiming the lease cuts them off.
        """
        key = lock_key(integration_id, resource)
        with translate():
            async with self._pool.acquire() as conn:
                if not await conn.fetchval(Q["try_lock"], key):
                    yield None
                    return
                if not await self._fenced_writers_ended(conn, key):
                    await conn.execute(Q["unlock"], key)
                    yield None
                    return
                try:
                    if lease is not None:
                        await _hold_lease(conn, lease)
                    await conn.execute(_CREATE_STAGING)
                    await conn.execute(Q["start_schedule"], integration_id, resource)
                    yield SyncSession(conn, integration_id, TABLES[resource], self._pool, lease)
                finally:
                    if still_open(conn):
                        with contextlib.suppress(asyncpg.PostgresError, OSError):
                            await conn.execute(Q["unlock"], key)
                            if lease is not None:
                                await conn.execute(Q["unlock_lease"], LEASE_SESSION, lease.token)

    @contextlib.asynccontextmanager
    async def task_session(
        self, integration_id: str, resource: str, lease: Lease
    ) -> AsyncIterator[SyncSession]:
        """A connection for a task that writes records but owns no run (a targeted fetch):
        it holds only its lease's lock, so it runs beside a sync of the same resource (rows
        are last-write-wins on the partner's timestamp; it never touches the checkpoint)."""
        with translate():
            async with self._pool.acquire() as conn:
                await _hold_lease(conn, lease)
                try:
                    await conn.execute(_CREATE_STAGING)
                    yield SyncSession(conn, integration_id, TABLES[resource], None, lease)
                finally:
                    if still_open(conn):
                        with contextlib.suppress(asyncpg.PostgresError, OSError):
                            await conn.execute(Q["unlock_lease"], LEASE_SESSION, lease.token)

    async def _fenced_writers_ended(self, conn: Connection, key: int) -> bool:
        try:
            async with conn.transaction():
                await conn.execute(Q["set_lock_timeout"], round(self.fence_wait_s * 1000))
                await conn.execute(Q["wait_for_fenced_writers"], *fence_keys(key))
        except asyncpg.LockNotAvailableError:
            return False
        return True

    @contextlib.asynccontextmanager
    async def leased_connection(self, lease: Lease) -> AsyncIterator[Connection]:
        """A pooled connection holding ``lease``'s lock (a task's writes outside a sync, such
        as a push's journal): when the lease is reclaimed the connection is cut off, so a
        worker that froze past it writes nothing more. ``LeaseLost`` if it is not held."""
        with translate():
            async with self._pool.acquire() as conn:
                await _hold_lease(conn, lease)
                try:
                    yield conn
                finally:
                    if still_open(conn):
                        with contextlib.suppress(asyncpg.PostgresError, OSError):
                            await conn.execute(Q["unlock_lease"], LEASE_SESSION, lease.token)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection, for sibling store modules (credentials)."""
        with translate():
            async with self._pool.acquire() as conn:
                yield conn


async def _hold_lease(conn: Connection, lease: Lease) -> None:
    """Takes the lease's session lock, then checks the lease is still this claim's. In that
    order: a reclaim that ran before the lock was taken found no holder to cut off, and the
    check (``FOR UPDATE`` waits for that reclaim to commit) sees the task taken back."""
    await conn.execute(Q["lock_lease"], LEASE_SESSION, lease.token)
    if await conn.fetchval(Q["lease_is_held"], lease.task_id, lease.token) is None:
        await conn.execute(Q["unlock_lease"], LEASE_SESSION, lease.token)
        raise errors.LeaseLost(f"task {lease.task_id}'s lease was taken back before its work began")


class Turn:
    """A batch's place in its run's commit order when batches are applied on several
    connections at once (``SyncSession.extra_writer``).

    Each batch copies its rows while the one before it is still working, but waits for
    that batch's upsert to end before its own (so upserts never wait on each other's row
    locks in both directions) and for its commit before writing its checkpoint: a
    checkpoint is never durable ahead of any batch it follows.
    """

    __slots__ = ("committed", "finished", "upserted")

    def __init__(self) -> None:
        self.upserted = anyio.Event()
        self.finished = anyio.Event()
        self.committed = False


class BatchWriter:
    """Applies a run's batches on one connection: rows, events, dead letters, checkpoint."""

    def __init__(
        self,
        conn: Connection,
        integration_id: str,
        spec: TableSpec,
        fence: tuple[int, int] | None = None,
        lease: Lease | None = None,
    ) -> None:
        self._conn = conn
        # An extra writer's task lease: held shared per transaction (``LEASE_WRITER``).
        self._lease = lease
        self.integration_id = integration_id
        self.spec = spec
        # (server pid, advisory-lock key) of the run's lock holder, for a connection that
        # is not it: its batches commit only while that lock is still held. Checking the
        # lock alone would leave a window (lost between the check and the commit, a new
        # owner reading the checkpoint meanwhile): each transaction also holds the fence
        # shared, and a new owner takes it exclusively before it starts.
        self._fence = fence
        # Set by ``SyncSession.start_run`` when the integration has no rows of this
        # resource yet: batches are then plain inserts (resource_queries.sql: insert_new).
        self.first_sync = False
        returning_old = conn.get_server_version().major >= RETURNING_OLD_SINCE
        self._upsert = spec.sql.upsert if returning_old else spec.sql.upsert_before_18

    async def apply(self, batch: Batch, turn: Turn | None = None, after: Turn | None = None) -> ApplyResult:
        """Rows, their change events, dead letters and the checkpoint: one transaction,
        ordered after ``after`` (the run's previous batch) when given.

        The batch's rows are released as soon as they are copied to the server, so the
        pipeline's next batch can grow while this one is being upserted (peak memory).
        A NUL character in a canonical text value (PostgreSQL text refuses it; ``raw`` is
        bytea and takes any bytes) would fail the batch on every retry: the transaction is
        then retried once without NULs. Checking only after the refusal keeps the common
        path free of a per-record scan.

        Raises ``BatchAbandoned`` (after rolling back) when the batch before failed.
        """
        try:
            with translate():
                try:
                    result = await self._apply(batch, turn, after)
                except asyncpg.CharacterNotInRepertoireError:
                    if not without_nul(batch.rows):
                        raise
                    result = await self._apply(batch, turn, after)
            if turn is not None:
                turn.committed = True
            return result
        except Exception:
            if after is not None:
                # The batch before may still commit: let it, rather than be cancelled
                # together with this one when this error ends the run.
                await after.finished.wait()
            raise
        finally:
            if turn is not None:
                turn.upserted.set()
                turn.finished.set()

    async def _apply(self, batch: Batch, turn: Turn | None, after: Turn | None) -> ApplyResult:
        spec = self.spec
        copied = len(batch.rows)
        # The children a child batch keeps (external_id leads every row), read before the
        # rows are released.
        kept = [row[0] for row in batch.rows] if batch.parents else []
        async with self._conn.transaction():
            inserted = updated = 0
            if self._fence is not None:
                await self._conn.execute(Q["share_fence"], *fence_keys(self._fence[1]))
                if self._lease is not None:
                    await self._conn.execute(Q["share_fence"], LEASE_WRITER, self._lease.token)
            if await self._conn.fetchval(Q["hold_integration"], self.integration_id) is None:
                raise errors.StoreError(
                    f"integration {self.integration_id!r} is not in the integrations table "
                    "(deleted while syncing?): nothing of this batch was written"
                )
            if batch.rows:
                await self._conn.copy_records_to_table(
                    spec.sql.staging_table, records=batch.rows, columns=spec.columns
                )
                batch.rows.clear()
            if after is not None:
                await after.upserted.wait()
            if batch.merges:
                await self._merge(batch.merges)
            if copied:
                await self._conn.execute(spec.sql.follow_aliases, self.integration_id)
                inserted, updated = await self._write_rows()
            if batch.parents and spec.sql.sweep_children is not None:
                await self._conn.fetchval(spec.sql.sweep_children, self.integration_id, batch.parents, kept)
            if turn is not None:
                turn.upserted.set()
            if after is not None:
                await after.finished.wait()
                if not after.committed:
                    raise errors.BatchAbandoned("an earlier batch of this run failed")
            if self._fence is not None and not await self._conn.fetchval(Q["lock_held_by"], *self._fence):
                raise errors.StoreUnavailable("the run's lock was lost: its session ended")
            if batch.dead_letters:
                await self._conn.executemany(
                    Q["record_dead_letter"],
                    [
                        (
                            self.integration_id,
                            spec.resource,
                            d.external_id,
                            d.error_class,
                            d.reason,
                            d.payload,
                        )
                        for d in batch.dead_letters
                    ],
                )
            if batch.resolved:
                await self._conn.execute(
                    Q["resolve_dead_letters"], self.integration_id, spec.resource, batch.resolved
                )
            if batch.checkpoint is not None:
                await self._conn.execute(
                    Q["save_checkpoint"],
                    self.integration_id,
                    spec.resource,
                    batch.checkpoint,
                    batch.pages,
                    batch.fetched,
                )
        unchanged = copied - inserted - updated
        return ApplyResult(inserted, updated, unchanged, len(batch.dead_letters))

    async def _merge(self, merges: list[tuple[str, str]]) -> None:
        """Records the partner re-identified: one entity each, under its new id (see
        resource_queries.sql: record_alias, rename, merge_into). Rare, so one pair at a time."""
        sql = self.spec.sql
        for old, new in merges:
            if old == new:
                continue
            if await self._conn.fetchval(sql.record_alias, self.integration_id, old, new) is None:
                continue  # already applied: the partner said it again
            if not await self._conn.fetchval(sql.rename, self.integration_id, old, new):
                await self._conn.fetchval(sql.merge_into, self.integration_id, old, new)

    async def _write_rows(self) -> tuple[int, int]:
        """Staged rows into the table: (inserted, updated)."""
        if self.first_sync:
            try:
                async with self._conn.transaction():  # a savepoint: the staged rows stay
                    inserted: int = await self._conn.fetchval(self.spec.sql.insert_new, self.integration_id)
                return inserted, 0
            except asyncpg.UniqueViolationError:
                self.first_sync = False  # a record came again: upsert from here on
        counts = await self._conn.fetchrow(self._upsert, self.integration_id)
        assert counts is not None  # the statement always returns one row
        return counts["inserted"], counts["updated"]


class SyncSession:
    """One sync run of one integration x resource, on the connection that holds its lock.

    Writes go through this connection, so when the lock is lost (the session died) the
    writes fail too: the lock fences its owner's writes. An extra writer's connection
    checks, in each transaction just before its checkpoint, that the lock is still held.
    The window that leaves (between that check and the commit) cannot lose or reorder
    data: rows are last-write-wins on the partner's timestamp, and the checkpoint row's
    lock makes a new owner's checkpoint land after this one.
    """

    def __init__(
        self,
        conn: Connection,
        integration_id: str,
        spec: TableSpec,
        pool: asyncpg.Pool[Any] | None = None,
        lease: Lease | None = None,
    ) -> None:
        self._conn = conn
        self._pool = pool
        self._lease = lease
        self.integration_id = integration_id
        self.spec = spec
        self.writer = BatchWriter(conn, integration_id, spec)

    async def apply(self, batch: Batch) -> ApplyResult:
        """One batch on the lock's connection (see ``BatchWriter.apply``)."""
        return await self.writer.apply(batch)

    @contextlib.asynccontextmanager
    async def extra_writer(self) -> AsyncIterator[BatchWriter]:
        """A second pooled connection applying this run's batches, for the block.

        A batch's COPY and upsert then overlap the previous batch's upsert and commit (on
        one connection, PostgreSQL's work would bound a full sync)."""
        if self._pool is None:
            raise RuntimeError("this session has no pool to take a writer from")
        fence = (self._conn.get_server_pid(), lock_key(self.integration_id, self.spec.resource))
        with translate():
            async with self._pool.acquire() as conn:
                await conn.execute(_CREATE_STAGING)
                writer = BatchWriter(conn, self.integration_id, self.spec, fence, self._lease)
                writer.first_sync = self.writer.first_sync
                yield writer

    async def checkpoint(self) -> dict[str, Any] | None:
        with translate():
            value: dict[str, Any] | None = await self._conn.fetchval(
                Q["get_checkpoint"], self.integration_id, self.spec.resource
            )
        return value

    async def last_sweep_at(self) -> datetime | None:
        with translate():
            row = await self._conn.fetchrow(Q["get_sync_state"], self.integration_id, self.spec.resource)
        return row["last_sweep_at"] if row else None

    async def start_run(self) -> None:
        with translate():
            await self._conn.execute(Q["start_run"], self.integration_id, self.spec.resource)
            # Under the run's lock, so no other sync of ours adds rows meanwhile; any other
            # writer's row only turns a batch's insert into an upsert (unique_violation).
            self.writer.first_sync = not await self._conn.fetchval(self.spec.sql.any_row, self.integration_id)

    async def open_dead_letters(self, limit: int = 100_000) -> set[str]:
        """Ids with an unresolved dead letter: a clean copy arriving later resolves them."""
        with translate():
            rows = await self._conn.fetch(
                Q["open_dead_letters"], self.integration_id, self.spec.resource, limit
            )
        return {r[0] for r in rows}

    async def open_dead_letter_count(self) -> int:
        with translate():
            count: int = await self._conn.fetchval(
                Q["count_open_dead_letters"], self.integration_id, self.spec.resource
            )
        return count

    async def soft_delete(self, external_ids: list[str]) -> int:
        if not self.spec.definition.sweep or not external_ids:
            return 0
        with translate():
            async with self._conn.transaction():
                count: int = await self._conn.fetchval(
                    self.spec.sql.soft_delete, self.integration_id, external_ids
                )
        return count

    # --- deletion sweep: the IDs the partner still lists, staged on this connection --------

    async def sweep_begin(self) -> datetime:
        with translate():
            await self._conn.execute(Q["clear_seen_ids"])
            started: datetime = await self._conn.fetchval(Q["db_now"])
        return started

    async def sweep_mark(self, external_ids: list[str]) -> None:
        with translate():
            await self._conn.execute(Q["mark_seen"], external_ids)

    async def sweep_candidates(self, started: datetime, limit: int) -> list[str]:
        if not self.spec.definition.sweep:
            return []
        with translate():
            rows = await self._conn.fetch(self.spec.sql.unseen, self.integration_id, started, limit)
        return [r[0] for r in rows]

    async def live_count(self) -> int:
        """Live rows of this session's resource, the sweep's yardstick."""
        with translate():
            count: int = await self._conn.fetchval(self.spec.sql.count_live, self.integration_id)
        return count

    async def finish_ok(self, swept: bool) -> float:
        """Mark the run successful; returns the success timestamp (epoch seconds)."""
        with translate():
            ts: float = await self._conn.fetchval(
                Q["finish_run_ok"], self.integration_id, self.spec.resource, swept
            )
        return ts

    async def finish_failed(self, error: str) -> None:
        with translate():
            if self._conn.is_in_transaction():
                # The run's error cancelled a batch mid-transaction, and with it the
                # rollback on the way out: without this, recording the failure would
                # itself fail (or be rolled back with the batch when the lock is freed).
                await self._conn.execute("ROLLBACK")
            await self._conn.execute(
                Q["finish_run_failed"], self.integration_id, self.spec.resource, storable_text(error)[:2000]
            )


def _with_changes(event: dict[str, Any]) -> dict[str, Any]:
    """An event with its ``changes`` as {field: [old, new]}, whether the upsert wrote them
    as JSON (servers before 18, deletions, merges) or as the typed composites (18 and later:
    ``old_values``/``new_values``, NULL where a field did not change)."""
    old, new = event.pop("old_values"), event.pop("new_values")
    if event["changes"] is None and old is not None and new is not None:
        event["changes"] = {name: [old[name], new[name]] for name in event["changed_fields"] or ()}
    return event
