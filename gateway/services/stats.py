"""The admin's delivery statistics, from the inbox and the push log."""

from __future__ import annotations

import asyncpg

from domain.kinds import NOTIFICATION_TYPES

FAILED_STATUSES = ("send_failed", "rejected", "blocked", "gone")


async def notification_stats(db: asyncpg.Pool) -> dict[str, dict[str, int]]:
    """Per type: created, pushed (reached at least one device), push_failed (a device's
    final attempt failed), delivered_inapp (a page displayed it), clicked, read."""
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
    zero = dict.fromkeys(names, 0)
    stats = {kind: dict(zero) for kind in NOTIFICATION_TYPES}
    for row in rows:
        stats[row["type"]] = {name: int(row[name]) for name in zero}
    return stats
