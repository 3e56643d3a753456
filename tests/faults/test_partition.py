"""The network between a worker and Redis black-holes (a partition, a half-open NAT):
through a proxy the test controls, bytes are taken and never delivered, and the sockets
stay open, so nothing fails at once. The worker notices (its `/readyz` answers 503),
and once the network heals, everything committed meanwhile is relayed and routed, once."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import Keys
from tests.faults.proxy import Proxy
from tests.faults.report import FaultReport, Row
from tests.faults.watch import StreamWatch, broadcast, committed_titles
from tests.gateway_process import WorkerProcess
from tests.helpers import eventually, fresh_user

HOLE_S = 7.0  # longer than the client's reply deadline (5 s): the worker must notice


async def readiness(worker: WorkerProcess) -> int:
    """The status of the worker's `/readyz` (0 when it does not answer in time)."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=4)) as session:
            async with session.get(worker.health_url + "/readyz") as response:
                return response.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


async def test_a_black_holed_redis_is_noticed_and_nothing_is_lost(
    own_database: str, own_prefix: str, pool: asyncpg.Pool, redis: Redis, settings: Settings,
    redis_proxy: Proxy, fault_report: FaultReport,
) -> None:  # fmt: skip
    through = redis_proxy.redis_url(int(urlsplit(settings.redis_url).path.strip("/") or 0))
    mine = replace(settings, database_url=own_database, redis_prefix=own_prefix,
                   redis_url=through)  # fmt: skip
    worker = WorkerProcess(mine, f"fault-hole-{uuid.uuid4().hex[:6]}")
    user = await fresh_user(pool)
    try:
        await asyncio.to_thread(worker.wait_ready)
        async with StreamWatch(redis, Keys(own_prefix).user_stream(user)) as watch:
            for n in range(3):
                assert await broadcast(pool, user, f"before-{n}")
            assert await eventually(lambda: watch.has_all({f"before-{n}" for n in range(3)}), 15)

            redis_proxy.blackhole()
            hole_at, noticed_after, n = time.monotonic(), None, 0
            while time.monotonic() - hole_at < HOLE_S:
                assert await broadcast(pool, user, f"during-{n}")
                n += 1
                if noticed_after is None and await readiness(worker) == 503:
                    noticed_after = time.monotonic() - hole_at
                await asyncio.sleep(0.2)
            redis_proxy.heal()
            back_at = time.monotonic()
            for n in range(3):
                assert await broadcast(pool, user, f"after-{n}")

            committed = await committed_titles(pool)
            await eventually(lambda: watch.has_all(committed), 30)
            await asyncio.sleep(0.5)  # a duplicate would come meanwhile
        noticed = "never" if noticed_after is None else f"after {noticed_after:.1f} s"
        row = Row.of(f"worker-Redis link black-holed ({HOLE_S:.0f} s)", committed,
                     watch.arrivals, back_at, f"/readyz 503 {noticed}")  # fmt: skip
        fault_report.add(row)
        assert noticed_after is not None, "the worker never said it was not ready"
        assert row.exactly_once, (row, worker.log_tail())
        assert await eventually(lambda: _ready(worker), 15)
    finally:
        await asyncio.to_thread(worker.stop)


async def _ready(worker: WorkerProcess) -> bool:
    return await readiness(worker) == 200
