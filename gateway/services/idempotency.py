"""Idempotent commands: the same key from the same user within 24 h returns the first
result and writes nothing. The key is stored in the transaction that did the work."""

from __future__ import annotations

import json
from typing import Any

from gateway.services.outbox import UnitOfWork

WINDOW = "24 hours"  # a key replays its first result this long; `retention` then drops it


async def replay(
    uow: UnitOfWork, user_id: int, route: str, key: str | None
) -> tuple[Any, int] | None:
    if key is None:
        return None
    # Serialise concurrent requests with the same key: the second waits, then replays.
    await uow.conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, $2))", f"{route}:{key}", user_id
    )
    row = await uow.conn.fetchrow(
        "SELECT status, response FROM idempotency_keys WHERE user_id = $1 AND route = $2"
        f" AND key = $3 AND created_at > now() - interval '{WINDOW}'",
        user_id,
        route,
        key,
    )
    return (row["response"], row["status"]) if row else None


async def remember(
    uow: UnitOfWork, user_id: int, route: str, key: str | None, response: Any, status: int
) -> None:
    if key is None:
        return
    await uow.conn.execute(
        "INSERT INTO idempotency_keys (user_id, route, key, status, response)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, route, key)"
        " DO UPDATE SET status = EXCLUDED.status, response = EXCLUDED.response, created_at = now()",
        user_id,
        route,
        key,
        status,
        json.loads(json.dumps(response, default=str)),
    )
