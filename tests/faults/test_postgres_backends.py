"""PostgreSQL terminates every session of the test's database (`pg_terminate_backend`, as
an operator does, or a failover) again and again while a `floorbell worker` relays and
routes: its leader connection, its pool and the writers' connections all die. Events
committed before, during and after arrive once each, and the worker says it is ready."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

import aiohttp
import asyncpg
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import Keys
from tests.faults.faults import terminate_backends
from tests.faults.report import FaultReport, Row
from tests.faults.watch import StreamWatch, broadcast, committed_titles
from tests.gateway_process import WorkerProcess
from tests.helpers import eventually, fresh_user

TERMINATIONS = 6
EVERY_S = 0.4


async def write_while(pool: asyncpg.Pool, user: int, phase: str, until: asyncio.Event) -> None:
    """Commit a broadcast every 50 ms until `until` is set; a failed commit is tried
    again under a new title."""
    n = 0
    while not until.is_set():
        await broadcast(pool, user, f"{phase}-{n}")
        n += 1
        await asyncio.sleep(0.05)


async def ready(worker: WorkerProcess) -> bool:
    """Whether the worker's `/readyz` says it is."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
            async with session.get(worker.health_url + "/readyz") as response:
                return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def whole(pool: asyncpg.Pool) -> bool:
    """Whether every connection of the pool can still be had."""
    held = [await pool.acquire(timeout=2) for _ in range(pool.get_max_size())]
    for conn in held:
        await pool.release(conn)
    return True


async def test_terminated_backends_lose_and_repeat_nothing(
    own_database: str, own_prefix: str, pool: asyncpg.Pool, redis: Redis, settings: Settings,
    fault_report: FaultReport,
) -> None:  # fmt: skip
    mine = replace(settings, database_url=own_database, redis_prefix=own_prefix)
    user = await fresh_user(pool)
    worker = WorkerProcess(mine, f"fault-pgterm-{uuid.uuid4().hex[:6]}")
    try:
        await asyncio.to_thread(worker.wait_ready)
        async with StreamWatch(redis, Keys(own_prefix).user_stream(user)) as watch:
            for n in range(3):
                assert await broadcast(pool, user, f"before-{n}")
            assert await eventually(lambda: watch.has_all({f"before-{n}" for n in range(3)}), 15)

            done = asyncio.Event()
            writer = asyncio.create_task(write_while(pool, user, "during", done))
            terminated = 0
            for _ in range(TERMINATIONS):
                terminated += await terminate_backends(own_database)
                back_at = time.monotonic()  # the database serves again at once
                # Writes at once, on pooled connections whose backends are going away.
                await asyncio.gather(*(broadcast(pool, user, f"at-once-{back_at}-{n}")
                                       for n in range(2)))  # fmt: skip
                await asyncio.sleep(EVERY_S)
            done.set()
            await writer
            for n in range(3):
                assert await eventually(lambda n=n: broadcast(pool, user, f"after-{n}"), 10)

            committed = await committed_titles(pool)
            await eventually(lambda: watch.has_all(committed), 20)
            await asyncio.sleep(0.5)  # a duplicate would come meanwhile
        row = Row.of("PostgreSQL backends terminated (x6)", committed, watch.arrivals, back_at,
                     f"{terminated} sessions terminated")  # fmt: skip
        fault_report.add(row)
        assert terminated >= TERMINATIONS  # the worker's sessions were among them
        assert row.exactly_once, (row, worker.log_tail())
        assert await eventually(lambda: ready(worker), 10)
        assert await whole(pool)  # the writers' failed transactions gave their connections back
    finally:
        await asyncio.to_thread(worker.stop)
