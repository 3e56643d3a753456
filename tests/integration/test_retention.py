"""The worker's retention: what is past its time goes, nothing else does."""

from __future__ import annotations

import uuid

import asyncpg

from gateway.config import Settings
from gateway.pipeline.retention import trim_tables


async def test_rows_past_their_retention_go_and_only_they(
    db: asyncpg.Pool, settings: Settings
) -> None:
    mark = f"retention-{uuid.uuid4().hex[:8]}"
    await db.execute(
        "INSERT INTO outbox (event_type, payload, published_at) VALUES"
        " ($1, '{}', now() - interval '2 days'),"  # published long ago: goes
        " ($1, '{}', now() - interval '1 hour'),"  # published recently: stays
        " ($1, '{}', NULL)",  # never published: stays, whatever its age
        mark,
    )
    await db.execute(
        "INSERT INTO idempotency_keys (user_id, key, route, status, response, created_at)"
        " VALUES (1, $1 || '-old', 'messages', 201, '{}', now() - interval '25 hours'),"
        " (1, $1 || '-new', 'messages', 201, '{}', now() - interval '1 hour')",
        mark,
    )
    await db.execute(
        "INSERT INTO push_logs (user_id, endpoint, status, created_at) VALUES"
        " (1, $1, 'sent', now() - interval '31 days'), (1, $1, 'sent', now() - interval '1 day')",
        mark,
    )
    await db.execute(
        "UPDATE outbox SET created_at = now() - interval '3 days' WHERE event_type = $1", mark
    )
    await db.execute(
        "INSERT INTO revoked_tokens (digest, expires_at) VALUES"
        " (($1 || '-old')::bytea, now() - interval '1 minute'),"
        " (($1 || '-new')::bytea, now() + interval '1 hour')",
        mark,
    )

    deleted = await trim_tables(db, settings)

    assert all(count >= 1 for count in deleted.values()), deleted
    outbox = await db.fetch("SELECT published_at FROM outbox WHERE event_type = $1", mark)
    assert len(outbox) == 2  # the recent one and the unpublished one
    keys = await db.fetch("SELECT key FROM idempotency_keys WHERE key LIKE $1 || '%'", mark)
    assert [row["key"] for row in keys] == [f"{mark}-new"]
    logs = await db.fetchval("SELECT count(*) FROM push_logs WHERE endpoint = $1", mark)
    assert logs == 1
    revoked = await db.fetch(
        "SELECT digest FROM revoked_tokens WHERE digest IN (($1 || '-old')::bytea,"
        " ($1 || '-new')::bytea)",
        mark,
    )
    assert [bytes(row["digest"]) for row in revoked] == [f"{mark}-new".encode()]
