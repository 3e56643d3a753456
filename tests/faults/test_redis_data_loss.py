"""Redis loses its data (every key of the test's prefix deleted in one step, as a restart
without persistence does): what the lost history held unfinished is given again — events
not yet routed are routed, notifications not yet considered are pushed — once; a live
SSE client is told the history was lost, then gets what follows."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import asyncpg
from redis.asyncio import Redis

from domain.events import BroadcastSent
from gateway.config import Settings
from gateway.keys import Keys
from gateway.pipeline.relay import OutboxRelay
from gateway.pipeline.router import Router
from gateway.push.dispatch import Dispatcher
from gateway.push.fanout import PushFanout
from gateway.push.sender import PushSender
from gateway.services.outbox import UnitOfWork
from tests.faults.faults import lose_keys
from tests.faults.report import Arrival, FaultReport, Row
from tests.faults.watch import SseWatch, broadcast
from tests.gateway_process import Deployment
from tests.helpers import eventually, fresh_user, stream_events, token_for
from tests.push_fixtures import FakePushService


async def broadcast_all(pool: asyncpg.Pool, user_id: int, titles: list[str]) -> None:
    async with UnitOfWork(pool) as uow:
        uow.emit(*(BroadcastSent(None, title, "Line 2 restarts", [user_id]) for title in titles))
        await uow.commit()


async def test_events_lost_before_routing_are_routed_after_all(
    own_database: str, own_prefix: str, pool: asyncpg.Pool, redis: Redis, fault_report: FaultReport
) -> None:
    keys = Keys(own_prefix)
    user = await fresh_user(pool)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(OutboxRelay(own_database, redis, keys, poll_s=0.05).run(stop))]
    try:
        await broadcast_all(pool, user, ["one", "two", "three"])
        assert await eventually(lambda: _length(redis, keys.domain_stream, 3), 10)
        assert await lose_keys(redis, own_prefix) > 0  # published, never routed: lost

        tasks.append(asyncio.create_task(Router(pool, redis, keys, consumer="r").run(stop)))

        async def titles() -> list[str]:
            events = await stream_events(redis, keys.user_stream(user))
            return [e["data"]["title"] for e in events if e["type"] == "broadcast"]

        async def all_three() -> bool:
            return await titles() == ["one", "two", "three"]

        assert await eventually(all_three, 10)
        await asyncio.sleep(0.3)
        seen = [Arrival(title, 0) for title in await titles()]
        fault_report.add(Row.of("Redis keys lost before routing", ["one", "two", "three"], seen,
                                None))  # fmt: skip
        assert await titles() == ["one", "two", "three"]  # once each
        stored = await pool.fetchval("SELECT count(*) FROM notifications WHERE user_id = $1", user)
        assert stored == 3
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)


async def test_notifications_lost_before_their_push_are_pushed_after_all(
    own_database: str, own_prefix: str, pool: asyncpg.Pool, redis: Redis, settings: Settings,
    fault_report: FaultReport,
) -> None:  # fmt: skip
    keys = Keys(own_prefix)
    service = await FakePushService().start()
    mine = replace(settings, redis_prefix=own_prefix, push_endpoint_allow=(service.origin,))
    user = await fresh_user(pool)
    await service.subscribe(pool, user)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(OutboxRelay(own_database, redis, keys, poll_s=0.05).run(stop)),
        asyncio.create_task(Router(pool, redis, keys, consumer="r").run(stop)),
    ]
    try:
        await broadcast_all(pool, user, ["one", "two"])
        assert await eventually(lambda: _length(redis, keys.push_stream, 2), 10)
        await lose_keys(redis, own_prefix)  # routed, never pushed: lost with the push stream
        async with PushSender.from_settings(mine) as sender:
            fanout = PushFanout(pool, redis, keys, mine, Dispatcher(pool, sender), consumer="p")
            tasks.append(asyncio.create_task(fanout.run(stop)))
            assert await eventually(lambda: _received(service, 2), 10)
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 10)
        titles = sorted(r.payload["title"] for r in service.received if r.payload)
        pushed = [Arrival(title, 0) for title in titles]
        fault_report.add(Row.of("Redis keys lost before pushing: pushes", ["one", "two"], pushed,
                                None))  # fmt: skip
        assert titles == ["one", "two"]  # once each
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        await service.stop()


async def _length(redis: Redis, stream: str, count: int) -> bool:
    return int(await redis.xlen(stream)) >= count


async def _received(service: FakePushService, count: int) -> bool:
    return len(service.received) >= count


async def test_a_live_client_is_told_history_lost_then_gets_what_follows(
    deployment: Deployment, own_prefix: str, pool: asyncpg.Pool, redis: Redis,
    settings: Settings, fault_report: FaultReport,
) -> None:  # fmt: skip
    """Under a gateway and a worker, with the person's SSE client open: the client is told
    `history_lost` (whatever the timing), then gets every broadcast committed after it,
    once; nothing of before comes again."""
    gateway = deployment.gateway
    user = await fresh_user(pool)
    async with SseWatch(gateway.url, token_for(settings.jwt_secret, user)) as watch:
        before = {f"before-{n}" for n in range(3)}
        for title in sorted(before):
            assert await broadcast(pool, user, title)
        assert await eventually(lambda: watch.has_all(before), 15)

        assert await lose_keys(redis, own_prefix) > 0
        lost_at = time.monotonic()
        assert await eventually(lambda: _told(watch), 10), "never told of the loss"
        told_after = time.monotonic() - lost_at
        after = {f"after-{n}" for n in range(3)}
        for title in sorted(after):
            assert await broadcast(pool, user, title)
        assert await eventually(lambda: watch.has_all(after), 15)
        await asyncio.sleep(0.5)  # a duplicate would come meanwhile
    row = Row.of("Redis keys lost under a live SSE client", before | after, watch.arrivals,
                 lost_at, f"reset {watch.resets} after {told_after:.1f} s")  # fmt: skip
    fault_report.add(row)
    assert watch.resets == ["history_lost"]
    assert row.exactly_once, (row, gateway.log_tail())


async def _told(watch: SseWatch) -> bool:
    return bool(watch.resets)
