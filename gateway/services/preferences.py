"""Each person's notification preferences as stored: per-type switches and quiet hours
(the rules are `domain.preferences`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

import asyncpg

from domain.preferences import Preferences

Db: TypeAlias = asyncpg.Connection | asyncpg.Pool


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


async def update_preferences(
    pool: asyncpg.Pool, user_id: int, types: dict[str, dict[str, bool]], dnd: dict[str, Any] | None
) -> Preferences:
    """Change the parts given; what is left out keeps its value."""
    async with pool.acquire() as conn, conn.transaction():
        current = await load_preferences(conn, user_id, for_update=True)
        updated = current.updated(types, dnd)
        await save_preferences(conn, user_id, updated)
    return updated
