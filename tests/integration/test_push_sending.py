"""Sending against a push service of our own that answers as told: retries, Retry-After,
gone devices, refused redirects and addresses, concurrency, and the fan-out's consumer
group and grace loop on a Redis prefix of their own (no other worker reads it)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import PUSH_GROUP, Keys
from gateway.push.dispatch import Dispatcher, Job
from gateway.push.fanout import PushFanout
from gateway.push.guard import EndpointGuard
from gateway.push.payload import notification_message
from gateway.push.sender import PushSender, VapidTokens
from gateway.push.store import notifications_to_push
from gateway.wire import now_ms
from tests.helpers import eventually, fresh_user
from tests.push_fixtures import FakePushService, fixed_dns


@pytest.fixture
async def service() -> AsyncIterator[FakePushService]:
    fake = await FakePushService().start()
    yield fake
    await fake.stop()


def sender_for(settings: Settings, guard: EndpointGuard, **options: Any) -> PushSender:
    tokens = VapidTokens(settings.vapid_private_key, settings.vapid_subject)
    return PushSender(guard, tokens, backoff_base_s=0.05, **options)


async def device(
    db: asyncpg.Pool, service: FakePushService, user_id: int, endpoint: str | None = None
) -> int:
    keys = service.device.keys
    return int(await db.fetchval(
        "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth) VALUES ($1, $2, $3, $4)"
        " RETURNING id", user_id, endpoint or service.endpoint(), keys["p256dh"], keys["auth"],
    ))  # fmt: skip


async def notify(
    db: asyncpg.Pool, user_id: int, kind: str = "ticket_assigned", critical: bool = True
) -> int:
    return int(await db.fetchval(
        "INSERT INTO notifications (user_id, event_id, type, title, body, url, data, critical)"
        " VALUES ($1, $2, $3, 'New ticket assigned', 'T-2026-100: Belt', '/?ticket=100',"
        " '{\"ticket_id\": 100}', $4) RETURNING id",
        user_id, -uuid.uuid4().int % 2**62, kind, critical,
    ))  # fmt: skip


async def job_for(db: asyncpg.Pool, notification_id: int) -> Job:
    [row] = await notifications_to_push(db, [notification_id])
    return Job(row["user_id"], notification_message(row), notification_id)


async def logs(db: asyncpg.Pool, notification_id: int) -> list[tuple[str, int | None, int]]:
    rows = await db.fetch(
        "SELECT status, http_status, attempt FROM push_logs WHERE notification_id = $1 ORDER BY id",
        notification_id,
    )
    return [(r["status"], r["http_status"], r["attempt"]) for r in rows]


def answers(*replies: tuple[int, dict[str, str]]) -> Any:
    """Answer with `replies` in turn, then 201."""
    queue = list(replies)
    return lambda _: queue.pop(0) if queue else (201, {})


async def send_one(db: asyncpg.Pool, settings: Settings, service: FakePushService,
                   **options: Any) -> tuple[int, int]:  # fmt: skip
    user_id = await fresh_user(db)
    await device(db, service, user_id)
    notification_id = await notify(db, user_id)
    async with sender_for(
        settings, EndpointGuard.from_origins([service.origin]), **options
    ) as sender:
        await Dispatcher(db, sender).deliver([await job_for(db, notification_id)])
    return user_id, notification_id


async def test_a_push_carries_the_web_push_headers(db: asyncpg.Pool, settings: Settings,
                                                   service: FakePushService) -> None:  # fmt: skip
    _, notification_id = await send_one(db, settings, service)
    [push] = service.received
    assert push.headers["TTL"] == "86400" and push.headers["Urgency"] == "high"
    assert push.headers["Content-Encoding"] == "aes128gcm"
    assert push.headers["Topic"] == "critical-ticket-100"  # an assignment: a topic of its own
    assert push.headers["Content-Type"] == "application/octet-stream"
    assert push.headers["Authorization"].startswith("vapid t=")
    assert push.payload is not None and push.payload["data"]["notification_id"] == notification_id
    assert await logs(db, notification_id) == [("sent", 201, 1)]


async def test_429_is_retried_after_retry_after(db: asyncpg.Pool, settings: Settings,
                                                service: FakePushService) -> None:  # fmt: skip
    service.script = answers((429, {"Retry-After": "1"}))
    _, notification_id = await send_one(db, settings, service)
    assert await logs(db, notification_id) == [("retry", 429, 1), ("sent", 201, 2)]
    first, second = service.received
    assert second.at - first.at >= 0.95


async def test_5xx_is_retried_with_backoff(db: asyncpg.Pool, settings: Settings,
                                           service: FakePushService) -> None:  # fmt: skip
    service.script = answers((500, {}), (502, {}))
    _, notification_id = await send_one(db, settings, service)
    assert await logs(db, notification_id) == [
        ("retry", 500, 1),
        ("retry", 502, 2),
        ("sent", 201, 3),
    ]


async def test_three_failures_end_as_send_failed(db: asyncpg.Pool, settings: Settings,
                                                 service: FakePushService) -> None:  # fmt: skip
    service.script = lambda _: (503, {})
    user_id, notification_id = await send_one(db, settings, service)
    assert await logs(db, notification_id) == [
        ("retry", 503, 1),
        ("retry", 503, 2),
        ("send_failed", 503, 3),
    ]
    assert len(service.received) == 3
    assert (
        await db.fetchval("SELECT count(*) FROM push_subscriptions WHERE user_id = $1", user_id)
        == 1
    )


async def test_a_retry_after_beyond_reason_gives_up(db: asyncpg.Pool, settings: Settings,
                                                    service: FakePushService) -> None:  # fmt: skip
    service.script = lambda _: (429, {"Retry-After": "3600"})
    _, notification_id = await send_one(db, settings, service)
    assert await logs(db, notification_id) == [("send_failed", 429, 1)]


async def test_a_timeout_is_retried(db: asyncpg.Pool, settings: Settings,
                                    service: FakePushService) -> None:  # fmt: skip
    service.delay_s = 1.0
    _, notification_id = await send_one(db, settings, service, timeout_s=0.3, attempts=2)
    assert [(status, attempt) for status, _, attempt in await logs(db, notification_id)] == [
        ("retry", 1), ("send_failed", 2)
    ]  # fmt: skip


@pytest.mark.parametrize("status", [400, 413])
async def test_400_and_413_are_not_retried(status: int, db: asyncpg.Pool, settings: Settings,
                                           service: FakePushService) -> None:  # fmt: skip
    service.script = lambda _: (status, {})
    _, notification_id = await send_one(db, settings, service)
    assert await logs(db, notification_id) == [("rejected", status, 1)]
    assert len(service.received) == 1


@pytest.mark.parametrize("status", [404, 410])
async def test_a_gone_device_is_deleted(status: int, db: asyncpg.Pool, settings: Settings,
                                        service: FakePushService) -> None:  # fmt: skip
    service.script = lambda _: (status, {})
    user_id, notification_id = await send_one(db, settings, service)
    assert await logs(db, notification_id) == [("gone", status, 1)]
    assert (
        await db.fetchval("SELECT count(*) FROM push_subscriptions WHERE user_id = $1", user_id)
        == 0
    )


async def test_redirects_are_refused(db: asyncpg.Pool, settings: Settings,
                                     service: FakePushService) -> None:  # fmt: skip
    service.script = lambda _: (307, {"Location": "http://169.254.169.254/latest/meta-data"})
    _, notification_id = await send_one(db, settings, service)
    assert await logs(db, notification_id) == [("rejected", 307, 1)]
    assert len(service.received) == 1


async def test_an_endpoint_now_pointing_inside_is_blocked_at_send_time(
    db: asyncpg.Pool, settings: Settings, service: FakePushService
) -> None:
    """Subscribed while public; DNS now answers with our own address: nothing is sent."""
    user_id = await fresh_user(db)
    await device(db, service, user_id, f"https://push.example.com:{service.port}/push/x")
    await device(db, service, user_id, f"https://127.0.0.1:{service.port}/push/y")
    notification_id = await notify(db, user_id)
    guard = EndpointGuard.from_origins([], resolve=fixed_dns({"push.example.com": ["127.0.0.1"]}))
    async with sender_for(settings, guard) as sender:
        [tally] = await Dispatcher(db, sender).deliver([await job_for(db, notification_id)])
    assert (tally.sent, tally.failed) == (0, 2)
    assert [s for s, _, _ in await logs(db, notification_id)] == ["blocked", "blocked"]
    assert service.received == []


async def test_many_pushes_are_in_flight_at_once(db: asyncpg.Pool, settings: Settings,
                                                 service: FakePushService) -> None:  # fmt: skip
    """The service holds each push until all 40 are in flight (a second at most): sent one
    after another, no more than one would ever be. (Pushes/s: bench/push.py.)"""
    service.hold_until = 40
    jobs = []
    for _ in range(8):
        user_id = await fresh_user(db)
        for _ in range(5):
            await device(db, service, user_id)
        jobs.append(await job_for(db, await notify(db, user_id)))
    async with sender_for(settings, EndpointGuard.from_origins([service.origin])) as sender:
        tallies = await Dispatcher(db, sender).deliver(jobs)
    assert sum(t.sent for t in tallies) == 40
    assert service.max_in_flight == 40


async def test_a_repeated_delivery_repeats_no_recorded_send(
    db: asyncpg.Pool, settings: Settings, service: FakePushService
) -> None:
    user_id = await fresh_user(db)
    for _ in range(2):
        await device(db, service, user_id)
    notification_id = await notify(db, user_id)
    async with sender_for(settings, EndpointGuard.from_origins([service.origin])) as sender:
        dispatcher = Dispatcher(db, sender)
        job = await job_for(db, notification_id)
        [first] = await dispatcher.deliver([job])
        await device(db, service, user_id)  # a third device joins before the redelivery
        [again] = await dispatcher.deliver([job])
    assert (first.sent, again.sent) == (2, 1)
    assert len(service.received) == 3


async def test_a_notification_seen_after_the_decision_is_not_pushed(
    db: asyncpg.Pool, settings: Settings, service: FakePushService
) -> None:
    user_id = await fresh_user(db)
    await device(db, service, user_id)
    notification_id = await notify(db, user_id)
    job = await job_for(db, notification_id)  # decided: push it
    await db.execute("UPDATE notifications SET seen_at = now() WHERE id = $1", notification_id)
    async with sender_for(settings, EndpointGuard.from_origins([service.origin])) as sender:
        [tally] = await Dispatcher(db, sender).deliver([job])
    assert (tally.sent, tally.failed) == (0, 0)
    assert service.received == [] and await logs(db, notification_id) == []


# -- the fan-out's consumer group and grace loop, on a prefix of their own ---------------


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    """A Redis prefix of this test's own, removed afterwards."""
    name = f"push-{uuid.uuid4().hex[:8]}:"
    yield name
    found = [key async for key in redis.scan_iter(f"{name}*")]
    if found:
        await redis.delete(*found)


def own_settings(
    settings: Settings, prefix: str, service: FakePushService, **changes: Any
) -> Settings:
    return replace(settings, redis_prefix=prefix, push_endpoint_allow=(service.origin,), **changes)


def fanout(db: asyncpg.Pool, redis: Redis, settings: Settings, sender: PushSender, name: str,
           **options: Any) -> PushFanout:  # fmt: skip
    keys = Keys(settings.redis_prefix)
    return PushFanout(db, redis, keys, settings, Dispatcher(db, sender), consumer=name, **options)


async def enqueue(
    redis: Redis, keys: Keys, user_id: int, notification_id: int, pushable: bool = True
) -> None:
    entry = {"notification_id": notification_id, "user_id": user_id, "type": "ticket_assigned",
             "critical": True, "pushable": pushable}  # fmt: skip
    await redis.xadd(keys.push_stream, {"t": "ticket_assigned", "e": json.dumps(entry)})


async def stop_all(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)


async def test_the_consumer_pushes_each_entry_and_acknowledges_it(
    db: asyncpg.Pool, redis: Redis, settings: Settings, service: FakePushService, prefix: str
) -> None:
    mine = own_settings(settings, prefix, service)
    keys = Keys(mine.redis_prefix)
    user_id = await fresh_user(db)
    await device(db, service, user_id)
    wanted = [await notify(db, user_id) for _ in range(5)]
    in_app_only = await notify(db, user_id, "ticket_reassigned")
    for notification_id in wanted:
        await enqueue(redis, keys, user_id, notification_id)
    await enqueue(redis, keys, user_id, in_app_only, pushable=False)
    stop = asyncio.Event()
    async with PushSender.from_settings(mine) as sender:
        task = asyncio.create_task(fanout(db, redis, mine, sender, "one").run(stop))
        assert await eventually(lambda: _has(service, len(wanted)), 10)
        await asyncio.sleep(0.3)
        await stop_all(stop, [task])
    assert sorted(service.notification_ids()) == wanted
    pending = await redis.xpending(keys.push_stream, PUSH_GROUP)
    assert pending["pending"] == 0


async def sent_among(db: asyncpg.Pool, notification_ids: list[int]) -> set[int]:
    rows = await db.fetch(
        "SELECT notification_id FROM push_logs WHERE status = 'sent' AND notification_id = ANY($1)",
        notification_ids,
    )
    return {row["notification_id"] for row in rows}


async def _has(service: FakePushService, count: int) -> bool:
    return len(service.received) >= count


async def test_several_grace_loops_push_each_due_notification_once(
    db: asyncpg.Pool, redis: Redis, settings: Settings, service: FakePushService, prefix: str
) -> None:
    mine = own_settings(settings, prefix, service)
    keys = Keys(mine.redis_prefix)
    user_id = await fresh_user(db)
    await device(db, service, user_id)
    due = [await notify(db, user_id, "comment_added", critical=False) for _ in range(30)]
    await db.execute("INSERT INTO notification_preferences (user_id, types) VALUES ($1, $2)",
                     user_id, {"comment_added": {"push": True}})  # fmt: skip
    await redis.zadd(keys.push_delayed, {str(n): now_ms() for n in due})
    stop = asyncio.Event()
    async with PushSender.from_settings(mine) as sender:
        tasks = [asyncio.create_task(fanout(db, redis, mine, sender, f"w{i}").run_delayed(stop))
                 for i in range(3)]  # fmt: skip
        assert await eventually(lambda: _has(service, len(due)), 10)
        await asyncio.sleep(0.5)
        await stop_all(stop, tasks)
    assert sorted(service.notification_ids()) == due
    assert await redis.zcard(keys.push_delayed) == 0


async def test_a_stopped_consumers_entries_are_claimed_and_no_recorded_send_repeats(
    db: asyncpg.Pool, redis: Redis, settings: Settings, service: FakePushService, prefix: str
) -> None:
    """A consumer cancelled mid-batch (as a crash would stop it): another one claims what it
    left pending and finishes; what the first recorded as sent is not sent again."""
    mine = own_settings(settings, prefix, service, push_concurrency=4)
    keys = Keys(mine.redis_prefix)
    user_id = await fresh_user(db)
    await device(db, service, user_id)
    wanted = [await notify(db, user_id) for _ in range(12)]
    for notification_id in wanted:
        await enqueue(redis, keys, user_id, notification_id)
    service.delay_s = 0.2
    stop = asyncio.Event()
    async with PushSender.from_settings(mine) as sender:
        crashed = asyncio.create_task(fanout(db, redis, mine, sender, "crashed").run(stop))
        assert await eventually(lambda: _has(service, 5), 10)
        crashed.cancel()
        await asyncio.gather(crashed, return_exceptions=True)
        recorded = await sent_among(db, wanted)
        assert 0 < len(recorded) < len(wanted)
        received_before = len(service.received)
        heir = asyncio.create_task(
            fanout(db, redis, mine, sender, "heir", claim_idle_ms=200).run(stop)
        )

        async def all_sent() -> bool:
            return await sent_among(db, wanted) == set(wanted)

        assert await eventually(all_sent, 15)
        await stop_all(stop, [heir])
    after = [
        r.payload["data"]["notification_id"]
        for r in service.received[received_before:]
        if r.payload
    ]
    assert not recorded & set(after)  # nothing recorded as sent went out again
    assert set(service.notification_ids()) == set(wanted)
    assert (await redis.xpending(keys.push_stream, PUSH_GROUP))["pending"] == 0


async def test_a_slow_push_is_not_taken_over_by_another_worker(
    db: asyncpg.Pool, redis: Redis, settings: Settings, service: FakePushService, prefix: str
) -> None:
    """Only a stopped worker's entries are claimed: one still sending keeps them."""
    mine = own_settings(settings, prefix, service, claim_idle_ms=300)
    keys = Keys(mine.redis_prefix)
    user_id = await fresh_user(db)
    await device(db, service, user_id)
    notification_id = await notify(db, user_id)
    service.delay_s = 1.5  # five times the claim idle time
    stop = asyncio.Event()
    async with PushSender.from_settings(mine) as sender:
        first = asyncio.create_task(fanout(db, redis, mine, sender, "slow").run(stop))
        await asyncio.sleep(0.3)  # the group exists and the first worker reads
        await enqueue(redis, keys, user_id, notification_id)
        assert await eventually(lambda: _has(service, 1), 10)
        second = asyncio.create_task(fanout(db, redis, mine, sender, "eager").run(stop))
        assert await eventually(lambda: _sent(db, notification_id), 10)
        await asyncio.sleep(0.5)
        await stop_all(stop, [first, second])
    assert len(service.received) == 1


async def _sent(db: asyncpg.Pool, notification_id: int) -> bool:
    return bool(await sent_among(db, [notification_id]))
