"""Helpers the tests share (fixtures stay in the conftest files): authentication, waiting
for something to happen, people of one's own, and what a gateway records in Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar

import aiohttp
import asyncpg
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.db import create_pool
from gateway.ops.migrate import migrate
from gateway.ops.provision import drop_database, ensure_database
from gateway.ops.seed import seed
from gateway.realtime.presence import Presence
from gateway.services.credentials import issue_token
from gateway.wire import ENVELOPE_B
from tests.gateway_process import GatewayProcess

PASSWORD = "floorbell"  # of the seeded demo users
T = TypeVar("T")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(secret: str, user_id: int, role: str = "technician") -> str:
    return issue_token(secret, user_id, role, 3600)


async def eventually(
    probe: Callable[[], Awaitable[T]], timeout_s: float = 5.0, interval_s: float = 0.05
) -> T:
    """Poll an async probe until it returns something truthy, and return that; fail the
    test when it never does."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still {value!r} after {timeout_s} s")
        await asyncio.sleep(interval_s)


async def fresh_user(
    db: asyncpg.Pool | asyncpg.Connection, role: str = "technician", language: str = "fr"
) -> int:
    """A person of one's own per test: no other test's notifications, counts or devices.
    They read French, like a new account (`language="en"` for an English reader)."""
    tag = uuid.uuid4().hex[:10]
    return int(await db.fetchval(
        "INSERT INTO users (email, full_name, role, password_hash, language)"
        " VALUES ($1, $2, $3, 'x', $4) RETURNING id",
        f"user-{tag}@example.com", f"Tester {tag}", role, language,
    ))  # fmt: skip


async def stream_events(redis: Redis, stream: str) -> list[dict[str, Any]]:
    """Every envelope of a stream, with its entry id as `stream_id`."""
    return [
        json.loads(fields[ENVELOPE_B]) | {"stream_id": entry_id.decode()}
        for entry_id, fields in await redis.xrange(stream)
    ]


async def record_connection(presence: Presence, user_id: int, conn_id: str) -> None:
    """What a gateway records when one of `user_id`'s SSE connections opens."""
    async with presence.redis.pipeline(transaction=False) as pipe:
        presence.connect(pipe, user_id, conn_id)
        await pipe.execute()


async def record_disconnect(presence: Presence, user_id: int, conn_id: str) -> None:
    """What a gateway records when that connection closes."""
    async with presence.redis.pipeline(transaction=False) as pipe:
        presence.disconnect(pipe, user_id, conn_id)
        await pipe.execute()


async def api(
    session: aiohttp.ClientSession,
    gateway: GatewayProcess,
    token: str,
    method: str,
    path: str,
    body: Any = None,
) -> Any:
    """Call a gateway process's API as someone; anything but success fails the test."""
    headers = bearer(token)
    async with session.request(method, gateway.url + path, json=body, headers=headers) as response:
        assert response.status < 300, (response.status, await response.text())
        return await response.json()


@asynccontextmanager
async def own_floor(settings: Settings) -> AsyncIterator[tuple[Settings, asyncpg.Pool]]:
    """A database and a key prefix of its own, migrated and seeded with the demo data: for
    tests whose clock moves ahead in time, which would otherwise act on every other test's
    tickets too. Dropped afterwards."""
    tag = uuid.uuid4().hex[:8]
    url = settings.database_url.rsplit("/", 1)[0] + f"/floorbell_floor_{tag}"
    ensure_database(url)
    migrate(url)
    own = replace(settings, database_url=url, redis_prefix=f"{settings.redis_prefix}{tag}:")
    pool = await create_pool(url)
    try:
        async with pool.acquire() as conn:
            await seed(conn, PASSWORD)
        yield own, pool
    finally:
        await pool.close()
        drop_database(url)
