-- Idempotency keys: the server side of the Idempotency-Key header, so that
-- a retry from a phone on a bad network replays the first answer instead
-- of acting twice. A row is a claim while its request runs and a sealed
-- copy of the response once it has run. Neither the client's key nor the
-- request is stored: key_hash and fingerprint are keyed hashes under a key
-- derived from the master key, and response is encrypted under another, so
-- a copy of this table reveals nothing. Rows are deleted once expired:
-- they are not history.
CREATE TABLE idempotency_keys (
    scope       text NOT NULL,
    key_hash    bytea NOT NULL,
    fingerprint bytea NOT NULL,
    state       text NOT NULL CHECK (state IN ('in_progress', 'completed')),
    -- Until then a claim blocks retries; after it, a retry may take over
    -- the claim of a request whose server died mid-way.
    lease_until timestamptz,
    response    bytea,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key_hash),
    CHECK ((state = 'in_progress') = (lease_until IS NOT NULL)),
    CHECK ((state = 'completed') = (response IS NOT NULL))
);

CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

REVOKE ALL ON idempotency_keys FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'presente_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO presente_app;
    END IF;
END
$$;
