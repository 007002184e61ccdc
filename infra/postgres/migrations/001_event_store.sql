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

CREATE TABLE events (
    position       bigint PRIMARY KEY DEFAULT nextval('events_position_seq'),
    tx_id          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- No foreign key to streams: append_events is the only writer and
    -- always writes both; a key check would double the cost of an append.
    -- `presente verify` reports events without a stream row.
    stream_id      uuid NOT NULL,
    stream_type    text NOT NULL,
    stream_version bigint NOT NULL CHECK (stream_version > 0),
    event_id       uuid NOT NULL UNIQUE,
    event_type     text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 128 AND strpos(event_type, E'\n') = 0),
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

-- append_events appends events to one stream in one statement. The
-- version check and the stream's row lock are one write: an INSERT for a new
-- stream (expected version 0), an UPDATE ... WHERE version = expected for an
-- existing one. A writer that loses the race waits for the winner's commit,
-- finds no matching row and raises SQLSTATE PS409 with the stream's actual
-- version in DETAIL, before it takes any position. The previous event's
-- hash, which the new events chain to, is read from the events index.
CREATE FUNCTION append_events(
    p_stream_id uuid, p_stream_type text, p_expected bigint,
    p_event_ids uuid[], p_event_types text[], p_schema_versions integer[],
    p_data text[], p_metadata text[], p_recorded_at timestamptz
) RETURNS TABLE (event_position bigint, event_tx_id xid8, event_stream_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    n         integer := coalesce(array_length(p_event_ids, 1), 0);
    v_version bigint := p_expected;
    v_type    text;
    v_actual  bigint;
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
        INSERT INTO streams (stream_id, stream_type, version, created_at, updated_at)
        VALUES (p_stream_id, p_stream_type, n, p_recorded_at, p_recorded_at)
        ON CONFLICT (stream_id) DO NOTHING;
        IF NOT FOUND THEN
            SELECT version INTO v_actual FROM streams WHERE stream_id = p_stream_id;
            RAISE EXCEPTION 'stream % already exists at version %, expected a new stream', p_stream_id, v_actual
                USING ERRCODE = 'PS409', DETAIL = v_actual::text;
        END IF;
        v_prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    ELSE
        UPDATE streams SET version = p_expected + n, updated_at = p_recorded_at
        WHERE stream_id = p_stream_id AND version = p_expected
        RETURNING stream_type INTO v_type;
        IF NOT FOUND THEN
            SELECT version INTO v_actual FROM streams WHERE stream_id = p_stream_id;
            RAISE EXCEPTION 'stream % is at version %, expected version %', p_stream_id, coalesce(v_actual, 0), p_expected
                USING ERRCODE = 'PS409', DETAIL = coalesce(v_actual, 0)::text;
        END IF;
        IF v_type <> p_stream_type THEN
            RAISE EXCEPTION 'stream % holds % events, not %', p_stream_id, v_type, p_stream_type
                USING ERRCODE = 'PS422';
        END IF;
        SELECT hash INTO v_prev FROM events WHERE stream_id = p_stream_id AND stream_version = p_expected;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'stream % has no event at version %: the log is damaged, run presente verify', p_stream_id, p_expected
                USING ERRCODE = 'XX001';
        END IF;
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
