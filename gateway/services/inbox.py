"""The inbox: every notification a person received, with its read, seen and clicked
state, and the unread counts their badges show."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg

from domain.errors import NotFound
from domain.events import CountsChanged
from gateway.services.outbox import UnitOfWork

COLUMNS = "id, type, title, body, url, data, critical, created_at, seen_at, read_at, clicked_at"
STAMPS = ("created_at", "seen_at", "read_at", "clicked_at")
MARKS = ("read_at", "seen_at", "clicked_at")
Counts = dict[str, int]

_INSERT_NOTIFICATIONS = (
    "INSERT INTO notifications (user_id, event_id, type, title, body, url, data, critical,"
    " pushable, written_at) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[],"
    " $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::boolean[], $9::boolean[],"
    " $10::timestamptz[])"
    # A no-op update rather than DO NOTHING: RETURNING then also gives the id of a row
    # an earlier attempt stored, so a retry delivers under the same id.
    " ON CONFLICT (user_id, event_id, type) DO UPDATE SET type = EXCLUDED.type"
    " RETURNING id, user_id, event_id, type"
)


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    for name in STAMPS:
        out[name] = out[name].isoformat() if out[name] else None
    return out


async def page(
    pool: asyncpg.Pool, user_id: int, limit: int, before: int | None, unread_only: bool
) -> list[dict[str, Any]]:
    """Newest first; `before` (a notification id) pages back in time."""
    rows = await pool.fetch(
        f"SELECT {COLUMNS} FROM notifications WHERE user_id = $1"
        " AND ($2::bigint IS NULL OR id < $2) AND (NOT $3 OR read_at IS NULL)"
        " ORDER BY id DESC LIMIT $4",
        user_id,
        before,
        unread_only,
        limit,
    )
    return [_row(row) for row in rows]


async def unread_count(pool: asyncpg.Pool, user_id: int) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL", user_id
    )
    return count


async def versioned_unread_counts(
    conn: asyncpg.Connection, user_ids: Iterable[int]
) -> dict[int, tuple[int, Counts]]:
    """Unread messages and notifications per user, with a version per user that orders
    the counts of one person whoever takes them (`sql/0004_delivery_order.sql`): a count
    of a higher version is never of an older state."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows = await conn.fetch("SELECT * FROM versioned_unread_counts($1::bigint[])", ids)
    return {
        row["user_id"]: (
            row["version"],
            {"messages": row["messages"], "notifications": row["notifications"]},
        )
        for row in rows
    }


async def store(
    conn: asyncpg.Connection, columns: list[list[Any]]
) -> dict[tuple[int, int, str], int]:
    """Store notifications given as column arrays (user ids, event ids, types, titles,
    bodies, urls, data, critical and pushable flags, when their change was written) in one
    statement; the inbox id of each (user id, event id, type), an earlier attempt's
    included."""
    rows = await conn.fetch(_INSERT_NOTIFICATIONS, *columns)
    return {(row["user_id"], row["event_id"], row["type"]): row["id"] for row in rows}


async def stamp_framed(db: asyncpg.Pool, ids: list[int], at: list[datetime]) -> None:
    """When each notification first reached an open connection of its person (the hub's
    stamps; the first written holds). Rows another transaction is updating are skipped
    rather than waited for, so a stamp never takes part in a deadlock (it costs a sample);
    the push log's references (key-share locks) do not hold it up."""
    await db.execute(
        "WITH free AS (SELECT id FROM notifications WHERE id = ANY($1::bigint[])"
        " AND framed_at IS NULL ORDER BY id FOR NO KEY UPDATE SKIP LOCKED)"
        " UPDATE notifications n SET framed_at = s.at"
        " FROM unnest($1::bigint[], $2::timestamptz[]) AS s(id, at), free"
        " WHERE n.id = s.id AND n.id = free.id",
        ids, at,
    )  # fmt: skip


async def require_own(pool: asyncpg.Pool, user_id: int, notification_id: int) -> None:
    owner = await pool.fetchval("SELECT user_id FROM notifications WHERE id = $1", notification_id)
    if owner != user_id:
        raise NotFound(f"Notification {notification_id} does not exist.")


async def mark(uow: UnitOfWork, user_id: int, column: str, ids: list[int] | None) -> int:
    """Stamp `column` on the person's notifications (all unread ones when ids is None);
    reading changes the badges, so every device of theirs is told. Returns how many."""
    if column not in MARKS:
        raise ValueError(column)
    result = await uow.conn.execute(
        f"UPDATE notifications SET {column} = now() WHERE user_id = $1"
        f" AND {column} IS NULL AND ($2::bigint[] IS NULL OR id = ANY($2))",
        user_id,
        ids,
    )
    updated = int(result.split()[-1])
    if updated and column == "read_at":
        uow.emit(CountsChanged(user_id, user_id))
    await uow.commit()
    return updated
