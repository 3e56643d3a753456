-- The maintenance domain, the transactional outbox and the notification tables.

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL,
    full_name     text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'supervisor', 'technician', 'operator')),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE machines (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL,
    location         text NOT NULL DEFAULT '',
    status           text NOT NULL DEFAULT 'operational'
                     CHECK (status IN ('operational', 'down', 'maintenance')),
    pm_interval_days integer CHECK (pm_interval_days > 0),
    last_pm_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Ticket codes T-YYYY-NNN: one counter row per year, bumped inside the creating transaction.
CREATE TABLE ticket_code_counters (
    year integer PRIMARY KEY,
    last integer NOT NULL
);

CREATE TABLE tickets (
    id             bigserial PRIMARY KEY,
    ticket_id      text NOT NULL UNIQUE,
    title          text NOT NULL,
    description    text NOT NULL DEFAULT '',
    machine_id     bigint NOT NULL REFERENCES machines (id),
    priority       text NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    status         text NOT NULL DEFAULT 'received' CHECK (status IN
                   ('received', 'diagnostic', 'in_progress', 'waiting_parts', 'completed', 'archived')),
    reported_by    bigint NOT NULL REFERENCES users (id),
    assigned_to    bigint REFERENCES users (id),
    scheduled_date timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz
);
CREATE INDEX tickets_status_idx ON tickets (status);
CREATE INDEX tickets_assigned_idx ON tickets (assigned_to);
CREATE INDEX tickets_overdue_idx ON tickets (scheduled_date)
    WHERE status NOT IN ('completed', 'archived');

CREATE TABLE ticket_followers (
    ticket_id bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (ticket_id, user_id)
);

CREATE TABLE comments (
    id         bigserial PRIMARY KEY,
    ticket_id  bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    author_id  bigint NOT NULL REFERENCES users (id),
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comments_ticket_idx ON comments (ticket_id, id);

CREATE TABLE interventions (
    id            bigserial PRIMARY KEY,
    machine_id    bigint NOT NULL REFERENCES machines (id),
    assigned_to   bigint NOT NULL REFERENCES users (id),
    scheduled_for timestamptz NOT NULL,
    note          text NOT NULL DEFAULT '',
    created_by    bigint NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messages (
    id             bigserial PRIMARY KEY,
    sender_id      bigint NOT NULL REFERENCES users (id),
    recipient_id   bigint REFERENCES users (id),
    message_type   text NOT NULL CHECK (message_type IN ('private', 'public')),
    content        text NOT NULL DEFAULT '',
    audio          bytea,
    audio_mime     text,
    audio_duration real,
    is_read        boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((message_type = 'private') = (recipient_id IS NOT NULL))
);
CREATE INDEX messages_recipient_idx ON messages (recipient_id, is_read);
CREATE INDEX messages_pair_idx ON messages (sender_id, recipient_id, id);

CREATE TABLE settings (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: a domain write and its events commit together. The relay
-- publishes rows with published_at NULL; the flag, not an id cursor, is the truth,
-- because sequence values are taken before commit and can become visible out of order.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_type   text NOT NULL,
    actor_id     bigint,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

-- The inbox: every notification a person received, with its read state.
CREATE TABLE notifications (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event_id   bigint NOT NULL,
    type       text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL,
    url        text NOT NULL DEFAULT '/',
    data       jsonb NOT NULL DEFAULT '{}',
    critical   boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz,
    read_at    timestamptz,
    clicked_at timestamptz,
    UNIQUE (user_id, event_id, type)
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
CREATE INDEX notifications_unread_idx ON notifications (user_id) WHERE read_at IS NULL;

CREATE TABLE notification_preferences (
    user_id    bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    types      jsonb NOT NULL DEFAULT '{}',
    dnd        jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE push_subscriptions (
    id              bigserial PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint        text NOT NULL UNIQUE,
    p256dh          text NOT NULL,
    auth            text NOT NULL,
    expiration_time bigint,
    device_type     text,
    device_name     text,
    last_used       timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_subscriptions_user_idx ON push_subscriptions (user_id, last_used);

CREATE TABLE push_logs (
    id              bigserial PRIMARY KEY,
    notification_id bigint REFERENCES notifications (id) ON DELETE SET NULL,
    subscription_id bigint,
    user_id         bigint NOT NULL,
    endpoint        text NOT NULL,
    status          text NOT NULL,
    http_status     integer,
    attempt         integer NOT NULL DEFAULT 1,
    error_message   text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- One notification reaches one device once.
CREATE UNIQUE INDEX push_logs_sent_once ON push_logs (notification_id, subscription_id)
    WHERE status = 'sent';

-- Replays of POST /api/tickets and /api/messages with the same Idempotency-Key.
CREATE TABLE idempotency_keys (
    user_id    bigint NOT NULL,
    key        text NOT NULL,
    route      text NOT NULL,
    status     integer NOT NULL,
    response   jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, route, key)
);

-- Time-based events fire once: the clock claims (subject, day) before emitting.
CREATE TABLE clock_alerts (
    kind       text NOT NULL,
    subject_id bigint NOT NULL,
    day        date NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, subject_id, day)
);
