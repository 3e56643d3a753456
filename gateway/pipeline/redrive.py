"""After Redis lost its data: what the lost history held that nobody had finished with,
given again.

The relay records in PostgreSQL the generation of the Redis history it publishes into
(`gateway.history`). When Redis comes back with another one (it restarted empty, its
keys were deleted, or a failover promoted a replica that may lack the last writes), the
events it took with it are known from PostgreSQL: outbox rows published but never routed
are published again, and notifications the push ladder never decided on are queued for
it again. Both are deduplicated like any retry (the router's
and the push stream's appends, the inbox's unique rows, the push log), so a re-drive
repeats nothing that went through. Board changes and notifications already routed are
not replayed: clients are told `history_lost` and refetch them.
"""

from __future__ import annotations

import logging

import asyncpg
from redis.asyncio import Redis

from gateway.history import generation
from gateway.keys import Keys
from gateway.streams import Append, append_once
from gateway.wire import push_entry

log = logging.getLogger(__name__)


class HistoryWatch:
    """The relay's view of the history generation: checked at every pass it leads."""

    def __init__(self, redis: Redis, keys: Keys, window_hours: int) -> None:
        self._redis, self._keys, self._window_hours = redis, keys, window_hours
        self._recorded: str | None = None  # what PostgreSQL says, once read

    async def current(self) -> str:
        return await generation(self._redis, self._keys)

    async def check(self, conn: asyncpg.Connection) -> bool:
        """Re-drive what a lost history held, if the generation changed; whether it did."""
        epoch = await self.current()
        if self._recorded is None:
            self._recorded = await conn.fetchval("SELECT epoch FROM relay_state") or ""
        if epoch == self._recorded:
            return False
        async with conn.transaction():
            if self._recorded:  # else: the first generation this database knows
                await self._redrive(conn, epoch)
            await conn.execute(
                "INSERT INTO relay_state (epoch) VALUES ($1)"
                " ON CONFLICT (id) DO UPDATE SET epoch = EXCLUDED.epoch",
                epoch,
            )
        self._recorded = epoch
        return True

    async def _redrive(self, conn: asyncpg.Connection, epoch: str) -> None:
        """In the transaction that records the new generation: should anything fail, all
        of it is tried again at the next pass."""
        republished = await conn.execute(
            "UPDATE outbox SET published_at = NULL"
            " WHERE published_at IS NOT NULL AND routed_at IS NULL"
        )
        undecided = await conn.fetch(
            "SELECT id, user_id, type, critical, pushable FROM notifications"
            " WHERE push_decided_at IS NULL AND created_at > now() - make_interval(hours => $1)"
            " ORDER BY id",
            self._window_hours,
        )
        entries: list[Append] = [
            (f"p{row['id']}", row["type"], push_entry(row["id"], row["user_id"], row["type"],
                                                       row["critical"], row["pushable"]))
            for row in undecided
        ]  # fmt: skip
        await append_once(self._redis, self._keys.push_stream, self._keys.router_appended, entries)
        log.warning(
            "relay: the Redis history was lost (generation %s, now %s): %s events published"
            " again, %d notifications queued for the push ladder again",
            self._recorded, epoch, republished.split()[-1], len(undecided),
        )  # fmt: skip
