"""PostgreSQL reads and writes of the push side: preferences, held pushes, statistics."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

import asyncpg

from domain.notify import NOTIFICATION_TYPES
from gateway.push.preferences import Preferences

Db: TypeAlias = asyncpg.Connection | asyncpg.Pool
FAILED_STATUSES = ("send_failed", "rejected", "blocked", "gone")


async def load_preferences(db: Db, user_id: int, for_update: bool = False) -> Preferences:
    lock = " FOR UPDATE" if for_update else ""
    row = await db.fetchrow(
        f"SELECT types, dnd FROM notification_preferences WHERE user_id = $1{lock}", user_id
    )
    return Preferences.from_stored(row["types"] if row else None, row["dnd"] if row else None)


async def load_preferences_of(db: Db, user_ids: Iterable[int]) -> dict[int, Preferences]:
    """`load_preferences` of many people in one query; defaults for those who chose none."""
    ids = list(set(user_ids))
    if not ids:
        return {}
    rows = await db.fetch(
        "SELECT user_id, types, dnd FROM notification_preferences"
        " WHERE user_id = ANY($1::bigint[])",
        ids,
    )
    stored = {row["user_id"]: (row["types"], row["dnd"]) for row in rows}
    return {user_id: Preferences.from_stored(*stored.get(user_id, (None, None))) for user_id in ids}


async def save_preferences(db: Db, user_id: int, prefs: Preferences) -> None:
    await db.execute(
        "INSERT INTO notification_preferences (user_id, types, dnd) VALUES ($1, $2, $3)"
        " ON CONFLICT (user_id) DO UPDATE SET types = EXCLUDED.types, dnd = EXCLUDED.dnd,"
        " updated_at = now()",
        user_id, prefs.types, prefs.dnd,
    )  # fmt: skip


async def notifications_to_push(db: Db, ids: list[int]) -> list[dict[str, Any]]:
    """The notifications with what deciding their push needs: seen state and preferences."""
    rows = await db.fetch(
        "SELECT n.id, n.user_id, n.type, n.title, n.body, n.url, n.data, n.critical,"
        " n.seen_at IS NOT NULL OR n.read_at IS NOT NULL AS seen, p.types, p.dnd"
        " FROM notifications n LEFT JOIN notification_preferences p ON p.user_id = n.user_id"
        " WHERE n.id = ANY($1::bigint[]) ORDER BY n.id",
        ids,
    )
    return [dict(row) for row in rows]


async def hold(db: Db, held: Iterable[tuple[int, int]]) -> None:
    """Keep (notification id, user id) pushes for the digest at the end of quiet hours."""
    pairs = list(held)
    if pairs:
        await db.execute(
            "INSERT INTO push_held (notification_id, user_id)"
            " SELECT * FROM unnest($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING",
            [n for n, _ in pairs], [u for _, u in pairs],
        )  # fmt: skip


async def notification_stats(db: Db) -> dict[str, dict[str, int]]:
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
