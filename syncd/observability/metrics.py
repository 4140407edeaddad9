"""Every syncd metric, created once per registry, with low-cardinality labels.

A ``Metrics`` object is injected (not a module global) so that several daemons can run
in one test process, each with its own registry (which also exports the standard
``process_*`` metrics). Names follow ``syncd_*_total`` and ``*_seconds``; labels never
carry record ids, URLs with ids, or secrets.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from syncd.observability.callstats import CallStats

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SYNC_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 3600, 14400)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # The last minutes of partner calls, for /status (not exported to Prometheus).
        self.recent_calls = CallStats()
        r = self.registry
        # process_* (memory, CPU, open files), as the default registry has them: the memory
        # alert and panel read process_resident_memory_bytes.
        ProcessCollector(registry=r)
        self.api_calls = Counter(
            "syncd_api_calls_total",
            "Partner API calls, every attempt.",
            ["partner", "endpoint", "status"],
            registry=r,
        )
        self.api_latency = Histogram(
            "syncd_api_request_duration_seconds",
            "Partner API call latency (one attempt).",
            ["partner", "endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.api_retries = Counter(
            "syncd_api_retries_total",
            "Partner API attempts that were retried, by error class.",
            ["partner", "error_class"],
            registry=r,
        )
        self.limiter_wait = Histogram(
            "syncd_limiter_wait_seconds",
            "Time spent waiting for rate-limit budget.",
            ["partner"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.effective_rate = Gauge(
            "syncd_ratelimit_effective_rate",
            "Requests per second a rate-limit tier lets through now (after the safety factor, "
            "the partner's headers and 429 back-off); scope is the integration, or * for the "
            "partner-wide budget.",
            ["partner", "scope", "tier"],
            registry=r,
        )
        self.rate_limited = Counter(
            "syncd_rate_limited_total",
            "429 responses received from partners.",
            ["partner"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "syncd_circuit_breaker_state",
            "1 for the breaker's current state (closed, open, half_open), else 0; scope is "
            "the integration, or * for the partner-wide breaker. Open->half_open is applied "
            "when the breaker is next consulted.",
            ["partner", "scope", "state"],
            registry=r,
        )
        self.breaker_transitions = Counter(
            "syncd_circuit_breaker_transitions_total",
            "Circuit-breaker state changes, by the state entered.",
            ["partner", "state"],
            registry=r,
        )
        self.breaker_rejections = Counter(
            "syncd_circuit_breaker_rejections_total",
            "Requests failed fast (not sent) because a circuit breaker was open.",
            ["partner"],
            registry=r,
        )
        self.token_requests = Counter(
            "syncd_token_requests_total",
            "Access-token requests sent to partners, by outcome: ok, or the failure's error "
            "class (auth, client, transient, rate_limited).",
            ["partner", "outcome"],
            registry=r,
        )
        self.integration_auth_failed = Gauge(
            "syncd_integration_auth_failed",
            "1 while the integration is parked after an authentication failure (no runs until "
            "its credentials are fixed and syncd restarts, or syncd authorize gives a new grant), else 0.",
            ["integration"],
            registry=r,
        )
        self.records = Counter(
            "syncd_records_upserted_total",
            "Records written, by outcome.",
            ["partner", "resource", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "syncd_dead_letters_total",
            "Records sent to the dead-letter table.",
            ["partner", "resource", "error_class"],
            registry=r,
        )
        self.dead_letters_open = Gauge(
            "syncd_dead_letters_open",
            "Unresolved dead letters per integration x resource, counted at start and after "
            "each run (a replay shows at the next run).",
            ["integration", "resource"],
            registry=r,
        )
        self.schema_drift = Counter(
            "syncd_schema_drift_total",
            "Partner records whose payload drifted from what the adapter relies on: a field "
            "missing, of another type, or an enum value the adapter does not know.",
            ["partner", "resource", "field", "kind"],
            registry=r,
        )
        self.pages = Counter(
            "syncd_pages_total",
            "Pages fetched from partners.",
            ["partner", "resource"],
            registry=r,
        )
        self.sync_duration = Histogram(
            "syncd_sync_duration_seconds",
            "Duration of sync runs.",
            ["partner", "resource", "outcome"],
            buckets=_SYNC_BUCKETS,
            registry=r,
        )
        self.sync_runs = Counter(
            "syncd_sync_runs_total",
            "Sync runs by outcome.",
            ["partner", "resource", "outcome"],
            registry=r,
        )
        self.last_success = Gauge(
            "syncd_last_successful_sync_timestamp_seconds",
            "Unix time of the last successful sync per integration x resource.",
            ["integration", "resource"],
            registry=r,
        )
        self.sync_interval = Gauge(
            "syncd_sync_interval_seconds",
            "Configured interval between runs of each enabled integration x resource; "
            "staleness is judged against it.",
            ["integration", "resource"],
            registry=r,
        )
        self.scheduler_last_tick = Gauge(
            "syncd_scheduler_last_tick_timestamp_seconds",
            "Unix time (database clock) the scheduler last read the schedules; it stops "
            "advancing while the database is unreachable or the scheduler is stuck.",
            registry=r,
        )
        self.schedules_overdue = Gauge(
            "syncd_schedules_overdue",
            "Tasks due (scheduled syncs and all other kinds) whose key was not running at the "
            "scheduler's last tick, those it claimed at that tick included.",
            registry=r,
        )
        self.schedule_overdue_seconds = Gauge(
            "syncd_schedule_overdue_seconds",
            "How long the most overdue of those tasks has been due; 0 when none is.",
            registry=r,
        )
        self.syncs_in_flight = Gauge(
            "syncd_syncs_in_flight",
            "Sync runs currently executing.",
            registry=r,
        )
        self.loop_lag = Gauge(
            "syncd_event_loop_lag_seconds",
            "Most recent event-loop scheduling lag.",
            registry=r,
        )
        self.integration_up = Gauge(
            "syncd_integration_healthy",
            "1 if the integration's last run succeeded, else 0.",
            ["integration"],
            registry=r,
        )
        self.integration_api_version = Gauge(
            "syncd_integration_api_version",
            "1 for the partner API version each integration runs (pinned or rolled out): "
            "count by version to watch a rollout.",
            ["integration", "partner", "version"],
            registry=r,
        )

        self.tasks_enqueued = Counter(
            "syncd_tasks_enqueued_total",
            "Tasks offered to the queue by kind and result: inserted, coalesced (into a "
            "pending task of the same key) or folded (over the integration's bound: one sync "
            "instead).",
            ["kind", "result"],
            registry=r,
        )
        self.tasks_started = Counter(
            "syncd_tasks_started_total",
            "Tasks claimed and started, by kind and priority.",
            ["kind", "priority"],
            registry=r,
        )
        self.tasks_ended = Counter(
            "syncd_tasks_ended_total",
            "Tasks that ended, by kind and outcome: done, failed, retried, dead (out of "
            "attempts), expired (waited past expires_at, not run), interrupted (put back by a "
            "drain), lease_lost.",
            ["kind", "outcome"],
            registry=r,
        )
        self.task_start_delay = Histogram(
            "syncd_task_start_delay_seconds",
            "From enqueue (or coalescing) to start, by priority (database clock).",
            ["priority"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=r,
        )
        self.tasks_due = Gauge(
            "syncd_tasks_due",
            "Pending tasks that could start now, by priority, at the scheduler's last tick.",
            ["priority"],
            registry=r,
        )
        self.task_oldest_due = Gauge(
            "syncd_task_oldest_due_seconds",
            "How long the oldest of those tasks has been due, by priority.",
            ["priority"],
            registry=r,
        )
        self.task_claim_stalled = Gauge(
            "syncd_task_claim_stalled_seconds",
            "How long tasks have been due with none claimed by this shard; 0 when it claims "
            "or nothing is due. /readyz fails past daemon.claim_stall_s.",
            registry=r,
        )
        self.leases_reclaimed = Counter(
            "syncd_task_leases_reclaimed_total",
            "Running tasks whose lease lapsed (their worker froze or died) and were taken back.",
            registry=r,
        )

        self.webhooks = Counter(
            "syncd_webhooks_total",
            "Webhook requests by partner and result: accepted, duplicate (a redelivery), "
            "ignored (an event type we do not act on), rejected_signature, rejected_replay "
            "(timestamp outside the tolerance), too_large, unknown (no such route: 404), "
            "bad_request, unavailable (the database failed: the partner retries).",
            ["partner", "result"],
            registry=r,
        )

        self.pushes = Counter(
            "syncd_push_total",
            "Calls a push made to a partner (access codes: create, update, delete, get, list), "
            "by outcome: ok, retried (not done, tried again later), ambiguous (the answer was "
            "lost: reconciled before trying again), failed (the partner refused: a dead letter).",
            ["partner", "action", "outcome"],
            registry=r,
        )
        self.access_codes = Gauge(
            "syncd_access_codes",
            "Access codes pushed, by integration and state (setting, set, failed, removing, "
            "removed), as the database has them after each push.",
            ["integration", "state"],
            registry=r,
        )

    def scheduler_ticked(self, at: float, waiting: int, oldest_late_s: float) -> None:
        """[scheduler] Each tick: its time and the backlog it found (the queue's due tasks)."""
        self.scheduler_last_tick.set(at)
        self.schedules_overdue.set(waiting)
        self.schedule_overdue_seconds.set(oldest_late_s)
