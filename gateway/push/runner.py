"""The push side of `floorbell worker`: the fan-out, its grace loop and the digest, sharing
one sender (one connection pool, one VAPID token cache)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import Keys
from gateway.push.digest import QuietHoursDigest
from gateway.push.dispatch import Dispatcher
from gateway.push.fanout import PushFanout
from gateway.push.sender import PushSender
from gateway.supervision import Loop

log = logging.getLogger(__name__)


def push_configured(settings: Settings) -> bool:
    return bool(settings.vapid_public_key and settings.vapid_private_key)


@contextlib.asynccontextmanager
async def push_loops(
    settings: Settings, pool: asyncpg.Pool, redis: Redis, keys: Keys
) -> AsyncIterator[list[Loop]]:
    """The loops of the push side, with the sender they share open meanwhile."""
    if not push_configured(settings):
        # Entries wait in the stream (within its retention) until keys are configured.
        log.warning("VAPID keys are not configured: Web Push is off")
        yield []
        return
    async with PushSender.from_settings(settings) as sender:
        dispatcher = Dispatcher(pool, sender)
        fanout = PushFanout(pool, redis, keys, settings, dispatcher, consumer=settings.instance_id)
        digest = QuietHoursDigest(pool, dispatcher, settings.push_digest_interval_s)
        yield [*fanout.loops(), digest.loop()]
