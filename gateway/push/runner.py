"""The push side of `floorbell worker`: the fan-out, its grace loop and the digest, sharing
one sender (one connection pool, one VAPID token cache)."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import Keys
from gateway.push.digest import QuietHoursDigest
from gateway.push.dispatch import Dispatcher
from gateway.push.fanout import PushFanout
from gateway.push.sender import PushSender

log = logging.getLogger(__name__)


def push_configured(settings: Settings) -> bool:
    return bool(settings.vapid_public_key and settings.vapid_private_key)


async def run_push(
    settings: Settings, pool: asyncpg.Pool, redis: Redis, keys: Keys, stop: asyncio.Event
) -> None:
    if not push_configured(settings):
        # Entries wait in the stream (within its retention) until keys are configured.
        log.warning("VAPID keys are not configured: Web Push is off")
        return
    async with PushSender.from_settings(settings) as sender:
        dispatcher = Dispatcher(pool, sender)
        fanout = PushFanout(pool, redis, keys, settings, dispatcher, consumer=settings.instance_id)
        digest = QuietHoursDigest(pool, dispatcher, settings.push_digest_interval_s)
        await asyncio.gather(fanout.run(stop), fanout.run_delayed(stop), digest.run(stop))
