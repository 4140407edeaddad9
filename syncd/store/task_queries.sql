-- The durable task queue's SQL (syncd.store.tasks), one named query per block as in
-- queries.sql. `$now` parameters are the engine's clock (the database's, or a test's
-- shifted one); leases always run on the database's own now(): they fence real time.

-- name: enqueue
-- A pending task of the same key absorbs the new one: the earlier start, the higher
-- priority (lower number), the later expiry (none beats any), the union of the ids
-- (parenthesized: -> and || bind alike, left to right).
INSERT INTO tasks AS t (integration_id, resource, kind, priority, dedupe_key, params,
                        not_before, expires_at, max_attempts, enqueued_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (dedupe_key) WHERE state = 'pending' DO UPDATE SET
    priority = LEAST(t.priority, EXCLUDED.priority),
    not_before = LEAST(t.not_before, EXCLUDED.not_before),
    expires_at = CASE WHEN t.expires_at IS NULL OR EXCLUDED.expires_at IS NULL THEN NULL
                      ELSE GREATEST(t.expires_at, EXCLUDED.expires_at) END,
    params = CASE WHEN t.params ? 'ids' AND EXCLUDED.params ? 'ids'
                  -- (parenthesised: `->` and `||` bind alike, left to right)
                  THEN jsonb_set(t.params, '{ids}', coalesce((
                      SELECT jsonb_agg(DISTINCT i ORDER BY i)
                      FROM jsonb_array_elements((t.params -> 'ids') || (EXCLUDED.params -> 'ids')) AS i),
                      '[]'))
                  ELSE t.params END,
    coalesced = t.coalesced + 1
RETURNING id, (xmax = 0) AS inserted;

-- name: pending_for_integration
-- The bound's count: child tasks (at most one pending per parent, written by the parent's
-- sync) are left out, so a first sync's photo backlog does not turn every webhook of the
-- integration into a full sync.
SELECT count(*) FROM tasks WHERE integration_id = $1 AND state = 'pending' AND kind <> 'child';

-- name: enqueue_due_schedules
-- One sync task per due schedule that has none pending or running, so a schedule missed
-- for hours is one run, not one per missed interval. A schedule late by more than its
-- interval (the workers were down) starts at a random point of min(interval, $4) seconds,
-- so a recovering shard does not fire every integration in the same second.
INSERT INTO tasks (integration_id, resource, kind, priority, dedupe_key, not_before, enqueued_at)
SELECT s.integration_id, s.resource, 'sync', $3, 'sync:' || s.integration_id || ':' || s.resource,
       $2::timestamptz + make_interval(secs => CASE
           WHEN $2::timestamptz - s.next_due_at > make_interval(secs => s.interval_s)
           THEN random() * LEAST(s.interval_s, $4) ELSE 0 END),
       $2
FROM schedules s JOIN integrations i ON i.id = s.integration_id
WHERE s.enabled AND i.enabled AND i.status = 'active' AND s.integration_id = ANY($1::text[])
  AND s.next_due_at <= $2
  -- Two probes, each matching a partial index's predicate (state IN (...) matches neither,
  -- and a scan of every task per due schedule took seconds at 5,000 of each).
  AND NOT EXISTS (
      SELECT 1 FROM tasks t
      WHERE t.dedupe_key = 'sync:' || s.integration_id || ':' || s.resource AND t.state = 'pending')
  AND NOT EXISTS (
      SELECT 1 FROM tasks t
      WHERE t.dedupe_key = 'sync:' || s.integration_id || ':' || s.resource AND t.state = 'running')
ON CONFLICT (dedupe_key) WHERE state = 'pending' DO NOTHING
RETURNING integration_id, resource;

-- name: expire
-- Work that waited past its expiry is not run on stale grounds: it is counted instead.
UPDATE tasks SET state = 'expired', finished_at = now()
WHERE state = 'pending' AND expires_at <= $2 AND integration_id = ANY($1::text[])
RETURNING kind, priority;

-- name: reclaim
-- Leases that ran out, or whose process is gone (nobody holds its liveness lock $2, $3):
-- the task goes back to pending (or is given up after its attempts, or is dropped when a
-- pending twin of its key already waits). RETURNING gives the tokens whose holders
-- ``terminate_holders`` then cuts off.
WITH lapsed AS (
    SELECT t.id FROM tasks t
    WHERE t.state = 'running' AND t.integration_id = ANY($1::text[])
      AND (t.lease_expires_at < now() OR NOT EXISTS (
          SELECT 1 FROM pg_locks l
          WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND l.classid = $2::int::oid AND l.objid = t.lease_process::oid))
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks t SET
    state = CASE
        WHEN EXISTS (SELECT 1 FROM tasks p WHERE p.state = 'pending' AND p.dedupe_key = t.dedupe_key)
            THEN 'lost'
        WHEN t.kind <> 'sync' AND t.attempts >= t.max_attempts THEN 'dead'
        ELSE 'pending' END,
    not_before = now(),
    finished_at = CASE
        WHEN EXISTS (SELECT 1 FROM tasks p WHERE p.state = 'pending' AND p.dedupe_key = t.dedupe_key)
          OR (t.kind <> 'sync' AND t.attempts >= t.max_attempts) THEN now() END,
    last_error = 'lease expired: ' || coalesce(t.lease_owner, '?') || ' stopped renewing it',
    lease_owner = NULL, lease_expires_at = NULL
FROM lapsed WHERE t.id = lapsed.id
RETURNING t.id, t.kind, t.state, t.lease_token;

-- name: terminate_holders
-- Cuts off every connection still holding a lapsed lease's locks (its session lock, or an
-- extra writer's shared lock in an open transaction): whatever they had not committed rolls
-- back, and a frozen process that wakes up finds its connections gone. Two int4 keys show
-- in pg_locks as classid, objid and objsubid 2.
SELECT count(pg_terminate_backend(l.pid))
FROM pg_locks l
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid IN ($2::int::oid, $3::int::oid)
  AND l.objid = ANY(SELECT t::oid FROM unnest($1::int[]) AS t)
  AND l.pid <> pg_backend_pid();

-- name: claim
-- The next tasks by priority, then start time: SKIP LOCKED so shards never wait on each
-- other, and never a task whose key is already running (one run of a thing at a time).
-- $4 is the lowest priority (largest number) this claim may take: the reserved slots take
-- only urgent work; $8 how far ahead of $2 a start may be (run-once: every pending task);
-- $9, when set, leaves out tasks started since then (run-once: a task it ran and put back
-- to retry later waits for the next process instead of burning its attempts at once).
-- Aging: a due task moves up one band (10) per $11 seconds it has waited, never past band
-- $10 (a webhook's: a user's sync-now stays first), so a steady stream of webhook fetches
-- cannot starve scheduled syncs and child tasks; $11 NULL: no aging. Within a band the
-- task that waited longest goes first.
-- Nothing past its expiry at $2 (a claim between two ticks' expire runs). The lease runs on
-- the database clock.
WITH next AS (
    SELECT t.id FROM tasks t
    WHERE t.state = 'pending' AND t.not_before <= $2::timestamptz + $8::interval
      AND t.integration_id = ANY($1::text[])
      AND t.priority <= $4 AND (t.expires_at IS NULL OR t.expires_at > $2)
      AND ($9::timestamptz IS NULL OR t.started_at IS NULL OR t.started_at < $9)
      AND NOT EXISTS (SELECT 1 FROM tasks r WHERE r.state = 'running' AND r.dedupe_key = t.dedupe_key)
    ORDER BY CASE WHEN $11::double precision IS NULL OR t.priority <= $10::int THEN t.priority
                  ELSE GREATEST($10::int, t.priority - 10 * floor(
                      greatest(0, extract(epoch FROM $2::timestamptz - t.not_before)) / $11)::int) END,
             t.not_before, t.id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks t SET state = 'running', attempts = t.attempts + 1, lease_owner = $5, lease_process = $7,
    lease_token = nextval('task_lease_tokens'), lease_expires_at = now() + make_interval(secs => $6),
    started_at = now()
FROM next WHERE t.id = next.id
RETURNING t.id, t.integration_id, t.resource, t.kind, t.priority, t.dedupe_key, t.params,
          t.attempts, t.max_attempts, t.lease_token, t.enqueued_at, t.started_at;

-- name: liveness_token
SELECT nextval('task_lease_tokens')::int;

-- name: lock_liveness
SELECT pg_advisory_lock($1::int, $2::int);

-- name: claim_siblings
-- More pending work of the same kind for the same integration x resource as running task
-- $6, taken under its lease (the same token, owner, process and expiry): a burst of
-- webhooks becomes one session and one transaction per batch instead of one each. The
-- claim's own rules hold (due by $4 and not expired, never a key already running).
WITH next AS (
    SELECT t.id FROM tasks t
    WHERE t.state = 'pending' AND t.integration_id = $1 AND t.resource = $2 AND t.kind = $3
      AND t.not_before <= $4 AND (t.expires_at IS NULL OR t.expires_at > $4)
      AND NOT EXISTS (SELECT 1 FROM tasks r WHERE r.state = 'running' AND r.dedupe_key = t.dedupe_key)
    ORDER BY t.priority, t.not_before, t.id
    LIMIT $5
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks t SET state = 'running', attempts = t.attempts + 1, lease_owner = p.lease_owner,
    lease_process = p.lease_process, lease_token = p.lease_token,
    lease_expires_at = p.lease_expires_at, started_at = now()
FROM next, tasks p
WHERE t.id = next.id AND p.id = $6 AND p.lease_token = $7 AND p.state = 'running'
RETURNING t.id, t.integration_id, t.resource, t.kind, t.priority, t.dedupe_key, t.params,
          t.attempts, t.max_attempts, t.lease_token, t.enqueued_at, t.started_at;

-- name: renew
-- Every task held under the lease (a claim and the siblings taken with it).
UPDATE tasks SET lease_expires_at = now() + make_interval(secs => $2)
WHERE lease_token = $1 AND state = 'running'
RETURNING lease_expires_at;

-- name: finish
-- A task ends only under its lease: a worker whose lease was taken changes nothing. A
-- sync's schedule moves in the same statement ($5: seconds to its next run, NULL: stays),
-- from $7, the engine's clock (the one enqueue_due_schedules compares with; NULL: now()).
WITH ended AS (
    UPDATE tasks SET state = $3, finished_at = now(), last_error = $4, lease_expires_at = NULL
    WHERE id = $1 AND lease_token = $2 AND state = 'running'
    RETURNING integration_id, resource, kind
), scheduled AS (
    UPDATE schedules s SET last_finished_at = now(), last_outcome = $6,
        next_due_at = coalesce($7::timestamptz, now()) + make_interval(secs => $5),
        consecutive_failures = CASE WHEN $6 = 'ok' THEN 0 ELSE s.consecutive_failures + 1 END
    FROM ended
    WHERE ended.kind = 'sync' AND $5::double precision IS NOT NULL
      AND s.integration_id = ended.integration_id AND s.resource = ended.resource
    RETURNING 1
)
SELECT count(*) FROM ended;

-- name: finish_many
-- Tasks of one lease ending alike (a batch of siblings); never a sync (no schedule moves).
UPDATE tasks SET state = $3, finished_at = now(), last_error = $4, lease_expires_at = NULL
WHERE id = ANY($1::bigint[]) AND lease_token = $2 AND state = 'running' AND kind <> 'sync'
RETURNING id;

-- name: retry
-- A failed or busy task waits and goes again, under its lease; dropped as 'lost' when a
-- pending twin of its key already waits (it carries the same work).
UPDATE tasks t SET
    state = CASE WHEN EXISTS (SELECT 1 FROM tasks p WHERE p.state = 'pending' AND p.dedupe_key = t.dedupe_key)
                 THEN 'lost' ELSE 'pending' END,
    finished_at = CASE WHEN EXISTS (SELECT 1 FROM tasks p WHERE p.state = 'pending' AND p.dedupe_key = t.dedupe_key)
                       THEN now() END,
    not_before = now() + make_interval(secs => $3), last_error = $4,
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_token = $2 AND state = 'running'
RETURNING state;

-- name: release
-- Every task still running under a lease back to pending after $2 seconds (a crash or a
-- shutdown of the worker holding it), as retry does for one.
UPDATE tasks t SET
    state = CASE WHEN EXISTS (SELECT 1 FROM tasks p WHERE p.state = 'pending' AND p.dedupe_key = t.dedupe_key)
                 THEN 'lost' ELSE 'pending' END,
    finished_at = CASE WHEN EXISTS (SELECT 1 FROM tasks p WHERE p.state = 'pending' AND p.dedupe_key = t.dedupe_key)
                       THEN now() END,
    not_before = now() + make_interval(secs => $2), last_error = $3,
    lease_owner = NULL, lease_expires_at = NULL
WHERE lease_token = $1 AND state = 'running'
RETURNING state;

-- name: queue_depth
-- Pending tasks per priority that could be claimed now (due, and their key not running),
-- and the oldest one's wait on the engine's clock; $3 as in claim.
SELECT t.priority, count(*) AS due,
       extract(epoch FROM $2::timestamptz - min(t.not_before))::double precision AS oldest_s
FROM tasks t
WHERE t.state = 'pending' AND t.not_before <= $2 AND t.integration_id = ANY($1::text[])
  AND ($3::timestamptz IS NULL OR t.started_at IS NULL OR t.started_at < $3)
  AND NOT EXISTS (SELECT 1 FROM tasks r WHERE r.state = 'running' AND r.dedupe_key = t.dedupe_key)
GROUP BY t.priority;

-- name: purge_finished
DELETE FROM tasks WHERE finished_at < now() - make_interval(secs => $1);

-- name: record_delivery
-- A verified webhook; nothing when this integration already has the delivery (a redelivery).
INSERT INTO webhook_deliveries (integration_id, partner, delivery_id, event, body, media_type, targets)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (integration_id, delivery_id) DO NOTHING
RETURNING id;

-- name: wake
SELECT pg_notify($1, $2);

-- name: transaction_now
SELECT now();

-- name: purge_deliveries
DELETE FROM webhook_deliveries WHERE received_at < now() - make_interval(secs => $1);

-- name: list_tasks
-- For `syncd tasks` and /admin/tasks: newest first; $2 NULL means every state.
SELECT id, integration_id, resource, kind, priority, dedupe_key, params, state, not_before,
       expires_at, enqueued_at, coalesced, attempts, lease_owner, lease_expires_at,
       started_at, finished_at, last_error
FROM tasks
WHERE integration_id = ANY($1::text[]) AND ($2::text IS NULL OR state = $2)
ORDER BY id DESC
LIMIT $3;
