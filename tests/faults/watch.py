"""What a fault test commits, and how it watches from outside what arrives: an SSE client
that honours ids as a browser's EventSource does (it reconnects with the last id it
received), and a reader of one user stream that follows it by entry id. Both note when
each event arrived, to tell how soon delivery resumed after a fault."""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType
from typing import Self

import aiohttp
import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.events import BroadcastSent
from gateway.retry import is_transient
from gateway.services.outbox import UnitOfWork
from tests.faults.report import Arrival
from tests.gateway_process import SseEvent, open_stream
from tests.helpers import stream_events

BODY = "Line 2 restarts at 14:00"


async def broadcast(pool: asyncpg.Pool, user_id: int, title: str) -> bool:
    """Commit one broadcast to `user_id`; whether the commit went through (an outage
    makes it fail: the caller tries again under another title, and the outbox says at
    the end what was committed)."""
    try:
        async with UnitOfWork(pool) as uow:
            uow.emit(BroadcastSent(None, title, BODY, [user_id]))
            await uow.commit()
    except Exception as exc:
        if not is_transient(exc):
            raise
        return False
    return True


async def committed_titles(pool: asyncpg.Pool) -> set[str]:
    """Every broadcast title the database holds: what was committed, whatever the writers
    were told."""
    rows = await pool.fetch("SELECT payload->>'title' AS title FROM outbox"
                            " WHERE event_type = 'broadcast'")  # fmt: skip
    return {row["title"] for row in rows}


class _Watch:
    """A background watcher; `arrivals` holds what it saw, in order."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        raise NotImplementedError

    def titles(self) -> list[str]:
        return [arrival.key for arrival in self.arrivals]

    async def has_all(self, wanted: set[str]) -> bool:
        return wanted <= set(self.titles())

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self.run())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class StreamWatch(_Watch):
    """Follows one user stream by entry id (XRANGE after the last id seen), noting each
    broadcast it finds."""

    def __init__(self, redis: Redis, stream: str) -> None:
        super().__init__()
        self._redis, self._stream = redis, stream

    async def run(self) -> None:
        seen: set[str] = set()
        while True:
            with contextlib.suppress(RedisError, OSError):
                for event in await stream_events(self._redis, self._stream):
                    if event["stream_id"] not in seen:
                        seen.add(event["stream_id"])
                        if event["type"] == "broadcast":
                            self.arrivals.append(Arrival(event["data"]["title"], time.monotonic()))
            await asyncio.sleep(0.02)


class SseWatch(_Watch):
    """An SSE client of a gateway that resumes with the last id it received whenever its
    stream ends or cannot open, noting each event of `kinds` (by the value of `key` in its
    data) and each `reset`."""

    def __init__(self, base_url: str, token: str, kinds: tuple[str, ...] = ("broadcast",),
                 key: str = "title") -> None:  # fmt: skip
        super().__init__()
        self._url, self._token, self._kinds, self._key = base_url, token, kinds, key
        self.resets: list[str] = []
        self.opens = 0
        self.last_id: str | None = None

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                with contextlib.suppress(aiohttp.ClientError, OSError, EOFError, TimeoutError):
                    await self._follow(session)
                await asyncio.sleep(0.1)  # as EventSource's retry, only sooner

    async def _follow(self, session: aiohttp.ClientSession) -> None:
        try:
            stream = await open_stream(session, self._url, self._token, self.last_id)
        except AssertionError:  # not a 200 (the instance answered 503): retry
            return
        self.opens += 1
        try:
            while True:
                self._note(await stream.next_event(timeout_s=3600))
        finally:
            stream.response.close()

    def _note(self, event: SseEvent) -> None:
        if event.id:
            self.last_id = event.id
        if event.event == "reset":
            self.resets.append(event.data["data"]["reason"])
        if event.event in self._kinds:
            self.arrivals.append(Arrival(str(event.data["data"][self._key]), time.monotonic()))
