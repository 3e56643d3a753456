"""`floorbell worker`: the outbox relay, the router, the push fan-out (its grace loop and
digests), the presence sweeper and retention, in one process: every loop supervised, its
health on a small HTTP port of its own, stopped in two stages."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.config import Settings
from gateway.db import create_pool
from gateway.health import readiness
from gateway.keys import Keys
from gateway.pipeline.relay import OutboxRelay
from gateway.pipeline.retention import trim_streams, trim_tables
from gateway.pipeline.router import Router
from gateway.processes.health import HealthServer
from gateway.push.runner import push_loops
from gateway.realtime.presence import Presence
from gateway.redis_client import redis_client
from gateway.supervision import GRACE_S, Loop, Supervisor, stop_on_signals

log = logging.getLogger(__name__)
RETENTION_EVERY_S = 60.0


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    supervisor = Supervisor(stop or stop_on_signals())
    keys = Keys(settings.redis_prefix)
    # No connection at start: a worker started while PostgreSQL is away waits for it.
    pool = await create_pool(settings.database_url, min_size=0)
    redis = redis_client(settings, "worker")
    presence = Presence(redis, keys, settings.sse_heartbeat_s)
    router = Router(pool, redis, keys, consumer=settings.instance_id,
                    claim_idle_ms=settings.claim_idle_ms,
                    max_attempts=settings.dead_letter_attempts)  # fmt: skip
    supervisor.add(
        OutboxRelay(settings.database_url, redis, keys,
                    redrive_window_h=settings.stream_retention_hours).loop(),
        *router.loops(),
        Loop("stream_retention", lambda: trim_streams(redis, keys, settings.stream_retention_hours),
             RETENTION_EVERY_S),
        Loop("table_retention", lambda: trim_tables(pool, settings), RETENTION_EVERY_S),
        # Announces who came online and who went offline (last connection closed, or
        # their instance died).
        Loop("presence_sweep", presence.sweep, presence.sweep_period_s),
    )  # fmt: skip
    health = HealthServer(
        settings.instance_id,
        lambda: readiness(supervisor, {"postgresql": lambda: pool.fetchval("SELECT 1"),
                                       "redis": redis.ping}),
    )  # fmt: skip
    try:
        async with push_loops(settings, pool, redis, keys) as push:
            supervisor.add(*push)
            await health.start(settings.health_host, settings.worker_health_port)
            log.info("worker %s started", settings.instance_id)
            await supervisor.run()
    finally:
        await asyncio.shield(_close(health, pool, redis))
        log.info("worker %s stopped", settings.instance_id)


async def _close(health: HealthServer, pool: asyncpg.Pool, redis: Redis) -> None:
    await health.close()
    with contextlib.suppress(RedisError, OSError):
        await redis.aclose()
    try:
        await asyncio.wait_for(pool.close(), GRACE_S)
    except (TimeoutError, OSError):
        pool.terminate()
