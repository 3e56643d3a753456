"""`floorbell worker`: the outbox relay, the router, retention — and whatever
other background consumers are registered — in one process, stopped in two stages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.db import create_pool
from gateway.keys import Keys
from gateway.lifecycle import repeat, stop_on_signals
from gateway.pipeline.relay import OutboxRelay
from gateway.pipeline.retention import trim_streams, trim_tables
from gateway.pipeline.router import Router
from gateway.push.runner import run_push
from gateway.realtime.presence import Presence

log = logging.getLogger(__name__)
GRACE_S = 5.0
RETENTION_EVERY_S = 60.0

Task = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    stop = stop or stop_on_signals()
    keys = Keys(settings.redis_prefix)
    pool = await create_pool(settings.database_url)
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2)
    presence = Presence(redis, keys, settings.sse_heartbeat_s)
    tasks: list[Task] = [
        OutboxRelay(settings.database_url, redis, keys).run,
        Router(pool, redis, keys, consumer=settings.instance_id).run,
        lambda s: repeat(
            s,
            RETENTION_EVERY_S,
            lambda: trim_streams(redis, keys, settings.stream_retention_hours),
            "stream retention",
        ),
        lambda s: repeat(
            s, RETENTION_EVERY_S, lambda: trim_tables(pool, settings), "table retention"
        ),
        # Announces who came online and who went offline (last connection closed, or
        # their instance died).
        lambda s: repeat(s, presence.sweep_period_s, presence.sweep, "presence sweep"),
        lambda s: run_push(settings, pool, redis, keys, s),
    ]
    log.info("worker %s started", settings.instance_id)
    running = [asyncio.create_task(task(stop)) for task in tasks]
    try:
        await stop.wait()
        # Stage one: running work gets a grace period; stage two: cancellation.
        _, pending = await asyncio.wait(running, timeout=GRACE_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        await asyncio.shield(_close(pool, redis))
        log.info("worker %s stopped", settings.instance_id)


async def _close(pool: asyncpg.Pool, redis: Redis) -> None:
    await redis.aclose()
    await asyncio.wait_for(pool.close(), GRACE_S)
