"""Each person's notification preferences as stored: per-type switches and quiet hours
(the rules are `domain.preferences`), over the defaults the admins set (`default_push`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg

from domain.model import DEFAULT_LANGUAGE, Language
from domain.preferences import Preferences

Db: TypeAlias = asyncpg.Connection | asyncpg.Pool

DEFAULT_PUSH_KEY = "default_push"  # the settings key of the admins' default push choices
# The admins' defaults as a column of any query over people.
DEFAULT_PUSH_COLUMN = f"(SELECT value FROM settings WHERE key = '{DEFAULT_PUSH_KEY}')"
_ONE = (
    f"SELECT p.types, p.dnd, {DEFAULT_PUSH_COLUMN} AS default_push"
    " FROM (SELECT $1::bigint AS id) u LEFT JOIN notification_preferences p ON p.user_id = u.id"
)
_RECIPIENTS = (
    f"SELECT u.id, u.language, p.types, p.dnd, {DEFAULT_PUSH_COLUMN} AS default_push"
    " FROM users u LEFT JOIN notification_preferences p ON p.user_id = u.id"
    " WHERE u.id = ANY($1::bigint[])"
)


@dataclass(frozen=True)
class Recipient:
    """What writing and delivering a notification to someone needs to know of them."""

    language: Language
    prefs: Preferences


def preferences_of(row: Any) -> Preferences:
    """The preferences of a row with `types`, `dnd` and `default_push` columns."""
    return Preferences.from_stored(row["types"], row["dnd"], row["default_push"])


async def load_preferences(db: Db, user_id: int, for_update: bool = False) -> Preferences:
    if for_update:
        await db.execute(
            "SELECT 1 FROM notification_preferences WHERE user_id = $1 FOR UPDATE", user_id
        )
    return preferences_of(await db.fetchrow(_ONE, user_id))


async def load_recipients(db: Db, user_ids: Iterable[int]) -> dict[int, Recipient]:
    """Language and preferences of many people in one query; defaults for anyone unknown."""
    ids = list(set(user_ids))
    if not ids:
        return {}
    rows = {row["id"]: row for row in await db.fetch(_RECIPIENTS, ids)}
    return {user_id: _recipient(rows.get(user_id)) for user_id in ids}


def _recipient(row: Any) -> Recipient:
    if row is None:  # no such user (any more): the defaults
        return Recipient(DEFAULT_LANGUAGE, Preferences.from_stored(None, None))
    return Recipient(Language(row["language"]), preferences_of(row))


async def save_preferences(db: Db, user_id: int, prefs: Preferences) -> None:
    """Store the person's own choices (not the defaults they did not touch)."""
    await db.execute(
        "INSERT INTO notification_preferences (user_id, types, dnd) VALUES ($1, $2, $3)"
        " ON CONFLICT (user_id) DO UPDATE SET types = EXCLUDED.types, dnd = EXCLUDED.dnd,"
        " updated_at = now()",
        user_id, prefs.chosen, prefs.dnd,
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
