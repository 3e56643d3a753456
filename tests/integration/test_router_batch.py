"""The router handles a whole read of the domain stream as one batch: every recipient
gets its notifications in event order, and a batch handled twice repeats nothing. An
entry that fails is isolated: the rest of its batch is delivered, and after a few
failures it is set aside in the dead-letter stream with its error."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import ROUTER_GROUP, Keys
from gateway.pipeline.router import Router
from gateway.services.stats import notification_stats, window
from gateway.streams import Entry, as_reply
from tests.helpers import fresh_user


@pytest.fixture
def keys(settings: Settings) -> Keys:
    """Streams of their own: the session worker's router never sees these events."""
    return Keys(f"{settings.redis_prefix}batch-{uuid.uuid4().hex[:8]}:")


@pytest.fixture
def router(db: asyncpg.Pool, redis: Redis, keys: Keys) -> Router:
    return Router(db, redis, keys, consumer="test", max_attempts=2)


def _event(outbox_id: int, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": event_type,
        "ts": "2024-01-01T00:00:00.000Z",
        "actor_id": None,
        "data": data,
        "outbox_id": outbox_id,
    }


async def _read_batch(redis: Redis, keys: Keys, events: list[dict[str, Any]]) -> list[Entry]:
    """The events appended to the domain stream, then read back as the router's group
    (pending for the router's consumer, which takes them first at its next pass)."""
    await redis.xgroup_create(keys.domain_stream, ROUTER_GROUP, id="0", mkstream=True)
    for event in events:
        await redis.xadd(keys.domain_stream, {"t": event["type"], "e": json.dumps(event)})
    reply = await redis.xreadgroup(ROUTER_GROUP, "test", {keys.domain_stream: ">"}, count=100)
    return as_reply(reply)[0][1]


async def _stream(redis: Redis, stream: str) -> list[dict[str, Any]]:
    return [json.loads(fields[b"e"]) for _, fields in await redis.xrange(stream)]


def _summary(entries: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """(type, title) of a notification, (type, counts) of a badge update."""
    return [
        (e["type"], e["data"] if e["type"] == "unread_count" else e["data"]["title"])
        for e in entries
    ]


async def _pending(redis: Redis, keys: Keys) -> int:
    summary = await redis.xpending(keys.domain_stream, ROUTER_GROUP)
    return int(summary["pending"])


async def test_a_batch_reaches_every_recipient_in_order_exactly_once(
    db: asyncpg.Pool, redis: Redis, keys: Keys, router: Router
) -> None:
    ann, cid = await fresh_user(db, "operator"), await fresh_user(db, "operator")
    bob = await fresh_user(db, "operator", language="en")
    await db.execute(
        "INSERT INTO notification_preferences (user_id, types) VALUES ($1, $2)",
        cid,
        {"broadcast": {"inapp": False}},
    )
    base = uuid.uuid4().int % 10**9 * 1000  # outbox ids no real event has
    ticket = {"id": 1, "ticket_id": "T-1", "title": "Pump", "assigned_to": bob}
    events = [
        _event(base + 1, "broadcast", {"to": [ann, bob], "title": "first", "body": "."}),
        _event(base + 2, "role_changed", {"user_id": ann, "to_role": "admin", "from_role": "x"}),
        _event(base + 3, "broadcast", {"to": [ann, cid], "title": "third", "body": "."}),
        _event(base + 4, "counts_changed", {"user_id": bob}),
        _event(
            base + 5,
            "ticket_priority_changed",
            {"ticket": ticket, "from_priority": "low", "to_priority": "high"},
        ),
    ]
    entries = await _read_batch(redis, keys, events)

    await router.consumer.run_pass()  # routes them as one batch and acknowledges them
    first = {user: await _stream(redis, keys.user_stream(user)) for user in (ann, bob, cid)}
    await router.handle_batch(entries)  # a redelivery: nothing new anywhere

    assert _summary(await _stream(redis, keys.user_stream(ann))) == [
        ("broadcast", "first"),
        ("role_changed", "Votre rôle a changé"),  # each in their own language
        ("broadcast", "third"),
        ("unread_count", {"messages": 0, "notifications": 3}),
    ]
    assert _summary(await _stream(redis, keys.user_stream(bob))) == [
        ("broadcast", "first"),
        ("ticket_priority_changed", "Priority changed: High"),
        ("unread_count", {"messages": 0, "notifications": 2}),
    ]
    # In-app off for broadcasts: in the inbox and on the badge, never shown live.
    assert _summary(await _stream(redis, keys.user_stream(cid))) == [
        ("unread_count", {"messages": 0, "notifications": 1}),
    ]
    assert {user: await _stream(redis, keys.user_stream(user)) for user in first} == first

    rows = await db.fetch(
        "SELECT id, user_id FROM notifications WHERE event_id = ANY($1::bigint[]) ORDER BY id",
        [event["outbox_id"] for event in events],
    )
    assert len(rows) == 6
    delivered = [e["notification_id"] for e in first[ann] + first[bob] if "notification_id" in e]
    assert sorted(delivered) == sorted(row["id"] for row in rows if row["user_id"] != cid)
    pushes = await _stream(redis, keys.push_stream)
    assert sorted(push["notification_id"] for push in pushes) == [row["id"] for row in rows]
    assert [e["type"] for e in await _stream(redis, keys.board_stream)] == ["ticket_updated"]
    assert len(await redis.xrange(keys.live_stream)) == 4 + 3 + 1  # every user entry, once
    assert await _pending(redis, keys) == 0


async def test_a_batch_needing_the_user_directory_routes_all_of_it(
    db: asyncpg.Pool, redis: Redis, keys: Keys, router: Router
) -> None:
    """A private message needs no directory, a breakdown does (every technician): in one
    batch, both reach their people, each once."""
    ann, tech = await fresh_user(db, "operator", "en"), await fresh_user(db, "technician", "en")
    base = uuid.uuid4().int % 10**9 * 1000
    message = {"message_id": 1, "sender_id": tech, "sender_name": "Batch", "recipient_id": ann,
               "message_type": "private", "excerpt": "hello"}  # fmt: skip
    ticket = {"id": 1, "ticket_id": "T-1", "title": "Pump", "assigned_to": None}
    breakdown = {"machine_id": 1, "machine_name": "Press 4", "ticket": ticket}
    events = [
        _event(base + 1, "new_message", message),
        _event(base + 2, "machine_breakdown", breakdown),
    ]
    await router.handle_batch(await _read_batch(redis, keys, events))

    assert _summary(await _stream(redis, keys.user_stream(ann)))[:1] == [
        ("new_message", "New message from Batch")
    ]
    assert ("machine_breakdown", "⚠ Breakdown: Press 4") in _summary(
        await _stream(redis, keys.user_stream(tech))
    )
    rows = await db.fetch(
        "SELECT user_id, type FROM notifications WHERE event_id = ANY($1::bigint[])"
        " AND user_id = ANY($2::bigint[]) ORDER BY id",
        [base + 1, base + 2],
        [ann, tech],
    )
    assert [(row["user_id"], row["type"]) for row in rows] == [
        (ann, "new_message"),
        (tech, "machine_breakdown"),
    ]


async def test_a_poison_entry_is_set_aside_and_the_rest_of_its_batch_is_delivered(
    db: asyncpg.Pool, redis: Redis, keys: Keys, router: Router
) -> None:
    ann = await fresh_user(db, "operator", "en")
    base = uuid.uuid4().int % 10**9 * 1000
    good = _event(base + 1, "role_changed", {"user_id": ann, "to_role": "admin", "from_role": "x"})
    broken = _event(base + 2, "role_changed", {"user_id": ann})  # no roles: a bug
    later = _event(base + 3, "broadcast", {"to": [ann], "title": "after", "body": "."})
    await _read_batch(redis, keys, [good, broken, later])
    labels = {"group": ROUTER_GROUP, "type": "role_changed"}
    dead_before = REGISTRY.get_sample_value("floorbell_dead_letters_total", labels) or 0

    await router.consumer.run_pass()  # the batch fails, then each entry is handled alone

    assert _summary(await _stream(redis, keys.user_stream(ann)))[::2] == [
        ("role_changed", "Your role changed"),
        ("broadcast", "after"),
    ]
    assert await _pending(redis, keys) == 1  # the broken one, to be retried on its own
    assert await redis.xlen(keys.dead_letters) == 0
    for _ in range(10):  # its second failure sets it aside
        await router.consumer.run_pass()
        if await redis.xlen(keys.dead_letters):
            break

    [(_, dead)] = await redis.xrange(keys.dead_letters)
    assert dead[b"group"] == b"router" and dead[b"stream"] == keys.domain_stream.encode()
    assert dead[b"t"] == b"role_changed" and json.loads(dead[b"e"]) == broken
    assert dead[b"attempts"] == b"2" and b"TypeError" in dead[b"error"]
    assert await _pending(redis, keys) == 0
    assert REGISTRY.get_sample_value("floorbell_dead_letters_total", labels) == dead_before + 1
    span = window(None, None, "UTC", datetime.now(UTC))
    stats = (await notification_stats(db, redis, keys, span))["types"]
    assert stats["role_changed"]["dead_lettered"] == 1
    assert stats["broadcast"]["dead_lettered"] == 0
    stored = await db.fetchval("SELECT count(*) FROM notifications WHERE user_id = $1", ann)
    assert stored == 2  # the broken event stored nothing


async def test_an_event_routed_already_is_not_appended_again(
    db: asyncpg.Pool, redis: Redis, keys: Keys, router: Router
) -> None:
    """As after a failover to a replica that lacked the last writes: Redis delivers an
    event again (its acknowledgement was lost), PostgreSQL knows it was routed. Its
    readers were told `history_lost`; appending it again would tell them twice."""
    ann = await fresh_user(db, "operator")
    routed, waiting = (
        {"to": [ann], "title": title, "body": "."} for title in ("routed", "waiting")
    )
    ids = [
        await db.fetchval(
            "INSERT INTO outbox (event_type, payload, published_at, routed_at)"
            " VALUES ('broadcast', $1, now(), $2) RETURNING id",
            data,
            when,
        )
        for data, when in ((routed, datetime.now(UTC)), (waiting, None))
    ]
    entries = await _read_batch(
        redis, keys, [_event(ids[0], "broadcast", routed), _event(ids[1], "broadcast", waiting)]
    )
    await router.handle_batch(entries)
    told = await _stream(redis, keys.user_stream(ann))
    assert [e["data"]["title"] for e in told if e["type"] == "broadcast"] == ["waiting"]
    stored = await db.fetchval("SELECT count(*) FROM notifications WHERE user_id = $1", ann)
    assert stored == 1
    assert await db.fetchval("SELECT routed_at IS NOT NULL FROM outbox WHERE id = $1", ids[1])


class CountingPool:
    """The real pool, counting the statements sent through the connections it lends."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool, self.statements = pool, 0

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self._pool.acquire() as conn:
            yield _Counted(conn, self)

    def __getattr__(self, name: str) -> Any:
        """Statements the pool sends itself, outside a lent connection, count too."""
        return getattr(_Counted(self._pool, self), name)


class _Counted:
    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool, pool: CountingPool) -> None:
        self._conn, self._counter = conn, pool

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._conn, name)
        if name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
            self._counter.statements += 1
        return method


async def _priority_batch(
    db: asyncpg.Pool, redis: Redis, keys: Keys, readers: list[int]
) -> tuple[int, int]:
    """Route a priority change followed by `readers`; the statements it took, and its id."""
    keys = Keys(f"{keys.prefix}{uuid.uuid4().hex[:6]}:")  # a stream and group of its own
    counting = CountingPool(db)
    router = Router(counting, redis, keys, consumer="test")  # type: ignore[arg-type]
    base = uuid.uuid4().int % 10**9 * 1000
    ticket = {"id": 7, "ticket_id": "T-7", "title": "Pump", "assigned_to": None}
    data = {"ticket": ticket, "from_priority": "low", "to_priority": "high", "followers": readers}
    await router.handle_batch(
        await _read_batch(redis, keys, [_event(base + 1, "ticket_priority_changed", data)])
    )
    return counting.statements, base + 1


async def test_each_recipient_reads_their_language_at_no_query_per_recipient(
    db: asyncpg.Pool, redis: Redis, keys: Keys
) -> None:
    few = [await fresh_user(db, "operator", "fr"), await fresh_user(db, "operator", "en")]
    many = [await fresh_user(db, "operator", ("fr", "en")[n % 2]) for n in range(40)]
    statements_few, _ = await _priority_batch(db, redis, keys, few)
    statements_many, event_id = await _priority_batch(db, redis, keys, many)
    assert statements_many == statements_few
    rows = await db.fetch(
        "SELECT u.language, n.title FROM notifications n JOIN users u ON u.id = n.user_id"
        " WHERE n.event_id = $1",
        event_id,
    )
    assert len(rows) == 40
    assert {(row["language"], row["title"]) for row in rows} == {
        ("fr", "Priorité modifiée\u00a0: Haute"),
        ("en", "Priority changed: High"),
    }
