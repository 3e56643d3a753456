"""The PostgreSQL pool: JSON codecs set once, so jsonb columns read and write as Python;
deadlines on connecting and on waiting for a free connection, so that a request facing a
stalled or unreachable database fails (503) instead of hanging."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from asyncpg.pool import PoolAcquireContext

CONNECT_TIMEOUT_S = 5.0
ACQUIRE_TIMEOUT_S = 10.0  # connecting included
COMMAND_TIMEOUT_S = 30.0


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=_dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pooled connections keep no session state (no SET, LISTEN or session locks: those
    live on dedicated connections), so the reset query asyncpg sends on every release
    would be a wasted round trip; open transactions are still rolled back."""


class Pool(asyncpg.Pool):  # type: ignore[misc]
    """asyncpg's pool, whose `acquire` (and so `fetch`, `execute`…) waits
    ACQUIRE_TIMEOUT_S at most unless told otherwise."""

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        return super().acquire(timeout=ACQUIRE_TIMEOUT_S if timeout is None else timeout)


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = Pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=_init_connection,
        reset=_keep_session,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        command_timeout=COMMAND_TIMEOUT_S,
        timeout=CONNECT_TIMEOUT_S,
    )
    await pool
    return pool


async def connect(
    dsn: str,
    server_settings: dict[str, str] | None = None,
    command_timeout: float | None = None,
    connect_timeout_s: float = 60,
) -> asyncpg.Connection:
    """A single connection (LISTEN, advisory locks) with the same codecs as the pool."""
    conn: asyncpg.Connection = await asyncpg.connect(
        dsn,
        server_settings=server_settings,
        command_timeout=command_timeout,
        timeout=connect_timeout_s,
    )
    await _init_connection(conn)
    return conn
