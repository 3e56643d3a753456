"""Redis round trips shared by everything that asks within the same moment.

When thousands of SSE clients connect or drop at once (an instance restart, a network
blip), one pipeline per client would take as many pooled connections and round trips;
here the commands queued during one pass of the event loop go out as one pipeline,
and each caller gets its own replies back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gateway.coalesce import Coalesced

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
