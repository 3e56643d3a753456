"""The owner of every long-lived resource of a gateway process: opened before serving,
closed (with a timeout) after. Nothing is created at import time."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import asyncpg
from quart import current_app
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.db import create_pool
from gateway.keys import Keys
from gateway.push.runner import push_configured
from gateway.push.sender import PushSender
from gateway.realtime.framed import FramedStamps
from gateway.realtime.hub import Hub
from gateway.redis_client import redis_pool_client
from gateway.services import inbox
from gateway.services.outbox import UnitOfWork, WakeHints
from gateway.services.roles import Roles
from gateway.supervision import Supervisor

log = logging.getLogger(__name__)
EXTENSION = "floorbell"
CLOSE_TIMEOUT_S = 5.0
LOOPS_GRACE_S = 1.0  # the hub's loops hold no work worth waiting for


@dataclass
class Resources:
    settings: Settings
    keys: Keys = field(init=False)
    pool: asyncpg.Pool = field(init=False)
    redis: Redis = field(init=False)
    roles: Roles = field(init=False)
    hints: WakeHints = field(default_factory=WakeHints)
    # Runs the hub's reader and heartbeats; readiness reports its loops.
    supervisor: Supervisor = field(default_factory=Supervisor)
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
        self.redis = redis_pool_client(self.settings, "gateway", max_connections=64)
        framed = FramedStamps(lambda ids, at: inbox.stamp_framed(self.pool, ids, at))
        hub = Hub(self.settings, self.keys, self.redis, framed)
        await hub.start()
        self.hub = hub
        self.supervisor.add(*hub.loops())
        self.supervisor.start()
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
            await self.supervisor.stop(LOOPS_GRACE_S, CLOSE_TIMEOUT_S)
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
