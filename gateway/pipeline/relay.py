"""The outbox relay: appends committed domain events to the Redis domain stream.

One relay leads at a time (a PostgreSQL advisory lock held by its connection, released
if its process dies), so events are appended in the order they became visible; the
others stand by. The `published_at` flag is the cursor, not the id: ids are taken
before commit and may become visible out of order. Appending is idempotent
(`append_once`), so a crash between appending and marking repeats nothing. While Redis
is down the rows wait; the relay catches up when it returns. A commit's NOTIFY is only a
wake-up hint, sent at a low rate (`uow.WakeHints`); polling is the truth.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.db import connect
from gateway.keys import Keys
from gateway.lifecycle import LINGER_S, sleep_unless_stopped
from gateway.metrics import EVENTS_RELAYED
from gateway.retry import Backoff
from gateway.services.outbox import HINT_EVERY_S, OUTBOX_CHANNEL
from gateway.streams import append_once
from gateway.wire import envelope

log = logging.getLogger(__name__)

LEADER_LOCK = 0x0F100DBE11  # pg_advisory_lock key of the relay leader
BATCH = 500
# Once woken, read until nothing new has come for this long: writers send one wake-up
# hint per HINT_EVERY_S, and what they commit in between must not wait for the poll.
# The margin covers a commit that lands a little after its writer decided not to hint.
QUIET_S = 4 * HINT_EVERY_S


class OutboxRelay:
    def __init__(
        self, dsn: str, redis: Redis, keys: Keys, poll_s: float = 0.5, standby_s: float = 1.0
    ) -> None:
        self._dsn = dsn
        self._redis = redis
        self._keys = keys
        self._poll_s = poll_s
        self._standby_s = standby_s
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                await self._run_connected(stop)
                return
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("relay: database unavailable (%s); retrying", exc)
                await sleep_unless_stopped(stop, backoff.next_delay())

    async def _run_connected(self, stop: asyncio.Event) -> None:
        # This connection only marks rows published. A mark lost in a crash costs nothing
        # (the row is appended again, and `append_once` drops it), so its commits need not
        # wait for the disk: one flush less per batch.
        conn = await connect(self._dsn, server_settings={"synchronous_commit": "off"})
        try:
            await conn.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
            while not stop.is_set():
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK):
                    await self._lead(conn, stop)
                    return
                await sleep_unless_stopped(stop, self._standby_s)
        finally:
            await conn.close()

    async def _lead(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        log.info("relay: leading")
        backoff = Backoff()
        while not stop.is_set():
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                await self._publish_until_quiet(conn, woken)
                backoff.reset()
                delay = self._poll_s
            except RedisError as exc:
                delay = backoff.next_delay()
                log.warning("relay: Redis unavailable (%s); retrying in %.1fs", exc, delay)
            await _wait_any(stop, self._wake, delay)

    async def _publish_until_quiet(self, conn: asyncpg.Connection, woken: bool) -> None:
        """Publish what is waiting, then, after a hint or while work keeps coming, read
        every few milliseconds until QUIET_S has passed without anything new."""
        last_news = time.monotonic() if woken else -QUIET_S
        while True:
            published = await self.publish_batch(conn)
            if published:
                last_news = time.monotonic()
            elif time.monotonic() - last_news >= QUIET_S:
                return
            if published < BATCH:
                await asyncio.sleep(LINGER_S)

    async def publish_batch(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(
            "SELECT id, event_type, actor_id, payload, created_at FROM outbox"
            " WHERE published_at IS NULL ORDER BY id LIMIT $1",
            BATCH,
        )
        if not rows:
            return 0
        entries = [(str(row["id"]), row["event_type"], _stored(row)) for row in rows]
        appended = await append_once(
            self._redis, self._keys.domain_stream, self._keys.relay_published, entries
        )
        EVENTS_RELAYED.inc(len(appended))
        await conn.execute(
            "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
            [row["id"] for row in rows],
        )
        return len(rows)


def _stored(row: asyncpg.Record) -> str:
    data: dict[str, Any] = row["payload"]
    return envelope(
        row["event_type"],
        data,
        row["actor_id"],
        row["created_at"].isoformat(),
        outbox_id=row["id"],
    )


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, delay_s: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=delay_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
