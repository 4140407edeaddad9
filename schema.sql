-- syncd schema. Applied idempotently at start and by `syncd migrate`, under an advisory
-- lock so that several shards starting together do not race on DDL.
-- Every synced table (one per canonical resource: syncd.store.resources) is keyed by
-- (integration_id, external_id) and carries the partner's own timestamp
-- (source_updated_at): last write wins by that timestamp, never by arrival. Its columns
-- are its canonical model's fields plus the bookkeeping below; a test holds each table to
-- its model (tests/integration/store/test_resource_schema.py).
-- `raw` is `bytea`: the partner's exact bytes (key order, number formatting, duplicate
-- keys; XML as well as JSON), stored without parsing or validation as an audit record;
-- `raw_type` is their media type ('application/json', 'application/xml', ...). Query it
-- by decoding it:
--     SELECT convert_from(raw, 'UTF8')::jsonb ->> 'title' FROM properties
--     WHERE raw_type = 'application/json';
-- (XML: convert_from(raw, 'UTF8')::xml, on a server built with libxml, for xpath()).
-- (convert_from refuses bytes that are not UTF-8, which a partner may have sent: the
-- canonical columns never hold such bytes.) Cast in an expression index if one is needed.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS integrations (
    id          text PRIMARY KEY,
    partner     text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    -- 'active' | 'auth_failed' | 'disabled': auth_failed is set after repeated auth errors
    status      text NOT NULL DEFAULT 'active',
    status_reason text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per integration: the partner token survives restarts (Guesty allows 5 tokens
-- per key per 24 h), and its row lock makes token requests single-flight across processes.
-- Every secret column holds Fernet ciphertext (syncd.crypto); *_sha256 lets a process
-- name "the token that was refused" without decrypting or storing it in clear.
CREATE TABLE IF NOT EXISTS credentials (
    integration_id          text PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
    access_token            text,
    access_token_sha256     text,
    token_type              text,
    token_expires_at        timestamptz,
    refresh_token           text,
    rotation_version        integer NOT NULL DEFAULT 0,
    client_secret           text,
    previous_client_secret  text,
    secret_version          integer NOT NULL DEFAULT 0,
    secret_rotated_at       timestamptz,
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- A secret rotated with `syncd rotate-secret` overrides the configured one, until the
-- configuration changes: rotated_over_sha256 fingerprints the configured secret it replaced.
ALTER TABLE credentials ADD COLUMN IF NOT EXISTS rotated_over_sha256 text;
-- When the token was issued: some partners refuse a token for a moment after issue, and
-- every process holding it waits until then.
ALTER TABLE credentials ADD COLUMN IF NOT EXISTS token_issued_at timestamptz;
-- When the partner refused the stored refresh token (revoked, or already used): no process
-- sends it again until an operator authorizes anew (a new grant clears it).
ALTER TABLE credentials ADD COLUMN IF NOT EXISTS grant_refused_at timestamptz;

-- Audit of every token request we made (partners cap them; operators ask "why").
CREATE TABLE IF NOT EXISTS token_requests (
    id              bigserial PRIMARY KEY,
    integration_id  text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    outcome         text NOT NULL
);
CREATE INDEX IF NOT EXISTS token_requests_by_integration ON token_requests (integration_id, requested_at);

-- The resources' tables (those a sync fills by the million) have no foreign key
-- to integrations: PostgreSQL checks one per inserted row, and that check is a third of a
-- first sync's insert statement.
-- What it guaranteed is kept at a batch's cost instead: every batch transaction takes the
-- key-share lock on its integration's row that the check took (BatchWriter), so a batch for
-- a missing integration fails and a concurrent DELETE waits for it; deleting an integration
-- deletes these rows (trigger integrations_delete_rows, below).
-- Their ids compare byte by byte (COLLATE "C"): ids are opaque, a locale's collation makes
-- each key comparison in their indexes a strcoll() call (~2.5 % of the backend's CPU in a
-- first sync), and it ties the indexes' order to the C library's version (an OS upgrade
-- that changes collation rules silently corrupts such indexes).
CREATE TABLE IF NOT EXISTS properties (
    integration_id     text COLLATE "C" NOT NULL,
    external_id        text COLLATE "C" NOT NULL,
    title              text NOT NULL,
    nickname           text,
    property_type      text,
    accommodates       integer,
    bedrooms           real,
    bathrooms          real,
    timezone           text,
    street             text,
    city               text,
    state              text,
    postal_code        text,
    country            text,
    latitude           double precision,
    longitude          double precision,
    active             boolean NOT NULL,
    listed             boolean NOT NULL,
    base_price         numeric(14, 2),
    currency           text,
    photos_fingerprint bigint,
    source_updated_at  timestamptz NOT NULL,
    fetched_at         timestamptz NOT NULL DEFAULT now(),
    version            integer NOT NULL DEFAULT 1,
    last_changed_fields text[],
    last_changes       json,
    deleted_at         timestamptz,
    raw                bytea NOT NULL,
    raw_type           text NOT NULL,
    PRIMARY KEY (integration_id, external_id)
);

CREATE TABLE IF NOT EXISTS reservations (
    integration_id        text COLLATE "C" NOT NULL,
    external_id           text COLLATE "C" NOT NULL,
    property_external_id  text COLLATE "C" NOT NULL,
    status                text NOT NULL,
    partner_status        text NOT NULL,
    confirmation_code     text,
    channel               text,
    check_in              timestamptz,
    check_out             timestamptz,
    check_in_date         date,
    check_out_date        date,
    nights                integer,
    guests                integer,
    guest_name            text,
    guest_email           text,
    total_paid            numeric(14, 2),
    balance_due           numeric(14, 2),
    currency              text,
    source_created_at     timestamptz,
    source_updated_at     timestamptz NOT NULL,
    fetched_at            timestamptz NOT NULL DEFAULT now(),
    version               integer NOT NULL DEFAULT 1,
    last_changed_fields   text[],
    last_changes          json,
    deleted_at            timestamptz,
    raw                   bytea NOT NULL,
    raw_type              text NOT NULL,
    PRIMARY KEY (integration_id, external_id)
);
CREATE INDEX IF NOT EXISTS reservations_by_property ON reservations (integration_id, property_external_id);

-- One row per listing-day (external_id '<property external id>:<YYYY-MM-DD>'), over the
-- window each run fetches; days that leave the window stay as last seen. Calendar days
-- carry no partner timestamp: source_updated_at is the fixed models.UNTIMED, so a day is
-- rewritten only when its bytes change.
CREATE TABLE IF NOT EXISTS calendar_days (
    integration_id        text COLLATE "C" NOT NULL,
    external_id           text COLLATE "C" NOT NULL,
    property_external_id  text COLLATE "C" NOT NULL,
    day                   date NOT NULL,
    status                text NOT NULL,
    partner_status        text NOT NULL,
    price                 numeric(14, 2),
    currency              text,
    min_nights            integer,
    source_updated_at     timestamptz NOT NULL,
    fetched_at            timestamptz NOT NULL DEFAULT now(),
    version               integer NOT NULL DEFAULT 1,
    last_changed_fields   text[],
    deleted_at            timestamptz,
    raw                   bytea NOT NULL,
    raw_type              text NOT NULL,
    PRIMARY KEY (integration_id, external_id)
);
CREATE INDEX IF NOT EXISTS calendar_days_by_property ON calendar_days (integration_id, property_external_id, day);

-- A digest of a property's photos as its list page shows them: its change fetches them.
ALTER TABLE properties ADD COLUMN IF NOT EXISTS photos_fingerprint bigint;

-- One row per picture of a property, fetched by child tasks (a property whose photos
-- changed: syncd.store.resources.Cascade); external_id is "<property id>:<picture id>".
CREATE TABLE IF NOT EXISTS photos (
    integration_id        text COLLATE "C" NOT NULL,
    external_id           text COLLATE "C" NOT NULL,
    property_external_id  text COLLATE "C" NOT NULL,
    position              integer NOT NULL,
    url                   text NOT NULL,
    thumbnail_url         text,
    caption               text,
    source_updated_at     timestamptz NOT NULL,
    fetched_at            timestamptz NOT NULL DEFAULT now(),
    version               integer NOT NULL DEFAULT 1,
    last_changed_fields   text[],
    deleted_at            timestamptz,
    raw                   bytea NOT NULL,
    raw_type              text NOT NULL,
    PRIMARY KEY (integration_id, external_id)
);
CREATE INDEX IF NOT EXISTS photos_by_property ON photos (integration_id, property_external_id);

-- Every canonical resource's table, for the statements below that treat them alike (the
-- trigger that deletes an integration's rows, the migrations). A new resource's table is
-- added here; tests/integration/store/test_resource_schema.py fails until it is.
CREATE OR REPLACE FUNCTION syncd_resource_tables() RETURNS regclass[] LANGUAGE sql STABLE AS $$
    SELECT ARRAY['properties'::regclass, 'reservations'::regclass, 'calendar_days'::regclass,
                 'photos'::regclass]
$$;

-- Databases created before the keys were dropped (looked up first: ALTER TABLE would take
-- an exclusive lock on every start, waiting for running syncs).
DO $$
DECLARE
    fk record;
BEGIN
    FOR fk IN
        SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
        WHERE contype = 'f' AND confrelid = 'integrations'::regclass
          AND conrelid = ANY (syncd_resource_tables())
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.conname);
    END LOOP;
END $$;

-- ... and before the ids were COLLATE "C" (a one-off rebuild of the indexes on them).
DO $$
DECLARE
    col record;
BEGIN
    FOR col IN
        SELECT a.attrelid::regclass AS tbl, a.attname FROM pg_attribute a
        WHERE a.attrelid = ANY (syncd_resource_tables())
          AND a.attname IN ('integration_id', 'external_id', 'property_external_id')
          AND a.attcollation <> 'pg_catalog."C"'::regcollation
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE text COLLATE "C"', col.tbl, col.attname);
    END LOOP;
END $$;

-- ... and before raw became bytea with its media type (a one-off rewrite of each table:
-- json kept the partner's text as sent, so its UTF-8 bytes are those the partner sent).
DO $$
DECLARE
    tbl regclass;
BEGIN
    FOREACH tbl IN ARRAY syncd_resource_tables() LOOP
        IF NOT EXISTS (
            SELECT 1 FROM pg_attribute WHERE attrelid = tbl AND attname = 'raw_type' AND NOT attisdropped
        ) THEN
            EXECUTE format(
                'ALTER TABLE %s ADD COLUMN raw_type text NOT NULL DEFAULT %L', tbl, 'application/json');
            EXECUTE format('ALTER TABLE %s ALTER COLUMN raw_type DROP DEFAULT', tbl);
        END IF;
        IF EXISTS (
            SELECT 1 FROM pg_attribute
            WHERE attrelid = tbl AND attname = 'raw' AND atttypid = 'json'::regtype
        ) THEN
            EXECUTE format(
                'ALTER TABLE %s ALTER COLUMN raw TYPE bytea USING convert_to(raw::text, %L)', tbl, 'UTF8');
        END IF;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION delete_integration_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tbl regclass;
BEGIN
    FOREACH tbl IN ARRAY syncd_resource_tables() LOOP
        EXECUTE format('DELETE FROM %s WHERE integration_id = $1', tbl) USING OLD.id;
    END LOOP;
    RETURN OLD;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_trigger
        WHERE tgrelid = 'integrations'::regclass AND tgname = 'integrations_delete_rows'
    ) THEN
        CREATE TRIGGER integrations_delete_rows AFTER DELETE ON integrations
            FOR EACH ROW EXECUTE FUNCTION delete_integration_rows();
    END IF;
END $$;

-- Where each integration x resource stands. The checkpoint is written in the same
-- transaction as the page it follows, so it is never ahead of durable data.
CREATE TABLE IF NOT EXISTS sync_state (
    integration_id   text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    resource         text NOT NULL,
    checkpoint       jsonb,
    run_started_at   timestamptz,
    run_pages        bigint NOT NULL DEFAULT 0,
    run_records      bigint NOT NULL DEFAULT 0,
    last_success_at  timestamptz,
    last_sweep_at    timestamptz,
    last_error       text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, resource)
);

-- When each integration x resource runs next. Durable, so a restart keeps the cadence;
-- "running" is a session advisory lock, so a crashed process releases it at once.
CREATE TABLE IF NOT EXISTS schedules (
    integration_id        text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    resource              text NOT NULL,
    interval_s            double precision NOT NULL,
    enabled               boolean NOT NULL DEFAULT true,
    next_due_at           timestamptz NOT NULL DEFAULT now(),
    last_started_at       timestamptz,
    last_finished_at      timestamptz,
    last_outcome          text,
    consecutive_failures  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (integration_id, resource)
);

-- Durable work (syncd.engine.tasks): periodic syncs, targeted fetches (webhooks, a user's
-- "sync now" for given ids), child fetches (a listing's photos or calendar) and pushes.
-- Lower `priority` runs first. A pending task is unique per `dedupe_key`: enqueueing the same
-- work again coalesces into it (the earlier start, the higher priority, the later expiry).
-- No two tasks of one key run at once. A claim leases the row on the database clock; a lease
-- that ran out (or whose process is gone) goes back to pending and its holder's connections
-- are terminated, so a frozen worker that wakes up commits nothing. Finished rows stay for
-- `task_retention_s`.
CREATE TABLE IF NOT EXISTS tasks (
    id                bigserial PRIMARY KEY,
    integration_id    text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    resource          text NOT NULL,
    -- 'sync' | 'fetch' (given ids) | 'child' (given parents' children) | 'push'
    kind              text NOT NULL,
    priority          smallint NOT NULL,
    dedupe_key        text NOT NULL,
    params            jsonb NOT NULL DEFAULT '{}',
    -- 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'expired' | 'dead' | 'lost'
    state             text NOT NULL DEFAULT 'pending',
    not_before        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz,
    enqueued_at       timestamptz NOT NULL DEFAULT now(),
    coalesced         integer NOT NULL DEFAULT 0,
    attempts          integer NOT NULL DEFAULT 0,
    max_attempts      integer NOT NULL DEFAULT 5,
    lease_owner       text,
    -- The claiming process's liveness lock (``tasks.LEASE_PROCESS``): when nobody holds it
    -- the process is gone (killed, crashed) and its tasks are taken back at once.
    lease_process     integer,
    lease_token       integer,
    lease_expires_at  timestamptz,
    started_at        timestamptz,
    finished_at       timestamptz,
    last_error        text
);
CREATE UNIQUE INDEX IF NOT EXISTS tasks_pending_key ON tasks (dedupe_key) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS tasks_running_key ON tasks (dedupe_key) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS tasks_claim ON tasks (priority, not_before, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS tasks_pending_integration ON tasks (integration_id) WHERE state = 'pending';
-- The per-integration bound counts targeted work only (task_queries.sql: pending_for_integration).
CREATE INDEX IF NOT EXISTS tasks_pending_targeted ON tasks (integration_id)
    WHERE state = 'pending' AND kind <> 'child';
CREATE INDEX IF NOT EXISTS tasks_leases ON tasks (lease_expires_at) WHERE state = 'running';
-- Renewal and release find every task of a lease (a claim's siblings share its token).
CREATE INDEX IF NOT EXISTS tasks_running_token ON tasks (lease_token) WHERE state = 'running';
-- A claim skips fetches of an integration x resource that already has a batch running.
CREATE INDEX IF NOT EXISTS tasks_running_target ON tasks (integration_id, resource) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;
-- Lease tokens are int4 (advisory locks take two int4 keys: a namespace and the token).
CREATE SEQUENCE IF NOT EXISTS task_lease_tokens AS integer CYCLE;

-- Webhooks received (syncd.web.webhooks): each verified delivery, stored before the fetch it
-- causes and in the same transaction as that task, so a crash between the two cannot lose
-- one; UNIQUE (integration_id, delivery_id) makes a redelivery a no-op. `body` is the raw
-- bytes as received (an audit record; nothing is applied from it).
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id              bigserial PRIMARY KEY,
    integration_id  text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    partner         text NOT NULL,
    delivery_id     text NOT NULL,
    event           text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    body            bytea NOT NULL,
    media_type      text,
    -- How many records it named (each became a fetch task, or joined a pending one).
    targets         integer NOT NULL,
    UNIQUE (integration_id, delivery_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_received ON webhook_deliveries (received_at);

-- Records that failed validation (or were refused by the partner). One open row per
-- record: seeing the same bad record again bumps `attempts` instead of adding rows.
CREATE TABLE IF NOT EXISTS dead_letters (
    id              bigserial PRIMARY KEY,
    integration_id  text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    resource        text NOT NULL,
    external_id     text NOT NULL,
    error_class     text NOT NULL,
    reason          text NOT NULL,
    payload         text,
    attempts        integer NOT NULL DEFAULT 1,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_open
    ON dead_letters (integration_id, resource, external_id) WHERE resolved_at IS NULL;

-- Change feed: one row per real change (created / updated / deleted / restored / merged),
-- with the names of the canonical fields that changed and, from schema version 5, their old
-- and new values (`changes`, below). Written in the same transaction as the change.
-- Consumers read it in id order; there is deliberately no per-record index, which would
-- cost every sync a second index insert per change (look records up by external_id in
-- their own table, whose version counts the changes).
CREATE TABLE IF NOT EXISTS events (
    id                 bigserial PRIMARY KEY,
    integration_id     text NOT NULL,
    resource           text NOT NULL,
    external_id        text NOT NULL,
    kind               text NOT NULL,
    version            integer NOT NULL,
    changed_fields     text[],
    source_updated_at  timestamptz,
    occurred_at        timestamptz NOT NULL DEFAULT now()
);

-- Field-level history (schema version 5): each event names the canonical fields that
-- changed (changed_fields) and carries their old and new values. On PostgreSQL 18 an
-- update's values are two composites of the resource's `<table>_fields` type (deleted_at,
-- then the compared fields), in events.old_<table> and new_<table>: RETURNING OLD and NEW
-- fill them by position, NULL where a field did not change, without converting a value
-- to text (the same values as JSON text cost PostgreSQL about three times as much per
-- changed row). Those types and columns are made from the models by Store.migrate
-- (resource_queries.sql: fields_type, schema version 9), which appends a field a model
-- gains. Before 18 only the upsert's SET clause sees the stored row and the incoming one
-- together, so it writes them as JSON, {field: [old, new]}, into the row's last_changes
-- for RETURNING to carry to events.changes; deletions and merges, rare, write theirs
-- there on every version. `syncd history` reads either. Created events carry no values:
-- the row is the first version, and a first sync of a million records does not pay for a
-- second copy of each. Looked up first, as above: ALTER TABLE would take an exclusive lock
-- on every start, waiting for running syncs.
DO $$
DECLARE
    target record;
BEGIN
    FOR target IN
        SELECT t AS tbl, 'last_changes' AS col FROM unnest(syncd_resource_tables()) AS t
        UNION ALL SELECT 'events'::regclass, 'changes'
    LOOP
        IF NOT EXISTS (
            SELECT 1 FROM pg_attribute
            WHERE attrelid = target.tbl AND attname = target.col AND NOT attisdropped
        ) THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS %I json', target.tbl, target.col);
        END IF;
    END LOOP;
END $$;

-- A partner id that changed (a merge): records the partner sends under old_id afterwards
-- (overlap re-reads, webhooks, late pages) are stored under new_id, the entity's id now.
-- Kept flat: when new_id itself merges on, every alias pointing at it is repointed, so one
-- lookup resolves an id. `syncd history` reads it to follow an entity across its ids.
CREATE TABLE IF NOT EXISTS entity_aliases (
    integration_id  text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    resource        text NOT NULL,
    old_id          text NOT NULL,
    new_id          text NOT NULL,
    merged_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, resource, old_id)
);
CREATE INDEX IF NOT EXISTS entity_aliases_by_new_id ON entity_aliases (integration_id, resource, new_id);

-- Followers (schema version 9): an integration that acts on another one's rows (a lock
-- provider pushing access codes for a PMS's reservations). A change to a followed row (a
-- trigger field, its creation or its deletion) writes a push task for each follower whose
-- `keys` hold the row's key column (the listing), in the statement that writes the row
-- (resource_queries.sql: follow): a committed change never lacks its push. Written at
-- start from the configuration (syncd.store.followers).
CREATE TABLE IF NOT EXISTS followers (
    follower_id  text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    source_id    text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    resource     text NOT NULL,
    keys         text[] NOT NULL,
    PRIMARY KEY (follower_id, resource)
);
CREATE INDEX IF NOT EXISTS followers_by_source ON followers (source_id, resource);

-- What a lock integration pushed for each reservation it follows (syncd.engine.access):
-- one row per (lock integration, source integration, reservation). The push task compares
-- the reservation's current row (the desired state) with this row and makes the partner
-- match it. `state`: 'setting' (asked, not yet on the lock; also the intent written before
-- a create, with no partner id yet), 'set', 'failed' (the lock refused it; a dead letter),
-- 'removing' (a delete asked, not yet confirmed), 'removed'. `idempotency_key` is stable per
-- desired state (device, starts, ends). The code itself is never stored: it is the
-- guest's secret and stays with the provider.
CREATE TABLE IF NOT EXISTS access_codes (
    integration_id   text NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    source_id        text NOT NULL,
    reservation_id   text COLLATE "C" NOT NULL,
    device_id        text NOT NULL,
    partner_code_id  text,
    idempotency_key  text NOT NULL,
    state            text NOT NULL,
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    last_error       text,
    -- Since when the provider has been asked for this desired state (its key): a code not
    -- set by settle_timeout_s after it is given up.
    key_since        timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    settled_at       timestamptz,
    PRIMARY KEY (integration_id, source_id, reservation_id)
);
CREATE INDEX IF NOT EXISTS access_codes_by_partner_id ON access_codes (integration_id, partner_code_id);

-- Schema generations this database has been brought to (each is applied by the statements
-- above, idempotently): 1 the first; 2 properties/reservations without per-row foreign
-- keys, ids COLLATE "C", the integrations_delete_rows trigger; 3 raw as bytea with its
-- media type (raw_type); 4 the calendar_days table (a new table, created as it is: no
-- existing row changes); 5 field-level history (last_changes, events.changes) and
-- entity_aliases for id merges; 6 the tasks table (the engine's durable queue);
-- 7 webhook_deliveries; 8 the photos table and properties.photos_fingerprint (cascades);
-- 9 typed change values: each resource's <table>_fields type and events.old_/new_<table>
-- (made by Store.migrate from the models, after this file); 10 followers and access_codes
-- (pushes to a lock provider).
INSERT INTO schema_migrations (version) VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10) ON CONFLICT DO NOTHING;
