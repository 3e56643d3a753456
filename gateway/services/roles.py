"""Each request's role, read afresh from PostgreSQL, one query for every request that
asks during the same pass of the event loop (`gateway.realtime.batching`).

The role is never taken from the token alone: a demotion or a deleted account takes
effect on the next request. Under load (a storm of SSE reconnects, a burst of API
calls) one query per request would queue on the pool; here concurrent requests share
a query, and a lone request still costs exactly one.
"""

from __future__ import annotations

import asyncpg

from gateway.realtime.batching import Coalesced

_ROLES = "SELECT id, role FROM users WHERE id = ANY($1::bigint[])"
MAX_BATCH = 2000


class Roles:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._batches = Coalesced(self._fetch, MAX_BATCH)

    async def of(self, user_id: int) -> str | None:
        """The user's current role, or None when the account no longer exists."""
        return await self._batches.ask(user_id)

    async def _fetch(self, user_ids: list[int]) -> list[str | None]:
        rows = await self._pool.fetch(_ROLES, list(set(user_ids)))
        roles: dict[int, str] = {row["id"]: row["role"] for row in rows}
        return [roles.get(user_id) for user_id in user_ids]
