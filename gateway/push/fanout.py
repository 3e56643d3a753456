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
push service does not hold up the others; an entry is acknowledged once handled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from domain.preferences import Verdict, verdict
from gateway.config import Settings
from gateway.keys import PUSH_GROUP, Keys
from gateway.lifecycle import linger, repeat, sleep_unless_stopped
from gateway.pipeline.router import ensure_group
from gateway.push import store
from gateway.push.dispatch import Dispatcher, Job
from gateway.push.payload import notification_message
from gateway.realtime.presence import Presence
from gateway.retry import Backoff
from gateway.services.preferences import preferences_of
from gateway.wire import ENVELOPE_B, now_ms

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Entry = tuple[bytes, dict[bytes, bytes] | None]

READ_BLOCK_MS = 1000
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
        self._dispatcher, self._consumer, self._clock = dispatcher, consumer, clock
        self._presence = Presence(redis, keys, settings.sse_heartbeat_s)
        self._grace_ms = settings.push_grace_s * 1000
        self._capacity = max(1, settings.push_concurrency)
        self._claim_idle_ms = claim_idle_ms or settings.push_claim_idle_ms
        self._handling: set[bytes] = set()  # ids of the entries being handled here
        self._last_claim = 0.0

    # -- the consumer of the push stream --------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        batches: set[asyncio.Task[None]] = set()
        backoff = Backoff()
        grouped = False
        keeper = asyncio.create_task(self._keep_claimed(stop))
        try:
            while not stop.is_set():
                try:
                    if not grouped:
                        await ensure_group(self._redis, self._keys.push_stream, PUSH_GROUP)
                        grouped = True
                    if len(self._handling) >= self._capacity:
                        await asyncio.wait(batches, return_when=asyncio.FIRST_COMPLETED)
                        continue
                    room = self._capacity - len(self._handling)
                    entries = await self._next(room)
                    if entries:
                        self._handling.update(entry_id for entry_id, _ in entries)
                        task = asyncio.create_task(self._handle(entries))
                        batches.add(task)
                        task.add_done_callback(batches.discard)
                    backoff.reset()
                    await linger(len(entries), room)
                except (RedisError, OSError) as exc:
                    if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                        grouped = False  # the stream was deleted: create the group again
                    delay = backoff.next_delay()
                    log.warning("push fan-out: %s; retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                except Exception:  # a bug must not stop the fan-out; entries stay pending
                    log.exception("push fan-out: unexpected error")
                    await asyncio.sleep(backoff.next_delay())
            if batches:  # let what is in flight finish; the worker cancels after its grace
                await asyncio.wait(batches)
        finally:
            for task in (*batches, keeper):
                task.cancel()
            await asyncio.gather(*batches, keeper, return_exceptions=True)

    async def _keep_claimed(self, stop: asyncio.Event) -> None:
        """Reset the idle time of the entries being handled here, so another worker's
        XAUTOCLAIM takes them only from a worker that stopped, however long their retries."""
        period_s = self._claim_idle_ms / 3000
        while not stop.is_set():
            await sleep_unless_stopped(stop, period_s)
            if self._handling:
                try:
                    await self._redis.xclaim(
                        self._keys.push_stream, PUSH_GROUP, self._consumer, 0,
                        list(self._handling), justid=True,
                    )  # fmt: skip
                except RedisError as exc:
                    log.warning("push fan-out: keeping entries claimed: %s", exc)

    async def _next(self, count: int) -> list[Entry]:
        stream = self._keys.push_stream
        if time.monotonic() - self._last_claim > min(5.0, self._claim_idle_ms / 2000):
            self._last_claim = time.monotonic()
            reply = await self._redis.xautoclaim(
                stream, PUSH_GROUP, self._consumer, min_idle_time=self._claim_idle_ms,
                start_id="0-0", count=count,
            )  # fmt: skip
            if reply[1]:
                log.info("push fan-out: finishing %d entries of a stopped worker", len(reply[1]))
                return list(reply[1])
        read: Any = await self._redis.xreadgroup(
            PUSH_GROUP, self._consumer, {stream: ">"}, count=count, block=READ_BLOCK_MS
        )
        return [entry for _, entries in read or [] for entry in entries]

    async def _handle(self, entries: list[Entry]) -> None:
        try:
            items = [json.loads(fields[ENVELOPE_B]) for _, fields in entries if fields]
            wanted = [int(item["notification_id"]) for item in items if item.get("pushable", True)]
            await self.consider(wanted, after_grace=False)
            await self._redis.xack(self._keys.push_stream, PUSH_GROUP, *[eid for eid, _ in entries])
        except Exception:  # the entries stay pending; a later claim finishes them
            log.exception("push fan-out: a batch of %d entries failed", len(entries))
        finally:
            self._handling.difference_update(entry_id for entry_id, _ in entries)

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

    # -- the grace period ---------------------------------------------------------------

    async def run_delayed(self, stop: asyncio.Event) -> None:
        """Push what waited out its grace period unseen; several workers may run this."""
        await repeat(
            stop, DELAYED_POLL_S, self.release_due, "push grace loop", again_while_busy=True
        )

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
