-- The event log: the record of everything that happens in Presente.
--
-- Rows in events are never updated or deleted (see events_append_only).
-- Reading the global log in commit-safe order relies on tx_id: see
-- ARCHITECTURE.md, "Reading the log without skipping events".

CREATE TABLE streams (
    stream_id   uuid PRIMARY KEY,
    stream_type text NOT NULL CHECK (stream_type ~ '^[a-z][a-z0-9_]{0,62}$'),
    version     bigint NOT NULL CHECK (version >= 0),
    -- hash of the newest event of the stream; 32 zero bytes before the first
    last_hash   bytea NOT NULL CHECK (length(last_hash) = 32),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE SEQUENCE events_position_seq AS bigint;

CREATE TABLE events (
    position       bigint PRIMARY KEY DEFAULT nextval('events_position_seq'),
    tx_id          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id      uuid NOT NULL REFERENCES streams (stream_id),
    stream_type    text NOT NULL,
    stream_version bigint NOT NULL CHECK (stream_version > 0),
    event_id       uuid NOT NULL UNIQUE,
    event_type     text NOT NULL CHECK (event_type ~ '^[A-Za-z][A-Za-z0-9_.]{0,127}$'),
    schema_version integer NOT NULL CHECK (schema_version > 0),
    data           jsonb NOT NULL,
    metadata       jsonb NOT NULL,
    recorded_at    timestamptz NOT NULL,
    prev_hash      bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash           bytea NOT NULL CHECK (length(hash) = 32),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

ALTER SEQUENCE events_position_seq OWNED BY events.position;

-- The commit-safe reading order of the global log.
CREATE INDEX events_tx_id_position_idx ON events (tx_id, position);

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
-- newlines: no field can contain a raw newline (types are restricted by CHECK
-- constraints and jsonb's text form escapes control characters).
CREATE FUNCTION event_hash(
    p_prev bytea, p_position bigint, p_stream_id uuid, p_stream_type text,
    p_stream_version bigint, p_event_id uuid, p_event_type text,
    p_schema_version integer, p_recorded_at timestamptz,
    p_metadata jsonb, p_data jsonb
) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT sha256(p_prev || convert_to(concat_ws(E'\n',
        p_position, p_stream_id, p_stream_type, p_stream_version, p_event_id,
        p_event_type, p_schema_version,
        (extract(epoch FROM p_recorded_at) * 1000000)::bigint,
        p_metadata::text, p_data::text), 'UTF8'))
$$;

-- append_events appends events to one stream in one statement: it checks the
-- expected version under the stream's row lock (so a loser burns no position),
-- chains the hashes and moves the stream's head. A version mismatch raises
-- SQLSTATE PS409 with the actual version in DETAIL.
CREATE FUNCTION append_events(
    p_stream_id uuid, p_stream_type text, p_expected bigint,
    p_event_ids uuid[], p_event_types text[], p_schema_versions integer[],
    p_data text[], p_metadata text[], p_recorded_at timestamptz
) RETURNS TABLE (event_position bigint, event_tx_id xid8, event_stream_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    n         integer := coalesce(array_length(p_event_ids, 1), 0);
    v_version bigint;
    v_type    text;
    v_prev    bytea;
    v_pos     bigint;
    v_data    jsonb;
    v_meta    jsonb;
    v_tx      xid8;
BEGIN
    IF n = 0 THEN
        RAISE EXCEPTION 'append to stream %: no events given', p_stream_id USING ERRCODE = '22023';
    END IF;
    IF coalesce(array_length(p_event_types, 1), 0) <> n
       OR coalesce(array_length(p_schema_versions, 1), 0) <> n
       OR coalesce(array_length(p_data, 1), 0) <> n
       OR coalesce(array_length(p_metadata, 1), 0) <> n THEN
        RAISE EXCEPTION 'append to stream %: event arrays differ in length', p_stream_id USING ERRCODE = '22023';
    END IF;

    IF p_expected = 0 THEN
        INSERT INTO streams (stream_id, stream_type, version, last_hash, created_at, updated_at)
        VALUES (p_stream_id, p_stream_type, 0, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea,
                p_recorded_at, p_recorded_at)
        ON CONFLICT (stream_id) DO NOTHING;
    END IF;

    SELECT version, stream_type, last_hash INTO v_version, v_type, v_prev
    FROM streams WHERE stream_id = p_stream_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'stream % does not exist, expected version %', p_stream_id, p_expected
            USING ERRCODE = 'PS409', DETAIL = '0';
    END IF;
    IF v_version <> p_expected THEN
        RAISE EXCEPTION 'stream % is at version %, expected version %', p_stream_id, v_version, p_expected
            USING ERRCODE = 'PS409', DETAIL = v_version::text;
    END IF;
    IF v_type <> p_stream_type THEN
        RAISE EXCEPTION 'stream % holds % events, not %', p_stream_id, v_type, p_stream_type
            USING ERRCODE = 'PS422';
    END IF;

    v_tx := pg_current_xact_id();
    FOR i IN 1..n LOOP
        v_version := v_version + 1;
        v_pos := nextval('events_position_seq');
        v_data := p_data[i]::jsonb;
        v_meta := p_metadata[i]::jsonb;
        INSERT INTO events (position, tx_id, stream_id, stream_type, stream_version, event_id,
                            event_type, schema_version, data, metadata, recorded_at, prev_hash, hash)
        VALUES (v_pos, v_tx, p_stream_id, p_stream_type, v_version, p_event_ids[i],
                p_event_types[i], p_schema_versions[i], v_data, v_meta, p_recorded_at, v_prev,
                event_hash(v_prev, v_pos, p_stream_id, p_stream_type, v_version, p_event_ids[i],
                           p_event_types[i], p_schema_versions[i], p_recorded_at, v_meta, v_data))
        RETURNING hash INTO v_prev;
        event_position := v_pos;
        event_tx_id := v_tx;
        event_stream_version := v_version;
        RETURN NEXT;
    END LOOP;

    UPDATE streams SET version = v_version, last_hash = v_prev, updated_at = p_recorded_at
    WHERE stream_id = p_stream_id;
END
$$;

-- Grants: the application role may read and append, never rewrite. Run the
-- server as a login role that is a member of presente_app and does not own
-- these tables; then neither grants nor triggers can be bypassed by the app.
DO $$
BEGIN
    CREATE ROLE presente_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- the role is cluster-wide: another database created it first
END
$$;

REVOKE ALL ON events, streams FROM PUBLIC;
GRANT SELECT, INSERT ON events TO presente_app;
GRANT SELECT, INSERT, UPDATE ON streams TO presente_app;
GRANT USAGE ON SEQUENCE events_position_seq TO presente_app;
GRANT EXECUTE ON FUNCTION append_events(uuid, text, bigint, uuid[], text[], integer[], text[], text[], timestamptz),
                          event_hash(bytea, bigint, uuid, text, bigint, uuid, text, integer, timestamptz, jsonb, jsonb)
    TO presente_app;
