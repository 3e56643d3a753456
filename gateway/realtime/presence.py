"""Presence: a user is online while at least one of their SSE connections is open on
any gateway instance.

Each connection is a member of the user's connection set, scored by an expiry that its
instance refreshes every heartbeat; an instance that dies stops refreshing, so its
connections lapse within two heartbeats. Gateways only record connections; the sweeper
(in `floorbell worker`) announces the changes: a user with a live connection who was
not announced goes `online`; one with none left goes `offline` once the debounce period
has passed since their last disconnect (a reconnect within it is no flap).

The sweeper only looks at users who are due: `presence:users` is scored by when a
user's state may next change — now for a connect, the end of the debounce for a
disconnect, the last connection's expiry otherwise. Its cost follows the changes, not
the number of people connected, which is what lets an instance hold tens of thousands.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gateway import wire
from gateway.keys import Keys
from gateway.wire import now_ms

log = logging.getLogger(__name__)

# One atomic step over the due users, so that concurrent sweepers (several workers) and
# connects or disconnects landing meanwhile never announce twice or not at all.
# KEYS: users (due zset), online zset, board stream. ARGV: now_ms, limit, connection key
# prefix, last-seen key prefix, the type and envelope field names, then the envelope in
# three parts around its user id and online flag (`wire.presence_template`). Returns
# {came, went}. The per-user keys are derived inside the script from their prefixes:
# fine on one Redis, not on a Redis Cluster.
_SWEEP = """
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local came, went = {}, {}
local function announce(user, online)
  local body = ARGV[7] .. user .. ARGV[8] .. (online and 'true' or 'false') .. ARGV[9]
  redis.call('XADD', KEYS[3], '*', ARGV[5], 'presence', ARGV[6], body)
end
for _, user in ipairs(due) do
  local conns = ARGV[3] .. user
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', now)
  local last = redis.call('ZRANGE', conns, -1, -1, 'WITHSCORES')
  local announced = redis.call('ZSCORE', KEYS[2], user)
  if last[2] then
    if not announced then
      redis.call('ZADD', KEYS[2], now, user)
      announce(user, true)
      table.insert(came, user)
    end
    redis.call('ZADD', KEYS[1], last[2], user)
  else
    if announced then
      redis.call('ZREM', KEYS[2], user)
      redis.call('SET', ARGV[4] .. user, now)
      announce(user, false)
      table.insert(went, user)
    end
    redis.call('ZREM', KEYS[1], user)
  end
end
return {came, went}
"""
SWEEP_LIMIT = 5000
PRESENCE_REPLIES = 2  # of `Presence.connect`


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
        """One heartbeat: long enough for a storm of reconnects (an instance restarting,
        its clients moving to the others) to land before anyone is told of a departure."""
        return self.heartbeat_s * 1000

    @property
    def sweep_period_s(self) -> float:
        return min(0.5, self.heartbeat_s / 2)

    def connect(self, pipe: Pipeline, user_id: int, conn_id: str) -> None:
        """Queue on `pipe` (PRESENCE_REPLIES replies): the connection is live, and its
        user due for the sweeper at once."""
        now = now_ms()
        pipe.zadd(self.keys.presence_connections(user_id), {conn_id: now + self.ttl_ms})
        pipe.zadd(self.keys.presence_users, {str(user_id): now})

    async def refresh(self, connections: list[tuple[int, str]]) -> None:
        """Keep this instance's connections alive for another two heartbeats: one command
        per user, whatever their number of devices."""
        expiry = now_ms() + self.ttl_ms
        by_user: dict[int, dict[str, int]] = defaultdict(dict)
        for user_id, conn_id in connections:
            by_user[user_id][conn_id] = expiry
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id, members in by_user.items():
                pipe.zadd(self.keys.presence_connections(user_id), members)
            await pipe.execute()

    def disconnect(self, pipe: Pipeline, user_id: int, conn_id: str) -> None:
        """Queue on `pipe`: the connection is gone; its user is due for the sweeper when
        the debounce ends."""
        pipe.zrem(self.keys.presence_connections(user_id), conn_id)
        pipe.zadd(self.keys.presence_users, {str(user_id): now_ms() + self.debounce_ms})

    async def online_of(self, user_ids: list[int]) -> dict[int, bool]:
        """Whether each has a live connection right now (what the push ladder asks), in
        one round trip."""
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.zcount(self.keys.presence_connections(user_id), now, "+inf")
            counts = await pipe.execute()
        return {user_id: int(count) > 0 for user_id, count in zip(user_ids, counts, strict=True)}

    async def snapshot(self, user_ids: list[int]) -> list[dict[str, Any]]:
        """Everyone's presence in one round trip: who is announced online and everyone's
        last-seen time in one command each, then a connection count per person."""
        if not user_ids:
            return []
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrange(self.keys.presence_online, 0, -1)
            pipe.mget([self.keys.presence_last_seen(user_id) for user_id in user_ids])
            for user_id in user_ids:
                pipe.zcount(self.keys.presence_connections(user_id), now, "+inf")
            announced, last_seen, *counts = await pipe.execute()
        # Online exactly as the presence events tell it, so a page that loads this and
        # then follows the events never disagrees with them.
        online = {int(member) for member in announced}
        return [
            {
                "user_id": user_id,
                "online": user_id in online,
                "last_seen": _iso(now if user_id in online else (float(seen) if seen else None)),
                "connections": int(count),
            }
            for user_id, seen, count in zip(user_ids, last_seen, counts, strict=True)
        ]

    async def sweep(self) -> tuple[list[int], list[int]]:
        """Announce who came online and who went offline among the users now due."""
        keys = self.keys
        came, went = await self.redis.eval(
            _SWEEP,
            3,
            keys.presence_users,
            keys.presence_online,
            keys.board_stream,
            now_ms(),
            SWEEP_LIMIT,
            keys.presence_connections_prefix,
            keys.presence_last_seen_prefix,
            wire.TYPE,
            wire.ENVELOPE,
            *wire.presence_template(),
        )
        return [int(u) for u in came], [int(u) for u in went]


def _iso(ms: float | None) -> str | None:
    return datetime.fromtimestamp(float(ms) / 1000, UTC).isoformat() if ms is not None else None
