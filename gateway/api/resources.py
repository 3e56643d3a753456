"""The owner of every long-lived resource of a gateway process: opened before serving,
closed (with a timeout) after. Nothing is created at import time."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import asyncpg
from quart import current_app
from redis.asyncio import BlockingConnectionPool, Redis

from gateway.config import Settings
from gateway.db import create_pool
from gateway.keys import Keys
from gateway.push.runner import push_configured
from gateway.push.sender import PushSender
from gateway.realtime.hub import Hub
from gateway.services.outbox import UnitOfWork, WakeHints
from gateway.services.roles import Roles

log = logging.getLogger(__name__)
EXTENSION = "floorbell"
CLOSE_TIMEOUT_S = 5.0


@dataclass
class Resources:
    settings: Settings
    keys: Keys = field(init=False)
    pool: asyncpg.Pool = field(init=False)
    redis: Redis = field(init=False)
    roles: Roles = field(init=False)
    hints: WakeHints = field(default_factory=WakeHints)
    # The hub serves SSE until the streams end (then None: new streams get a 503); the
    # push sender exists when VAPID keys are configured.
    hub: Hub | None = field(init=False, default=None)
    push_sender: PushSender | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.redis_prefix)

    async def open(self) -> None:
        self.pool = await create_pool(self.settings.database_url)
        self.roles = Roles(self.pool)
        # A bounded pool that waits for a free connection: a burst of reconnecting
        # clients queues briefly instead of failing.
        pool = BlockingConnectionPool.from_url(
            self.settings.redis_url,
            max_connections=64,
            timeout=5,
            socket_connect_timeout=2,
            health_check_interval=30,
        )
        self.redis = Redis(connection_pool=pool)
        hub = Hub(self.settings, self.keys, self.redis)
        await hub.start()
        self.hub = hub
        if push_configured(self.settings):
            self.push_sender = PushSender.from_settings(self.settings).open()

    def unit_of_work(self) -> UnitOfWork:
        """A transaction whose events reach the outbox; the requests of this process share
        the relay's wake-up hints."""
        return UnitOfWork(self.pool, self.hints)

    async def end_streams(self) -> None:
        """Close every SSE stream so clients reconnect to another instance."""
        hub, self.hub = self.hub, None
        if hub is not None:
            await asyncio.wait_for(hub.close(), CLOSE_TIMEOUT_S)

    async def close(self) -> None:
        await self.end_streams()
        sender, self.push_sender = self.push_sender, None
        if sender is not None:
            await sender.close()
        closers = (
            ("redis", self.redis.aclose()),
            ("redis pool", self.redis.connection_pool.disconnect()),
            ("pool", self.pool.close()),
        )
        for name, closer in closers:
            try:
                await asyncio.wait_for(closer, CLOSE_TIMEOUT_S)
            except (TimeoutError, OSError) as exc:
                log.warning("closing %s: %s", name, exc)


def resources() -> Resources:
    res: Resources = current_app.extensions[EXTENSION]
    return res
