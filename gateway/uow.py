"""A unit of work: one PostgreSQL transaction that rolls back unless committed, and
writes the events of what it touched to the outbox in that same transaction."""

from __future__ import annotations

from types import TracebackType

import asyncpg

from domain.events import Event

OUTBOX_CHANNEL = "floorbell_outbox"


class UnitOfWork:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._events: list[Event] = []
        self._committed = False

    async def __aenter__(self) -> UnitOfWork:
        self.conn: asyncpg.Connection = await self._pool.acquire()
        self._tx = self.conn.transaction()
        await self._tx.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed:
                await self._tx.rollback()
        finally:
            await self._pool.release(self.conn)

    def emit(self, *events: Event) -> None:
        self._events.extend(events)

    async def commit(self) -> None:
        if self._events:
            await self.conn.executemany(
                "INSERT INTO outbox (event_type, actor_id, payload) VALUES ($1, $2, $3)",
                [(e.type, e.actor_id, e.payload()) for e in self._events],
            )
            # A wake-up hint for the relay; its polling stays the source of truth.
            await self.conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")
        await self._tx.commit()
        self._committed = True
