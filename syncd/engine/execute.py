"""What each kind of task does, and how it ends its task.

* ``sync``: a run of ``SyncRunner``; its outcome ends the task and moves the schedule in
  one statement, under the lease. A run interrupted by a drain puts its task back instead.
* ``fetch``: the given ids fetched by id (a webhook named them, or a user asked) and
  applied like a sync's batch; a record the partner no longer has is soft-deleted.
* ``child``: the children of the given parents (a sync found their trigger fields
  changed: ``resources.Cascade``), streamed by the connector's ``stream_children`` and
  applied like a fetch; a parent's children the partner no longer has are soft-deleted in
  the same transaction. A child resource has no sync of its own: its schedule only says
  the integration syncs it (a ``sync`` task of it ends at once).

* ``push``: the given reservations' access codes made to match them at the lock
  integration's provider (``syncd.engine.access``); a push out of attempts leaves a dead
  letter per reservation.

A failing fetch, child or push task is retried with backoff up to its attempts, then it is dead
(counted, and visible in ``syncd tasks``). Kinds a connector cannot do yet end as dead
with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncd import errors
from syncd.connectors.base import Connector, children_of
from syncd.engine import outcomes
from syncd.engine.access import PushExecutor
from syncd.engine.clock import Clock
from syncd.engine.replay import ReplayResult, fetch_into
from syncd.engine.runner import SyncRunner
from syncd.engine.scheduling import failure_backoff
from syncd.engine.workers import count_start
from syncd.observability.metrics import Metrics
from syncd.pipeline import dead_letter
from syncd.store.postgres import Store
from syncd.store.resources import RESOURCES
from syncd.store.tasks import Task, TaskQueue
from syncd.store.types import Batch, row_for

# A sync whose run lock another process holds (an operator's replay, a shard in a rollout)
# goes again after this many seconds.
BUSY_RETRY_S = 5.0
# Backoff of a failed fetch: base seconds, doubling per attempt, capped.
FETCH_RETRY_BASE_S = 5.0
FETCH_RETRY_CAP_S = 600.0
# Most fetch tasks of one integration x resource run as one batch (one claim's siblings).
FETCH_BATCH = 100


class TaskExecutor:
    def __init__(
        self,
        store: Store,
        queue: TaskQueue,
        runner: SyncRunner,
        connectors: Mapping[str, Connector],
        metrics: Metrics,
        log: Any,
        *,
        once: bool = False,
        clock: Clock | None = None,
        pushes: PushExecutor | None = None,
    ) -> None:
        self._store = store
        self._pushes = pushes
        # Moves schedules on the engine's clock, the one due schedules are found by.
        self._clock = clock
        self._queue = queue
        self._runner = runner
        self._connectors = connectors
        self._metrics = metrics
        self._log = log
        self._once = once
        # The last outcome of each integration x resource's sync: `syncd run --once`'s summary.
        self.outcomes: dict[outcomes.Key, outcomes.Outcome] = {}

    async def __call__(self, task: Task) -> None:
        if task.integration_id not in self._connectors:
            await self._end(task, "dead", "no connector for this integration in this process")
        elif task.kind == "sync":
            await self._sync(task)
        elif task.kind == "fetch":
            await self._fetch(task)
        elif task.kind == "child":
            await self._child(task)
        elif task.kind == "push":
            await self._push(task)
        else:
            await self._end(task, "dead", f"task kind {task.kind!r} is not handled by this version")

    async def _sync(self, task: Task) -> None:
        definition = RESOURCES.get(task.resource)
        if definition is not None and definition.cascade is not None:
            interval = self._runner.resource_settings(task.integration_id, task.resource).interval_s
            await self._end(task, "done", None, interval, "ok")
            return

        async def reschedule(outcome: str, next_in: float) -> None:
            if outcome == "interrupted":
                # The process is stopping: the task goes back as it was (its priority, a
                # user's or a webhook's, kept) and the next process resumes from the
                # checkpoint; the schedule has not moved, so nothing else is enqueued for it.
                if await self._queue.retry(task, 0.0, "interrupted: the process was stopping"):
                    self._metrics.tasks_ended.labels(task.kind, "interrupted").inc()
                return
            state = "done" if outcome == "ok" else "failed"
            await self._end(task, state, None if state == "done" else "run failed", next_in, outcome)

        key = (task.integration_id, task.resource)
        outcome = await self._runner.run(*key, lease=task.lease, reschedule=reschedule)
        self.outcomes[key] = outcome
        if outcome == "busy":
            reason = "busy: another process holds this run's lock"
            if self._once:
                # Run-once leaves it to the holder: its schedule stays due for the next run.
                await self._end(task, "skipped", reason)
                return
            await self._queue.retry(task, BUSY_RETRY_S, reason)
            self._metrics.tasks_ended.labels(task.kind, "retried").inc()

    async def _fetch(self, task: Task) -> None:
        connector = self._connectors[task.integration_id]
        log = self._log.bind(integration=task.integration_id, resource=task.resource, task=task.id)
        # The other fetches of this integration x resource waiting now go in the same session
        # and transactions: under a webhook burst the per-task cost (claim, session, commit,
        # finish) is paid once per batch, and the partner's budget still paces the GETs.
        now = await self._clock.now() if self._clock is not None else task.started_at
        siblings = await self._queue.claim_siblings(task, now, FETCH_BATCH - 1)
        batch = [task, *siblings]
        for sibling in siblings:
            count_start(self._metrics, sibling)
        ids = list(dict.fromkeys(i for t in batch for i in t.ids))
        result = ReplayResult(task.integration_id, task.resource)
        failed: dict[str, Exception] = {}
        try:
            async with self._store.task_session(task.integration_id, task.resource, task.lease) as session:
                await fetch_into(
                    session,
                    connector,
                    task.resource,
                    ids,
                    result,
                    delete_gone=True,
                    concurrency=connector.info.max_concurrency,
                    failed=failed,
                )
        except (errors.PartnerError, errors.CircuitOpen, errors.StoreError) as exc:
            for each in batch:
                await self._failed(each, exc, log)
            return
        done = [t for t in batch if not any(i in failed for i in t.ids)]
        log.info("fetch_done", tasks=len(batch), failed_ids=len(failed), **result.to_json())
        ended = await self._queue.finish_many(done, "done")
        self._metrics.tasks_ended.labels(task.kind, "done").inc(ended)
        if ended < len(done):
            self._log.warning("task_finish_refused_lease_lost", task=task.id, key=task.key)
        for each in batch:
            errors_of_task = [failed[i] for i in each.ids if i in failed]
            if errors_of_task:
                await self._failed(each, errors_of_task[0], log)

    async def _child(self, task: Task) -> None:
        connector = self._connectors[task.integration_id]
        stream = children_of(connector)
        definition = RESOURCES.get(task.resource)
        if stream is None or definition is None or definition.cascade is None:
            await self._end(task, "dead", f"{task.resource!r} is not a child resource this connector offers")
            return
        log = self._log.bind(integration=task.integration_id, resource=task.resource, task=task.id)
        kept = letters = 0
        try:
            async with self._store.task_session(task.integration_id, task.resource, task.lease) as session:
                async for page in stream(task.resource, task.ids):
                    batch = Batch(parents=list(page.parents))
                    for raw, values in zip(page.records, page.values, strict=True):
                        if isinstance(values, Exception):
                            batch.dead_letters.append(dead_letter(connector, task.resource, raw, values))
                            continue
                        batch.rows.append(row_for(session.spec, values, raw, page.media_type))
                        batch.resolved.append(str(values[0]))
                    kept += len(batch.rows)
                    letters += len(batch.dead_letters)
                    await session.apply(batch)
        except (errors.PartnerError, errors.CircuitOpen, errors.StoreError) as exc:
            await self._failed(task, exc, log)
            return
        log.info("child_done", parents=len(task.ids), children=kept, dead_lettered=letters)
        await self._end(task, "done")

    async def _push(self, task: Task) -> None:
        why = "this process runs no pushes" if self._pushes is None else self._pushes.handles(task)
        if why is not None or self._pushes is None:
            await self._end(task, "dead", why)
            return
        log = self._log.bind(integration=task.integration_id, resource=task.resource, task=task.id)
        try:
            await self._pushes.run(task)
        except errors.RateLimited as exc:
            # Nothing was done (a lock's per-minute budget): the task waits the time it was
            # told, however often, rather than spending its attempts within the minute.
            delay = exc.retry_after if exc.retry_after is not None else FETCH_RETRY_BASE_S
            log.info("push_deferred", retry_in_s=round(delay, 2))
            if await self._queue.retry(task, delay, f"rate limited: {exc}"[:500]):
                self._metrics.tasks_ended.labels(task.kind, "retried").inc()
            return
        except (errors.PartnerError, errors.CircuitOpen, errors.StoreError) as exc:
            if task.attempts >= task.max_attempts or isinstance(exc, errors.AuthFailed):
                await self._pushes.given_up(task, exc)
            await self._failed(task, exc, log)
            return
        await self._end(task, "done")

    async def _failed(self, task: Task, exc: Exception, log: Any) -> None:
        message = f"{type(exc).__name__}: {exc}"[:500]
        if task.attempts >= task.max_attempts or isinstance(exc, errors.AuthFailed):
            log.error("task_dead", error=message, attempts=task.attempts)
            await self._end(task, "dead", message)
            return
        delay = failure_backoff(FETCH_RETRY_CAP_S, FETCH_RETRY_BASE_S, task.attempts - 1)
        log.warning("task_retry", error=message, attempts=task.attempts, retry_in_s=delay)
        await self._queue.retry(task, delay, message)
        self._metrics.tasks_ended.labels(task.kind, "retried").inc()

    async def _end(
        self,
        task: Task,
        state: str,
        error: str | None = None,
        next_in_s: float | None = None,
        outcome: str | None = None,
    ) -> None:
        now = await self._clock.now() if self._clock is not None and next_in_s is not None else None
        if await self._queue.finish(task, state, error, next_in_s=next_in_s, outcome=outcome, now=now):
            self._metrics.tasks_ended.labels(task.kind, state).inc()
        else:
            self._log.warning("task_finish_refused_lease_lost", task=task.id, key=task.key)
