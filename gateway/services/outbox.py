"""A unit of work: one PostgreSQL transaction that rolls back unless committed, and
writes the events of what it touched to the outbox in that same transaction."""

from __future__ import annotations

import time
from types import TracebackType

import asyncpg

from domain.events import Event

OUTBOX_CHANNEL = "floorbell_outbox"
HINT_EVERY_S = 0.005
# One round trip for the events and, when one is due, the relay's wake-up hint (its
# polling stays the source of truth). A data-modifying WITH always runs in full; rows go
# in array order.
_STORE_EVENTS = (
    "WITH stored AS (INSERT INTO outbox (event_type, actor_id, payload)"
    " SELECT * FROM unnest($1::text[], $2::bigint[], $3::jsonb[]))"
)
_STORE_EVENTS_AND_HINT = _STORE_EVENTS + f" SELECT pg_notify('{OUTBOX_CHANNEL}', '')"
_STORE_EVENTS_ONLY = _STORE_EVENTS + " SELECT 1"


class WakeHints:
    """Which commits carry the relay's wake-up hint. NOTIFY takes a database-wide lock at
    commit, so a burst of writes sends one hint per `every_s`, not one per commit. The
    relay, once woken, keeps reading until nothing new has come for longer than that
    (`relay.QUIET_S`), so the commits that went without are found within milliseconds."""

    def __init__(self, every_s: float = HINT_EVERY_S) -> None:
        self._every_s = every_s
        self._last_sent = -every_s

    def due(self) -> bool:
        return time.monotonic() - self._last_sent >= self._every_s

    def sent(self) -> None:
        """A hint has committed (only then: one rolled back woke nobody)."""
        self._last_sent = time.monotonic()


class UnitOfWork:
    def __init__(self, pool: asyncpg.Pool, hints: WakeHints | None = None) -> None:
        """`hints`: the process's shared `WakeHints`; without, every commit hints."""
        self._pool = pool
        self._hints = hints
        self._events: list[Event] = []
        self._committed = False

    async def __aenter__(self) -> UnitOfWork:
        conn: asyncpg.Connection = await self._pool.acquire()
        # `__aexit__` does not run when this fails: a BEGIN on a connection the server
        # closed (a restart, a terminated backend) would keep it out of the pool for good.
        try:
            self._tx = conn.transaction()
            await self._tx.start()
        except BaseException:
            await self._pool.release(conn)
            raise
        self.conn = conn
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
        hint = bool(self._events) and (self._hints is None or self._hints.due())
        if self._events:
            events = self._events
            await self.conn.execute(
                _STORE_EVENTS_AND_HINT if hint else _STORE_EVENTS_ONLY,
                [e.type for e in events],
                [e.actor_id for e in events],
                [e.payload() for e in events],
            )
        await self._tx.commit()
        self._committed = True
        if hint and self._hints is not None:
            self._hints.sent()
