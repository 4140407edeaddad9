-- All SQL of syncd, one named query per block ("-- name: x"), loaded once by
-- syncd.store.queries. Parameters are positional ($1 …); the Python caller names them.
-- Each canonical resource's own statements (staging, upsert, sweep) are rendered from its
-- model by syncd.store.resource_sql, from the templates in resource_queries.sql.

-- name: create_seen_ids
-- The deletion sweep's ids, per connection like the resources' staging tables.
CREATE TEMP TABLE IF NOT EXISTS seen_ids (external_id text PRIMARY KEY);

-- name: mark_seen
INSERT INTO seen_ids SELECT unnest($1::text[]) ON CONFLICT DO NOTHING;

-- name: clear_seen_ids
TRUNCATE seen_ids;

-- name: record_dead_letter
INSERT INTO dead_letters (integration_id, resource, external_id, error_class, reason, payload)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (integration_id, resource, external_id) WHERE resolved_at IS NULL DO UPDATE SET
    attempts = dead_letters.attempts + 1, reason = EXCLUDED.reason,
    error_class = EXCLUDED.error_class, payload = EXCLUDED.payload, last_seen_at = now();

-- name: open_dead_letters
SELECT external_id FROM dead_letters
WHERE integration_id = $1 AND resource = $2 AND resolved_at IS NULL LIMIT $3;

-- name: count_open_dead_letters
-- After each run, for the syncd_dead_letters_open gauge (the partial unique index answers it).
SELECT count(*) FROM dead_letters WHERE integration_id = $1 AND resource = $2 AND resolved_at IS NULL;

-- name: resolve_dead_letters
-- A record that later synced cleanly is no longer dead.
UPDATE dead_letters SET resolved_at = now()
WHERE integration_id = $1 AND resource = $2 AND external_id = ANY($3::text[]) AND resolved_at IS NULL;

-- name: get_checkpoint
SELECT checkpoint FROM sync_state WHERE integration_id = $1 AND resource = $2;

-- name: save_checkpoint
INSERT INTO sync_state (integration_id, resource, checkpoint, run_pages, run_records, updated_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (integration_id, resource) DO UPDATE SET
    checkpoint = EXCLUDED.checkpoint,
    run_pages = sync_state.run_pages + EXCLUDED.run_pages,
    run_records = sync_state.run_records + EXCLUDED.run_records,
    updated_at = now();

-- name: start_run
INSERT INTO sync_state (integration_id, resource, run_started_at, run_pages, run_records)
VALUES ($1, $2, now(), 0, 0)
ON CONFLICT (integration_id, resource) DO UPDATE SET
    run_started_at = now(), run_pages = 0, run_records = 0, updated_at = now();

-- name: finish_run_ok
UPDATE sync_state SET last_success_at = now(), last_error = NULL,
    last_sweep_at = CASE WHEN $3 THEN now() ELSE last_sweep_at END, updated_at = now()
WHERE integration_id = $1 AND resource = $2
RETURNING extract(epoch FROM last_success_at)::double precision;

-- name: finish_run_failed
UPDATE sync_state SET last_error = $3, updated_at = now()
WHERE integration_id = $1 AND resource = $2;

-- name: get_sync_state
SELECT checkpoint, last_success_at, last_sweep_at, last_error
FROM sync_state WHERE integration_id = $1 AND resource = $2;

-- name: upsert_integration
-- A (re)start with this configuration also clears auth_failed: the operator restarts
-- after fixing credentials, and the token request cap keeps a bad secret from hammering.
INSERT INTO integrations (id, partner, enabled) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET partner = EXCLUDED.partner, enabled = EXCLUDED.enabled,
    status = 'active', status_reason = NULL, updated_at = now()
WHERE integrations.partner IS DISTINCT FROM EXCLUDED.partner
   OR integrations.enabled IS DISTINCT FROM EXCLUDED.enabled
   OR integrations.status <> 'active';

-- name: upsert_schedule
-- Config changes the interval; the cadence (next_due_at) survives restarts.
INSERT INTO schedules (integration_id, resource, interval_s, enabled) VALUES ($1, $2, $3, $4)
ON CONFLICT (integration_id, resource) DO UPDATE SET
    interval_s = EXCLUDED.interval_s, enabled = EXCLUDED.enabled;

-- name: list_schedules
SELECT s.integration_id, s.resource, s.interval_s, s.next_due_at, s.consecutive_failures
FROM schedules s JOIN integrations i ON i.id = s.integration_id
WHERE s.enabled AND i.enabled AND i.status = 'active' AND s.integration_id = ANY($1::text[]);

-- name: db_now
SELECT now();

-- name: finish_schedule
UPDATE schedules SET last_finished_at = now(), last_outcome = $3,
    next_due_at = now() + make_interval(secs => $4),
    consecutive_failures = CASE WHEN $3 = 'ok' THEN 0 ELSE consecutive_failures + 1 END
WHERE integration_id = $1 AND resource = $2;

-- name: start_schedule
UPDATE schedules SET last_started_at = now() WHERE integration_id = $1 AND resource = $2;

-- name: ping
SELECT 1;

-- name: connection_headroom
-- Connections other clients may still open: the server's limit less the slots reserved for
-- superusers (and, from PostgreSQL 16, for pg_use_reserved_connections) less those in use.
SELECT current_setting('max_connections')::int
     - current_setting('superuser_reserved_connections')::int
     - coalesce(current_setting('reserved_connections', true)::int, 0)
     - (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend');

-- name: lock
SELECT pg_advisory_lock($1);

-- name: try_lock
SELECT pg_try_advisory_lock($1);

-- name: unlock
SELECT pg_advisory_unlock($1);

-- name: lock_lease
-- A task lease's session lock (two int4 keys: namespace, token); never contended.
SELECT pg_advisory_lock($1::int, $2::int);

-- name: unlock_lease
SELECT pg_advisory_unlock($1::int, $2::int);

-- name: lease_is_held
SELECT id FROM tasks WHERE id = $1 AND lease_token = $2 AND state = 'running' FOR UPDATE;

-- name: hold_integration
-- The lock a foreign key check would take, once per batch (schema.sql: properties and
-- reservations have no key to integrations): NULL when the integration is gone; else a
-- DELETE of it waits for this transaction, and its trigger then deletes what we wrote.
SELECT id FROM integrations WHERE id = $1 FOR KEY SHARE;

-- name: share_fence
-- Held by each transaction of a run's extra writer (``SyncSession.extra_writer``) until it
-- ends; ``wait_for_fenced_writers`` takes it exclusively. Two int4 keys lock a different
-- space (objsubid 2) from the run's bigint lock, so the pair can reuse that lock's bits.
SELECT pg_advisory_xact_lock_shared($1::int, $2::int);

-- name: wait_for_fenced_writers
-- In a transaction of its own (after set_lock_timeout): a run's new owner waits here until
-- every transaction of the previous owner's extra writers has ended, committed before the
-- new owner reads the checkpoint or rolled back because they see the run's lock gone.
SELECT pg_advisory_xact_lock($1::int, $2::int);

-- name: set_lock_timeout
-- For the rest of the transaction; $1 in milliseconds.
SELECT set_config('lock_timeout', $1::int::text, true);

-- name: lock_held_by
-- Is the advisory lock of key $2 (bigint) still held by server process $1? A bigint key
-- shows in pg_locks as classid (high 32 bits) and objid (low 32 bits), objsubid 1.
SELECT EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND pid = $1 AND objsubid = 1
      AND classid = (($2::bigint >> 32) & 4294967295)::oid
      AND objid = ($2::bigint & 4294967295)::oid
);

-- name: lock_credentials
-- Single-flight token requests across processes: whoever holds this row lock asks.
SELECT access_token, token_type, token_expires_at, refresh_token, rotation_version,
       client_secret, previous_client_secret, secret_version, rotated_over_sha256, token_issued_at,
       grant_refused_at
FROM credentials WHERE integration_id = $1 FOR UPDATE;

-- name: ensure_credentials_row
INSERT INTO credentials (integration_id) VALUES ($1) ON CONFLICT DO NOTHING;

-- name: load_token
SELECT access_token, token_type, token_expires_at, refresh_token, rotation_version,
       client_secret, previous_client_secret, secret_version, rotated_over_sha256, token_issued_at,
       grant_refused_at
FROM credentials WHERE integration_id = $1;

-- name: save_token
-- A rotated refresh token ($5) is saved in the same statement as the access token it came
-- with, and committed before that access token is used.
UPDATE credentials SET access_token = $2, access_token_sha256 = $6, token_type = $3,
    token_expires_at = $4, refresh_token = COALESCE($5, refresh_token), token_issued_at = $7,
    grant_refused_at = NULL, rotation_version = rotation_version + 1, updated_at = now()
WHERE integration_id = $1;

-- name: mark_grant_refused
-- The partner refused the stored refresh token: nobody sends it again (the access token
-- it earned goes too) until a new grant is saved.
UPDATE credentials SET grant_refused_at = now(), access_token = NULL, access_token_sha256 = NULL,
    token_expires_at = NULL, updated_at = now()
WHERE integration_id = $1;

-- name: token_request_recorded
-- Was a token request with this outcome ever recorded (an authorization code is sent once)?
SELECT EXISTS (SELECT 1 FROM token_requests WHERE integration_id = $1 AND outcome = $2);

-- name: clear_token
UPDATE credentials SET access_token = NULL, access_token_sha256 = NULL, token_expires_at = NULL,
    updated_at = now()
WHERE integration_id = $1 AND access_token_sha256 = $2;

-- name: save_client_secret
-- Rotation: the new secret becomes current and the old one is kept for a roll-back.
UPDATE credentials SET previous_client_secret = client_secret, client_secret = $2,
    rotated_over_sha256 = $3,
    secret_version = secret_version + 1, secret_rotated_at = now(), updated_at = now()
WHERE integration_id = $1;

-- name: restore_client_secret
UPDATE credentials SET client_secret = previous_client_secret, previous_client_secret = NULL,
    secret_version = secret_version + 1, secret_rotated_at = now(),
    access_token = NULL, access_token_sha256 = NULL, token_expires_at = NULL, updated_at = now()
WHERE integration_id = $1 AND secret_version = $2;

-- name: list_credential_secrets
SELECT integration_id, access_token, refresh_token, client_secret, previous_client_secret
FROM credentials FOR UPDATE;

-- name: rewrite_credential_secrets
UPDATE credentials SET access_token = $2, refresh_token = $3, client_secret = $4,
    previous_client_secret = $5, updated_at = now()
WHERE integration_id = $1;

-- name: record_token_request
INSERT INTO token_requests (integration_id, outcome) VALUES ($1, $2);

-- name: token_requests_since
-- Requests in the trailing window, and when the oldest of them leaves it.
SELECT count(*), min(requested_at) + make_interval(secs => $2) - now()
FROM token_requests
WHERE integration_id = $1 AND requested_at > now() - make_interval(secs => $2)
  AND outcome = 'ok';

-- name: set_integration_status
UPDATE integrations SET status = $2, status_reason = $3, updated_at = now() WHERE id = $1;

-- name: progress
-- Per integration: live properties, properties changed since first seen, soft-deleted,
-- reservations, dead letters, last successful sync. For `syncd demo` and /status.
SELECT i.id,
       (SELECT count(*) FROM properties p WHERE p.integration_id = i.id AND p.deleted_at IS NULL) AS properties,
       (SELECT count(*) FROM properties p WHERE p.integration_id = i.id AND p.version > 1) AS changed,
       (SELECT count(*) FROM properties p WHERE p.integration_id = i.id AND p.deleted_at IS NOT NULL) AS deleted,
       (SELECT count(*) FROM reservations r WHERE r.integration_id = i.id) AS reservations,
       (SELECT count(*) FROM dead_letters d WHERE d.integration_id = i.id AND d.resolved_at IS NULL) AS dead_letters,
       (SELECT max(s.last_success_at) FROM sync_state s WHERE s.integration_id = i.id) AS last_success_at
FROM integrations i
WHERE i.id = ANY($1::text[])
ORDER BY i.id;

-- name: sync_status
-- One row per integration x resource: what `syncd status` and /status show operators.
SELECT i.id AS integration_id, i.partner, i.enabled, i.status, i.status_reason,
       s.resource, s.enabled AS resource_enabled, s.interval_s, s.next_due_at, s.last_started_at,
       s.last_finished_at, s.last_outcome, s.consecutive_failures,
       st.last_success_at, st.last_sweep_at, st.last_error, st.checkpoint,
       (SELECT count(*) FROM dead_letters d
        WHERE d.integration_id = i.id AND d.resource = s.resource AND d.resolved_at IS NULL) AS dead_letters
FROM integrations i
JOIN schedules s ON s.integration_id = i.id
LEFT JOIN sync_state st ON st.integration_id = s.integration_id AND st.resource = s.resource
WHERE i.id = ANY($1::text[])
ORDER BY i.id, s.resource;

-- name: integration_ids
-- Every integration some daemon registered: operator commands work from a config that
-- names only the database.
SELECT id FROM integrations ORDER BY id;

-- name: list_dead_letters
-- Open dead letters, newest first; $2 NULL means every resource.
SELECT integration_id, resource, external_id, error_class, reason, attempts, first_seen_at,
       last_seen_at, payload
FROM dead_letters
WHERE resolved_at IS NULL AND integration_id = ANY($1::text[]) AND ($2::text IS NULL OR resource = $2)
ORDER BY last_seen_at DESC, id DESC
LIMIT $3;

-- name: sync_now
-- `syncd sync-now`: a sync task per enabled schedule at priority $3, coalesced into a pending
-- one (which it lifts to that priority, due now); the NOTIFY (delivered at commit) wakes the
-- running daemons. task_queries.sql builds the same dedupe key.
WITH due AS (
    INSERT INTO tasks AS t (integration_id, resource, kind, priority, dedupe_key)
    SELECT integration_id, resource, 'sync', $3, 'sync:' || integration_id || ':' || resource
    FROM schedules
    WHERE integration_id = $1 AND ($2::text IS NULL OR resource = $2) AND enabled
    ON CONFLICT (dedupe_key) WHERE state = 'pending' DO UPDATE SET
        priority = LEAST(t.priority, EXCLUDED.priority), not_before = LEAST(t.not_before, now()),
        coalesced = t.coalesced + 1
    RETURNING resource
)
SELECT array_agg(resource ORDER BY resource) AS resources, pg_notify('syncd_wake', $1) AS notified
FROM due;

-- name: current_id
-- The id an entity has now, when ``$3`` is one it had before a merge (aliases are flat).
SELECT coalesce(
    (SELECT new_id FROM entity_aliases WHERE integration_id = $1 AND resource = $2 AND old_id = $3), $3);

-- name: composite_fields
-- A composite type's attributes in order (Store.migrate checks the history types').
SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}')
FROM pg_attribute a JOIN pg_type t ON a.attrelid = t.typrelid
WHERE t.oid = to_regtype($1) AND a.attnum > 0 AND NOT a.attisdropped;
