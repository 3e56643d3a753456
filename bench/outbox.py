"""Outbox relay benchmark: events/s from commit to the Redis stream, and the latency
from a transaction's commit to its event being readable on the stream (p50/p99).

    .venv/bin/python bench/outbox.py [--events 5000] [--writers 8]

Uses a throwaway database and key prefix on the services `provision` finds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path

from redis.asyncio import Redis

from domain.events import SettingsChanged
from gateway.db import create_pool
from gateway.keys import Keys
from gateway.ops.migrate import migrate
from gateway.ops.provision import drop_database, ensure_database, provision
from gateway.pipeline.relay import OutboxRelay
from gateway.services.outbox import UnitOfWork

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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
    args = parser.parse_args()
    with provision(ROOT / ".data") as env:
        url = env["DATABASE_URL"].rsplit("/", 1)[0] + f"/floorbell_bench_{uuid.uuid4().hex[:6]}"
        ensure_database(url)
        migrate(url)
        try:
            asyncio.run(run(url, env["REDIS_URL"], args.events, args.writers))
        finally:
            drop_database(url)


if __name__ == "__main__":
    main()
