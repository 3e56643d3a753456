"""The PostgreSQL pool: JSON codecs set once, so jsonb columns read and write as Python."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=_dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pooled connections keep no session state (no SET, LISTEN or session locks: those
    live on dedicated connections), so the reset query asyncpg sends on every release
    would be a wasted round trip; open transactions are still rolled back."""


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=30,
    )
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
