-- Followers and the access codes a lock integration pushed (syncd.store.access), one named
-- query per block as in queries.sql.

-- name: follower_keys
SELECT source_id, keys FROM followers WHERE follower_id = $1 AND resource = $2 FOR UPDATE;

-- name: upsert_follower
INSERT INTO followers (follower_id, source_id, resource, keys) VALUES ($1, $2, $3, $4)
ON CONFLICT (follower_id, resource) DO UPDATE SET source_id = EXCLUDED.source_id, keys = EXCLUDED.keys;

-- name: drop_follower
DELETE FROM followers WHERE follower_id = $1;

-- name: reservation
-- The desired state's inputs: the reservation as it is now (deleted rows too) and its
-- listing's time zone (NULL when the listing is not synced or says none).
SELECT r.external_id, r.property_external_id, r.status, r.check_in, r.check_out, r.check_in_date,
       r.check_out_date, r.deleted_at, r.version, p.timezone
FROM reservations r
LEFT JOIN properties p ON p.integration_id = r.integration_id AND p.external_id = r.property_external_id
WHERE r.integration_id = $1 AND r.external_id = $2;

-- name: code
SELECT *, extract(epoch FROM now() - key_since)::float8 AS pending_s FROM access_codes
WHERE integration_id = $1 AND source_id = $2 AND reservation_id = $3;

-- name: code_by_partner_id
SELECT *, extract(epoch FROM now() - key_since)::float8 AS pending_s FROM access_codes
WHERE integration_id = $1 AND partner_code_id = $2 AND state <> 'removed'
LIMIT 1;

-- name: save_code
-- The one write of an access code's row: what the push knows now. key_since moves only
-- when the desired state (its key) changes.
INSERT INTO access_codes AS a (integration_id, source_id, reservation_id, device_id, partner_code_id,
                               idempotency_key, state, starts_at, ends_at, last_error, settled_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
        CASE WHEN $7::text IN ('set', 'failed', 'removed') THEN now() END)
ON CONFLICT (integration_id, source_id, reservation_id) DO UPDATE SET
    device_id = EXCLUDED.device_id, partner_code_id = EXCLUDED.partner_code_id,
    idempotency_key = EXCLUDED.idempotency_key, state = EXCLUDED.state,
    starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, last_error = EXCLUDED.last_error,
    key_since = CASE WHEN a.idempotency_key = EXCLUDED.idempotency_key THEN a.key_since ELSE now() END,
    updated_at = now(),
    settled_at = CASE WHEN EXCLUDED.state IN ('set', 'failed', 'removed') THEN now() END;

-- name: count_by_state
SELECT integration_id, state, count(*) AS codes FROM access_codes
WHERE integration_id = ANY($1::text[]) GROUP BY integration_id, state ORDER BY integration_id, state;

-- name: recent_failures
SELECT integration_id, source_id, reservation_id, device_id, last_error, updated_at FROM access_codes
WHERE integration_id = ANY($1::text[]) AND state = 'failed' ORDER BY updated_at DESC LIMIT $2;

-- name: record_push_dead_letter
-- A code the lock refused: one open dead letter per reservation (seeing it again bumps it).
INSERT INTO dead_letters (integration_id, resource, external_id, error_class, reason, payload)
VALUES ($1, 'access_codes', $2, 'push', $3, NULL)
ON CONFLICT (integration_id, resource, external_id) WHERE resolved_at IS NULL DO UPDATE SET
    attempts = dead_letters.attempts + 1, reason = EXCLUDED.reason, last_seen_at = now();

-- name: resolve_push_dead_letter
UPDATE dead_letters SET resolved_at = now()
WHERE integration_id = $1 AND resource = 'access_codes' AND external_id = $2 AND resolved_at IS NULL;

-- name: replay_push_letters
-- An operator's replay of refused codes ($2: '<source>:<reservation>' of open dead letters,
-- all of them when NULL): a push task per letter that deletes the refused code and asks
-- for a new one. The letter stays open until the new code is set.
INSERT INTO tasks AS k (integration_id, resource, kind, priority, dedupe_key, params)
SELECT d.integration_id, 'reservations', 'push', $3,
       'push:' || d.integration_id || ':' || d.external_id,
       jsonb_build_object('source', split_part(d.external_id, ':', 1),
                          'ids', jsonb_build_array(substr(d.external_id, length(split_part(d.external_id, ':', 1)) + 2)),
                          'retry', true)
FROM dead_letters d
WHERE d.integration_id = $1 AND d.resource = 'access_codes' AND d.resolved_at IS NULL
  AND ($2::text[] IS NULL OR d.external_id = ANY ($2::text[]))
ORDER BY d.id
LIMIT $4
ON CONFLICT (dedupe_key) WHERE state = 'pending' DO UPDATE SET params = k.params || '{"retry": true}',
    coalesced = k.coalesced + 1
RETURNING k.id;
