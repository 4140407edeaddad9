"""Claims tasks from the durable queue into bounded worker slots, and keeps their leases.

Each tick: tasks that waited past their expiry are counted and dropped, free slots are
filled in priority order, due schedules become sync tasks (coalesced: one per integration x
resource), lapsed leases are reclaimed, and free slots are filled again. A wake between
ticks (a NOTIFY, a slot freed) only fills slots. ``worker_concurrency`` slots take any task;
``urgent_workers`` more take only urgent ones (a user's sync-now, a webhook's fetch), so
those start at once while every other slot runs a long sync.

A running task's lease is renewed every third of its length. When a renewal finds the
lease gone (this process was frozen and another reclaimed the task), the task's work is
cancelled here too; its connections were already terminated by the reclaimer, so nothing
it had in flight commits.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio
from anyio.abc import TaskGroup

from syncd import errors
from syncd.config import DaemonSettings
from syncd.engine.clock import Clock
from syncd.engine.scheduling import Backoff
from syncd.observability.metrics import Metrics
from syncd.store.tasks import Depth, Priority, Task, TaskQueue, priority_name

# What a task does; it ends its task itself (``TaskQueue.finish`` / ``retry``), because a
# sync ends its task in the same statement that moves its schedule.
Execute = Callable[[Task], Awaitable[None]]
# Finished tasks are purged this often (seconds).
PURGE_EVERY_S = 300.0
# A run-once process takes every pending task, however far its start was pushed back.
ONCE_HORIZON = timedelta(days=366)


def owner_name() -> str:
    """Who holds a lease, for operators reading ``syncd tasks``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Slots:
    """The tasks running in this process, by the slot pool they took."""

    general: set[int] = field(default_factory=set)
    urgent: set[int] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.general) + len(self.urgent)


class Engine:
    def __init__(
        self,
        queue: TaskQueue,
        execute: Execute,
        *,
        owned: Sequence[str],
        clock: Clock,
        settings: DaemonSettings,
        metrics: Metrics,
        log: Any,
        stop: anyio.Event,
        once: bool = False,
    ) -> None:
        self._queue = queue
        self._execute = execute
        self._owned = list(owned)
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self._log = log
        self._stop = stop
        self._once = once
        self.owner = owner_name()
        self.slots = Slots()
        self.wake = anyio.Event()
        self.last_tick = time.monotonic()
        self._last_claim = time.monotonic()
        self._last_purge = 0.0
        self._stalled_s = 0.0
        # Run-once: when it began (the database's clock); tasks started since are not claimed again.
        self._once_since: datetime | None = None
        # The queue as the last tick saw it (for /status and /readyz).
        self.depth: list[Depth] = []
        self._db_backoff = Backoff()
        self.workers_scope: anyio.CancelScope | None = None
        # This process's liveness token while its lock is held (None: not claiming).
        self._process: int | None = None
        self._live = anyio.Event()

    def poke(self) -> None:
        """Look at the queue now (a run ended, a NOTIFY arrived), not at the next tick."""
        self.wake.set()

    def stalled_s(self) -> float:
        """How long tasks have been due with none claimed (0 when none are due)."""
        return self._stalled_s

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._hold_liveness)
            while not self._live.is_set():  # the database may be away at start
                if self._stop.is_set():
                    tg.cancel_scope.cancel()
                    return
                with anyio.move_on_after(0.5):
                    await self._live.wait()
            try:
                await self._run_workers()
            finally:
                tg.cancel_scope.cancel()

    async def _hold_liveness(self) -> None:
        """Holds this process's liveness lock, taking a new one when its connection is lost
        (a database restart): meanwhile nothing is claimed."""
        backoff = Backoff()
        while True:
            try:
                async with self._queue.liveness() as (token, lost):
                    self._process = token
                    self._live.set()
                    backoff.reset()
                    await lost.wait()
            except errors.StoreError as exc:
                self._log.warning("liveness_lock_unavailable", error=str(exc))
                backoff.failed()
            finally:
                self._process = None
            await anyio.sleep(backoff.next())

    async def _run_workers(self) -> None:
        d = self._settings
        with anyio.CancelScope() as scope:
            self.workers_scope = scope
            async with anyio.create_task_group() as workers:
                if self._once:
                    await self._run_once(workers)
                    return
                last_full = -math.inf
                while not self._stop.is_set():
                    self.last_tick = time.monotonic()
                    # A fresh event before looking: a wake-up that arrives while we look is
                    # not lost, the wait below returns at once.
                    self.wake = anyio.Event()
                    if self.last_tick - last_full >= d.scheduler_tick_s:
                        last_full = self.last_tick
                        claimed = await self._tick(workers)
                    else:
                        # Woken between ticks (a sync-now's NOTIFY, a slot freed): claim at
                        # once, and leave the bookkeeping (due schedules, reclaims, depth:
                        # tens of ms each with thousands queued) to the tick.
                        claimed = await self._claim_only(workers)
                    if claimed is None:
                        with anyio.move_on_after(self._db_backoff.next()):
                            await self.wake.wait()
                        continue
                    with anyio.move_on_after(max(0.0, last_full + d.scheduler_tick_s - time.monotonic())):
                        await self.wake.wait()

    async def _tick(
        self, workers: TaskGroup, horizon: timedelta = timedelta(0), enqueue: bool = True, spread: bool = True
    ) -> int | None:
        """One look at the queue: the number of tasks claimed, or None while the database is
        unreachable (a restart or failover must not end the daemon: running tasks fail and
        are retried, claiming resumes when it is back)."""
        try:
            now = await self._clock.now()
            for kind, _priority in await self._queue.expire(self._owned, now):
                self._metrics.tasks_ended.labels(kind, "expired").inc()
            # What already waits is claimed first (a user's sync-now must not wait for the
            # bookkeeping below), then again for what the bookkeeping queued.
            claimed = await self._claim(workers, now, horizon)
            if enqueue:
                spread_s = self._settings.recovery_spread_s if spread else 0.0
                queued = await self._queue.enqueue_due_schedules(self._owned, now, spread_s)
                if queued:
                    self._metrics.tasks_enqueued.labels("sync", "inserted").inc(len(queued))
            reclaimed = await self._queue.reclaim(self._owned)
            for kind in reclaimed.dead_kinds:
                self._metrics.tasks_ended.labels(kind, "dead").inc()
            if reclaimed.requeued or reclaimed.dead or reclaimed.lost:
                self._metrics.leases_reclaimed.inc(reclaimed.requeued + reclaimed.dead + reclaimed.lost)
                self._log.warning(
                    "task_leases_reclaimed",
                    requeued=reclaimed.requeued,
                    dead=reclaimed.dead,
                    lost=reclaimed.lost,
                    connections_terminated=reclaimed.terminated,
                )
            claimed += await self._claim(workers, now, horizon)
            depth = await self._queue.depth(self._owned, now)
            self._observe(depth, now.timestamp(), claimed)
            await self._purge()
        except errors.StoreError as exc:
            if self._db_backoff.failures == 0:
                self._log.error("database_unavailable", error=str(exc))
            self._db_backoff.failed()
            return None
        if self._db_backoff.failures:
            self._log.info("database_available", after_failures=self._db_backoff.failures)
            self._db_backoff.reset()
        return claimed

    async def _claim_only(self, workers: TaskGroup) -> int | None:
        try:
            return await self._claim(workers, await self._clock.now())
        except errors.StoreError:
            self._db_backoff.failed()
            return None

    async def _claim(self, workers: TaskGroup, now: datetime, horizon: timedelta = timedelta(0)) -> int:
        d = self._settings
        lease, process = d.task_lease_s, self._process
        full = len(self.slots.general) >= d.worker_concurrency and len(self.slots.urgent) >= d.urgent_workers
        if process is None or full:
            return 0
        general = await self._queue.claim(
            self._owned,
            now,
            d.worker_concurrency - len(self.slots.general),
            self.owner,
            lease,
            process,
            horizon=horizon,
            not_started_since=self._once_since,
            aging_s=d.priority_aging_s,
            one_fetch_batch=True,
        )
        for task in general:
            self._start(workers, task, self.slots.general)
        urgent = await self._queue.claim(
            self._owned,
            now,
            d.urgent_workers - len(self.slots.urgent),
            self.owner,
            lease,
            process,
            int(Priority.WEBHOOK),
            horizon=horizon,
            not_started_since=self._once_since,
            aging_s=d.priority_aging_s,
            one_fetch_batch=True,
        )
        for task in urgent:
            self._start(workers, task, self.slots.urgent)
        if general or urgent:
            self._last_claim = time.monotonic()
        return len(general) + len(urgent)

    def _observe(self, depth: Sequence[Depth], at: float, claimed: int) -> None:
        m = self._metrics
        self.depth = list(depth)
        waiting = sum(d.due for d in depth)
        oldest = max((d.oldest_s for d in depth), default=0.0)
        m.scheduler_ticked(at, waiting, oldest)
        for priority in Priority:
            row = next((d for d in depth if d.priority == priority), None)
            m.tasks_due.labels(priority.name.lower()).set(row.due if row else 0)
            m.task_oldest_due.labels(priority.name.lower()).set(row.oldest_s if row else 0.0)
        # Work was due and this tick claimed none of it (every slot busy, or claiming broken).
        still_due = waiting > 0 and claimed == 0
        self._stalled_s = time.monotonic() - self._last_claim if still_due else 0.0
        if not still_due:
            self._last_claim = time.monotonic()
        m.task_claim_stalled.set(self._stalled_s)

    async def _purge(self) -> None:
        if time.monotonic() - self._last_purge < PURGE_EVERY_S:
            return
        self._last_purge = time.monotonic()
        await self._queue.purge(self._settings.task_retention_s)
        await self._queue.purge_deliveries(self._settings.webhook_retention_s)

    def _start(self, workers: TaskGroup, task: Task, pool: set[int]) -> None:
        pool.add(task.id)
        workers.start_soon(self._work, task, pool, name=f"task {task.id} {task.key}")

    async def _work(self, task: Task, pool: set[int]) -> None:
        m = self._metrics
        count_start(m, task)
        lost = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._keep_lease, task, scope, lost)
                    try:
                        await self._execute(task)
                    except Exception as exc:
                        # A bug fails this task (retried later), never the daemon.
                        self._log.exception(
                            "task_crashed", task=task.id, key=task.key, error_type=type(exc).__name__
                        )
                        with anyio.CancelScope(shield=True), contextlib.suppress(errors.StoreError):
                            await self._queue.release(
                                task, self._settings.retry_failed_after_s, f"crashed: {exc!r}"[:500]
                            )
                    finally:
                        tg.cancel_scope.cancel()
            if scope.cancelled_caught or lost.is_set():
                m.tasks_ended.labels(task.kind, "lease_lost").inc()
        except BaseException:
            # Cancelled by a drain past its grace: back to the queue now rather than after
            # its lease lapses (uncommitted work rolled back with its transaction).
            if not lost.is_set():
                with anyio.CancelScope(shield=True), contextlib.suppress(errors.StoreError):
                    await self._queue.release(task, 0.0, "interrupted by shutdown")
            raise
        finally:
            pool.discard(task.id)
            self.wake.set()

    async def _keep_lease(self, task: Task, scope: anyio.CancelScope, lost: anyio.Event) -> None:
        every = self._settings.task_lease_s / 3
        while True:
            await anyio.sleep(every)
            try:
                held = await self._queue.renew(task, self._settings.task_lease_s)
            except errors.StoreError:
                continue  # the database is away: the lease may lapse, and then it is lost
            if not held:
                self._log.error("task_lease_lost", task=task.id, key=task.key)
                lost.set()
                scope.cancel()
                return

    async def _run_once(self, workers: TaskGroup) -> None:
        """Run-once: the schedules due at start become tasks (once: a run that fails is not
        retried by this process), then every pending task runs (what they enqueue too). A
        task this process ran and put back (a failed fetch's backoff) waits for the next
        process: claimed again here it would spend its attempts within seconds."""
        first = True
        self._once_since = await self._queue.database_now()
        # A stop (a test's request_stop, Ctrl-C) claims nothing more: what runs drains, and
        # what it puts back stays for the next process.
        while not self._stop.is_set():
            self.wake = anyio.Event()
            claimed = await self._tick(workers, horizon=ONCE_HORIZON, enqueue=first, spread=False)
            if claimed is not None:
                first = False
                if not claimed and not self.slots and not await self._pending():
                    return
            with anyio.move_on_after(0.5 if claimed is not None else self._db_backoff.next()):
                await self.wake.wait()

    async def _pending(self) -> bool:
        now = await self._clock.now()
        return bool(await self._queue.depth(self._owned, now + ONCE_HORIZON, self._once_since))


def _priority_name(priority: int) -> str:
    return priority_name(priority)


def count_start(metrics: Metrics, task: Task) -> None:
    """A task starts: syncd_tasks_started_total and its wait since it was enqueued (the
    engine's claims, and the siblings a fetch batch claims with them)."""
    priority = _priority_name(task.priority)
    metrics.tasks_started.labels(task.kind, priority).inc()
    metrics.task_start_delay.labels(priority).observe(
        max(0.0, (task.started_at - task.enqueued_at).total_seconds())
    )
