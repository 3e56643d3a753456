"""Redis round trips shared by everything that asks within the same moment.

When thousands of SSE clients connect or drop at once (an instance restart, a network
blip), one pipeline per client would take as many pooled connections and round trips;
here the commands queued during one pass of the event loop go out as one pipeline,
and each caller gets its own replies back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

MAX_CALLERS = 2000  # per pipeline; the rest go in the next one

Queue = Callable[[Pipeline], object]


class RoundTrips:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pending: list[tuple[Queue, asyncio.Future[list[Any]]]] = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def run(self, queue: Queue) -> list[Any]:
        """Queue commands with `queue(pipe)`; their replies, in order, errors included
        as exception objects (as `execute(raise_on_error=False)` gives them)."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((queue, future))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending[:MAX_CALLERS], self._pending[MAX_CALLERS:]
        if self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        task = asyncio.create_task(self._execute(batch))
        self._flushing.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._flushing.discard)

    async def _execute(self, batch: list[tuple[Queue, asyncio.Future[list[Any]]]]) -> None:
        counts = []
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for queue, _ in batch:
                    before = len(pipe.command_stack)
                    queue(pipe)
                    counts.append(len(pipe.command_stack) - before)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the connection failed: every caller learns it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled at shutdown: so are the callers
            for _, future in batch:
                future.cancel()
            raise
        start = 0
        for (_, future), count in zip(batch, counts, strict=True):
            if not future.done():  # a caller that was cancelled meanwhile
                future.set_result(replies[start : start + count])
            start += count
