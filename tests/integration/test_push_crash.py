"""A `floorbell worker` SIGKILLed in the middle of its pushes loses none, and the worker
that takes over repeats no push recorded as sent.

Real processes on a database and Redis prefix of their own (the session's worker must not
take part), a push service of our own that is slow to answer so the kill lands mid-batch.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from domain.events import BroadcastSent
from gateway.config import Settings
from gateway.db import create_pool
from gateway.keys import PUSH_GROUP, Keys
from gateway.ops.migrate import migrate
from gateway.ops.provision import drop_database, ensure_database
from gateway.services.outbox import UnitOfWork
from tests.faults.report import FaultReport, Row
from tests.helpers import eventually, fresh_user
from tests.push_fixtures import ROOT, FakePushService

NOTIFICATIONS = 20


@pytest.fixture
async def own_database(database_url: str) -> AsyncIterator[str]:
    url = database_url.rsplit("/", 1)[0] + f"/floorbell_pushcrash_{uuid.uuid4().hex[:8]}"
    ensure_database(url)
    migrate(url)
    yield url
    drop_database(url)


def start_worker(settings: Settings, database_url: str, prefix: str, service: FakePushService,
                 name: str) -> subprocess.Popen[bytes]:  # fmt: skip
    env = {
        **os.environ, "DATABASE_URL": database_url, "REDIS_URL": settings.redis_url,
        "REDIS_PREFIX": prefix, "JWT_SECRET": settings.jwt_secret, "INSTANCE_ID": name,
        "VAPID_PUBLIC_KEY": settings.vapid_public_key,
        "VAPID_PRIVATE_KEY": settings.vapid_private_key,
        "PUSH_ENDPOINT_ALLOW": service.origin, "PUSH_CONCURRENCY": "3", "PUSH_CLAIM_IDLE_MS": "500",
        "WORKER_HEALTH_PORT": "0",
    }  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "gateway", "worker"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


async def subscribed_user(pool: asyncpg.Pool, service: FakePushService) -> int:
    """Someone who wants broadcasts pushed, with one device on `service`."""
    user_id = await fresh_user(pool)
    await service.subscribe(pool, user_id)
    return user_id


async def sent(pool: asyncpg.Pool) -> set[int]:
    rows = await pool.fetch("SELECT notification_id FROM push_logs WHERE status = 'sent'")
    return {row["notification_id"] for row in rows}


async def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_no_recorded_send(
    own_database: str, settings: Settings, redis: Redis
) -> None:
    prefix = f"pushcrash-{uuid.uuid4().hex[:8]}:"
    keys = Keys(prefix)
    pool = await create_pool(own_database)
    service = await FakePushService(delay_s=0.25).start()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        user_id = await subscribed_user(pool, service)
        workers.append(start_worker(settings, own_database, prefix, service, "doomed"))
        async with UnitOfWork(pool) as uow:
            for n in range(NOTIFICATIONS):
                uow.emit(
                    BroadcastSent(None, f"Shift note {n}", "Line 2 restarts at 14:00", [user_id])
                )
            await uow.commit()

        async def mid_batch() -> bool:
            routed = await redis.xlen(keys.push_stream) == NOTIFICATIONS
            return routed and len(service.received) >= 5

        assert await eventually(mid_batch, 30), "the first worker never got going"
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        recorded = await sent(pool)
        received_before = len(service.received)
        assert 0 < len(recorded) < NOTIFICATIONS

        workers.append(start_worker(settings, own_database, prefix, service, "heir"))
        wanted = {row["id"] for row in await pool.fetch("SELECT id FROM notifications")}
        assert len(wanted) == NOTIFICATIONS
        assert await eventually(lambda: all_sent(pool, wanted), 30), (
            "the claimed entries were not finished"
        )

        after = [r.payload["data"]["notification_id"] for r in service.received[received_before:]
                 if r.payload]  # fmt: skip
        pushes = Counter(service.notification_ids())
        FaultReport.shared().add(Row("worker SIGKILLed, heir after: pushes", len(wanted),
                                     len(wanted & set(pushes)), sum(n - 1 for n in pushes.values()),
                                     None, "tests/integration"))  # fmt: skip
        assert not recorded & set(after)  # what was recorded as sent never went out again
        assert set(service.notification_ids()) == wanted  # nothing lost
        sent_rows = await pool.fetchval("SELECT count(*) FROM push_logs WHERE status = 'sent'")
        assert sent_rows == NOTIFICATIONS  # one device, one record per notification
        assert await eventually(lambda: nothing_pending(redis, keys), 10)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                await asyncio.to_thread(worker.wait, 20)
        await service.stop()
        await pool.close()
        await _drop_keys(redis, prefix)


async def all_sent(pool: asyncpg.Pool, wanted: set[int]) -> bool:
    return await sent(pool) == wanted


async def nothing_pending(redis: Redis, keys: Keys) -> bool:
    pending: Any = await redis.xpending(keys.push_stream, PUSH_GROUP)
    return bool(pending["pending"] == 0)


async def _drop_keys(redis: Redis, prefix: str) -> None:
    found = [key async for key in redis.scan_iter(f"{prefix}*")]
    if found:
        await redis.delete(*found)
