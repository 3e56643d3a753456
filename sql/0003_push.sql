-- Web Push bookkeeping: pushes held back by quiet hours and the digests that summarise them.
-- depends: 0001_schema

-- A notification that quiet hours kept from being pushed, waiting for the next digest.
CREATE TABLE push_held (
    notification_id bigint PRIMARY KEY REFERENCES notifications (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_held_user_idx ON push_held (user_id);

-- One digest per end of quiet hours. Claiming the held rows and creating the digest happen
-- in one transaction; `lease_until` lets any worker finish a digest another one left unsent.
CREATE TABLE push_digests (
    id               bigserial PRIMARY KEY,
    user_id          bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    notification_ids bigint[] NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz NOT NULL DEFAULT '-infinity',
    sent_at          timestamptz
);
CREATE INDEX push_digests_pending_idx ON push_digests (id) WHERE sent_at IS NULL;

-- A digest reaches one device once, as a notification does.
ALTER TABLE push_logs ADD COLUMN digest_id bigint REFERENCES push_digests (id) ON DELETE SET NULL;
CREATE UNIQUE INDEX push_logs_digest_sent_once ON push_logs (digest_id, subscription_id)
    WHERE status = 'sent';
CREATE INDEX push_logs_notification_idx ON push_logs (notification_id);
