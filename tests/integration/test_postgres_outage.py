"""PostgreSQL going away, for real, answers every request with a 503 JSON error and
`Retry-After` — the connection cut (its host gone: existing sockets reset, new ones
refused), the server out of connection slots, the pool exhausted — and the gateway
serves again once the database is back. Nothing is half written meanwhile."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from gateway import db as db_module
from gateway.api.app import create_app
from gateway.api.resources import EXTENSION
from gateway.config import Settings
from tests.faults.proxy import Proxy
from tests.helpers import bearer, eventually

TICKET = {"title": "Written during an outage?", "machine_id": 1}


def with_netloc(url: str, netloc: str) -> str:
    return urlsplit(url)._replace(netloc=netloc).geturl()


async def assert_unavailable(client: Any, token: str) -> None:
    """Reads, writes and the session check all answer 503 with `Retry-After`."""
    for method, path, body in (
        ("POST", "/api/tickets", TICKET),
        ("GET", "/api/tickets", None),
        ("GET", "/api/auth/me", None),
        ("GET", "/api/notifications", None),
    ):
        response = await client.open(path, method=method, json=body, headers=bearer(token))
        assert response.status_code == 503, (path, await response.get_data())
        assert int(response.headers["Retry-After"]) > 0
        error = (await response.get_json())["error"]
        assert error["code"] == "unavailable" and "retry" in error["message"]


async def tickets_titled(db: asyncpg.Pool, title: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM tickets WHERE title = $1", title))


@pytest.fixture
async def proxy(settings: Settings) -> AsyncIterator[Proxy]:
    parts = urlsplit(settings.database_url)
    assert parts.port is not None
    cut = Proxy(parts.hostname or "127.0.0.1", parts.port)
    await cut.start()
    yield cut
    await cut.stop()


async def test_a_lost_database_is_a_503_until_it_is_back(
    settings: Settings, db: asyncpg.Pool, tokens: dict[str, str], proxy: Proxy
) -> None:
    title = f"outage {uuid.uuid4().hex}"
    url = with_netloc(settings.database_url, f"postgres@127.0.0.1:{proxy.port}")
    app = create_app(replace(settings, database_url=url))
    async with app.test_app() as test_app:
        client, token = test_app.test_client(), tokens["operator"]
        ticket = {**TICKET, "title": title}
        created = await client.post("/api/tickets", json=ticket, headers=bearer(token))
        assert created.status_code == 201

        await proxy.refuse()  # pooled connections reset, new ones refused
        await assert_unavailable(client, token)
        failed = await client.post("/api/tickets", json=ticket, headers=bearer(token))
        assert failed.status_code == 503

        await proxy.start()

        async def created_again() -> bool:
            response = await client.post("/api/tickets", json=ticket, headers=bearer(token))
            return bool(response.status_code == 201)

        assert await eventually(created_again)
    assert await tickets_titled(db, title) == 2  # the one before, the one after: no other


async def test_no_connection_slots_left_is_a_503(
    settings: Settings, db: asyncpg.Pool, tokens: dict[str, str]
) -> None:
    role = f"fb_slots_{uuid.uuid4().hex[:12]}"
    await db.execute(f"CREATE ROLE {role} LOGIN")  # a superuser would ignore the limit
    for kind in ("TABLES", "SEQUENCES"):
        await db.execute(f"GRANT ALL ON ALL {kind} IN SCHEMA public TO {role}")
    try:
        url = with_netloc(
            settings.database_url, f"{role}@{urlsplit(settings.database_url).netloc.split('@')[-1]}"
        )
        app = create_app(replace(settings, database_url=url))
        async with app.test_app() as test_app:
            client = test_app.test_client()
            assert (
                await client.get("/api/auth/me", headers=bearer(tokens["admin"]))
            ).status_code == 200
            await db.execute(f"ALTER ROLE {role} CONNECTION LIMIT 0")
            await db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role
            )
            await assert_unavailable(client, tokens["admin"])  # terminated, then refused
            await db.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")

            async def served() -> bool:
                me = await client.get("/api/auth/me", headers=bearer(tokens["admin"]))
                return bool(me.status_code == 200)

            assert await eventually(served)
    finally:
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role
        )
        await db.execute(f"DROP OWNED BY {role}")
        await db.execute(f"DROP ROLE {role}")


async def test_an_exhausted_pool_is_a_503_after_its_deadline(
    settings: Settings, db: asyncpg.Pool, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "ACQUIRE_TIMEOUT_S", 0.3)
    app = create_app(settings)
    async with app.test_app() as test_app:
        pool = app.extensions[EXTENSION].pool
        held = [await pool.acquire() for _ in range(pool.get_max_size())]
        try:
            await assert_unavailable(test_app.test_client(), tokens["admin"])
        finally:
            for conn in held:
                await pool.release(conn)
        response = await test_app.test_client().get("/api/auth/me", headers=bearer(tokens["admin"]))
        assert response.status_code == 200
