"""The history generation belongs to one Redis primary: stable while that primary serves
it, renewed when another one does (a failover, a restart), and adopted as it is when an
earlier version left it without an owner."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.history import began_ms, generation
from gateway.keys import Keys


@pytest.fixture
async def keys(redis: Redis) -> AsyncIterator[Keys]:
    keys = Keys(f"generation-{uuid.uuid4().hex[:8]}:")
    yield keys
    await redis.delete(keys.history_epoch, keys.history_server)


async def test_one_primary_keeps_one_generation(redis: Redis, keys: Keys) -> None:
    before = int(time.time() * 1000)
    first = await generation(redis, keys)
    assert [await generation(redis, keys) for _ in range(3)] == [first] * 3
    assert before - 1000 <= await began_ms(redis, keys) <= int(time.time() * 1000) + 1000
    replication_id = (await redis.info("replication"))["master_replid"]
    assert (await redis.get(keys.history_server)).decode().split()[0] == replication_id


async def test_another_primary_starts_a_new_generation(redis: Redis, keys: Keys) -> None:
    first = await generation(redis, keys)
    # What a promoted replica holds: the generation and the old primary's replication id.
    await redis.set(keys.history_server, "0123456789abcdef 1000")
    second = await generation(redis, keys)
    assert second != first
    assert await generation(redis, keys) == second
    assert await began_ms(redis, keys) > 1000


async def test_a_generation_without_owner_is_adopted(redis: Redis, keys: Keys) -> None:
    await redis.set(keys.history_epoch, "00c0ffee")  # as an earlier version left it
    assert await generation(redis, keys) == "00c0ffee"
    assert await began_ms(redis, keys) == 0  # not known: read from the streams' start
    await redis.delete(keys.history_epoch)  # the data lost
    assert await generation(redis, keys) != "00c0ffee"
