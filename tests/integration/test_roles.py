"""Roles read afresh for each request, one query for the requests of one loop pass."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from gateway.services.roles import Roles
from tests.helpers import fresh_user


class CountingPool:
    """The real pool, with its queries counted."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.queries = pool, 0

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        self.queries += 1
        return await self.pool.fetch(query, *args)


async def test_concurrent_lookups_share_one_query(db: asyncpg.Pool, users: dict[str, int]) -> None:
    pool = CountingPool(db)
    roles = Roles(pool)  # type: ignore[arg-type]
    asked = [users["admin"], users["tech1"], users["admin"], 2**62]  # the last one: no account
    found = await asyncio.gather(*(roles.of(user_id) for user_id in asked * 50))
    assert found == ["admin", "technician", "admin", None] * 50
    assert pool.queries == 1


async def test_a_lone_lookup_sees_the_current_role(db: asyncpg.Pool, users: dict[str, int]) -> None:
    roles = Roles(db)
    user_id = await fresh_user(db, "operator")
    assert await roles.of(user_id) == "operator"
    await db.execute("UPDATE users SET role = 'supervisor' WHERE id = $1", user_id)
    assert await roles.of(user_id) == "supervisor"
    await db.execute("DELETE FROM users WHERE id = $1", user_id)
    assert await roles.of(user_id) is None


async def test_a_failed_query_reaches_every_caller(db: asyncpg.Pool) -> None:
    roles = Roles(db)
    results = await asyncio.gather(
        roles.of(1),
        roles.of(2**63),
        return_exceptions=True,  # out of bigint range
    )
    assert all(isinstance(result, (asyncpg.PostgresError, OverflowError)) for result in results)
    assert await roles.of(2**62) is None  # the next pass asks again
