-- Server-side sessions. Only a hash of each token is stored, so a copy of
-- this table signs nobody in. Rows are deleted once expired: sessions are
-- not history (the log records sign-ins that matter), and keeping the least
-- possible is the point (a subpoena should find as little as Signal's).
CREATE TABLE sessions (
    session_id   uuid PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE,
    user_id      uuid NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    revoked_at   timestamptz
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);

REVOKE ALL ON sessions FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'presente_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON sessions TO presente_app;
    END IF;
END
$$;
