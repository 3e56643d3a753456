"""Presence: a user is online while at least one of their SSE connections is open on
any gateway instance.

Each connection is a member of the user's connection set, scored by an expiry that its
instance refreshes every heartbeat; an instance that dies stops refreshing, so its
connections lapse within two heartbeats. Gateways only record connections; the sweeper
(in `floorbell worker`) announces the changes: a user with a live connection who was
not announced goes `online`; one with none, quiet for the debounce period, goes
`offline` (a reconnect within that period is no flap). Announcing in batches, a few
times a second, matters when thousands connect at once: every open app receives every
presence event, and a batch reaches each of them in one write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis

from gateway.keys import Keys
from gateway.streams import envelope, now_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Presence:
    redis: Redis
    keys: Keys
    heartbeat_s: int

    @property
    def ttl_ms(self) -> int:
        return 2 * self.heartbeat_s * 1000 + 500

    @property
    def debounce_ms(self) -> int:
        return min(5000, self.heartbeat_s * 1000)

    @property
    def sweep_period_s(self) -> float:
        return min(0.5, self.heartbeat_s / 2)

    async def connect(self, user_id: int, conn_id: str) -> None:
        await self._touch([(user_id, conn_id)])

    async def refresh(self, connections: list[tuple[int, str]]) -> None:
        """Keep this instance's connections alive for another two heartbeats."""
        await self._touch(connections)

    async def _touch(self, connections: list[tuple[int, str]]) -> None:
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id, conn_id in connections:
                pipe.zadd(self.keys.presence_connections(user_id), {conn_id: now + self.ttl_ms})
                pipe.zadd(self.keys.presence_users, {str(user_id): now})
            await pipe.execute()

    async def disconnect(self, user_id: int, conn_id: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self.keys.presence_connections(user_id), conn_id)
            pipe.zadd(self.keys.presence_users, {str(user_id): now_ms()})
            await pipe.execute()

    async def is_online(self, user_id: int) -> bool:
        """Whether a live connection exists right now (what the push ladder asks)."""
        live = await self.redis.zcount(self.keys.presence_connections(user_id), now_ms(), "+inf")
        return int(live) > 0

    async def snapshot(self, user_ids: list[int]) -> list[dict[str, Any]]:
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.zcount(self.keys.presence_connections(user_id), now, "+inf")
                pipe.zscore(self.keys.presence_online, str(user_id))
                pipe.get(self.keys.presence_last_seen(user_id))
            replies = await pipe.execute()
        result = []
        for index, user_id in enumerate(user_ids):
            count, announced, last_seen = replies[3 * index : 3 * index + 3]
            # Online exactly as the presence events tell it, so a page that loads this
            # and then follows the events never disagrees with them.
            online = announced is not None
            seen = now if online else (float(last_seen) if last_seen else None)
            result.append(
                {
                    "user_id": user_id,
                    "online": online,
                    "last_seen": _iso(seen),
                    "connections": int(count),
                }
            )
        return result

    async def sweep(self) -> tuple[list[int], list[int]]:
        """Announce who came online and who went offline; one sweeper at a time."""
        lock = self.keys.presence_sweep_lock
        if not await self.redis.set(lock, "1", nx=True, px=int(self.sweep_period_s * 4000)):
            return [], []
        try:
            return await self._sweep_once()
        finally:
            await self.redis.delete(lock)

    async def _sweep_once(self) -> tuple[list[int], list[int]]:
        now = now_ms()
        users = cast(
            list[tuple[bytes, float]],
            await self.redis.zrange(self.keys.presence_users, 0, -1, withscores=True),
        )
        async with self.redis.pipeline(transaction=False) as pipe:
            for raw, _ in users:
                conns = self.keys.presence_connections(int(raw))
                pipe.zremrangebyscore(conns, "-inf", now)
                pipe.zcard(conns)
                pipe.zscore(self.keys.presence_online, raw)
            replies = await pipe.execute()
        came, went, idle = [], [], []
        for index, (raw, active_ms) in enumerate(users):
            live, announced = replies[3 * index + 1] > 0, replies[3 * index + 2] is not None
            quiet = active_ms <= now - self.debounce_ms
            if live and not announced:
                came.append(int(raw))
            elif not live and announced and quiet:
                went.append(int(raw))
            elif not live and not announced and quiet:
                idle.append(raw)
        await self._announce(came, went, idle, now)
        return came, went

    async def _announce(
        self, came: list[int], went: list[int], idle: list[bytes], now: int
    ) -> None:
        if not (came or went or idle):
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id, online in [(u, True) for u in came] + [(u, False) for u in went]:
                if online:
                    pipe.zadd(self.keys.presence_online, {str(user_id): now})
                else:
                    pipe.zrem(self.keys.presence_online, str(user_id))
                    pipe.set(self.keys.presence_last_seen(user_id), now)
                body = envelope("presence", {"user_id": user_id, "online": online})
                pipe.xadd(self.keys.board_stream, {"t": "presence", "e": body})
            if went or idle:
                pipe.zrem(self.keys.presence_users, *[str(u) for u in went], *idle)
            await pipe.execute()


def _iso(ms: float | None) -> str | None:
    return datetime.fromtimestamp(float(ms) / 1000, UTC).isoformat() if ms is not None else None
