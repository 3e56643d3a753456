"""Each request's role, read afresh from PostgreSQL, one query for every request that
asks during the same pass of the event loop.

The role is never taken from the token alone: a demotion or a deleted account takes
effect on the next request. Under load (a storm of SSE reconnects, a burst of API
calls) one query per request would queue on the pool; here concurrent requests share
a query, and a lone request still costs exactly one.
"""

from __future__ import annotations

import asyncio

import asyncpg

_ROLES = "SELECT id, role FROM users WHERE id = ANY($1::bigint[])"


class Roles:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._pending: dict[int, list[asyncio.Future[str | None]]] = {}
        self._fetching: set[asyncio.Task[None]] = set()

    async def of(self, user_id: int) -> str | None:
        """The user's current role, or None when the account no longer exists."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str | None] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.setdefault(user_id, []).append(future)
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        task = asyncio.create_task(self._fetch(pending))
        self._fetching.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._fetching.discard)

    async def _fetch(self, pending: dict[int, list[asyncio.Future[str | None]]]) -> None:
        waiting = [future for futures in pending.values() for future in futures]
        try:
            rows = await self._pool.fetch(_ROLES, list(pending))
        except Exception as exc:  # PostgreSQL is down: every caller learns it
            for future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled at shutdown: so are the callers
            for future in waiting:
                future.cancel()
            raise
        roles = {row["id"]: row["role"] for row in rows}
        for user_id, futures in pending.items():
            for future in futures:
                if not future.done():  # a caller cancelled meanwhile
                    future.set_result(roles.get(user_id))
