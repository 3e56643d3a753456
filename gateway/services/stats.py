"""The admin's delivery statistics, from the inbox, the push log and the dead letters."""

from __future__ import annotations

from collections import Counter
from typing import cast

import asyncpg
from redis.asyncio import Redis

from domain.kinds import NOTIFICATION_TYPES
from gateway.keys import Keys
from gateway.streams import Entry
from gateway.wire import TYPE_B

FAILED_STATUSES = ("send_failed", "rejected", "blocked", "gone")


async def notification_stats(
    db: asyncpg.Pool, redis: Redis, keys: Keys
) -> dict[str, dict[str, int]]:
    """Per type: created, pushed (reached at least one device), push_failed (a device's
    final attempt failed), delivered_inapp (a page displayed it), clicked, read, and
    dead_lettered (an event or a push set aside after failing again and again: its type
    is the event's, which may be one no notification has)."""
    rows = await db.fetch(
        "WITH pushed AS (SELECT DISTINCT notification_id FROM push_logs WHERE status = 'sent'),"
        " failed AS (SELECT DISTINCT notification_id FROM push_logs WHERE status = ANY($1::text[]))"
        " SELECT n.type, count(*) AS created, count(p.notification_id) AS pushed,"
        " count(f.notification_id) AS push_failed, count(n.seen_at) AS delivered_inapp,"
        " count(n.clicked_at) AS clicked, count(n.read_at) AS read"
        " FROM notifications n LEFT JOIN pushed p ON p.notification_id = n.id"
        " LEFT JOIN failed f ON f.notification_id = n.id GROUP BY n.type",
        list(FAILED_STATUSES),
    )  # fmt: skip
    names = ("created", "pushed", "push_failed", "delivered_inapp", "clicked", "read")
    zero = dict.fromkeys((*names, "dead_lettered"), 0)
    stats = {kind: dict(zero) for kind in NOTIFICATION_TYPES}
    for row in rows:
        stats.setdefault(row["type"], dict(zero)).update({name: int(row[name]) for name in names})
    for kind, count in (await dead_lettered(redis, keys)).items():
        stats.setdefault(kind, dict(zero))["dead_lettered"] = count
    return stats


async def dead_lettered(redis: Redis, keys: Keys, page: int = 1000) -> Counter[str]:
    """Entries in the dead-letter stream per type (the stream is capped, so this is
    bounded)."""
    counts: Counter[str] = Counter()
    start = "-"
    while True:
        entries = cast(list[Entry], await redis.xrange(keys.dead_letters, min=start, count=page))
        counts.update(fields.get(TYPE_B, b"?").decode() for _, fields in entries)
        if len(entries) < page:
            return counts
        start = "(" + entries[-1][0].decode()
