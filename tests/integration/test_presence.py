"""The presence sweeper against a real Redis: who it announces, when, and only once."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import Keys
from gateway.realtime.presence import Presence
from tests.helpers import record_connection, record_disconnect

HEARTBEAT_S = 1  # ttl 2.5 s, debounce 1 s


@pytest.fixture
def presence(redis: Redis, settings: Settings) -> Presence:
    # Its own prefix: the session's worker sweeps the shared one.
    return Presence(
        redis, Keys(f"{settings.redis_prefix}presence-{uuid.uuid4().hex}:"), HEARTBEAT_S
    )


async def past_the_debounce(presence: Presence) -> None:
    await asyncio.sleep(presence.debounce_ms / 1000 + 0.1)


async def announced(presence: Presence) -> list[tuple[int, bool]]:
    entries = await presence.redis.xrange(presence.keys.board_stream)
    bodies = [json.loads(fields[b"e"]) for _, fields in entries]
    assert all(b["type"] == "presence" and b["actor_id"] is None for b in bodies)
    return [(b["data"]["user_id"], b["data"]["online"]) for b in bodies]


async def test_a_connect_is_announced_once(presence: Presence) -> None:
    await record_connection(presence, 7, "a")
    await record_connection(presence, 7, "b")  # a second device is no second announcement
    assert await presence.sweep() == ([7], [])
    assert await presence.sweep() == ([], [])
    assert await announced(presence) == [(7, True)]
    [row] = await presence.snapshot([7])
    assert row["online"] and row["connections"] == 2


async def test_offline_waits_for_the_debounce(presence: Presence) -> None:
    await record_connection(presence, 7, "a")
    await presence.sweep()
    await record_disconnect(presence, 7, "a")
    assert await presence.sweep() == ([], [])  # within the debounce: not yet
    await past_the_debounce(presence)
    assert await presence.sweep() == ([], [7])
    assert await announced(presence) == [(7, True), (7, False)]
    [row] = await presence.snapshot([7])
    assert not row["online"] and row["last_seen"] is not None


async def test_a_reconnect_within_the_debounce_is_no_flap(presence: Presence) -> None:
    await record_connection(presence, 7, "a")
    await presence.sweep()
    await record_disconnect(presence, 7, "a")
    await presence.sweep()
    await record_connection(presence, 7, "b")
    await past_the_debounce(presence)
    assert await presence.sweep() == ([], [])
    assert await announced(presence) == [(7, True)]


async def test_one_device_leaving_keeps_the_user_online(presence: Presence) -> None:
    await record_connection(presence, 7, "phone")
    await record_connection(presence, 7, "desk")
    await presence.sweep()
    await record_disconnect(presence, 7, "phone")
    await past_the_debounce(presence)
    assert await presence.sweep() == ([], [])
    assert await presence.online_of([7]) == {7: True}


async def test_unrefreshed_connections_lapse(presence: Presence) -> None:
    """An instance that dies never disconnects: its connections expire."""
    await record_connection(presence, 7, "dead")
    await record_connection(presence, 8, "alive")
    await presence.sweep()
    deadline = asyncio.get_running_loop().time() + presence.ttl_ms / 1000 + 0.3
    while asyncio.get_running_loop().time() < deadline:
        await presence.refresh([(8, "alive")])
        await presence.sweep()
        await asyncio.sleep(0.2)
    assert await presence.sweep() == ([], [])
    assert await announced(presence) == [(7, True), (8, True), (7, False)]
    assert await presence.online_of([7, 8]) == {7: False, 8: True}


async def test_concurrent_sweepers_announce_each_change_once(presence: Presence) -> None:
    for user_id in range(1, 201):
        await record_connection(presence, user_id, f"c{user_id}")
    results = await asyncio.gather(*(presence.sweep() for _ in range(4)))
    came = sorted(u for result in results for u in result[0])
    assert came == list(range(1, 201))
    assert len(await announced(presence)) == 200


async def test_a_quiet_sweep_leaves_connected_users_alone(presence: Presence) -> None:
    """Users already announced are not due again until their connections may lapse."""
    for user_id in range(1, 51):
        await record_connection(presence, user_id, f"c{user_id}")
    await presence.sweep()
    due = await presence.redis.zrangebyscore(
        presence.keys.presence_users, "-inf", "+inf", withscores=True
    )
    assert len(due) == 50
    now_ms = (await presence.redis.time())[0] * 1000
    assert all(score > now_ms for _, score in due)


async def test_a_snapshot_tells_each_person_apart(presence: Presence) -> None:
    """Online, gone and never seen, in one snapshot, each in its place."""
    for user_id, conn_id in ((7, "a"), (8, "b")):
        await record_connection(presence, user_id, conn_id)
    await presence.sweep()
    await record_disconnect(presence, 8, "b")
    await past_the_debounce(presence)
    await presence.sweep()
    online, gone, never = await presence.snapshot([7, 8, 9])
    assert (online["user_id"], online["online"], online["connections"]) == (7, True, 1)
    assert (gone["user_id"], gone["online"], gone["connections"]) == (8, False, 0)
    assert gone["last_seen"] is not None
    assert (never["user_id"], never["online"], never["last_seen"]) == (9, False, None)
    assert await presence.snapshot([]) == []
