-- Escalation of unanswered critical alerts, and what the delivery statistics measure.
-- depends: 0007_language

-- A critical alert about a ticket waiting for an answer: at most one per ticket (once
-- answered, later alerts start nothing). Opened and answered in the transaction of the
-- change that raised or answered it. `step`: how many steps of the ladder it climbed
-- (sent or passed over); `escalated_to`/`_at`: the latest one sent, as the card shows it.
CREATE TABLE ticket_waits (
    ticket_id    bigint PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    reason       text NOT NULL CHECK (reason IN ('assigned', 'breakdown', 'overdue')),
    since        timestamptz NOT NULL,
    answered_at  timestamptz,
    answer       text CHECK (answer IN ('acknowledged', 'taken', 'moved')),
    answered_by  bigint REFERENCES users (id) ON DELETE SET NULL,
    step         integer NOT NULL DEFAULT 0,
    escalated_to text,
    escalated_at timestamptz,
    CHECK ((answered_at IS NULL) = (answer IS NULL))
);
-- What the clock looks at: the waits still open.
CREATE INDEX ticket_waits_open_idx ON ticket_waits (ticket_id) WHERE answered_at IS NULL;
-- Time to answer per day.
CREATE INDEX ticket_waits_since_idx ON ticket_waits (since);

-- The steps of the ladder a wait climbed, each once: the clock records (ticket, step) in
-- the transaction that writes the step's event to the outbox (the key refuses a second).
-- `sent` false: passed over (an assignee step of a ticket nobody held), never sent late.
CREATE TABLE ticket_escalations (
    ticket_id     bigint NOT NULL REFERENCES ticket_waits (ticket_id) ON DELETE CASCADE,
    step          integer NOT NULL CHECK (step > 0),
    audience      text NOT NULL CHECK (audience IN ('assignee', 'supervisors', 'admins')),
    after_minutes integer NOT NULL,
    sent          boolean NOT NULL,
    escalated_at  timestamptz NOT NULL,
    PRIMARY KEY (ticket_id, step)
);

-- Delivery latencies: when the change a notification tells of was written (the outbox
-- row's time), and when a gateway first put its frame on one of the person's open
-- connections. Push acceptance is the `sent` row of `push_logs`.
ALTER TABLE notifications
    ADD COLUMN written_at timestamptz,
    ADD COLUMN framed_at  timestamptz;
CREATE INDEX notifications_created_idx ON notifications (created_at);
-- A ticket's timeline: its critical notifications (text, so no stored value can fail a cast).
CREATE INDEX notifications_ticket_idx ON notifications ((data->>'ticket_id')) WHERE critical;
