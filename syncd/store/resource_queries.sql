-- The statements every canonical resource has, one named template per block, rendered
-- once per resource at import by syncd.store.resource_sql from its model's columns.
-- {{placeholders}} are filled with the resource's names and column lists:
--   {{table}} {{staging}} {{resource}}   its table, staging table, name (events.resource)
--   {{columns}}        every canonical field, in the model's order
--   {{staged}}         the same, as read from the staging table (money cast from text)
--   {{assignments}}    col = EXCLUDED.col for every field but external_id
--   {{changes}}        one CASE per compared field (every field but external_id and
--                      source_updated_at) naming it when it changed
--   {{old}} {{new}}    the compared fields of the stored row (t.) and the incoming one
--   {{set_changes}} {{returned_changes}}
--                      servers before 18: the changed fields' old and new values,
--                      {field: [old, new]} (json), built in the SET clause (the row's
--                      last_changes carries them to RETURNING); 18 and later: NULL
--   {{returned_old}} {{returned_new}}
--                      18 and later: the changed fields' old and new values as the
--                      resource's {{fields}} composite, from RETURNING's OLD and NEW (a
--                      field that did not change is NULL in both; changed_fields says
--                      which did); before 18: NULL
--   {{fields}}         the composite type of the resource's deleted_at and compared fields
--   {{moved_columns}}  every canonical field but external_id, for rows moved to a new id
--   {{staging_columns}} the staging table's column definitions
--   {{cascade}}        for a parent resource, one ``cascade`` CTE per child; else nothing
--                      (in upsert, insert_new and soft_delete); for a followed resource
--                      (``resources.Follow``), also its ``follow`` CTE
--   {{follow_key}}     for a followed resource, ", <key column>" (RETURNING carries it to
--                      the follow CTE); else nothing
-- Parameters are positional ($1 …), as in queries.sql.

-- name: create_staging
-- Per-connection staging table for COPY; ON COMMIT DELETE ROWS empties it per batch.
-- Money arrives as text (store.types.staging_row) and is cast where it is written.
CREATE TEMP TABLE IF NOT EXISTS {{staging}} (
    {{staging_columns}}, raw bytea, raw_type text
) ON COMMIT DELETE ROWS;

-- name: upsert
-- Last write wins by the partner's timestamp: a row is written only when the incoming
-- copy is newer, or as new with other bytes (partners with whole-second timestamps change
-- a record twice in one second; an overlap re-read has the same bytes). The UPDATE sees
-- the old row (t) and the new one (EXCLUDED), so it records which canonical fields changed
-- (last_changed_fields) and bumps version only on a real change (or a resurrection);
-- RETURNING feeds one event per real change, with each changed field's old and new value.
-- Rendered twice: on PostgreSQL 18 RETURNING reads them from OLD and NEW, only for rows
-- that really changed, into two typed composites (no value is converted to text: JSON
-- built here cost PostgreSQL about three times as much per changed row), and nothing more
-- is stored in the row; before 18 the SET clause writes them as JSON into last_changes,
-- the one place that sees both rows, for RETURNING to carry. xmax = 0 marks rows this
-- statement inserted. No read of the old rows beyond the conflict check.
WITH written AS (
    INSERT INTO {{table}} AS t (integration_id, {{columns}}, raw, raw_type)
    SELECT $1, {{staged}}, raw, raw_type
    FROM {{staging}}
    ON CONFLICT (integration_id, external_id) DO UPDATE SET
        {{assignments}},
        raw = EXCLUDED.raw, raw_type = EXCLUDED.raw_type, fetched_at = now(), deleted_at = NULL,
        last_changed_fields = array_remove(ARRAY[
            CASE WHEN t.deleted_at IS NOT NULL THEN 'deleted_at' END,
            {{changes}}
        ], NULL),
        last_changes = {{set_changes}},
        version = t.version + CASE
            WHEN t.deleted_at IS NOT NULL
              OR ({{old}})
                 IS DISTINCT FROM
                 ({{new}})
            THEN 1 ELSE 0 END
    WHERE t.source_updated_at < EXCLUDED.source_updated_at
       OR (t.source_updated_at = EXCLUDED.source_updated_at AND t.raw <> EXCLUDED.raw)
    RETURNING t.external_id, t.version, t.source_updated_at, t.last_changed_fields,
              {{returned_changes}} AS changes, {{returned_old}} AS old_values,
              {{returned_new}} AS new_values, (t.xmax = 0) AS created{{follow_key}}
), logged AS (
    -- A row that was soft-deleted and comes back is 'restored' (its changes name deleted_at).
    INSERT INTO events (integration_id, resource, external_id, kind, version, changed_fields,
                        source_updated_at, changes, old_{{table}}, new_{{table}})
    SELECT $1, '{{resource}}', external_id,
           CASE WHEN created THEN 'created'
                WHEN 'deleted_at' = ANY (last_changed_fields) THEN 'restored'
                ELSE 'updated' END,
           version, CASE WHEN created THEN NULL ELSE last_changed_fields END, source_updated_at,
           CASE WHEN created THEN NULL ELSE changes END,
           CASE WHEN created THEN NULL ELSE old_values END,
           CASE WHEN created THEN NULL ELSE new_values END
    FROM written WHERE created OR cardinality(last_changed_fields) > 0
)
{{cascade}}
SELECT count(*) FILTER (WHERE created) AS inserted,
       count(*) FILTER (WHERE NOT created AND cardinality(last_changed_fields) > 0) AS updated
FROM written;

-- name: insert_new
-- The first sync of an integration (it has no rows of this resource yet): every row is
-- new, so a plain INSERT, about a fifth cheaper per record than ON CONFLICT's speculative
-- insertion. A row that exists after all (the partner sent a record again later in the
-- run) fails it with unique_violation: the caller rolls back to its savepoint and upserts
-- the batch instead.
WITH written AS (
    INSERT INTO {{table}} AS t (integration_id, {{columns}}, raw, raw_type)
    SELECT $1, {{staged}}, raw, raw_type
    FROM {{staging}}
    RETURNING t.external_id, t.version, t.source_updated_at{{follow_key}}
), logged AS (
    INSERT INTO events (integration_id, resource, external_id, kind, version, source_updated_at)
    SELECT $1, '{{resource}}', external_id, 'created', version, source_updated_at FROM written
)
{{cascade}}
SELECT count(*) FROM written;

-- name: cascade
-- (A fragment of a parent's upsert, insert_new and soft_delete, one per child resource.)
-- A child task per parent row that is new, deleted, or whose {{child}} triggers changed,
-- if the integration syncs {{child}}: written by the statement that writes the parent, so
-- it commits with the rows that call for it, and a crash loses both or neither. A pending
-- task of the same key (the same parent) absorbs it. Low priority (resources.CHILD_PRIORITY).
-- A deleted parent's child task finds it gone and soft-deletes its children.
, cascade_{{child}} AS (
    INSERT INTO tasks AS k (integration_id, resource, kind, priority, dedupe_key, params)
    SELECT $1, '{{child}}', 'child', {{priority}}, 'child:' || $1 || ':{{child}}:' || w.external_id,
           jsonb_build_object('ids', jsonb_build_array(w.external_id))
    FROM {{source}} w
    WHERE ({{trigger}})
      AND EXISTS (SELECT 1 FROM schedules s
                  WHERE s.integration_id = $1 AND s.resource = '{{child}}' AND s.enabled)
    ON CONFLICT (dedupe_key) WHERE state = 'pending' DO UPDATE SET coalesced = k.coalesced + 1
)

-- name: follow
-- (A fragment of a followed resource's upsert, insert_new and soft_delete.)
-- A push task per written row that is new, deleted, or whose trigger fields changed, for
-- each integration following this one's {{resource}} (table followers) whose keys hold the
-- row's {{key}}, or for every follower when {{key}} itself changed (the stay moved to
-- another listing: the old listing's follower revokes). Written by the statement that writes
-- the row, so the change and its push commit together; a pending push of the same
-- (follower, row) absorbs it. The task names the row only: it reads the row as it is when
-- it runs (the desired state), so coalesced changes are pushed once.
, follow AS (
    INSERT INTO tasks AS k (integration_id, resource, kind, priority, dedupe_key, params)
    SELECT f.follower_id, '{{resource}}', 'push', {{priority}},
           'push:' || f.follower_id || ':' || $1 || ':' || w.external_id,
           jsonb_build_object('source', $1, 'ids', jsonb_build_array(w.external_id))
    FROM {{source}} w JOIN followers f ON f.source_id = $1 AND f.resource = '{{resource}}'
    WHERE ({{trigger}}) AND (w.{{key}} = ANY (f.keys) OR {{moved}})
    ON CONFLICT (dedupe_key) WHERE state = 'pending' DO UPDATE SET coalesced = k.coalesced + 1
)

-- name: follow_backfill
-- A follower ($2) of integration $1 registered anew, or whose keys changed ($3: the old and
-- new keys together): a push task for every row of those keys, so the follower acts on rows
-- that existed before it did, and undoes what it did where a key left its keys. A push
-- for a row it never acted on and has no reason to is a no-op.
INSERT INTO tasks AS k (integration_id, resource, kind, priority, dedupe_key, params)
SELECT $2, '{{resource}}', 'push', {{priority}},
       'push:' || $2 || ':' || $1 || ':' || r.external_id,
       jsonb_build_object('source', $1, 'ids', jsonb_build_array(r.external_id))
FROM {{table}} r
WHERE r.integration_id = $1 AND r.{{key}} = ANY ($3::text[])
ON CONFLICT (dedupe_key) WHERE state = 'pending' DO NOTHING;

-- name: sweep_children
-- A child resource's rows of the parents that a batch carries in full (``Batch.parents``)
-- which the batch does not hold ($3): the partner no longer has them. In the batch's
-- transaction, after its rows.
-- Its deletions are recorded as soft_delete records them.
WITH gone AS (
    UPDATE {{table}} SET deleted_at = now(), version = version + 1, fetched_at = now(),
        last_changed_fields = '{deleted_at}',
        last_changes = json_build_object('deleted_at', json_build_array(NULL::timestamptz, now()))
    WHERE integration_id = $1 AND {{parent_key}} = ANY($2::text[]) AND deleted_at IS NULL
      AND NOT (external_id = ANY($3::text[]))
    RETURNING external_id, version, source_updated_at, last_changes
), logged AS (
    INSERT INTO events (integration_id, resource, external_id, kind, version, changed_fields,
                        source_updated_at, changes)
    SELECT $1, '{{resource}}', external_id, 'deleted', version, '{deleted_at}', source_updated_at,
           last_changes
    FROM gone
)
SELECT count(*) FROM gone;

-- name: any_row
SELECT EXISTS (SELECT 1 FROM {{table}} WHERE integration_id = $1);

-- name: soft_delete
WITH gone AS (
    UPDATE {{table}} SET deleted_at = now(), version = version + 1, fetched_at = now(),
        last_changed_fields = '{deleted_at}',
        last_changes = json_build_object('deleted_at', json_build_array(NULL::timestamptz, now()))
    WHERE integration_id = $1 AND external_id = ANY($2::text[]) AND deleted_at IS NULL
    RETURNING external_id, version, source_updated_at, last_changes{{follow_key}}
), logged AS (
    INSERT INTO events (integration_id, resource, external_id, kind, version, changed_fields,
                        source_updated_at, changes)
    SELECT $1, '{{resource}}', external_id, 'deleted', version, '{deleted_at}', source_updated_at,
           last_changes
    FROM gone
)
{{cascade}}
SELECT count(*) FROM gone;

-- name: record_alias
-- The partner says record $3 was previously $2 (a merge). Records sent under $2 from now
-- on belong to $3 (follow_aliases); ids that already pointed at $2 now point at $3, so
-- every alias resolves in one step; $3 is a live id again if it was an alias itself.
-- Returns a row only when the alias is new: a merge signalled again (an overlap re-read
-- of $3's page) changes nothing. The three changes touch different rows ($2 <> $3).
WITH repointed AS (
    UPDATE entity_aliases SET new_id = $3, merged_at = now()
    WHERE integration_id = $1 AND resource = '{{resource}}' AND new_id = $2 AND old_id <> $3
), revived AS (
    DELETE FROM entity_aliases WHERE integration_id = $1 AND resource = '{{resource}}' AND old_id = $3
)
INSERT INTO entity_aliases (integration_id, resource, old_id, new_id)
VALUES ($1, '{{resource}}', $2, $3)
ON CONFLICT (integration_id, resource, old_id) DO UPDATE SET new_id = EXCLUDED.new_id, merged_at = now()
WHERE entity_aliases.new_id <> EXCLUDED.new_id
RETURNING old_id;

-- name: rename
-- A merge whose new id has no row yet: the entity keeps its row (and its history) under
-- its new id; version + 1 and a 'merged' event saying old -> new.
WITH renamed AS (
    UPDATE {{table}} SET external_id = $3, version = version + 1, fetched_at = now(),
        last_changed_fields = '{external_id}',
        last_changes = json_build_object('external_id', json_build_array($2::text, $3::text))
    WHERE integration_id = $1 AND external_id = $2
      AND NOT EXISTS (SELECT 1 FROM {{table}} WHERE integration_id = $1 AND external_id = $3)
    RETURNING external_id, version, source_updated_at, last_changed_fields, last_changes
), logged AS (
    INSERT INTO events (integration_id, resource, external_id, kind, version, changed_fields,
                        source_updated_at, changes)
    SELECT $1, '{{resource}}', external_id, 'merged', version, last_changed_fields,
           source_updated_at, last_changes
    FROM renamed
)
SELECT count(*) FROM renamed;

-- name: merge_into
-- A merge where both ids have rows: the old one is soft-deleted as merged into the new
-- one (version + 1), and each gets a 'merged' event saying old -> new; the new row's data
-- and version stay as they are (its own copy from the partner decides them).
WITH gone AS (
    UPDATE {{table}} o SET deleted_at = coalesce(o.deleted_at, now()), version = o.version + 1,
        fetched_at = now(),
        last_changed_fields = CASE WHEN o.deleted_at IS NULL
                                   THEN '{external_id,deleted_at}' ELSE '{external_id}' END::text[],
        last_changes = CASE WHEN o.deleted_at IS NULL
            THEN json_build_object('external_id', json_build_array($2::text, $3::text),
                                   'deleted_at', json_build_array(NULL::timestamptz, now()))
            ELSE json_build_object('external_id', json_build_array($2::text, $3::text)) END
    WHERE o.integration_id = $1 AND o.external_id = $2
      AND EXISTS (SELECT 1 FROM {{table}} n WHERE n.integration_id = $1 AND n.external_id = $3)
    RETURNING o.external_id, o.version, o.source_updated_at, o.last_changed_fields, o.last_changes
), logged AS (
    INSERT INTO events (integration_id, resource, external_id, kind, version, changed_fields,
                        source_updated_at, changes)
    SELECT $1, '{{resource}}', external_id, 'merged', version, last_changed_fields,
           source_updated_at, last_changes
    FROM gone
    UNION ALL
    SELECT $1, '{{resource}}', n.external_id, 'merged', n.version, '{external_id}',
           n.source_updated_at, json_build_object('external_id', json_build_array($2::text, $3::text))
    FROM {{table}} n
    WHERE n.integration_id = $1 AND n.external_id = $3 AND EXISTS (SELECT 1 FROM gone)
)
SELECT count(*) FROM gone;

-- name: follow_aliases
-- Staged copies of ids that merged into another (overlap re-reads, late pages, targeted
-- fetches) move to the id the entity has now, so they update it by last write wins rather
-- than resurrect a second entity; a copy whose new id is staged too is dropped (the
-- partner's copy under the current id is the record now). The uncorrelated EXISTS is
-- evaluated once: an integration without aliases (nearly all) scans nothing.
WITH moved AS (
    DELETE FROM {{staging}} s USING entity_aliases a
    WHERE EXISTS (SELECT 1 FROM entity_aliases WHERE integration_id = $1 AND resource = '{{resource}}')
      AND a.integration_id = $1 AND a.resource = '{{resource}}' AND a.old_id = s.external_id
    RETURNING a.new_id, s.*
)
INSERT INTO {{staging}} ({{columns}}, raw, raw_type)
SELECT DISTINCT ON (new_id) new_id, {{moved_columns}}, raw, raw_type
FROM moved
WHERE NOT EXISTS (SELECT 1 FROM {{staging}} s WHERE s.external_id = moved.new_id)
ORDER BY new_id, source_updated_at DESC;

-- name: unseen
-- Deletion candidates after an ID sweep: live rows the sweep did not see and that were not
-- (re)written since the sweep began.
SELECT r.external_id FROM {{table}} r
WHERE r.integration_id = $1 AND r.deleted_at IS NULL AND r.fetched_at < $2
  AND NOT EXISTS (SELECT 1 FROM seen_ids s WHERE s.external_id = r.external_id)
ORDER BY r.external_id
LIMIT $3;

-- name: count_live
-- The sweep's yardstick: how many live rows a share of deletions is measured against.
SELECT count(*) FROM {{table}} WHERE integration_id = $1 AND deleted_at IS NULL;

-- name: expected_table
-- The table a resource's model implies, bookkeeping columns included. Not run by syncd:
-- schema.sql's CREATE TABLE (what operators read, with its indexes) must agree with it,
-- column for column (tests/integration/store/test_resource_schema.py).
CREATE TABLE {{table}} (
    integration_id text COLLATE "C" NOT NULL,
    {{table_columns}},
    fetched_at timestamptz NOT NULL DEFAULT now(),
    version integer NOT NULL DEFAULT 1,
    last_changed_fields text[],
    last_changes json,
    deleted_at timestamptz,
    raw bytea NOT NULL,
    raw_type text NOT NULL,
    PRIMARY KEY (integration_id, external_id)
);

-- name: fields_type
-- The resource's {{fields}} composite (deleted_at, then the compared fields in the model's
-- order) and the events columns of that type, created on a database that lacks them; a
-- field added to the model since is appended. Looked up first: ALTER TABLE would take an
-- exclusive lock on events on every start. The upsert builds the composites by position,
-- so Store.migrate then checks the order (a field inserted mid-model would break it on
-- upgraded databases).
DO $$
DECLARE
    field record;
    relid oid;
BEGIN
    IF to_regtype('{{fields}}') IS NULL THEN
        CREATE TYPE {{fields}} AS (deleted_at timestamptz);
    END IF;
    relid := (SELECT typrelid FROM pg_type WHERE oid = '{{fields}}'::regtype);
    FOR field IN SELECT * FROM (VALUES {{field_definitions}}) AS f(name, definition) LOOP
        IF NOT EXISTS (
            SELECT 1 FROM pg_attribute WHERE attrelid = relid AND attname = field.name AND NOT attisdropped
        ) THEN
            EXECUTE format('ALTER TYPE {{fields}} ADD ATTRIBUTE %I %s', field.name, field.definition);
        END IF;
    END LOOP;
    IF NOT EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = 'events'::regclass AND attname = 'new_{{table}}' AND NOT attisdropped
    ) THEN
        ALTER TABLE events ADD COLUMN IF NOT EXISTS old_{{table}} {{fields}},
                           ADD COLUMN IF NOT EXISTS new_{{table}} {{fields}};
    END IF;
END $$;

-- name: history
-- Every event of one entity, oldest first, under its current id ($2) and every id it had
-- before a merge, with the typed old and new values as JSON. events has no per-record
-- index (it would cost every sync an index insert per change), so this reads the
-- integration's events: an operator's lookup, not a hot path.
SELECT e.external_id, e.kind, e.version, e.changed_fields, e.changes, e.source_updated_at,
       e.occurred_at, to_json(e.old_{{table}}) AS old_values, to_json(e.new_{{table}}) AS new_values
FROM events e
WHERE e.integration_id = $1 AND e.resource = '{{resource}}'
  AND e.external_id IN (
      SELECT $2::text
      UNION ALL
      SELECT old_id FROM entity_aliases
      WHERE integration_id = $1 AND resource = '{{resource}}' AND new_id = $2
  )
ORDER BY e.id;
