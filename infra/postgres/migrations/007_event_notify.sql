-- Wake-up of the log's followers across processes (infra/bus).
--
-- Every transaction that inserts events (one append_events call, which group
-- commit makes carry a whole batch of appends, or one Transact) sends one
-- notification on the channel presente_events when it commits: the trigger
-- fires for each INSERT statement, and PostgreSQL folds identical
-- notifications of one transaction into one. The payload is empty on
-- purpose: a notification only says "read the log again"; what to
-- read is decided by the follower's commit-safe cursor, so a lost, merged or
-- duplicated notification can delay a follower but never make it skip or
-- repeat an event, and nothing about an event leaves the table this way.
--
-- Cost: at commit PostgreSQL takes a cluster-wide lock to queue a
-- notification, so notifying transactions commit one at a time; group
-- commit already sends one transaction per batch, so that is one queue entry
-- per batch. docs/BENCHMARKS.md measures what it costs writers.
CREATE FUNCTION events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('presente_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
