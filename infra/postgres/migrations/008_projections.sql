-- Projections: read models built from the event log (see ARCHITECTURE.md,
-- "Projections").
--
-- Read-model tables live in their own schema and are created, renamed and
-- dropped by the server (projections.Runner), not by migrations: a rebuild
-- creates fresh copies from each projector's DDL, fills them from the log
-- and swaps them in. So the application role may create tables in this
-- schema, and only in this one: the log stays out of its reach.
CREATE SCHEMA projections;

-- One row per projection: the projector's schema version its tables were
-- built with, and the place in the global log (commit-safe order, as
-- eventstore.Cursor) up to which they hold every event. It is written in
-- the same transaction as the read model, so the two never disagree.
CREATE TABLE projection_checkpoints (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,30}$'),
    version    integer NOT NULL CHECK (version > 0),
    tx_id      xid8 NOT NULL,
    position   bigint NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL
);

REVOKE ALL ON projection_checkpoints FROM PUBLIC;
REVOKE ALL ON SCHEMA projections FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'presente_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON projection_checkpoints TO presente_app;
        GRANT USAGE, CREATE ON SCHEMA projections TO presente_app;
    END IF;
END
$$;
