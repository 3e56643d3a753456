"""Requests made during one pass of the event loop, answered together.

Connects, drops and API calls come in storms (an instance restart, a network blip, a
shift change). One round trip each would queue on the connection pools; here the
requests of one loop pass go out as one batch — a Redis pipeline (`RoundTrips`), one
query (`Coalesced`) — and each caller gets its own answer. A lone request still costs
exactly one round trip, at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

Request = TypeVar("Request")
Answer = TypeVar("Answer")


class Coalesced(Generic[Request, Answer]):
    def __init__(
        self, answer_all: Callable[[list[Request]], Awaitable[list[Answer]]], max_batch: int
    ) -> None:
        """`answer_all` answers a batch in one round trip: one answer per request, in order."""
        self._answer_all = answer_all
        self._max_batch = max_batch
        self._pending: list[tuple[Request, asyncio.Future[Answer]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def ask(self, request: Request) -> Answer:
        return await self.submit(request)

    def submit(self, request: Request) -> asyncio.Future[Answer]:
        """The future answer of `request`, sent with the next batch."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        return future

    def _flush(self) -> None:
        limit = self._max_batch
        batch, self._pending = self._pending[:limit], self._pending[limit:]
        if self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        task = asyncio.create_task(self._answer(batch))
        self._running.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._running.discard)

    async def _answer(self, batch: list[tuple[Request, asyncio.Future[Answer]]]) -> None:
        try:
            answers = await self._answer_all([request for request, _ in batch])
        except Exception as exc:  # the round trip failed: every caller learns it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled at shutdown: so are the callers
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():  # a caller cancelled meanwhile
                future.set_result(answer)


MAX_CALLERS = 2000  # per pipeline; the rest go in the next one

Queue = Callable[[Pipeline], object]


class RoundTrips:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._batches = Coalesced(self._execute, MAX_CALLERS)

    async def run(self, queue: Queue) -> list[Any]:
        """Queue commands with `queue(pipe)`; their replies, in order, errors included
        as exception objects (as `execute(raise_on_error=False)` gives them)."""
        return await self._batches.ask(queue)

    def submit(self, queue: Queue) -> asyncio.Future[list[Any]]:
        """`run`'s replies as a future: the round trip goes out whether or not anyone
        awaits it. Batches go out on several connections at once, so one submitted later
        may be executed first; await this one before sending what must follow it."""
        return self._batches.submit(queue)

    async def _execute(self, queues: list[Queue]) -> list[list[Any]]:
        counts = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                before = len(pipe.command_stack)
                queue(pipe)
                counts.append(len(pipe.command_stack) - before)
            replies = await pipe.execute(raise_on_error=False)
        answers, start = [], 0
        for count in counts:
            answers.append(replies[start : start + count])
            start += count
        return answers
