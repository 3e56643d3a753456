"""Commands of many callers in one pipeline, each caller with its own replies."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError, ResponseError

from gateway.config import Settings
from gateway.realtime.batching import MAX_CALLERS, RoundTrips


async def test_each_caller_gets_its_own_replies(redis: Redis, settings: Settings) -> None:
    key = f"{settings.redis_prefix}round-trips"
    trips = RoundTrips(redis)
    callers = MAX_CALLERS + 500  # more than one pipeline holds

    async def caller(n: int) -> list[object]:
        def queue(pipe: object) -> None:
            pipe.incrby(key, n)  # type: ignore[attr-defined]
            pipe.echo(f"caller {n}")  # type: ignore[attr-defined]

        return await trips.run(queue)

    replies = await asyncio.gather(*(caller(n) for n in range(callers)))
    assert [r[1] for r in replies] == [f"caller {n}".encode() for n in range(callers)]
    assert int(await redis.get(key)) == sum(range(callers))
    assert len({r[0] for r in replies}) == callers  # every running total is distinct
    await redis.delete(key)


async def test_a_failing_command_fails_only_its_caller(redis: Redis, settings: Settings) -> None:
    key = f"{settings.redis_prefix}round-trips-text"
    await redis.set(key, "not a number")
    trips = RoundTrips(redis)
    bad, good = await asyncio.gather(
        trips.run(lambda pipe: pipe.incr(key)),
        trips.run(lambda pipe: pipe.get(key)),
    )
    assert isinstance(bad[0], ResponseError)
    assert good == [b"not a number"]
    await redis.delete(key)


async def test_a_lost_connection_reaches_every_caller() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    trips = RoundTrips(unreachable)
    results = await asyncio.gather(
        trips.run(lambda pipe: pipe.ping()),
        trips.run(lambda pipe: pipe.ping()),
        return_exceptions=True,
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    await unreachable.aclose()
    with pytest.raises(ConnectionError):
        await trips.run(lambda pipe: pipe.ping())
