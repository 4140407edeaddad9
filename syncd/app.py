"""The daemon: one lifespan, one root task group.

    Daemon.run()
      ├── database    embedded PostgreSQL (no URL configured) or the configured server
      ├── store       pool + schema migration + integration/schedule registration
      ├── web         /healthz /readyz /metrics /status /webhooks/{partner}/{integration}
      │               (uvicorn in this loop)
      ├── watchdog    event-loop lag
      ├── signals     SIGTERM/SIGINT -> drain
      └── engine      due schedules -> tasks (durable, PostgreSQL) -> bounded workers
                      (syncd.engine.workers) -> SyncRunner.run or a targeted fetch

Draining: on SIGTERM the scheduler stops claiming, running syncs stop at their next page
boundary (committing it), and after ``shutdown_grace_s`` whatever is left is cancelled:
an uncommitted batch rolls back, its checkpoint with it, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import random
import signal
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.abc import TaskStatus
from starlette.routing import Route

from syncd import crypto, errors
from syncd.config import Settings
from syncd.connectors import registry
from syncd.connectors.base import Connector
from syncd.engine import outcomes, scheduling
from syncd.engine.access import PushExecutor
from syncd.engine.clock import Clock, DatabaseClock
from syncd.engine.execute import TaskExecutor
from syncd.engine.runner import SyncRunner
from syncd.engine.workers import Engine
from syncd.http.guards import Guards
from syncd.http.transport import Transports
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.observability.systemd import SystemdNotifier
from syncd.store import access as access_store
from syncd.store.credentials import CredentialStore
from syncd.store.embedded import EmbeddedPostgres
from syncd.store.postgres import Store
from syncd.store.tasks import Priority, TaskQueue
from syncd.web import admin as web_admin
from syncd.web import board
from syncd.web import server as web_server
from syncd.web.app import WebContext, create_app
from syncd.web.webhooks import PATH as WEBHOOK_PATH
from syncd.web.webhooks import WebhookReceiver

WATCHDOG_INTERVAL_S = 1.0
# `syncd sync-now` NOTIFYs this channel after making schedules due.
WAKE_CHANNEL = "syncd_wake"
# Tries at migrating and registering on start (a deadlock with a sibling's writes).
START_ATTEMPTS = 5
# The scheduler is "alive" for /readyz if it ticked within this many tick intervals.
SCHEDULER_STALE_TICKS = 5


@contextlib.asynccontextmanager
async def database(settings: Settings, log: Any) -> AsyncIterator[str]:
    """The configured database URL, or the embedded server's (started, then stopped)."""
    if settings.database.url is not None:
        yield settings.database.url.get_secret_value()
        return
    embedded = EmbeddedPostgres(settings.daemon.state_dir)
    started = time.monotonic()
    dsn = await embedded.astart()
    log.info(
        "embedded_postgres_started", pgdata=str(embedded.pgdata), seconds=round(time.monotonic() - started, 2)
    )
    try:
        yield dsn
    finally:
        with anyio.CancelScope(shield=True):
            await embedded.astop()
            log.info("embedded_postgres_stopped")


@contextlib.asynccontextmanager
async def open_store(settings: Settings, dsn: str) -> AsyncIterator[Store]:
    db = settings.database
    async with Store.open(
        dsn,
        min_size=db.pool_min_size,
        # Each running task holds its lock's connection and, past a sync's first batch, the
        # extra writers' (write_lanes - 1); 4 more serve scheduling, LISTEN, the engine's
        # liveness lock and the web.
        max_size=max(
            db.pool_max_size,
            (settings.daemon.worker_concurrency + settings.daemon.urgent_workers) * db.write_lanes + 4,
        ),
        command_timeout=db.command_timeout_s,
    ) as store:
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                await store.migrate()
                for integ in settings.integrations:
                    resources = {name: (res.interval_s, res.enabled) for name, res in integ.resources.items()}
                    await store.register_integration(integ.id, integ.partner, integ.enabled, resources)
                break
            except errors.Conflict:
                # schema.sql's DDL locks tables in its own order while another process,
                # started a moment earlier, already writes them: PostgreSQL aborts one of
                # the two as a deadlock victim. Both steps are idempotent: do them again.
                if attempt == START_ATTEMPTS:
                    raise
                await anyio.sleep(random.uniform(0.1, 0.5) * attempt)
        # After every integration is registered: a follower names another one.
        for integ in settings.integrations:
            if integ.locks is None:
                await access_store.drop_follower(store, integ.id)
            else:
                await access_store.register_follower(
                    store, integ.id, integ.locks.follows, "reservations", list(integ.locks.devices)
                )
        yield store


async def warn_if_connections_short(store: Store, settings: Settings, log: Any) -> None:
    """Say at start, not at the first busy hour, when the pool may want more connections
    than the server has left: runs then fail to open their session (and retry), and
    second write lanes are skipped (``extra_writer_unavailable``)."""
    wanted = store.pool_max_size - store.pool_open
    headroom = await store.connection_headroom()
    if wanted > headroom:
        d = settings.daemon
        log.warning(
            "database_connections_short",
            pool_max_size=store.pool_max_size,
            more_wanted=wanted,
            server_has_free=headroom,
            hint=(
                f"the pool grows to (worker_concurrency + urgent_workers) ({d.worker_concurrency} + "
                f"{d.urgent_workers}) x write_lanes ({settings.database.write_lanes}) + 4; lower them, "
                "or raise the server's max_connections"
            ),
        )


def cipher_for(settings: Settings) -> crypto.Cipher:
    keys = [k.get_secret_value() for k in settings.secrets.keys]
    if not keys:
        key_file = settings.secrets.key_file or settings.daemon.state_dir / crypto.KEY_FILE_NAME
        keys = [crypto.load_or_create_key_file(key_file)]
    return crypto.Cipher(keys)


def build_connectors(
    settings: Settings,
    integration_ids: Sequence[str],
    transports: Transports,
    credentials: CredentialStore,
    metrics: Metrics,
    log: Any,
    guards: Guards,
) -> dict[str, Connector]:
    """One driver per listed integration, sharing the process's guards and its partner's
    HTTP pool."""
    wanted = set(integration_ids)
    drivers: dict[str, Connector] = {}
    for integ in settings.integrations:
        if integ.id not in wanted:
            continue
        partner = settings.partner(integ.partner)
        egress = registry.egress(partner, settings.egress_environ)
        drivers[integ.id] = registry.build_connector(
            integ,
            partner,
            transport=transports.get(integ.partner, egress, partner.network_backend),
            tokens=credentials,
            metrics=metrics,
            log=log,
            guards=guards,
        )
    return drivers


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        once: bool = False,
        notifier: SystemdNotifier | None = None,
        transports: Transports | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self._transports = transports
        self.notifier = notifier or SystemdNotifier()
        self.metrics = metrics or Metrics()
        self.once = once
        self.stop = anyio.Event()
        self.web_port: int | None = None
        self.runner: SyncRunner | None = None
        self.store: Store | None = None
        self._log = get_logger(shard=settings.daemon.shard_index)
        # Rate budgets, concurrency caps and breakers; partner-wide ones shared by integrations.
        self.guards = Guards(self.metrics, self._log)
        self._loop_lag = 0.0
        self._clock = clock
        self.queue: TaskQueue | None = None
        self.executor: TaskExecutor | None = None
        self.engine: Engine | None = None
        self._connectors: dict[str, Connector] = {}
        self._wire_one: Any = None  # (integration id) -> a connector, while running
        ids = [i.id for i in settings.integrations if i.enabled]
        self.owned = scheduling.owned(ids, settings.daemon.shard_index, settings.daemon.shard_count)

    def request_stop(self) -> None:
        """Begin draining (what SIGTERM does)."""
        if not self.stop.is_set():
            self.notifier.stopping()
        self.stop.set()
        self._wake()

    async def run(self, *, task_status: TaskStatus[Daemon] = anyio.TASK_STATUS_IGNORED) -> None:
        log = self._log
        log.info("daemon_starting", integrations=len(self.owned), once=self.once)
        async with (
            database(self.settings, log) as dsn,
            open_store(self.settings, dsn) as store,
            self._transports or Transports() as transports,
        ):
            await warn_if_connections_short(store, self.settings, log)
            credentials = CredentialStore(store, cipher_for(self.settings))
            connectors = build_connectors(
                self.settings, self.owned, transports, credentials, self.metrics, log, self.guards
            )
            self.store = store
            self._connectors = connectors

            def wire_one(integration_id: str) -> Connector:
                found = build_connectors(
                    self.settings, [integration_id], transports, credentials, self.metrics, log, self.guards
                )
                return found[integration_id]

            self._wire_one = wire_one
            self.runner = SyncRunner(store, connectors, self.settings, self.metrics, log, self.stop)
            await self.runner.restore_gauges()
            d = self.settings.daemon
            self.queue = TaskQueue(store, max_pending_per_integration=d.max_pending_tasks)
            clock = self._clock or DatabaseClock(store)
            locks = {i.id: i.locks for i in self.settings.integrations if i.locks is not None}
            pushes = PushExecutor(store, self.queue, connectors, locks, self.metrics, log, clock)
            self.executor = TaskExecutor(
                store,
                self.queue,
                self.runner,
                connectors,
                self.metrics,
                log,
                once=self.once,
                clock=clock,
                pushes=pushes,
            )
            self.engine = Engine(
                self.queue,
                self.executor,
                owned=self.owned,
                clock=clock,
                settings=d,
                metrics=self.metrics,
                log=log,
                stop=self.stop,
                once=self.once,
            )
            self.guards.on_circuit_closed(self._circuit_closed)
            async with anyio.create_task_group() as tg:
                if self.settings.web.enabled:
                    self.web_port = await tg.start(self._serve_web, store)
                tg.start_soon(self._watchdog)
                if not self.once:
                    tg.start_soon(self._watch_signals)
                    tg.start_soon(self._listen_for_wakes, store)
                    tg.start_soon(self._retry_after_circuit_closed, store, self.runner)
                log.info("daemon_started", web_port=self.web_port)
                d = self.settings.daemon
                self.notifier.ready(
                    f"syncing {len(self.owned)} integration(s) as shard {d.shard_index}/{d.shard_count}"
                )
                task_status.started(self)
                await self.engine.run()
                tg.cancel_scope.cancel()
        if self.once:
            self._log_summary()
        log.info("daemon_stopped")

    def summary(self) -> outcomes.RunSummary:
        """How the runs this process made ended (the last run of each integration x resource)."""
        return outcomes.RunSummary(dict(self.executor.outcomes) if self.executor else {})

    def _log_summary(self) -> None:
        summary = self.summary()
        unfinished = summary.unfinished()
        # A warning when runs did not finish: cron jobs often log at warning and above, and
        # this one line names the runs to look at.
        emit = self._log.warning if unfinished else self._log.info
        emit("run_once_summary", **summary.counts(), unfinished=unfinished)

    # --- scheduler ------------------------------------------------------------------------

    def _circuit_closed(self) -> None:
        """[http] Called by the breakers (synchronously) when one closes again."""
        if self.runner is not None:
            self.runner.circuit_closed()
        self._wake()

    async def _retry_after_circuit_closed(self, store: Store, runner: SyncRunner) -> None:
        """Runs that failed fast while a breaker was open (a sibling resource held the
        half-open probe) are due again at once when it closes, not one probe timeout later."""
        while True:
            await anyio.sleep(self.settings.daemon.scheduler_tick_s)
            for integration_id, resource in runner.take_circuit_waiting():
                with contextlib.suppress(errors.StoreError):  # else at their reschedule
                    await store.sync_now(integration_id, resource, Priority.SCHEDULED)

    def _wake(self) -> None:
        if self.engine is not None:
            self.engine.poke()

    # --- side tasks -----------------------------------------------------------------------

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                self._log.info("signal_received", signal=signal.Signals(signum).name)
                if self.stop.is_set():
                    break  # a second signal: stop waiting for the drain
                self.request_stop()
                await self._enforce_grace()
                return
        self._cancel_workers()

    def _cancel_workers(self) -> None:
        if self.engine is not None and self.engine.workers_scope is not None:
            self.engine.workers_scope.cancel()

    async def _enforce_grace(self) -> None:
        """After the grace period, cancel what is still running (uncommitted work rolls back)."""
        grace = self.settings.daemon.shutdown_grace_s
        await anyio.sleep(grace)
        self._log.warning("drain_timeout", grace_s=grace)
        self._cancel_workers()

    async def _listen_for_wakes(self, store: Store) -> None:
        """`syncd sync-now` makes schedules due and NOTIFYs: claim them at once rather than
        at the next scheduler tick. A lost connection (database restart) is re-established."""
        backoff = scheduling.Backoff()
        while True:
            try:
                async with store.listen(WAKE_CHANNEL, lambda _payload: self._wake()) as lost:
                    backoff.reset()
                    await lost.wait()
            except errors.StoreError:
                backoff.failed()
            await anyio.sleep(backoff.next())

    async def _watchdog(self) -> None:
        """Measures event-loop lag; under systemd, also pings its watchdog while healthy:
        the loop answers in time and the scheduler still ticks (a wedged daemon is
        restarted by systemd instead of sitting there)."""
        limit = self.notifier.watchdog_s
        while True:
            before = time.monotonic()
            await anyio.sleep(WATCHDOG_INTERVAL_S)
            self._loop_lag = max(0.0, time.monotonic() - before - WATCHDOG_INTERVAL_S)
            self.metrics.loop_lag.set(self._loop_lag)
            if limit is not None and self._loop_lag < limit / 2 and self._scheduler_fresh():
                self.notifier.watchdog()

    def _last_tick(self) -> float:
        return self.engine.last_tick if self.engine is not None else time.monotonic()

    def _scheduler_fresh(self) -> bool:
        limit = SCHEDULER_STALE_TICKS * self.settings.daemon.scheduler_tick_s + 5
        return self.stop.is_set() or time.monotonic() - self._last_tick() <= limit

    async def _serve_web(
        self, store: Store, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        async def scheduler_alive() -> None:
            if self.stop.is_set():
                raise RuntimeError("draining")
            if not self._scheduler_fresh():
                raise RuntimeError(f"scheduler last ticked {time.monotonic() - self._last_tick():.0f}s ago")
            stalled = self.engine.stalled_s() if self.engine is not None else 0.0
            if stalled > self.settings.daemon.claim_stall_s:
                raise RuntimeError(f"tasks are due and none was claimed for {stalled:.0f}s")

        ctx = WebContext(
            metrics=self.metrics,
            pings={"database": store.ping, "scheduler": scheduler_alive},
            liveness=lambda: {"loop_lag_s": round(self._loop_lag, 4)},
            status=self._status,
            # Open breakers are detail, not unreadiness: a partner's outage is not this
            # shard's fault, and taking the shard out of rotation would not fix it (the
            # runs that need the partner fail fast and retry after the cool-down).
            detail=self._readiness_detail,
            routes=[
                Route(WEBHOOK_PATH, self._webhook_receiver().handle, methods=["POST"]),
                *self._admin_routes(store),
            ],
        )
        web = self.settings.web
        await web_server.serve(create_app(ctx), web.host, web.port, task_status=task_status)

    def _webhook_receiver(self) -> WebhookReceiver:
        """Serves every configured integration's webhooks, owned by this shard or not: the
        NOTIFY after each delivery wakes the shard that owns it."""
        assert self.queue is not None
        web = self.settings.web
        return WebhookReceiver(
            self.settings.integrations,
            {name: info.webhooks for name, info in registry.partners().items()},
            self.queue,
            self._clock,  # None: the database's, as the engine's
            self.metrics,
            self._log,
            max_body_bytes=web.webhook_max_body_bytes,
            tolerance_s=web.webhook_tolerance_s,
            wake_channel=WAKE_CHANNEL,
            rotate_secret=self._rotate_secret,
        )

    async def _rotate_secret(self, integration_id: str, secret: str) -> None:
        """A partner's webhook announced a new client secret: switch to it (tried,
        committed, verified, rolled back). An integration another shard syncs is wired for
        this one call: the credentials row is shared, so every shard reads the new secret."""
        connector = self._connectors.get(integration_id)
        if connector is None:
            connector = self._wire_one(integration_id)
        await connector.rotate_secret(secret)

    def _admin_routes(self, store: Store) -> list[Any]:
        """/admin/* when a token is configured; none (every /admin path a 404) otherwise."""
        token = self.settings.web.admin_token
        if token is None:
            return []
        ctx = web_admin.AdminContext(token, store, self.settings, self._connectors, self._log, self._wake)
        return [web_admin.mount(ctx)]

    def _readiness_detail(self) -> dict[str, Any]:
        """Breakers not closed (open or half-open), by name, and how long due tasks have
        waited with none claimed (it fails readiness past ``claim_stall_s``); empty when
        there is nothing to report."""
        detail: dict[str, Any] = {}
        breakers = self.guards.readiness()
        if breakers:
            detail["open_breakers"] = breakers
        stalled = self.engine.stalled_s() if self.engine is not None else 0.0
        if stalled > 0 and self.engine is not None:
            detail["claim_stalled_s"] = round(stalled, 1)
            detail["claim_stall_s"] = self.settings.daemon.claim_stall_s
            detail["tasks_due"] = sum(d.due for d in self.engine.depth)
        return detail

    def _api_versions(self, owned: set[str]) -> dict[str, str]:
        """The partner API version each owned integration runs (pinned or rolled out)."""
        catalogue = registry.partners()
        return {
            i.id: registry.api_version(catalogue[i.partner], i, self.settings.partner(i.partner))
            for i in self.settings.integrations
            if i.id in owned and i.partner in catalogue
        }

    def _queue_status(self) -> dict[str, Any] | None:
        if self.engine is None:
            return None
        e = self.engine
        return board.queue_entry(e.depth, len(e.slots), e.stalled_s(), self.settings.daemon.claim_stall_s)

    async def _access_codes(self, owned: set[str]) -> dict[str, Any] | None:
        """Lock integrations' codes by state and their latest failures (never a code)."""
        follows = {i.id: i.locks.follows for i in self.settings.integrations if i.locks and i.id in owned}
        if not follows or self.store is None:
            return None
        counts = await access_store.counts(self.store, list(follows))
        failures = await access_store.failures(self.store, list(follows), limit=5)
        return board.access_codes_entry(follows, counts, failures)

    async def _status(self) -> dict[str, Any]:
        """/status: each sync with its verdict, each partner's recent calls (web/board.py)."""
        progress = self.runner.progress if self.runner else {}
        rows = await self.store.sync_status(self.owned) if self.store is not None else []
        now = await self.store.now() if self.store is not None else datetime.now(UTC)
        breakers = self.guards.breakers()
        owned = set(self.owned)
        partners = sorted({i.partner for i in self.settings.integrations if i.id in owned})
        recent = self.metrics.recent_calls
        return {
            "now": now.isoformat(),
            "syncs": [board.sync_entry(row, breakers, now) for row in rows],
            "partners": {
                name: board.partner_entry(
                    recent.summary(name),
                    recent.window_s,
                    self.guards.budget_per_s(name),
                    [b for b in breakers if b.partner == name],
                )
                for name in partners
            },
            "shard": {"index": self.settings.daemon.shard_index, "count": self.settings.daemon.shard_count},
            "integrations": len(self.owned),
            "api_versions": self._api_versions(owned),
            "draining": self.stop.is_set(),
            "queue": self._queue_status(),
            "access_codes": await self._access_codes(owned),
            "runs": {
                f"{i}/{r}": {
                    "pages": s.pages,
                    "records": s.fetched,
                    "inserted": s.inserted,
                    "updated": s.updated,
                }
                for (i, r), s in progress.items()
            },
        }
