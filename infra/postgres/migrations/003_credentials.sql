-- Credentials are secrets, not facts: they live here, mutable and
-- deletable, never in the event log. The email is found at sign-in by a
-- blind index (a keyed hash under a key derived from the master key), so
-- the table holds no address in the clear.
CREATE TABLE credentials (
    user_id       uuid PRIMARY KEY,
    email_index   bytea NOT NULL UNIQUE,
    password_hash text NOT NULL,
    updated_at    timestamptz NOT NULL
);

REVOKE ALL ON credentials FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'presente_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON credentials TO presente_app;
    END IF;
END
$$;
