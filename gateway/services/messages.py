"""Message use cases: private and public messages (text or audio), conversations,
read state, and the admin's broadcast."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from domain import permissions
from domain.errors import Invalid, NotFound, PermissionDenied
from domain.events import BroadcastSent, CountsChanged, MessageSent
from domain.model import Actor, MessageType
from domain.notify import shorten
from gateway.services.outbox import UnitOfWork

EXCERPT_MAX = 160
PUBLIC_FEED_SIZE = 100
MESSAGE_COLUMNS = (
    "m.id, m.message_type, m.sender_id, s.full_name AS sender_name, m.recipient_id,"
    " m.content, m.audio IS NOT NULL AS audio, m.audio_duration, m.is_read, m.created_at"
)
MESSAGE_SELECT = f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users s ON s.id = m.sender_id"
_INSERT_MESSAGE = (
    "WITH m AS (INSERT INTO messages (sender_id, recipient_id, message_type, content, audio,"
    " audio_mime, audio_duration) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *)"
    f" SELECT {MESSAGE_COLUMNS} FROM m JOIN users s ON s.id = m.sender_id"
)


@dataclass(frozen=True)
class Audio:
    """An uploaded recording, already checked for size and type at the edge."""

    data: bytes
    mime: str
    duration_s: float


def _excerpt(content: str, has_audio: bool) -> str:
    """The text a line or a notice quotes; none for a recording (each reader's app and
    notification say "audio message" in their own language)."""
    return "" if has_audio else shorten(content, EXCERPT_MAX)


def message_json(row: asyncpg.Record) -> dict[str, Any]:
    duration = row["audio_duration"]
    return {
        "id": row["id"],
        "message_type": row["message_type"],
        "sender_id": row["sender_id"],
        "sender_name": row["sender_name"],
        "recipient_id": row["recipient_id"],
        "content": row["content"],
        "audio": row["audio"],
        # real is single precision: 12.3 would read back as 12.300000190734863
        "audio_duration": round(duration, 2) if duration is not None else None,
        "is_read": row["is_read"],
        "created_at": row["created_at"].isoformat(),
    }


def _recipient(actor: Actor, kind: MessageType, recipient_id: int | None) -> int | None:
    if kind is MessageType.PUBLIC:
        if recipient_id is not None:
            raise Invalid("A public message has no recipient_id.")
        return None
    if recipient_id is None:
        raise Invalid("A private message needs a recipient_id.")
    if recipient_id == actor.id:
        raise Invalid("You cannot send a private message to yourself.")
    return recipient_id  # that it exists is checked by the insert's foreign key


async def send(
    uow: UnitOfWork, actor: Actor, kind: MessageType, recipient_id: int | None, content: str
) -> dict[str, Any]:
    recipient = _recipient(actor, kind, recipient_id)
    return await _store(uow, actor, kind, recipient, content, None)


async def send_audio(
    uow: UnitOfWork, actor: Actor, recipient_id: int | None, audio: Audio
) -> dict[str, Any]:
    """An audio message is private when it names a recipient, public otherwise."""
    kind = MessageType.PUBLIC if recipient_id is None else MessageType.PRIVATE
    recipient = _recipient(actor, kind, recipient_id)
    return await _store(uow, actor, kind, recipient, "", audio)


async def _store(uow: UnitOfWork, actor: Actor, kind: MessageType, recipient: int | None,
                 content: str, audio: Audio | None) -> dict[str, Any]:  # fmt: skip
    recording = (audio.data, audio.mime, audio.duration_s) if audio else (None, None, None)
    try:
        row = await uow.conn.fetchrow(
            _INSERT_MESSAGE, actor.id, recipient, str(kind), content, *recording
        )
    except asyncpg.ForeignKeyViolationError:
        raise Invalid(f"User {recipient} does not exist.") from None
    message_id = row["id"]
    excerpt = _excerpt(content, audio is not None)
    sent = MessageSent(
        actor.id, message_id, actor.id, row["sender_name"], str(kind), recipient, excerpt,
        audio=audio is not None,
    )  # fmt: skip
    uow.emit(sent)
    return message_json(row)


async def load_audio(conn: asyncpg.Connection, actor: Actor, message_id: int) -> tuple[bytes, str]:
    """The recording of a message, for its sender and recipient (anyone, when public)."""
    row = await conn.fetchrow(
        "SELECT sender_id, recipient_id, audio, audio_mime FROM messages WHERE id = $1", message_id
    )
    if row is None or row["audio"] is None:
        raise NotFound(f"Message {message_id} has no audio.")
    if row["recipient_id"] is not None and actor.id not in (row["sender_id"], row["recipient_id"]):
        raise PermissionDenied("This audio belongs to someone else's conversation.")
    return bytes(row["audio"]), row["audio_mime"] or "application/octet-stream"


async def unread_count(conn: asyncpg.Connection, user_id: int) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM messages WHERE recipient_id = $1 AND NOT is_read", user_id
    ))  # fmt: skip


async def conversations(conn: asyncpg.Connection, user_id: int) -> list[dict[str, Any]]:
    """One line per contact of a private exchange, the latest first."""
    rows = await conn.fetch(
        """
        WITH latest AS (
            SELECT DISTINCT ON (contact_id) contact_id, id, content, has_audio, created_at
            FROM (SELECT CASE WHEN sender_id = $1 THEN recipient_id ELSE sender_id END
                         AS contact_id, id, content, audio IS NOT NULL AS has_audio, created_at
                  FROM messages
                  WHERE message_type = 'private' AND (sender_id = $1 OR recipient_id = $1)) mine
            ORDER BY contact_id, id DESC
        )
        SELECT l.contact_id, u.full_name AS contact_name, l.content, l.has_audio, l.created_at,
               (SELECT count(*) FROM messages x WHERE x.recipient_id = $1
                  AND x.sender_id = l.contact_id AND NOT x.is_read) AS unread_count
        FROM latest l JOIN users u ON u.id = l.contact_id
        ORDER BY l.id DESC
        """,
        user_id,
    )
    return [
        {
            "contact_id": row["contact_id"],
            "contact_name": row["contact_name"],
            "last_message": _excerpt(row["content"], row["has_audio"]),
            "last_audio": row["has_audio"],
            "last_at": row["created_at"].isoformat(),
            "unread_count": row["unread_count"],
        }
        for row in rows
    ]


async def _require_user(conn: asyncpg.Connection, user_id: int) -> None:
    if not await conn.fetchval("SELECT 1 FROM users WHERE id = $1", user_id):
        raise NotFound(f"User {user_id} does not exist.")


async def thread(
    conn: asyncpg.Connection, user_id: int, contact_id: int, limit: int, before: int | None
) -> list[dict[str, Any]]:
    """The private messages between two people, oldest first: the latest `limit` of
    them, or those before message id `before` (to page back)."""
    await _require_user(conn, contact_id)
    rows = await conn.fetch(
        MESSAGE_SELECT + " WHERE m.message_type = 'private'"
        " AND ((m.sender_id = $1 AND m.recipient_id = $2)"
        " OR (m.sender_id = $2 AND m.recipient_id = $1))"
        " AND ($3::bigint IS NULL OR m.id < $3) ORDER BY m.id DESC LIMIT $4",
        user_id, contact_id, before, limit,
    )  # fmt: skip
    return [message_json(row) for row in reversed(rows)]


async def mark_read(uow: UnitOfWork, actor: Actor, contact_id: int) -> int:
    """Mark what the contact sent me as read, with the inbox notices of those messages,
    and tell every device of mine to refresh its badges."""
    conn = uow.conn
    await _require_user(conn, contact_id)
    read = await conn.fetch(
        "UPDATE messages SET is_read = true"
        " WHERE recipient_id = $1 AND sender_id = $2 AND NOT is_read RETURNING id",
        actor.id, contact_id,
    )  # fmt: skip
    if not read:
        return 0
    await conn.execute(
        "UPDATE notifications SET read_at = now() WHERE user_id = $1 AND type = 'new_message'"
        " AND read_at IS NULL AND (data->>'message_id')::bigint = ANY($2::bigint[])",
        actor.id, [row["id"] for row in read],
    )  # fmt: skip
    uow.emit(CountsChanged(actor.id, actor.id))
    return len(read)


async def public_feed(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """The newest public messages, oldest first (the order a chat reads in)."""
    rows = await conn.fetch(
        MESSAGE_SELECT + " WHERE m.message_type = 'public' ORDER BY m.id DESC LIMIT $1",
        PUBLIC_FEED_SIZE,
    )
    return [message_json(row) for row in reversed(rows)]


async def broadcast(
    uow: UnitOfWork, actor: Actor, title: str, body: str, to: Literal["all"] | list[int]
) -> None:
    permissions.require_admin(actor, "broadcast")
    if to != "all":
        to = list(dict.fromkeys(to))
        found = await uow.conn.fetch("SELECT id FROM users WHERE id = ANY($1::bigint[])", to)
        missing = sorted(set(to) - {row["id"] for row in found})
        if missing:
            raise Invalid(f"Unknown user ids: {', '.join(map(str, missing[:20]))}.")
    uow.emit(BroadcastSent(actor.id, title, body, to))
