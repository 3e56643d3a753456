"""PostgreSQL reads and writes of the push fan-out: what a push decision needs, and the
pushes held for the quiet-hours digest."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

import asyncpg

from gateway.services.preferences import DEFAULT_PUSH_COLUMN

Db: TypeAlias = asyncpg.Connection | asyncpg.Pool


async def notifications_to_push(db: Db, ids: list[int]) -> list[dict[str, Any]]:
    """The notifications with what deciding and writing their push needs: seen state,
    preferences (over the admins' defaults) and the recipient's language."""
    rows = await db.fetch(
        "SELECT n.id, n.user_id, n.type, n.title, n.body, n.url, n.data, n.critical,"
        " n.seen_at IS NOT NULL OR n.read_at IS NOT NULL AS seen, p.types, p.dnd,"
        f" {DEFAULT_PUSH_COLUMN} AS default_push, u.language"
        " FROM notifications n JOIN users u ON u.id = n.user_id"
        " LEFT JOIN notification_preferences p ON p.user_id = n.user_id"
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


async def mark_decided(db: Db, ids: Iterable[int]) -> None:
    """The ladder is done with these (pushed, dropped or held): a Redis history lost from
    now on needs them considered no more."""
    decided = list(ids)
    if decided:
        await db.execute(
            "UPDATE notifications SET push_decided_at = now()"
            " WHERE id = ANY($1::bigint[]) AND push_decided_at IS NULL",
            decided,
        )
