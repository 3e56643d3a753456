"""Each request's role, read afresh from PostgreSQL, one query for every request that
asks during the same pass of the event loop (`gateway.realtime.batching`).

The role is never taken from the token alone: a demotion, a deleted account or a
session ended by logout (its token among `revoked_tokens`) takes effect on the next
request. Under load (a storm of SSE reconnects, a burst of API
calls) one query per request would queue on the pool; here concurrent requests share
a query, and a lone request still costs exactly one.
"""

from __future__ import annotations

import asyncpg

from gateway.realtime.batching import Coalesced

# One row per live session asked about: the n-th request's role.
_ROLES = """
SELECT q.n, u.role
FROM unnest($1::bigint[], $2::bytea[]) WITH ORDINALITY AS q (user_id, digest, n)
JOIN users u ON u.id = q.user_id
WHERE NOT EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.digest = q.digest)
"""
MAX_BATCH = 2000


class Roles:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._batches = Coalesced(self._fetch, MAX_BATCH)

    async def of(self, user_id: int, token_digest: bytes | None = None) -> str | None:
        """The user's current role; None when the account no longer exists, or when the
        session whose token has this digest was ended."""
        return await self._batches.ask((user_id, token_digest))

    async def _fetch(self, sessions: list[tuple[int, bytes | None]]) -> list[str | None]:
        user_ids, digests = zip(*sessions, strict=True)
        rows = await self._pool.fetch(_ROLES, list(user_ids), list(digests))
        roles: dict[int, str] = {row["n"]: row["role"] for row in rows}
        return [roles.get(n) for n in range(1, len(sessions) + 1)]
