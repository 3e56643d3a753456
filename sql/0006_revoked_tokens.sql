-- Sessions ended by logout: a token listed here is refused until it would have expired
-- anyway (then the worker's retention deletes the row).
-- depends: 0005_ticket_pages

CREATE TABLE revoked_tokens (
    digest     bytea PRIMARY KEY,  -- SHA-256 of the token: the token itself is never stored
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expiry_idx ON revoked_tokens (expires_at);
