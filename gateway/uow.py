"""A unit of work: one PostgreSQL transaction that rolls back unless committed, and
writes the events of what it touched to the outbox in that same transaction."""

from __future__ import annotations

from types import TracebackType

import asyncpg

from domain.events import Event

OUTBOX_CHANNEL = "floorbell_outbox"
# One round trip for the events and the relay's wake-up hint (its polling stays the
# source of truth). A data-modifying WITH always runs in full; rows go in array order.
_STORE_EVENTS = (
    "WITH stored AS (INSERT INTO outbox (event_type, actor_id, payload)"
    " SELECT * FROM unnest($1::text[], $2::bigint[], $3::jsonb[]))"
    f" SELECT pg_notify('{OUTBOX_CHANNEL}', '')"
)


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
            events = self._events
            await self.conn.execute(
                _STORE_EVENTS,
                [e.type for e in events],
                [e.actor_id for e in events],
                [e.payload() for e in events],
            )
        await self._tx.commit()
        self._committed = True
