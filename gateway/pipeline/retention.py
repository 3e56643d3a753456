"""What the worker deletes, every minute, so that Redis memory and PostgreSQL tables
stay bounded:

- stream entries older than `STREAM_RETENTION_HOURS` (the live stream's after ten
  minutes: hubs read it within moments, and history lives in the user streams);
- outbox rows published longer ago than that (the domain stream held them meanwhile;
  rows not yet published are never touched);
- `Idempotency-Key` records once their window has passed;
- revoked session tokens once they have expired;
- `push_logs` older than `PUSH_LOG_RETENTION_DAYS`, which is therefore the window the
  admin's delivery statistics cover.

Rows go in batches, so no statement holds its locks for long.
"""

from __future__ import annotations

import asyncpg
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import Keys
from gateway.services.idempotency import WINDOW
from gateway.streams import min_id_for_age

LIVE_KEEP_MS = 10 * 60 * 1000
BATCH_ROWS = 5000


async def trim_streams(redis: Redis, keys: Keys, retention_hours: int) -> int:
    """Drop stream entries older than the retention; how many went."""
    min_id = min_id_for_age(retention_hours * 3600 * 1000)
    trimmed = 0
    streams = [keys.domain_stream, keys.board_stream, keys.push_stream]
    streams += [
        key async for key in redis.scan_iter(match=keys.user_stream_pattern, _type="stream")
    ]
    for stream in streams:
        trimmed += await redis.xtrim(stream, minid=min_id, approximate=False)
    trimmed += await redis.xtrim(keys.live_stream, minid=min_id_for_age(LIVE_KEEP_MS))
    return trimmed


def _rules(settings: Settings) -> list[tuple[str, str, list[int]]]:
    """(table, which rows are past retention, the query's arguments)."""
    return [
        (
            "outbox",
            "published_at < now() - make_interval(hours => $1)",
            [settings.stream_retention_hours],
        ),
        ("idempotency_keys", f"created_at < now() - interval '{WINDOW}'", []),
        ("revoked_tokens", "expires_at < now()", []),  # expired tokens are refused anyway
        (
            "push_logs",
            "created_at < now() - make_interval(days => $1)",
            [settings.push_log_retention_days],
        ),
    ]


async def trim_tables(pool: asyncpg.Pool, settings: Settings) -> dict[str, int]:
    """Delete the rows past their retention; how many went, per table."""
    deleted = {}
    for table, expired, args in _rules(settings):
        deleted[table] = 0
        while True:
            status = await pool.execute(
                f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table}"
                f" WHERE {expired} LIMIT {BATCH_ROWS}))",
                *args,
            )
            count = int(status.split()[-1])
            deleted[table] += count
            if count < BATCH_ROWS:
                break
    return deleted
