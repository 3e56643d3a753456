"""The history generation belongs to one Redis primary: stable while that primary serves
it, renewed when another one does (a failover, a restart), and adopted as it is when an
earlier version left it without an owner."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.history import began_ms, generation
from gateway.keys import Keys
from gateway.realtime.hub import Hub
from gateway.wire import ENVELOPE, START, TYPE, envelope


@pytest.fixture
async def keys(redis: Redis) -> AsyncIterator[Keys]:
    keys = Keys(f"generation-{uuid.uuid4().hex[:8]}:")
    yield keys
    found = [key async for key in redis.scan_iter(f"{keys.prefix}*")]
    if found:
        await redis.delete(*found)


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


async def test_a_hub_reads_a_new_generation_from_where_it_began(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    """After a failover the streams are still full: the hub neither reads them again
    from their start nor hands a client what came before the generation it was told."""
    hub = Hub(replace(settings, redis_prefix=keys.prefix), keys, redis)
    await hub.start()
    try:
        await _card(redis, keys, "before")
        await hub.read_pass()
        async with hub.connection(7, None, 100) as opened:
            old_id = opened.start.encode()
        await asyncio.sleep(0.01)
        await redis.set(keys.history_server, "0123456789abcdef 1000")  # another primary
        async with hub.connection(7, old_id, 100) as opened:
            assert opened.reset == "history_lost"
            began = await began_ms(redis, keys)
            assert opened.start.board_pos == f"{began - 1}-0" != START
        async with hub.connection(8, None, 100) as fresh:
            assert fresh.start.board_pos == f"{began - 1}-0"
            fresh_id = fresh.start.encode()
        await _card(redis, keys, "after")
        await hub.read_pass()
        async with hub.connection(8, fresh_id, 100) as resumed:
            assert resumed.reset is None
            assert any('"after"' in frame for frame in resumed.catch_up)
            assert not any('"before"' in frame for frame in resumed.catch_up)
    finally:
        await hub.close()


async def _card(redis: Redis, keys: Keys, title: str) -> None:
    body = envelope("ticket_updated", {"ticket": {"id": 1, "title": title}})
    await redis.xadd(keys.board_stream, {TYPE: "ticket_updated", ENVELOPE: body})
