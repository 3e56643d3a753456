"""Redis kills the connections of a gateway and of a worker (`CLIENT KILL`, as an
operator does, or a Redis that drops idle clients): only the clients named after those
two instances, never another run's. The relay, the router, the hub's reader and the
SSE streams reconnect; every broadcast committed before, during and after reaches the
reader's SSE client once."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from redis.asyncio import Redis

from gateway.config import Settings
from tests.faults.faults import kill_clients
from tests.faults.report import FaultReport, Row
from tests.faults.watch import SseWatch, broadcast, committed_titles
from tests.gateway_process import Deployment
from tests.helpers import eventually, fresh_user, token_for

KILLS = 4
EVERY_S = 0.5


async def test_killed_redis_clients_lose_and_repeat_nothing(
    deployment: Deployment, pool: asyncpg.Pool, redis: Redis, settings: Settings,
    fault_report: FaultReport,
) -> None:  # fmt: skip
    gateway, worker = deployment.gateway, deployment.worker
    user = await fresh_user(pool)
    async with SseWatch(gateway.url, token_for(settings.jwt_secret, user)) as watch:
        assert await eventually(lambda: _opened(watch), 10)
        for n in range(3):
            assert await broadcast(pool, user, f"before-{n}")
        assert await eventually(lambda: watch.has_all({f"before-{n}" for n in range(3)}), 15)

        killed, n = 0, 0
        for _ in range(KILLS):
            killed += await kill_clients(redis, deployment.name)  # the worker's names hold it too
            back_at = time.monotonic()  # Redis serves again at once
            for _ in range(5):
                assert await broadcast(pool, user, f"during-{n}")
                n += 1
                await asyncio.sleep(EVERY_S / 5)
        for n in range(3):
            assert await broadcast(pool, user, f"after-{n}")

        committed = await committed_titles(pool)
        await eventually(lambda: watch.has_all(committed), 20)
        await asyncio.sleep(0.5)  # a duplicate would come meanwhile
    row = Row.of("Redis clients killed (x4)", committed, watch.arrivals, back_at,
                 f"{killed} clients killed, {watch.opens} SSE opens")  # fmt: skip
    fault_report.add(row)
    assert killed >= KILLS * 2  # the gateway's and the worker's, each time
    assert row.exactly_once, (row, gateway.log_tail(), worker.log_tail())
    assert not watch.resets  # nothing was lost: no client is told to start afresh


async def _opened(watch: SseWatch) -> bool:
    return watch.opens > 0 and watch.last_id is not None
