"""The router: turns each domain event into board updates and personal notifications.

A consumer group on the domain stream, so several workers share the work; entries a
crashed worker left pending are claimed after `claim_idle_ms` and finished. Each step
is idempotent (inbox rows are unique per event and recipient; stream appends are
deduplicated), so an entry handled twice tells nobody twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from domain.model import Role
from domain.notify import BOARD_EVENTS, USES_DIRECTORY, Directory, Notice, notices_for
from gateway.keys import ROUTER_GROUP, Keys
from gateway.metrics import NOTIFICATIONS_ROUTED
from gateway.push.store import load_preferences
from gateway.retry import Backoff
from gateway.streams import append_once, as_reply, envelope

log = logging.getLogger(__name__)
Fields = dict[bytes, bytes]


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def unread_counts(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM messages WHERE recipient_id = $1 AND NOT is_read)"
        " AS messages, (SELECT count(*) FROM notifications WHERE user_id = $1"
        " AND read_at IS NULL) AS notifications",
        user_id,
    )
    return {"messages": row["messages"], "notifications": row["notifications"]}


class Router:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis,
        keys: Keys,
        consumer: str,
        claim_idle_ms: int = 30_000,
    ) -> None:
        self._pool, self._redis, self._keys = pool, redis, keys
        self._consumer = consumer
        self._claim_idle_ms = claim_idle_ms

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                await ensure_group(self._redis, self._keys.domain_stream, ROUTER_GROUP)
                await self._claim_stale()
                await self._read_new()
                backoff.reset()
            except (RedisError, OSError, asyncpg.PostgresError) as exc:
                delay = backoff.next_delay()
                log.warning("router: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
            except Exception:  # a bug must not stop routing; the entry stays pending
                log.exception("router: unexpected error")
                await asyncio.sleep(backoff.next_delay())

    async def _read_new(self) -> None:
        stream = self._keys.domain_stream
        reply = await self._redis.xreadgroup(
            ROUTER_GROUP, self._consumer, {stream: ">"}, count=100, block=1000
        )
        for _, entries in as_reply(reply):
            await self._handle_all(entries)

    async def _claim_stale(self) -> None:
        reply = await self._redis.xautoclaim(
            self._keys.domain_stream,
            ROUTER_GROUP,
            self._consumer,
            min_idle_time=self._claim_idle_ms,
            start_id="0-0",
            count=100,
        )
        if reply[1]:
            log.info("router: finishing %d entries of a stopped worker", len(reply[1]))
            await self._handle_all(reply[1])

    async def _handle_all(self, entries: list[tuple[bytes, Fields]]) -> None:
        for entry_id, fields in entries:
            if fields:  # a claimed entry trimmed away meanwhile comes back empty
                await self.handle(json.loads(fields[b"e"]))
            await self._redis.xack(self._keys.domain_stream, ROUTER_GROUP, entry_id)

    async def handle(self, event: dict[str, Any]) -> None:
        event_type, actor, data = event["type"], event.get("actor_id"), event["data"]
        board_type = BOARD_EVENTS.get(event_type)
        if board_type:
            await self._to_board(event, board_type)
        if event_type == "counts_changed":
            # Own prefix: `c<notification id>` members count notifications, not reads.
            await self._send_counts(data["user_id"], f"r{event['outbox_id']}")
            return
        async with self._pool.acquire() as conn:
            directory = await _directory(conn) if event_type in USES_DIRECTORY else _no_directory
            notices = notices_for(event_type, actor, data, directory)
            stored = await self._store(conn, event, notices)
            for notice, notification_id in stored:
                await self._deliver(conn, event, notice, notification_id)

    async def _to_board(self, event: dict[str, Any], board_type: str) -> None:
        body = envelope(
            board_type, {"ticket": event["data"]["ticket"]}, event.get("actor_id"), event["ts"]
        )
        await append_once(
            self._redis,
            self._keys.board_stream,
            self._keys.router_appended,
            [(f"b{event['outbox_id']}", board_type, body)],
        )

    async def _store(
        self, conn: asyncpg.Connection, event: dict[str, Any], notices: list[Notice]
    ) -> list[tuple[Notice, int]]:
        stored = []
        async with conn.transaction():
            for notice in notices:
                notification_id = await conn.fetchval(
                    "INSERT INTO notifications"
                    " (user_id, event_id, type, title, body, url, data, critical)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                    " ON CONFLICT (user_id, event_id, type) DO UPDATE SET type = EXCLUDED.type"
                    " RETURNING id",
                    notice.user_id,
                    event["outbox_id"],
                    notice.type,
                    notice.title,
                    notice.body,
                    notice.url,
                    notice.data,
                    notice.critical,
                )
                stored.append((notice, notification_id))
                NOTIFICATIONS_ROUTED.labels(notice.type).inc()
        return stored

    async def _deliver(
        self, conn: asyncpg.Connection, event: dict[str, Any], notice: Notice, notification_id: int
    ) -> None:
        data = {
            "title": notice.title,
            "body": notice.body,
            "critical": notice.critical,
            **notice.data,
        }
        body = envelope(
            notice.type,
            data,
            event.get("actor_id"),
            event["ts"],
            url=notice.url,
            notification_id=notification_id,
        )
        counts = envelope("unread_count", await unread_counts(conn, notice.user_id))
        entries = [(f"c{notification_id}", "unread_count", counts)]
        prefs = await load_preferences(conn, notice.user_id)
        if prefs.inapp_allowed(notice.type):  # else: in the inbox and the badge, no toast
            entries.insert(0, (f"n{notification_id}", notice.type, body))
        await self._to_user(notice.user_id, entries)
        push = json.dumps(
            {
                "notification_id": notification_id,
                "user_id": notice.user_id,
                "type": notice.type,
                "critical": notice.critical,
                "pushable": notice.pushable,
            }
        )
        await append_once(
            self._redis,
            self._keys.push_stream,
            self._keys.router_appended,
            [(f"p{notification_id}", notice.type, push)],
        )

    async def _send_counts(self, user_id: int, member: str) -> None:
        counts = envelope("unread_count", await unread_counts(self._pool, user_id))
        await self._to_user(user_id, [(member, "unread_count", counts)])

    async def _to_user(self, user_id: int, entries: list[tuple[str, str, str]]) -> None:
        """Append to the user's own stream (history, resume) and mirror to the live
        stream the gateway hubs follow."""
        await append_once(
            self._redis,
            self._keys.user_stream(user_id),
            self._keys.router_appended,
            entries,
            mirror=(self._keys.live_stream, str(user_id)),
        )


async def _directory(conn: asyncpg.Connection) -> Directory:
    rows = await conn.fetch("SELECT id, role FROM users ORDER BY id")

    def lookup(roles: frozenset[Role] | None) -> list[int]:
        return [row["id"] for row in rows if roles is None or Role(row["role"]) in roles]

    return lookup


def _no_directory(roles: frozenset[Role] | None) -> list[int]:
    raise LookupError("this event type does not consult the user directory")
