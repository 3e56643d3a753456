"""The outbox relay: appends committed domain events to the Redis domain stream.

One relay leads at a time (a PostgreSQL advisory lock held by its connection, released
if its process dies), so events are appended in the order they became visible; the
others stand by. The `published_at` flag is the cursor, not the id: ids are taken
before commit and may become visible out of order. Appending is idempotent
(`append_once`), so a crash between appending and marking repeats nothing. While Redis
is down the rows wait; the relay catches up when it returns. A commit's NOTIFY is only a
wake-up hint, sent at a low rate (`uow.WakeHints`); polling is the truth. When Redis comes
back without its data, the leader gives again what the lost history held unfinished
(`redrive.HistoryWatch`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
from redis.asyncio import Redis

from gateway.db import connect
from gateway.keys import Keys
from gateway.lifecycle import LINGER_S
from gateway.metrics import EVENTS_RELAYED
from gateway.pipeline.redrive import HistoryWatch
from gateway.services.outbox import HINT_EVERY_S, OUTBOX_CHANNEL
from gateway.streams import append_once
from gateway.supervision import Loop, run_loops, shielded
from gateway.wire import envelope

log = logging.getLogger(__name__)

LEADER_LOCK = 0x0F100DBE11  # pg_advisory_lock key of the relay leader
BATCH = 500
# Once woken, read until nothing new has come for this long: writers send one wake-up
# hint per HINT_EVERY_S, and what they commit in between must not wait for the poll.
# The margin covers a commit that lands a little after its writer decided not to hint.
QUIET_S = 4 * HINT_EVERY_S
PASS_BUDGET_S = 1.0  # a busy pass ends after this (and the next begins): progress shows
# The leader's connection is dedicated (it holds the lock): a half-open one must be
# noticed. Every query has a deadline, and PostgreSQL probes the client (keepalives), so
# a lock held by a vanished relay is released within about half a minute.
COMMAND_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
SERVER_SETTINGS = {
    # This connection only marks rows published. A mark lost in a crash costs nothing
    # (the row is appended again, and `append_once` drops it), so its commits need not
    # wait for the disk: one flush less per batch.
    "synchronous_commit": "off",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}


class OutboxRelay:
    def __init__(
        self, dsn: str, redis: Redis, keys: Keys, poll_s: float = 0.5, redrive_window_h: int = 24
    ) -> None:
        self._dsn = dsn
        self._redis = redis
        self._keys = keys
        self._poll_s = poll_s
        self._history = HistoryWatch(redis, keys, redrive_window_h)
        self._wake = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._leading = False
        self._last_news = -QUIET_S

    def loop(self) -> Loop:
        """One pass: lead if no other relay does, then publish what is waiting; between
        passes, the poll period or a commit's wake-up hint, whichever comes first."""
        return Loop("relay", self.run_pass, self._poll_s, again_while_busy=True,
                    wake=self._wake, drain=self.close)  # fmt: skip

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until stopped (on a supervisor of its own)."""
        await run_loops(stop, self.loop())

    async def run_pass(self) -> bool:
        """Whether work remains. Any failure drops the connection (and the lead with
        it): whatever state it was left in, the next pass starts on a fresh one."""
        try:
            conn = await self._connection()
            if not self._leading:
                if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK):
                    return False  # another relay leads: stand by
                self._leading = True
                log.info("relay: leading")
            woken = self._wake.is_set()
            self._wake.clear()
            if await self._history.check(conn):
                woken = True  # what the lost history held is waiting again
            return await self._publish_until_quiet(conn, woken)
        except BaseException:
            self._drop()
            raise

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._leading = False
            conn = await connect(
                self._dsn,
                server_settings=SERVER_SETTINGS,
                command_timeout=COMMAND_TIMEOUT_S,
                connect_timeout_s=CONNECT_TIMEOUT_S,
            )
            await conn.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        conn, self._conn, self._leading = self._conn, None, False
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def close(self) -> None:
        conn, self._conn, self._leading = self._conn, None, False
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), CONNECT_TIMEOUT_S)
            except (TimeoutError, OSError, asyncpg.InterfaceError):
                conn.terminate()

    async def _publish_until_quiet(self, conn: asyncpg.Connection, woken: bool) -> bool:
        """Publish what is waiting, then, after a hint or while work keeps coming, read
        every few milliseconds until QUIET_S has passed without anything new (or the
        pass has run for PASS_BUDGET_S: then work remains)."""
        started = time.monotonic()
        if woken:
            self._last_news = started
        while True:
            published = await self.publish_batch(conn)
            now = time.monotonic()
            if published:
                self._last_news = now
            elif now - self._last_news >= QUIET_S:
                return False
            if now - started >= PASS_BUDGET_S:
                return True
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
        await shielded(conn.execute(
            "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
            [row["id"] for row in rows],
        ))  # fmt: skip
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
