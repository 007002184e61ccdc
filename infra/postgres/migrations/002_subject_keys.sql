-- Data keys for crypto-shredding: one per data subject (a person Presente
-- serves or a volunteer), wrapped by the master key, which never enters the
-- database. Forgetting a subject sets wrapped_key to NULL and keeps the row
-- as a tombstone, so the subject's ciphertext in the event log (and in every
-- backup of it) becomes unreadable and no new key is ever made for them.
CREATE TABLE subject_keys (
    subject_id   uuid PRIMARY KEY,
    wrapped_key  bytea,
    created_at   timestamptz NOT NULL,
    forgotten_at timestamptz,
    CHECK ((wrapped_key IS NULL) = (forgotten_at IS NOT NULL))
);

REVOKE ALL ON subject_keys FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'presente_app') THEN
        GRANT SELECT, INSERT, UPDATE ON subject_keys TO presente_app;
    END IF;
END
$$;
