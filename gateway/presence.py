"""Presence: a user is online while at least one of their SSE connections is open on
any gateway instance.

Each connection is a member of the user's connection set, scored by an expiry that its
instance refreshes every heartbeat; an instance that dies stops refreshing, so its
connections lapse within two heartbeats. The sweeper (in `floorbell worker`) turns a
user with no live connection, quiet for the debounce period, into an `offline` event; a
reconnect within that period is no flap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from gateway.keys import Keys
from gateway.streams import envelope, now_ms

log = logging.getLogger(__name__)

# KEYS: connections zset, online zset. ARGV: conn id, expiry ms, now ms, user id.
_CONNECT = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[4])
"""
# KEYS: connections zset, online zset. ARGV: now ms, quiet-before ms, user id.
_SWEEP = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
local last = redis.call('ZSCORE', KEYS[2], ARGV[3])
if last and tonumber(last) <= tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[2], ARGV[3])
end
return 0
"""


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

    async def connect(self, user_id: int, conn_id: str) -> None:
        now = now_ms()
        came_online = await self.redis.eval(
            _CONNECT,
            2,
            self.keys.presence_connections(user_id),
            self.keys.presence_online,
            conn_id,
            now + self.ttl_ms,
            now,
            user_id,
        )
        if came_online:
            await self._announce(user_id, True)

    async def refresh(self, connections: list[tuple[int, str]]) -> None:
        """Keep this instance's connections alive for another two heartbeats."""
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id, conn_id in connections:
                pipe.zadd(self.keys.presence_connections(user_id), {conn_id: now + self.ttl_ms})
                pipe.zadd(self.keys.presence_online, {str(user_id): now}, xx=True)
            await pipe.execute()

    async def disconnect(self, user_id: int, conn_id: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self.keys.presence_connections(user_id), conn_id)
            pipe.zadd(self.keys.presence_online, {str(user_id): now_ms()}, xx=True)
            await pipe.execute()

    async def is_online(self, user_id: int) -> bool:
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
            count, online_since, last_seen = replies[3 * index : 3 * index + 3]
            # Online as the presence events tell it: until the sweeper announces a user
            # offline (after the debounce), they are online, even between two connections.
            online = int(count) > 0 or online_since is not None
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

    async def sweep(self) -> list[int]:
        """Mark offline every user with no live connection for the debounce period."""
        now = now_ms()
        went_offline = []
        members = cast(list[bytes], await self.redis.zrange(self.keys.presence_online, 0, -1))
        for raw in members:
            user_id = int(raw)
            gone = await self.redis.eval(
                _SWEEP,
                2,
                self.keys.presence_connections(user_id),
                self.keys.presence_online,
                now,
                now - self.debounce_ms,
                user_id,
            )
            if gone:
                await self.redis.set(self.keys.presence_last_seen(user_id), now)
                await self._announce(user_id, False)
                went_offline.append(user_id)
        return went_offline

    async def _announce(self, user_id: int, online: bool) -> None:
        body = envelope("presence", {"user_id": user_id, "online": online})
        await self.redis.xadd(self.keys.board_stream, {"t": "presence", "e": body})


def _iso(ms: float | None) -> str | None:
    if ms is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(float(ms) / 1000, UTC).isoformat()
