-- Unread counts that never go backwards, and what a lost Redis history must be given again.
-- depends: 0003_push

-- The version of each person's unread counts. `versioned_unread_counts` bumps it under the
-- row's lock and only then counts, so the counts of one person are taken in version order
-- whatever the number of routers; the stream append drops a count older than the last one
-- appended. No foreign key: a person removed meanwhile must not fail a count.
CREATE TABLE unread_versions (
    user_id bigint PRIMARY KEY,
    version bigint NOT NULL
);

CREATE FUNCTION versioned_unread_counts(ids bigint[])
RETURNS TABLE (user_id bigint, version bigint, messages bigint, notifications bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    bumped_ids bigint[];
    bumped_versions bigint[];
BEGIN
    -- The locks (taken in id order: two routers never deadlock) are held until the calling
    -- statement ends. A VOLATILE function's second query takes a fresh snapshot, after the
    -- lock: a count of a higher version never sees an older state than a lower one.
    WITH bumped AS (
        INSERT INTO unread_versions AS v (user_id, version)
        SELECT DISTINCT u, 1 FROM unnest(ids) AS u ORDER BY u
        ON CONFLICT ON CONSTRAINT unread_versions_pkey DO UPDATE SET version = v.version + 1
        RETURNING v.user_id, v.version
    )
    SELECT array_agg(b.user_id), array_agg(b.version) INTO bumped_ids, bumped_versions
    FROM bumped b;
    RETURN QUERY
    SELECT c.id, c.ver,
        (SELECT count(*) FROM messages m WHERE m.recipient_id = c.id AND NOT m.is_read),
        (SELECT count(*) FROM notifications n WHERE n.user_id = c.id AND n.read_at IS NULL)
    FROM unnest(bumped_ids, bumped_versions) AS c (id, ver);
END $$;

-- When the router has appended everything an event yields: an event published to a Redis
-- history that was then lost before this is set is published again.
ALTER TABLE outbox ADD COLUMN routed_at timestamptz;
UPDATE outbox SET routed_at = published_at WHERE published_at IS NOT NULL;

-- Whether the push ladder may push it at all (the previous assignee of a reassignment is
-- told in the app only), and when it was done with it (pushed, dropped or held for the
-- digest): one a lost Redis history took with it is considered again.
ALTER TABLE notifications ADD COLUMN pushable boolean NOT NULL DEFAULT true;
ALTER TABLE notifications ADD COLUMN push_decided_at timestamptz;
UPDATE notifications SET push_decided_at = created_at;

-- The generation of the Redis history the relay last published into (one row).
CREATE TABLE relay_state (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    epoch text NOT NULL
);
