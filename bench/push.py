"""Web Push benchmark: what one `floorbell worker` sustains, and how fast a push arrives.

1. Throughput: pushes/s one worker process (relay, router and push fan-out running, as
   `floorbell worker` runs them) sends to a local push service that answers 201 at once
   (a separate process). Entries go straight onto the push stream, so this measures the
   fan-out: decisions, encryption, VAPID, HTTP, and one `push_logs` record per push.
2. Latency: from a domain write's commit to the push being accepted (201) by the
   `web-push-testing` emulator, which decrypts it — through outbox, relay, router and
   fan-out (p50/p99), at a steady write rate.

    .venv/bin/python bench/push.py [--pushes 6000] [--devices 2] [--writes 300] [--rate 50]
        [--shared-services]

Uses PostgreSQL and Redis servers of its own (`bench/common.py`) and a throwaway database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace

import aiohttp
import asyncpg
from common import (
    PushEmulator,
    device_keys,
    free_port,
    percentile,
    throwaway_database,
    throwaway_services,
)
from redis.asyncio import Redis

from domain.events import BroadcastSent
from gateway.config import Settings
from gateway.db import create_pool
from gateway.keys import Keys
from gateway.processes.worker import run_worker
from gateway.push.vapid import generate_keys
from gateway.services.outbox import UnitOfWork


class Receiver(asyncio.Protocol):
    """A minimal HTTP/1.1 push service: 201 to every POST at once (keep-alive), and
    `GET /count` answers how many it accepted. Plain asyncio, so the receiver is not what
    the throughput measures."""

    accepted = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].decode("latin-1")
            length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n")
                           if line.lower().startswith("content-length:")), 0)  # fmt: skip
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            if head.startswith("GET /count"):
                body = str(Receiver.accepted).encode()
                head_out = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
                self.transport.write(head_out + body)
            else:
                Receiver.accepted += 1
                self.transport.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")


def serve_receiver(port: int) -> None:
    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Receiver, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(serve())


async def users_with_devices(pool: asyncpg.Pool, count: int, devices: int,
                             endpoint: str) -> list[int]:  # fmt: skip
    keys = device_keys()
    tag = uuid.uuid4().hex[:6]
    users = [await pool.fetchval(
        "INSERT INTO users (email, full_name, role, password_hash)"
        " VALUES ($1, 'Bench', 'technician', 'x') RETURNING id", f"bench-{tag}-{n}@example.com",
    ) for n in range(count)]  # fmt: skip
    await pool.executemany(
        "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth) VALUES ($1, $2, $3, $4)",
        [(u, f"{endpoint}/{u}-{d}", keys["p256dh"], keys["auth"])
         for u in users for d in range(devices)],
    )  # fmt: skip
    return users


async def until(probe: Callable[[], Awaitable[bool]], every_s: float,
                timeout_s: float = 120) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while not await probe() and time.monotonic() < deadline:  # noqa: ASYNC110 -- polling
        await asyncio.sleep(every_s)


async def _accepted(receiver: str, count: int) -> bool:
    async with aiohttp.ClientSession() as session, session.get(f"{receiver}/count") as response:
        return int(await response.text()) >= count


async def _recorded(pool: asyncpg.Pool, count: int) -> bool:
    return await sent_count(pool) >= count


async def _at_least(pool: asyncpg.Pool, query: str, count: int) -> bool:
    return len(await pool.fetch(query)) >= count


async def sent_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM push_logs WHERE status = 'sent'"))


async def throughput(settings: Settings, pool: asyncpg.Pool, redis: Redis, pushes: int,
                     devices: int, receiver: str) -> None:  # fmt: skip
    notifications = pushes // devices
    users = await users_with_devices(pool, min(notifications, 500), devices, f"{receiver}/push")
    rows = [(users[n % len(users)], n, "ticket_assigned", "New ticket assigned",
             f"T-2026-{n:03d}: Hydraulic leak under the ram", f"/?ticket={n}",
             {"ticket_id": n}, True) for n in range(notifications)]  # fmt: skip
    await pool.executemany(
        "INSERT INTO notifications (user_id, event_id, type, title, body, url, data, critical)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", rows,
    )  # fmt: skip
    ids = await pool.fetch(
        "SELECT id, user_id FROM notifications WHERE type = 'ticket_assigned' ORDER BY id"
    )
    keys = Keys(settings.redis_prefix)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop))
    await asyncio.sleep(1.5)  # pools open, consumer group created
    start = time.perf_counter()
    async with redis.pipeline(transaction=False) as pipe:
        for row in ids:
            entry = {"notification_id": row["id"], "user_id": row["user_id"],
                     "type": "ticket_assigned", "critical": True, "pushable": True}  # fmt: skip
            pipe.xadd(keys.push_stream, {"t": "ticket_assigned", "e": json.dumps(entry)})
        await pipe.execute()
    await until(lambda: _accepted(receiver, notifications * devices), 0.02)
    received_s = time.perf_counter() - start
    await until(lambda: _recorded(pool, notifications * devices), 0.02)
    elapsed = time.perf_counter() - start
    stop.set()
    await worker
    print(f"throughput: {notifications * devices} pushes ({notifications} notifications x {devices}"
          f" devices) in {elapsed:.2f} s = {notifications * devices / elapsed:,.0f} pushes/s"
          f" (all received after {received_s:.2f} s and recorded in push_logs;"
          f" one worker process, concurrency {settings.push_concurrency})")  # fmt: skip


async def latency(settings: Settings, pool: asyncpg.Pool, emulator: PushEmulator, writes: int,
                  rate: float) -> None:  # fmt: skip
    users = []
    for n in range(20):
        browser = await emulator.subscribe(settings.vapid_public_key)
        user = await pool.fetchval(
            "INSERT INTO users (email, full_name, role, password_hash)"
            " VALUES ($1, 'Bench', 'operator', 'x') RETURNING id",
            f"lat-{uuid.uuid4().hex[:8]}-{n}@example.com",
        )  # fmt: skip
        await pool.execute("INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth)"
                           " VALUES ($1, $2, $3, $4)", user, browser["endpoint"],
                           browser["keys"]["p256dh"], browser["keys"]["auth"])  # fmt: skip
        await pool.execute("INSERT INTO notification_preferences (user_id, types) VALUES ($1, $2)",
                           user, {"broadcast": {"push": True}})  # fmt: skip
        users.append(user)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop))
    await asyncio.sleep(2.0)  # the relay takes the lead
    committed: dict[str, float] = {}
    for n in range(writes):
        marker = f"latency-{n}"
        async with UnitOfWork(pool) as uow:
            recipient = users[n % len(users)]
            uow.emit(BroadcastSent(None, marker, "Line 2 restarts at 14:00", [recipient]))
            await uow.commit()
        committed[marker] = time.time()
        await asyncio.sleep(1 / rate)
    query = ("SELECT n.title, extract(epoch FROM l.created_at) AS at FROM push_logs l"
             " JOIN notifications n ON n.id = l.notification_id"
             " WHERE l.status = 'sent' AND n.title LIKE 'latency-%'")  # fmt: skip
    await until(lambda: _at_least(pool, query, writes), 0.1, timeout_s=60)
    rows = await pool.fetch(query)
    stop.set()
    await worker
    latencies_ms = [(float(row["at"]) - committed[row["title"]]) * 1000 for row in rows]
    print(f"latency write -> accepted by web-push-testing ({len(rows)}/{writes} writes"
          f" at {rate:g}/s): p50 {percentile(latencies_ms, 0.5):.1f} ms,"
          f" p99 {percentile(latencies_ms, 0.99):.1f} ms")  # fmt: skip


async def run(database_url: str, redis_url: str, args: argparse.Namespace) -> None:
    receiver_port, emulator_port = free_port(), free_port()
    receiver = subprocess.Popen(  # noqa: ASYNC220 -- started once, before anything runs
        [sys.executable, __file__, "--receiver", str(receiver_port)]
    )
    emulator = PushEmulator(emulator_port)
    emulator.start()
    public, private = generate_keys()
    settings = Settings(
        database_url=database_url, redis_url=redis_url,
        redis_prefix=f"bench-{uuid.uuid4().hex[:6]}:",
        jwt_secret="bench-" + "x" * 40, vapid_public_key=public, vapid_private_key=private,
        push_endpoint_allow=(f"http://127.0.0.1:{receiver_port}", emulator.url),
        push_concurrency=args.concurrency, worker_health_port=0,
    )  # fmt: skip
    pool = await create_pool(database_url)
    redis = Redis.from_url(redis_url)
    try:
        await asyncio.sleep(1.0)  # the receiver starts
        await throughput(settings, pool, redis, args.pushes, args.devices,
                         f"http://127.0.0.1:{receiver_port}")  # fmt: skip
        fresh = replace(settings, redis_prefix=f"bench-{uuid.uuid4().hex[:6]}:")
        await latency(fresh, pool, emulator, args.writes, args.rate)
    finally:
        receiver.terminate()
        receiver.wait()
        emulator.stop()
        for prefix in (settings.redis_prefix, "bench-"):
            found = [key async for key in redis.scan_iter(f"{prefix}*")]
            if found:
                await redis.delete(*found)
        await redis.aclose()
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pushes", type=int, default=6000)
    parser.add_argument("--devices", type=int, default=2, help="devices per person")
    parser.add_argument("--concurrency", type=int, default=200, help="PUSH_CONCURRENCY")
    parser.add_argument("--writes", type=int, default=300, help="domain writes for the latency")
    parser.add_argument("--rate", type=float, default=50, help="domain writes per second")
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--shared-services", action="store_true", help="the servers provision finds, not our own"
    )
    args = parser.parse_args()
    if args.receiver:
        serve_receiver(args.receiver)
        return
    with throwaway_services(args.shared_services) as services:
        with throwaway_database(services, "push") as url:
            asyncio.run(run(url, services.redis_url, args))


if __name__ == "__main__":
    main()
