"""One consumer of a Redis consumer group, with one policy, for the router and the push
fan-out.

Each pass takes the next entries — its own pending ones first after a failure, then, every
few seconds, entries another consumer left idle for `claim_idle_ms` (it stopped or
crashed: XAUTOCLAIM), else new ones (XREADGROUP, blocking) — hands them to the handler and
acknowledges them once handled. A group lost with Redis's data (NOGROUP) is created again
at the start of its stream.

An outage (`retry.is_transient`) leaves the entries pending: the pass fails, the
supervisor backs off, and the next pass reads them again. Any other failure is the entry's
own: the batch is handled again one entry at a time, so the others are delivered; the
failing one is retried on its own after a pause, and after `max_attempts` failures it is
moved, with its error, to the dead-letter stream (counted in `/metrics` and in the admin's
statistics) instead of failing forever.

With `in_flight` above one batch, batches are handled concurrently (a slow push service
must not hold up the others), and the entries being handled are claimed again regularly
so that no other consumer takes them over while their handling runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.keys import Keys
from gateway.lifecycle import linger
from gateway.metrics import DEAD_LETTERS, ENTRY_FAILURES
from gateway.retry import Backoff, is_transient
from gateway.streams import Entry, as_reply
from gateway.supervision import Loop, shielded
from gateway.wire import TYPE_B

log = logging.getLogger(__name__)
Handler = Callable[[list[Entry]], Awaitable[None]]

BLOCK_MS = 1000
DEAD_LETTER_MAXLEN = 10_000
ERROR_MAX_CHARS = 2000
ATTEMPTS_KEEP_S = 24 * 3600


@dataclass(frozen=True)
class Group:
    """A consumer group: its stream and name."""

    stream: str
    name: str


class GroupConsumer:
    def __init__(
        self, redis: Redis, keys: Keys, group: Group, consumer: str, handle: Handler, *,
        batch: int, claim_idle_ms: int, max_attempts: int, in_flight: int | None = None,
        block_ms: int = BLOCK_MS,
    ) -> None:  # fmt: skip
        self._redis, self._keys, self.group, self.consumer = redis, keys, group, consumer
        self._handle = handle
        self._batch, self._claim_idle_ms, self._block_ms = batch, claim_idle_ms, block_ms
        self._max_attempts = max(1, max_attempts)
        self._in_flight = max(batch, in_flight or batch)
        self._concurrent = in_flight is not None
        self._grouped = False
        self._backlog = True  # own pending entries to read first (a restart under this name)
        self._retry_at: dict[bytes, float] = {}  # failing entries: not before then
        self._retry_backoff: dict[bytes, Backoff] = {}
        self._last_claim = 0.0
        self._handling: set[bytes] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None  # an outage met by a concurrent batch

    def loops(self, name: str) -> list[Loop]:
        """What the supervisor runs: the consumer, and its claim keeper when batches run
        concurrently."""
        consume = Loop(name, self.run_pass, 0.0, drain=self.drain, abandon=self.abandon,
                       stale_after_s=3 * self._block_ms / 1000 + 5)  # fmt: skip
        if not self._concurrent:
            return [consume]
        keeper = Loop(f"{name}_claims", self.keep_claimed, self._claim_idle_ms / 3000)
        return [consume, keeper]

    # -- one pass ----------------------------------------------------------------------

    async def run_pass(self) -> bool:
        try:
            if self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure
            await self._ensure_group()
            room = self._in_flight - len(self._handling)
            if room <= 0:  # wait for a batch to finish, a read's time at most
                await asyncio.wait(self._tasks, timeout=self._block_ms / 1000,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                return True
            count = min(room, self._batch) if not self._concurrent else room
            entries = await self._next(count)
            if entries and self._concurrent:
                self._spawn(entries)
            elif entries:
                await self._settle(entries)
            await linger(len(entries), count)
            return True
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis lost the stream and its group: create again
                self._grouped = False
            raise

    async def _ensure_group(self) -> None:
        if self._grouped:
            return
        try:
            await self._redis.xgroup_create(self.group.stream, self.group.name, id="0",
                                            mkstream=True)  # fmt: skip
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._grouped = True

    async def _next(self, count: int) -> list[Entry]:
        if self._backlog:
            entries = await self._own_pending(count)
            if entries:
                return entries
        if time.monotonic() - self._last_claim > min(5.0, self._claim_idle_ms / 2000):
            self._last_claim = time.monotonic()
            reply = await self._redis.xautoclaim(
                self.group.stream, self.group.name, self.consumer,
                min_idle_time=self._claim_idle_ms, start_id="0-0", count=count,
            )  # fmt: skip
            if reply[1]:
                log.info("%s: finishing %d entries of a stopped consumer", self.group.name,
                         len(reply[1]))  # fmt: skip
                return list(reply[1])
        read = await self._redis.xreadgroup(
            self.group.name, self.consumer, {self.group.stream: ">"}, count=count,
            block=self._block_ms,
        )  # fmt: skip
        return [entry for _, entries in as_reply(read) for entry in entries]

    async def _own_pending(self, count: int) -> list[Entry]:
        """This consumer's pending entries that are neither being handled nor waiting
        out a retry pause; the backlog is done once there are none left at all."""
        found: list[Entry] = []
        start, waiting, now = "0", False, time.monotonic()
        while len(found) < count:
            reply = await self._redis.xreadgroup(
                self.group.name, self.consumer, {self.group.stream: start}, count=count
            )
            entries = [entry for _, entries in as_reply(reply) for entry in entries]
            if not entries:
                break
            start = entries[-1][0].decode()
            for entry in entries:
                if entry[0] in self._handling:
                    continue
                if self._retry_at.get(entry[0], 0.0) > now:
                    waiting = True
                    continue
                found.append(entry)
        if not found and not waiting:
            self._backlog = False
        return found[:count]

    # -- handling ----------------------------------------------------------------------

    def _spawn(self, entries: list[Entry]) -> None:
        self._handling.update(entry_id for entry_id, _ in entries)
        task = asyncio.create_task(self._settle_concurrently(entries))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle_concurrently(self, entries: list[Entry]) -> None:
        try:
            await self._settle(entries)
        except Exception as exc:  # an outage: the next pass reports it and backs off
            self._failure = exc
        finally:
            self._handling.difference_update(entry_id for entry_id, _ in entries)

    async def _settle(self, entries: list[Entry]) -> None:
        """Handle entries and acknowledge them; isolate the one that fails."""
        live = [entry for entry in entries if entry[1]]  # trimmed away meanwhile: no fields
        try:
            if live:
                await self._handle(live)
        except Exception as exc:
            if is_transient(exc):
                self._backlog = True
                raise
            await self._isolate(live, exc)
        else:
            await self._ack([entry_id for entry_id, _ in live])
        gone = [entry_id for entry_id, fields in entries if not fields]
        if gone:
            await self._ack(gone)

    async def _isolate(self, entries: list[Entry], error: Exception) -> None:
        """Handle each entry on its own: the good ones are delivered, the failing one
        counts a failure."""
        if len(entries) == 1:
            await self._failed(entries[0], error)
            return
        log.warning("%s: a batch of %d failed (%s); handling its entries one by one",
                    self.group.name, len(entries), error)  # fmt: skip
        for entry in entries:
            try:
                await self._handle([entry])
            except Exception as exc:
                if is_transient(exc):
                    self._backlog = True
                    raise
                await self._failed(entry, exc)
            else:
                await self._ack([entry[0]])

    async def _failed(self, entry: Entry, error: Exception) -> None:
        entry_id = entry[0]
        ENTRY_FAILURES.labels(self.group.name).inc()
        key = self._keys.consumer_attempts(self.group.name)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, entry_id.decode(), 1)
            pipe.expire(key, ATTEMPTS_KEEP_S)
            attempts, _ = await pipe.execute()
        if int(attempts) >= self._max_attempts:
            await self._dead_letter(entry, error, int(attempts))
            return
        backoff = self._retry_backoff.setdefault(entry_id, Backoff(base_s=0.5, cap_s=10.0))
        delay = backoff.next_delay()
        self._retry_at[entry_id] = time.monotonic() + delay
        self._backlog = True
        log.warning("%s: entry %s failed (attempt %d of %d); retrying it alone in %.1f s",
                    self.group.name, entry_id.decode(), attempts, self._max_attempts, delay,
                    exc_info=error)  # fmt: skip

    async def _dead_letter(self, entry: Entry, error: Exception, attempts: int) -> None:
        """Move the entry aside, with its error, and acknowledge it: in one transaction."""
        entry_id, fields = entry
        event_type = fields.get(TYPE_B, b"?").decode(errors="replace")
        text = "".join(traceback.format_exception(error))[-ERROR_MAX_CHARS:]
        dead: dict[Any, Any] = {
            "group": self.group.name, "stream": self.group.stream, "id": entry_id,
            "error": text, "attempts": attempts, **fields,
        }  # fmt: skip
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self._keys.dead_letters, dead, maxlen=DEAD_LETTER_MAXLEN, approximate=True)
            pipe.xack(self.group.stream, self.group.name, entry_id)
            pipe.hdel(self._keys.consumer_attempts(self.group.name), entry_id.decode())
            await pipe.execute()
        self._forget(entry_id)
        DEAD_LETTERS.labels(self.group.name, event_type).inc()
        log.error("%s: entry %s (%s) failed %d times; moved to %s", self.group.name,
                  entry_id.decode(), event_type, attempts, self._keys.dead_letters,
                  exc_info=error)  # fmt: skip

    async def _ack(self, entry_ids: list[bytes]) -> None:
        if not entry_ids:
            return
        # Bookkeeping of work done: a cancellation must not cut it off halfway.
        await shielded(self._redis.xack(self.group.stream, self.group.name, *entry_ids))
        retried = [entry_id for entry_id in entry_ids if entry_id in self._retry_at]
        if retried:  # an entry that failed before went through after all
            await self._redis.hdel(self._keys.consumer_attempts(self.group.name),
                                   *[entry_id.decode() for entry_id in retried])  # fmt: skip
            for entry_id in retried:
                self._forget(entry_id)

    def _forget(self, entry_id: bytes) -> None:
        self._retry_at.pop(entry_id, None)
        self._retry_backoff.pop(entry_id, None)

    # -- concurrency ---------------------------------------------------------------------

    async def keep_claimed(self) -> None:
        """Reset the idle time of the entries being handled here, so that another
        consumer's XAUTOCLAIM takes them only from a consumer that stopped, however long
        their handling takes."""
        if self._handling:
            await self._redis.xclaim(self.group.stream, self.group.name, self.consumer, 0,
                                     list(self._handling), justid=True)  # fmt: skip

    async def drain(self) -> None:
        """Let the batches in flight finish (stage one of a stop); cancelled, cancel them."""
        try:
            if self._tasks:
                await asyncio.wait(set(self._tasks))
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Cancel the batches in flight: their entries stay pending for whoever is next."""
        for task in self._tasks:
            task.cancel()
