"""When a notification reached an open app: the hub's stamps, written by a supervised loop
once a second; a database that drops the connection costs the stamps of that moment, and
the next pass writes again."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest

from gateway.config import Settings
from gateway.db import create_pool
from gateway.realtime.framed import FramedStamps
from gateway.services import inbox
from gateway.supervision import Loop, Supervisor
from tests.faults.proxy import Proxy
from tests.helpers import eventually, fresh_user


@pytest.fixture
async def own_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    yield pool
    await pool.close()


async def new_notification(db: asyncpg.Pool) -> int:
    user = await fresh_user(db)
    return int(await db.fetchval(
        "INSERT INTO notifications (user_id, event_id, type, title, body)"
        " VALUES ($1, -1, 'broadcast', 't', 'b') RETURNING id", user,
    ))  # fmt: skip


async def framed_at(db: asyncpg.Pool, notification_id: int) -> object:
    return await db.fetchval("SELECT framed_at FROM notifications WHERE id = $1", notification_id)


async def test_stamps_are_written_and_the_first_holds(
    db: asyncpg.Pool, own_pool: asyncpg.Pool
) -> None:
    stamps = FramedStamps(lambda ids, at: inbox.stamp_framed(own_pool, ids, at))
    first = await new_notification(db)
    stamps.note(first)
    await stamps.flush()
    stamped = await framed_at(db, first)
    assert stamped is not None
    stamps.note(first)  # framed again by another connection, later
    await stamps.flush()
    assert await framed_at(db, first) == stamped


async def test_a_database_outage_costs_only_that_moments_stamps(
    db: asyncpg.Pool, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = settings.database_url.split("@", 1)[1].split("/", 1)[0].split(":")
    proxy = await Proxy(host, int(port)).start()
    pool = await create_pool(proxy.postgres_url(settings.database_url), min_size=1, max_size=1)
    stamps = FramedStamps(lambda ids, at: inbox.stamp_framed(pool, ids, at))
    supervisor = Supervisor()
    supervisor.add(Loop("framed_stamps", stamps.flush, 0.05))
    lost, kept = await new_notification(db), await new_notification(db)
    try:
        await proxy.refuse()  # PostgreSQL is gone: connections cut, new ones refused
        stamps.note(lost)
        with caplog.at_level(logging.WARNING):
            supervisor.start()
            await eventually(lambda: _logged(caplog, "framed_stamps"))  # the pass failed
        await proxy.start()
        stamps.note(kept)
        await eventually(lambda: framed_at(db, kept))  # the loop went on, reconnected
        assert await framed_at(db, lost) is None
    finally:
        await supervisor.stop()
        pool.terminate()
        await proxy.stop()


async def _logged(caplog: pytest.LogCaptureFixture, name: str) -> bool:
    return name in caplog.text
