-- Administrators list small aggregates (accounts, invitations) by stream
-- type. Neither column ever changes, so appends keep their HOT updates of
-- streams.version.
CREATE INDEX streams_type_created_idx ON streams (stream_type, created_at);
