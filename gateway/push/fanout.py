"""The push fan-out: which notifications become Web Pushes, and when (the delivery ladder).

A consumer group on the push stream (entries written by the router), so several workers
share the work; entries a stopped or crashed worker left pending are claimed after
`claim_idle_ms` and finished. For each notification nobody has seen yet:

- `pushable: false` (the previous assignee of a reassignment): never pushed;
- the person's preferences turned this type off: not pushed;
- critical, or the person has no live connection anywhere: pushed at once;
- otherwise they are looking at the app: the push waits `push_grace_s` in the delayed
  set and leaves only if no device acknowledged the notification as seen by then;
- quiet hours hold what would leave (critical ones pierce when `allow_critical`) for the
  digest (`digest.py`).

Batches are handled concurrently (up to `push_concurrency` entries in flight), so one slow
push service does not hold up the others; the consumer (`pipeline.consumer`) acknowledges
an entry once handled, isolates one that keeps failing and finally sets it aside.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from redis.asyncio import Redis

from domain.preferences import Verdict, verdict
from gateway.config import Settings
from gateway.keys import PUSH_GROUP, Keys
from gateway.pipeline.consumer import Group, GroupConsumer
from gateway.push import store
from gateway.push.dispatch import Dispatcher, Job
from gateway.push.payload import notification_message
from gateway.realtime.presence import Presence
from gateway.services.preferences import preferences_of
from gateway.streams import Entry
from gateway.supervision import Loop, run_loops, shielded
from gateway.wire import ENVELOPE_B, now_ms

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]

# A due push taken by a worker that then died is due again after this; longer than the
# longest delivery (3 attempts of at most 10 s, 2 waits of at most 30 s).
LEASE_MS = 120_000
DELAYED_BATCH = 100
DELAYED_POLL_S = 0.1

# Take up to ARGV[2] members due by ARGV[1] and push their score to the lease end ARGV[3]:
# atomic, so two workers never take the same member while its lease runs.
_TAKE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], member)
end
return due
"""


def utc_now() -> datetime:
    return datetime.now(UTC)


class PushFanout:
    def __init__(
        self, pool: asyncpg.Pool, redis: Redis, keys: Keys, settings: Settings,
        dispatcher: Dispatcher, *, consumer: str, claim_idle_ms: int | None = None,
        clock: Clock = utc_now,
    ) -> None:  # fmt: skip
        self._pool, self._redis, self._keys = pool, redis, keys
        self._dispatcher, self._clock = dispatcher, clock
        self._presence = Presence(redis, keys, settings.sse_heartbeat_s)
        self._grace_ms = settings.push_grace_s * 1000
        capacity = max(1, settings.push_concurrency)
        self.consumer = GroupConsumer(
            redis, keys, Group(keys.push_stream, PUSH_GROUP), consumer, self._handle,
            batch=capacity, in_flight=capacity,
            claim_idle_ms=claim_idle_ms or settings.claim_idle_ms,
            max_attempts=settings.dead_letter_attempts,
        )  # fmt: skip

    def loops(self) -> list[Loop]:
        """The consumer of the push stream (and its claim keeper), and the grace loop."""
        return [*self.consumer.loops("push_fanout"), self.delayed_loop()]

    async def run(self, stop: asyncio.Event) -> None:
        """Consume the push stream until stopped (on a supervisor of its own)."""
        await run_loops(stop, *self.consumer.loops("push_fanout"))

    async def _handle(self, entries: list[Entry]) -> None:
        items = [json.loads(fields[ENVELOPE_B]) for _, fields in entries]
        wanted = [int(item["notification_id"]) for item in items if item.get("pushable", True)]
        await self.consider(wanted, after_grace=False)
        in_app_only = [
            int(item["notification_id"]) for item in items if not item.get("pushable", True)
        ]
        await shielded(store.mark_decided(self._pool, in_app_only))

    # -- the decision -----------------------------------------------------------------

    async def consider(self, notification_ids: list[int], after_grace: bool) -> None:
        """Push, delay, hold or drop each notification, as the ladder says."""
        if not notification_ids:
            return
        rows = await store.notifications_to_push(self._pool, notification_ids)
        online = {} if after_grace else await self._presence.online_of(
            sorted({row["user_id"] for row in rows if not row["critical"]})
        )  # fmt: skip
        now = self._clock()
        send: list[dict[str, Any]] = []
        held: list[tuple[int, int]] = []
        later: dict[str, int] = {}
        for row in rows:
            if row["seen"]:
                continue  # a device displayed it: never pushed
            decided = verdict(preferences_of(row), row["type"], row["critical"], now)
            if decided is Verdict.SKIP:
                continue
            if not row["critical"] and online.get(row["user_id"]):
                later[str(row["id"])] = now_ms() + self._grace_ms
            elif decided is Verdict.HOLD:
                held.append((row["id"], row["user_id"]))
            else:
                send.append(row)
        if later:
            await self._redis.zadd(self._keys.push_delayed, later, nx=True)
        await store.hold(self._pool, held)
        jobs = [Job(row["user_id"], notification_message(row), row["id"]) for row in send]
        await self._dispatcher.deliver(jobs)
        waiting = {int(member) for member in later}
        await shielded(
            store.mark_decided(self._pool, (r["id"] for r in rows if r["id"] not in waiting))
        )

    # -- the grace period ---------------------------------------------------------------

    def delayed_loop(self) -> Loop:
        """Push what waited out its grace period unseen; several workers may run this."""
        return Loop("push_grace", self.release_due, DELAYED_POLL_S, again_while_busy=True)

    async def run_delayed(self, stop: asyncio.Event) -> None:
        await run_loops(stop, self.delayed_loop())

    async def release_due(self) -> int:
        now = now_ms()
        due = await self._redis.eval(
            _TAKE_DUE, 1, self._keys.push_delayed, now, DELAYED_BATCH, now + LEASE_MS
        )
        if not due:
            return 0
        await self.consider([int(member) for member in due], after_grace=True)
        await self._redis.zrem(self._keys.push_delayed, *due)
        return len(due)
