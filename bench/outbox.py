"""Outbox relay benchmark: events/s from commit to the Redis stream, and the latency
from a transaction's commit to its event being readable on the stream (p50/p99); then
the wake-up hints: how many NOTIFYs a burst of commits sends, and how soon commits that
carried no hint are published by a relay whose poll is a minute away.

    .venv/bin/python bench/outbox.py [--events 5000] [--writers 8] [--shared-services]

Uses PostgreSQL and Redis servers of its own (`bench/common.py`) and a throwaway database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid

import asyncpg
from common import percentile, throwaway_database, throwaway_services
from redis.asyncio import Redis

from domain.events import SettingsChanged
from gateway.db import create_pool
from gateway.keys import Keys
from gateway.pipeline.relay import OutboxRelay
from gateway.services.outbox import OUTBOX_CHANNEL, UnitOfWork, WakeHints


async def run(database_url: str, redis_url: str, events: int, writers: int) -> None:
    keys = Keys(f"bench-{uuid.uuid4().hex[:6]}:")
    pool = await create_pool(database_url, max_size=writers + 2)
    redis = Redis.from_url(redis_url)
    committed: dict[str, float] = {}
    received: dict[str, float] = {}
    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(database_url, redis, keys).run(stop))
    reader = asyncio.create_task(_read(redis_url, keys.domain_stream, received, events))
    await asyncio.sleep(1.0)  # the relay takes the lead

    async def writer(index: int) -> None:
        for n in range(index, events, writers):
            marker = f"m{n}"
            async with UnitOfWork(pool) as uow:
                uow.emit(SettingsChanged(None, [marker]))
                await uow.commit()
            committed[marker] = time.perf_counter()

    start = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(writers)))
    write_s = time.perf_counter() - start
    await asyncio.wait_for(reader, 60)
    total_s = max(received.values()) - start
    latencies_ms = [(received[m] - committed[m]) * 1000 for m in committed]
    stop.set()
    await relay
    print(f"events: {events}, writers: {writers}")
    print(f"commits/s (writers): {events / write_s:,.0f}")
    print(f"events/s commit -> stream: {events / total_s:,.0f}")
    print(
        f"commit -> stream latency: p50 {percentile(latencies_ms, 0.5):.1f} ms,"
        f" p99 {percentile(latencies_ms, 0.99):.1f} ms,"
        f" mean {statistics.fmean(latencies_ms):.1f} ms"
    )
    await redis.delete(keys.domain_stream, keys.relay_published)
    await redis.aclose()
    await pool.close()


async def _write_marked(pool: object, marker: str, hints: WakeHints | None) -> None:
    async with UnitOfWork(pool, hints) as uow:  # type: ignore[arg-type]
        uow.emit(SettingsChanged(None, [marker]))
        await uow.commit()


async def _published(redis: Redis, stream: str, count: int, timeout_s: float) -> bool:
    """Whether `stream` holds `count` entries within `timeout_s` (checked every ms)."""
    for _ in range(int(timeout_s * 1000)):
        if await redis.xlen(stream) >= count:
            return True
        await asyncio.sleep(0.001)
    return False


async def hints(database_url: str, redis_url: str, offsets_s: list[float], every_s: float) -> None:
    """Commit a write at each offset (seconds after the first) with one shared WakeHints,
    a relay polling once a minute: the hints heard, and when the last write was published."""
    keys = Keys(f"bench-hints-{uuid.uuid4().hex[:6]}:")
    pool = await create_pool(database_url)
    redis = Redis.from_url(redis_url)
    listener = await asyncpg.connect(database_url)
    heard: list[object] = []
    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(database_url, redis, keys, poll_s=60).run(stop))
    shared = WakeHints(every_s=every_s)
    try:
        await _write_marked(pool, "first", None)  # the relay leads and listens once it published
        await _published(redis, keys.domain_stream, 1, 30)
        await asyncio.sleep(0.1)  # quiet: the relay waits for a hint
        await listener.add_listener(OUTBOX_CHANNEL, lambda *args: heard.append(args))
        start = time.perf_counter()
        for index, offset in enumerate(offsets_s):
            await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
            await _write_marked(pool, f"w-{index}", shared)
        last_commit = time.perf_counter()
        if not await _published(redis, keys.domain_stream, 1 + len(offsets_s), 30):
            print("  not all published within 30 s (the poll would take a minute)")
        published_ms = (time.perf_counter() - last_commit) * 1000
        print(
            f"  {len(offsets_s)} writes, hint at most every {every_s * 1000:g} ms:"
            f" {len(heard)} hints, last published {published_ms:.1f} ms after its commit"
        )
    finally:
        stop.set()
        await relay
        await listener.close()
        await redis.delete(keys.domain_stream, keys.relay_published)
        await redis.aclose()
        await pool.close()


async def _read(redis_url: str, stream: str, received: dict[str, float], expected: int) -> None:
    redis = Redis.from_url(redis_url)
    last = "0-0"
    while len(received) < expected:
        reply = await redis.xread({stream: last}, count=1000, block=1000)
        for _, entries in reply or []:
            now = time.perf_counter()
            for entry_id, fields in entries:
                last = entry_id
                received[json.loads(fields[b"e"])["data"]["keys"][0]] = now
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument(
        "--shared-services", action="store_true", help="the servers provision finds, not our own"
    )
    args = parser.parse_args()
    with throwaway_services(args.shared_services) as services:
        redis_url = services.redis_url
        with throwaway_database(services, "outbox") as url:
            asyncio.run(run(url, redis_url, args.events, args.writers))
        print("wake-up hints:")
        # Each on a database of its own: a relay meeting rows published to other keys
        # would publish them again.
        for offsets, every_s in (([0.0] * 40, 0.005), ([i * 0.005 for i in range(20)], 60)):
            with throwaway_database(services, "outbox") as url:
                asyncio.run(hints(url, redis_url, offsets, every_s))


if __name__ == "__main__":
    main()
