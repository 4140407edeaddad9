"""Run one sync of one integration x resource and record its outcome.

A failing sync never takes the daemon down: every failure is classified, logged, counted
and turned into a retry time for that schedule alone.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

import anyio

from syncd import errors, pipeline
from syncd.config import ResourceSettings, Settings
from syncd.connectors.base import Connector
from syncd.engine.outcomes import Outcome
from syncd.engine.scheduling import failure_backoff, next_interval
from syncd.http import breaker
from syncd.observability.metrics import Metrics
from syncd.store.postgres import Lease, Store, SyncSession

# Records a run's outcome and the seconds until the schedule's next run.
Reschedule = Callable[[str, float], Awaitable[None]]


class SyncRunner:
    def __init__(
        self,
        store: Store,
        connectors: Mapping[str, Connector],
        settings: Settings,
        metrics: Metrics,
        log: Any,
        stop: anyio.Event,
    ) -> None:
        self._store = store
        self._connectors = connectors
        self._settings = settings
        self._integrations = {i.id: i for i in settings.integrations}
        self._metrics = metrics
        self._log = log
        self._stop = stop
        self.progress: dict[tuple[str, str], pipeline.RunStats] = {}
        # [http] Runs that failed fast on an open circuit: (the breaker's retry_in, when).
        self._circuit_retry_in: dict[tuple[str, str], tuple[float, float]] = {}
        self._circuit_waiting: dict[tuple[str, str], float] = {}
        self._circuit_closed_at = -math.inf

    def circuit_closed(self) -> None:
        """[http] A breaker closed (a probe succeeded): runs that failed fast on an open
        circuit may go again now, not at their reschedule, up to a probe timeout later."""
        self._circuit_closed_at = time.monotonic()

    def circuit_refused(self, key: tuple[str, str], retry_in: float, refused_at: float) -> None:
        """[http] A run of ``key`` failed fast at ``refused_at`` (monotonic): a breaker
        admits a request ``retry_in`` after it. The refusal's time, not the failure's: a
        sibling's probe may close the breaker while this run is still writing its failure."""
        self._circuit_retry_in[key] = (retry_in, refused_at)
        self._circuit_waiting[key] = refused_at

    def take_circuit_waiting(self) -> list[tuple[str, str]]:
        """The runs that failed fast on an open circuit before the last close."""
        ready = sorted(k for k, at in self._circuit_waiting.items() if at < self._circuit_closed_at)
        for key in ready:
            del self._circuit_waiting[key]
        return ready

    def resource_settings(self, integration_id: str, resource: str) -> ResourceSettings:
        return self._integrations[integration_id].resources.get(resource) or ResourceSettings()

    async def run(
        self,
        integration_id: str,
        resource: str,
        *,
        lease: Lease | None = None,
        reschedule: Reschedule | None = None,
    ) -> Outcome:
        """Returns the outcome: ``ok``, ``failed``, ``interrupted`` (stopping) or ``busy``.

        ``lease``: the task's lease token, which fences the run's connections. ``reschedule``
        records the outcome and the next run's delay (default: the schedule alone; the task
        engine ends its task in the same statement)."""
        connector = self._connectors[integration_id]
        partner = connector.info.name
        res = self.resource_settings(integration_id, resource)
        log = self._log.bind(integration=integration_id, partner=partner, resource=resource)
        started = time.monotonic()
        outcome: Outcome = "failed"
        self._metrics.syncs_in_flight.inc()
        try:
            async with self._store.sync_session(integration_id, resource, lease) as session:
                if session is None:
                    log.info("sync_skipped_locked")
                    return "busy"
                outcome = await self._run_in_session(session, connector, integration_id, resource, res, log)
                await self._count_dead_letters(session, integration_id, resource)
        except errors.SyncdError as exc:
            log.error("sync_failed", error=str(exc), error_type=type(exc).__name__)
        except Exception as exc:
            # A bug or an unforeseen library error fails this run (retried like any other),
            # with its traceback logged; it must not end the other integrations' syncs.
            log.exception("sync_crashed", error_type=type(exc).__name__)
        finally:
            self._metrics.syncs_in_flight.dec()
        elapsed = time.monotonic() - started
        self._metrics.sync_duration.labels(partner, resource, outcome).observe(elapsed)
        self._metrics.sync_runs.labels(partner, resource, outcome).inc()
        self._metrics.integration_up.labels(integration_id).set(1 if outcome in ("ok", "interrupted") else 0)
        await self._reschedule(integration_id, resource, res, outcome, log, reschedule)
        return outcome

    async def _run_in_session(
        self,
        session: SyncSession,
        connector: Connector,
        integration_id: str,
        resource: str,
        res: ResourceSettings,
        log: Any,
    ) -> Outcome:
        db = self._settings.database
        options = pipeline.PipelineOptions(
            batch_size=db.batch_size,
            pipeline_depth=db.pipeline_depth,
            write_lanes=db.write_lanes,
            sweep=await self._sweep_due(session, res),
        )
        stats = pipeline.RunStats()
        self.progress[(integration_id, resource)] = stats
        log.info("sync_started", sweep=options.sweep)
        try:
            try:
                with anyio.move_on_after(res.run_deadline_s) as deadline:
                    stats = await pipeline.run(
                        session, connector, resource, res, options, self._metrics, log, self._stop, stats
                    )
            except BaseExceptionGroup as group:  # [http] the pipeline's task group wraps errors
                raise _sole_error(group) from None

        except errors.AuthFailed as exc:
            await session.finish_failed(str(exc))
            await self._store.set_integration_status(integration_id, "auth_failed", str(exc)[:500])
            self._metrics.integration_auth_failed.labels(integration_id).set(1)
            log.error(
                "sync_failed", error=str(exc), error_type="AuthFailed", integration_status="auth_failed"
            )
            return "failed"
        except (errors.PartnerError, errors.PaginationError, errors.CircuitOpen) as exc:
            await session.finish_failed(str(exc))
            if isinstance(exc, errors.CircuitOpen):  # [http] retry when the breaker lets us
                self.circuit_refused((integration_id, resource), exc.retry_in, exc.refused_at)
            log.error("sync_failed", error=str(exc), error_type=type(exc).__name__, pages=stats.pages)
            return "failed"
        if deadline.cancelled_caught:
            # The batch in flight rolled back with its checkpoint; earlier batches stay.
            message = f"run deadline of {res.run_deadline_s:g} s exceeded"
            await session.finish_failed(message)
            log.error("sync_failed", error=message, error_type="DeadlineExceeded", pages=stats.pages)
            return "failed"
        if self._stop.is_set() and stats.interrupted:
            log.info("sync_interrupted", pages=stats.pages, records=stats.fetched)
            return "interrupted"
        ts = await session.finish_ok(stats.swept)
        self._metrics.last_success.labels(integration_id, resource).set(ts)
        # A run only starts while the integration is active: credentials fixed without a
        # restart (``syncd authorize``) clear the parked state here, not at the next start.
        self._metrics.integration_auth_failed.labels(integration_id).set(0)
        log.info(
            "sync_finished",
            pages=stats.pages,
            records=stats.fetched,
            inserted=stats.inserted,
            updated=stats.updated,
            unchanged=stats.unchanged,
            dead_lettered=stats.dead_lettered,
            deleted=stats.deleted,
        )
        return "ok"

    async def restore_gauges(self) -> None:
        """The per-integration gauges alerts read, from the database at start: a restart
        must not blank the last success (staleness) or the open dead letters."""
        m = self._metrics
        for row in await self._store.sync_status(list(self._connectors)):
            integration_id, resource = row["integration_id"], row["resource"]
            if row["last_success_at"] is not None:
                m.last_success.labels(integration_id, resource).set(row["last_success_at"].timestamp())
            m.dead_letters_open.labels(integration_id, resource).set(row["dead_letters"])
            m.integration_auth_failed.labels(integration_id).set(row["status"] == "auth_failed")
            if row["resource_enabled"]:
                interval = self.resource_settings(integration_id, resource).interval_s
                m.sync_interval.labels(integration_id, resource).set(interval)

    async def _count_dead_letters(self, session: SyncSession, integration_id: str, resource: str) -> None:
        try:
            count = await session.open_dead_letter_count()
        except errors.StoreError:
            return  # the connection is gone with the run; the next run counts them
        self._metrics.dead_letters_open.labels(integration_id, resource).set(count)

    async def _sweep_due(self, session: SyncSession, res: ResourceSettings) -> bool:
        if not res.deletion_sweep:
            return False
        last = await session.last_sweep_at()
        if last is None:
            return True
        return await self._store.now() - last >= timedelta(seconds=res.deletion_sweep_interval_s)

    async def _reschedule(
        self,
        integration_id: str,
        resource: str,
        res: ResourceSettings,
        outcome: str,
        log: Any,
        reschedule: Reschedule | None = None,
    ) -> None:
        if outcome == "busy":
            return
        # [store] With the database down this fails too: the schedule then stays due and is
        # claimed again once the database is back (the daemon never exits for it).
        try:
            with anyio.CancelScope(shield=True):
                if outcome == "ok":
                    next_in = next_interval(res.interval_s, res.jitter, random.random())
                elif outcome == "interrupted":
                    next_in = 0.0  # resume from the checkpoint as soon as a process starts
                else:
                    failures = await self._failures(integration_id, resource)
                    retry_after = self._settings.daemon.retry_failed_after_s
                    next_in = failure_backoff(res.interval_s, retry_after, failures)
                    # [http] Failed fast on an open breaker: come back when it admits a probe,
                    # not sooner (that would spin) and not after a long failure backoff either.
                    circuit = self._circuit_retry_in.pop((integration_id, resource), None)
                    if circuit is not None:
                        retry_in, failed_at = circuit
                        # Closed since (a sibling's probe succeeded): go again at once.
                        closed = self._circuit_closed_at >= failed_at
                        next_in = 0.0 if closed else breaker.reschedule_delay(retry_in, random.random())
                if reschedule is None:
                    await self._store.finish_schedule(integration_id, resource, outcome, next_in)
                else:
                    await reschedule(outcome, next_in)
        except errors.StoreError as exc:
            log.error("reschedule_failed", error=str(exc))

    async def _failures(self, integration_id: str, resource: str) -> int:
        for s in await self._store.list_schedules([integration_id]):
            if s.resource == resource:
                return s.consecutive_failures
        return 0


def _sole_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """[http] The one ``SyncdError`` a failed pipeline stage raised (the others were
    cancelled), so the run fails like any other; anything else stays a group."""
    matched, rest = group.split(errors.SyncdError)
    if rest is None and matched is not None:
        leaves = list(_leaves(matched))
        if leaves:
            return leaves[0]
    return group


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
