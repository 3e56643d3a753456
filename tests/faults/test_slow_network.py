"""A slow network between a worker and Redis: two routers at once, one of them slow to
append, never leave an older unread count on a person's devices."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import Keys
from gateway.pipeline.router import Router
from gateway.streams import Entry
from tests.faults.proxy import Proxy
from tests.faults.report import Arrival, FaultReport, Row
from tests.helpers import fresh_user


def _broadcast(outbox_id: int, user_id: int, title: str) -> Entry:
    event: dict[str, Any] = {"type": "broadcast", "ts": "2024-01-01T00:00:00.000Z",
                             "actor_id": None, "outbox_id": outbox_id,
                             "data": {"to": [user_id], "title": title, "body": "."}}  # fmt: skip
    return f"{outbox_id}-0".encode(), {b"t": b"broadcast", b"e": json.dumps(event).encode()}


async def test_an_older_count_arriving_last_is_dropped(
    db: asyncpg.Pool, redis: Redis, settings: Settings, redis_proxy: Proxy,
    fault_report: FaultReport,
) -> None:  # fmt: skip
    keys = Keys(f"{settings.redis_prefix}slow-{uuid.uuid4().hex[:8]}:")
    slow_redis = Redis.from_url(redis_proxy.redis_url())
    slow = Router(db, slow_redis, keys, consumer="slow")
    fast = Router(db, redis, keys, consumer="fast")
    user = await fresh_user(db)
    base = uuid.uuid4().int % 10**9 * 1000
    try:
        await slow_redis.ping()
        redis_proxy.delay_s = 0.5  # its appends reach Redis half a second late
        first = asyncio.create_task(slow.handle_batch([_broadcast(base + 1, user, "first")]))
        await asyncio.sleep(0.2)  # it has counted (1 unread); its appends are on the way
        await fast.handle_batch([_broadcast(base + 2, user, "second")])  # counts 2, lands first
        await first
    finally:
        await slow_redis.aclose()

    counts = [
        json.loads(fields[b"e"])["data"]
        for _, fields in await redis.xrange(keys.user_stream(user))
        if fields[b"t"] == b"unread_count"
    ]
    titles = [json.loads(f[b"e"])["data"].get("title") for _, f in await redis.xrange(
        keys.user_stream(user)) if f[b"t"] == b"broadcast"]  # fmt: skip
    fault_report.add(Row.of("Redis link delayed 0.5 s, two routers", ["first", "second"],
                            [Arrival(title, 0) for title in titles], None,
                            f"unread counts appended: {len(counts)}"))  # fmt: skip
    assert counts == [{"messages": 0, "notifications": 2}]  # the older count never landed
    assert sorted(titles) == ["first", "second"]  # both notifications went through
