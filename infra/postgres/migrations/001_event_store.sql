-- The event log: the record of everything that happens in Presente.
--
-- Rows in events are never updated or deleted (see events_append_only).
-- Reading the global log in commit-safe order relies on tx_id: see
-- ARCHITECTURE.md, "Reading the log without skipping events".

CREATE TABLE streams (
    stream_id   uuid PRIMARY KEY,
    -- Types are validated in Go; the database only guarantees what the hash
    -- encoding needs (no newline) at a cost that suits the hot path.
    stream_type text NOT NULL CHECK (length(stream_type) BETWEEN 1 AND 63 AND strpos(stream_type, E'\n') = 0),
    -- the stream_version of the newest event; appends check and move it
    version     bigint NOT NULL CHECK (version > 0),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE SEQUENCE events_position_seq AS bigint;

-- events carries no CHECK constraints: append_events computes every column
-- it writes (versions, positions, 32-byte hashes) and is the only writer, and
-- constraint expressions cost ~8% of an append. Event type names are
-- validated when the Go registry is built.
CREATE TABLE events (
    position       bigint NOT NULL DEFAULT nextval('events_position_seq'),
    tx_id          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- No foreign key to streams: a key check would double the cost of an
    -- append; `presente verify` reports events without a stream row.
    stream_id      uuid NOT NULL,
    stream_type    text NOT NULL,
    stream_version bigint NOT NULL,
    event_id       uuid NOT NULL UNIQUE,
    event_type     text NOT NULL,
    schema_version integer NOT NULL,
    data           jsonb NOT NULL,
    metadata       jsonb NOT NULL,
    recorded_at    timestamptz NOT NULL,
    prev_hash      bytea NOT NULL,
    hash           bytea NOT NULL,
    -- The commit-safe reading order of the global log is the primary key.
    CONSTRAINT events_pkey PRIMARY KEY (tx_id, position),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

ALTER SEQUENCE events_position_seq OWNED BY events.position;


-- Append-only, enforced here and not only in the application. Statement
-- triggers fire even when no row matches, so `UPDATE events SET ...` fails on
-- an empty log too.
CREATE FUNCTION events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is not allowed', TG_OP
        USING ERRCODE = 'PS403',
              HINT = 'Record a correction by appending a new event; history is never edited.';
END
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

-- event_hash is the tamper-evidence chain link of one event. The Go verifier
-- (infra/eventstore/verify.go) recomputes it independently from the stored
-- columns; the two must stay byte-for-byte identical. Fields are joined by
-- newlines: no field can contain a raw newline (types are restricted by the
-- checks and jsonb's text form escapes control characters). It is STABLE,
-- not IMMUTABLE, because concat_ws and extract are: only then may the
-- planner inline it instead of re-parsing its body on every append.
CREATE FUNCTION event_hash(
    p_prev bytea, p_position bigint, p_stream_id uuid, p_stream_type text,
    p_stream_version bigint, p_event_id uuid, p_event_type text,
    p_schema_version integer, p_recorded_at timestamptz,
    p_metadata jsonb, p_data jsonb
) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT sha256(p_prev || convert_to(concat_ws(E'\n',
        p_position, p_stream_id, p_stream_type, p_stream_version, p_event_id,
        p_event_type, p_schema_version,
        (extract(epoch FROM p_recorded_at) * 1000000)::bigint,
        p_metadata::text, p_data::text), 'UTF8'))
$$;

-- append_events appends a batch of independent appends in one statement:
-- item i appends p_counts[i] events (taken in order from the event arrays)
-- to stream p_stream_ids[i], which must be at version p_expected[i].
--
-- For each item the version check and the stream's row lock are one write:
-- an INSERT for a new stream (expected version 0), an UPDATE ... WHERE
-- version = expected for an existing one. A writer that loses the race waits
-- for the winner's commit, finds no matching row and, before it takes any
-- position, returns one row for the item with a NULL position and the
-- stream's actual version. Conflicts are rows, not exceptions, so that one
-- losing append does not abort the others committed with it. The previous
-- event's hash, which the new events chain to, is read from the events index
-- in the same UPDATE.
--
-- It runs with its owner's rights (SECURITY DEFINER): the application role
-- may not insert into events or write streams directly, so every event in
-- the log went through these checks and carries a true chain link and the
-- real transaction id.
CREATE FUNCTION append_events(
    p_stream_ids uuid[], p_stream_types text[], p_expected bigint[], p_counts integer[],
    p_event_ids uuid[], p_event_types text[], p_schema_versions integer[],
    p_data text[], p_metadata text[], p_recorded_at timestamptz
) RETURNS TABLE (item integer, event_position bigint, event_tx_id xid8, event_stream_version bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    items     integer := coalesce(array_length(p_stream_ids, 1), 0);
    total     integer := coalesce(array_length(p_event_ids, 1), 0);
    e         integer := 0;
    k         integer;
    v_version bigint;
    v_type    text;
    v_actual  bigint;
    v_prev    bytea;
    v_pos     bigint;
    v_data    jsonb;
    v_meta    jsonb;
    v_tx      xid8;
BEGIN
    IF items = 0 OR total = 0 THEN
        RAISE EXCEPTION 'append_events: no appends given' USING ERRCODE = '22023';
    END IF;
    IF coalesce(array_length(p_stream_types, 1), 0) <> items
       OR coalesce(array_length(p_expected, 1), 0) <> items
       OR coalesce(array_length(p_counts, 1), 0) <> items
       OR coalesce(array_length(p_event_types, 1), 0) <> total
       OR coalesce(array_length(p_schema_versions, 1), 0) <> total
       OR coalesce(array_length(p_data, 1), 0) <> total
       OR coalesce(array_length(p_metadata, 1), 0) <> total
       OR (SELECT sum(c) FROM unnest(p_counts) c) <> total
       OR (SELECT min(c) FROM unnest(p_counts) c) < 1 THEN
        RAISE EXCEPTION 'append_events: argument arrays do not line up' USING ERRCODE = '22023';
    END IF;
    IF strpos(array_to_string(p_event_types, '|') || array_to_string(p_stream_types, '|'), E'\n') > 0 THEN
        RAISE EXCEPTION 'append_events: type names may not contain line breaks' USING ERRCODE = '22023';
    END IF;

    v_tx := pg_current_xact_id();
    FOR it IN 1..items LOOP
        k := p_counts[it];
        IF p_expected[it] = 0 THEN
            INSERT INTO streams (stream_id, stream_type, version, created_at, updated_at)
            VALUES (p_stream_ids[it], p_stream_types[it], k, p_recorded_at, p_recorded_at)
            ON CONFLICT (stream_id) DO NOTHING;
            IF NOT FOUND THEN
                SELECT version INTO v_actual FROM streams WHERE stream_id = p_stream_ids[it];
                item := it; event_position := NULL; event_tx_id := NULL; event_stream_version := v_actual;
                RETURN NEXT;
                e := e + k;
                CONTINUE;
            END IF;
            v_prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
        ELSE
            UPDATE streams SET version = p_expected[it] + k, updated_at = p_recorded_at
            WHERE stream_id = p_stream_ids[it] AND version = p_expected[it]
            RETURNING stream_type,
                      (SELECT hash FROM events WHERE stream_id = p_stream_ids[it] AND stream_version = p_expected[it])
            INTO v_type, v_prev;
            IF NOT FOUND THEN
                SELECT version INTO v_actual FROM streams WHERE stream_id = p_stream_ids[it];
                item := it; event_position := NULL; event_tx_id := NULL; event_stream_version := coalesce(v_actual, 0);
                RETURN NEXT;
                e := e + k;
                CONTINUE;
            END IF;
            IF v_type <> p_stream_types[it] THEN
                RAISE EXCEPTION 'stream % holds % events, not %', p_stream_ids[it], v_type, p_stream_types[it]
                    USING ERRCODE = 'PS422', DETAIL = v_type;
            END IF;
            IF v_prev IS NULL THEN
                RAISE EXCEPTION 'stream % has no event at version %: the log is damaged, run presente verify',
                    p_stream_ids[it], p_expected[it] USING ERRCODE = 'XX001';
            END IF;
        END IF;

        v_version := p_expected[it];
        FOR j IN 1..k LOOP
            e := e + 1;
            v_version := v_version + 1;
            v_pos := nextval('events_position_seq');
            v_data := p_data[e]::jsonb;
            v_meta := p_metadata[e]::jsonb;
            INSERT INTO events (position, tx_id, stream_id, stream_type, stream_version, event_id,
                                event_type, schema_version, data, metadata, recorded_at, prev_hash, hash)
            VALUES (v_pos, v_tx, p_stream_ids[it], p_stream_types[it], v_version, p_event_ids[e],
                    p_event_types[e], p_schema_versions[e], v_data, v_meta, p_recorded_at, v_prev,
                    event_hash(v_prev, v_pos, p_stream_ids[it], p_stream_types[it], v_version, p_event_ids[e],
                               p_event_types[e], p_schema_versions[e], p_recorded_at, v_meta, v_data))
            RETURNING hash INTO v_prev;
            item := it; event_position := v_pos; event_tx_id := v_tx; event_stream_version := v_version;
            RETURN NEXT;
        END LOOP;
    END LOOP;
END
$$;

-- Grants: the application role may read, and append only through
-- append_events; it may never rewrite. Run the server as a login role that
-- is a member of presente_app and does not own these tables; then neither
-- grants, triggers nor the append checks can be bypassed by the app.
-- Where the migrating role may not create roles (some managed services), the
-- migration still succeeds and says what to do.
REVOKE ALL ON events, streams FROM PUBLIC;
REVOKE ALL ON FUNCTION append_events(uuid[], text[], bigint[], integer[], uuid[], text[], integer[], text[], text[], timestamptz) FROM PUBLIC;

DO $$
BEGIN
    BEGIN
        CREATE ROLE presente_app NOLOGIN;
    EXCEPTION
        WHEN duplicate_object OR unique_violation THEN
            NULL; -- roles are cluster-wide: another database created it first
        WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot create role presente_app; create it and rerun the grants in 001_event_store.sql to run the server without table ownership';
    END;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'presente_app') THEN
        GRANT SELECT ON events, streams TO presente_app;
        GRANT EXECUTE ON FUNCTION
            append_events(uuid[], text[], bigint[], integer[], uuid[], text[], integer[], text[], text[], timestamptz),
            event_hash(bytea, bigint, uuid, text, bigint, uuid, text, integer, timestamptz, jsonb, jsonb)
            TO presente_app;
    END IF;
END
$$;
