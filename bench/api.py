"""API cost benchmark: CPU per `POST /api/messages`, in every process that serves it.

    .venv/bin/python bench/api.py [--requests 2000] [--concurrency 1 16] [--no-worker]

Starts `python -m gateway serve` (and `python -m gateway worker`, which relays, routes
and decides pushes for every message) on a throwaway database and key prefix, sends
private messages from one sender to 50 recipients over keep-alive connections, closed
loop at each concurrency, and prints requests/s, the API's p50/p99, and the CPU time
each process spent per message (from /proc, so everything the process did counts: HTTP,
JSON, validation, JWT, PostgreSQL and Redis round trips): the gateway, the worker, the
PostgreSQL and Redis servers (every process of theirs on the machine, so run it on an
otherwise idle one) and this client, which sends the requests. Latency depends on the
machine's load; CPU per message is the figure to compare between versions, and their sum
is what one message costs the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sse import SECRET, cpu_by_name, cpu_spent, free_port, seed_users, start, stop, wait_port  # noqa: E402
from sse_client import Poster  # noqa: E402

from gateway.ops.migrate import migrate  # noqa: E402
from gateway.ops.provision import drop_database, ensure_database, provision  # noqa: E402
from gateway.services.credentials import issue_token  # noqa: E402

RECIPIENTS = 50
WARM_UP = 200


async def measure(
    port: int,
    token: str,
    recipients: list[int],
    concurrency: int,
    count: int,
    pids: dict[str, list[int]],
) -> None:
    poster = Poster(port, token, size=concurrency)

    async def send(index: int) -> None:
        body = {
            "message_type": "private",
            "recipient_id": recipients[index % len(recipients)],
            "content": f"bench message {index}",
        }
        await poster.post("/api/messages", body)

    for index in range(WARM_UP):
        await send(index)
    poster.durations.clear()
    poster.statuses.clear()
    cpu_before = cpu_by_name(pids, own="client")
    started = time.time()
    queue = iter(range(count))

    async def sender() -> None:
        for index in queue:
            await send(index)

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    elapsed = time.time() - started
    await asyncio.sleep(1)  # let the worker finish routing what was sent
    durations = sorted(poster.durations)
    spent = cpu_spent(cpu_before, cpu_by_name(pids, own="client"), count / 1000)
    cpu = ", ".join(f"{name} {ms:.2f}" for name, ms in spent.items())
    cpu = f"ms CPU/message: {cpu}; sum {sum(spent.values()):.2f}"
    print(
        f"concurrency {concurrency:>3}: {count / elapsed:,.0f} requests/s, API p50 "
        f"{durations[len(durations) // 2]:.1f} ms p99 {durations[int(0.99 * len(durations))]:.1f}"
        f" ms, statuses {poster.statuses}; {cpu}",
        flush=True,
    )
    poster.close()


async def run(args: argparse.Namespace, services: dict[str, str]) -> None:
    database = services["DATABASE_URL"].rsplit("/", 1)[0] + f"/floorbell_api_{uuid.uuid4().hex[:6]}"
    ensure_database(database)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        migrate(database)
        sender, recipients = await seed_users(database, RECIPIENTS)
        env = {
            **os.environ,
            **services,
            "DATABASE_URL": database,
            "JWT_SECRET": SECRET,
            "REDIS_PREFIX": f"bench-api-{uuid.uuid4().hex[:6]}:",
            "WORKER_HEALTH_PORT": "0",
        }
        port = free_port()
        if args.worker:
            procs["worker"] = start([sys.executable, "-m", "gateway", "worker"], env)
        procs["gateway"] = start(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port)], env
        )
        wait_port(port, procs["gateway"])
        token = issue_token(SECRET, sender, "supervisor", 3600)
        pids = {name: [proc.pid] for name, proc in procs.items()}
        for concurrency in args.concurrency:
            await measure(port, token, recipients, concurrency, args.requests, pids)
    finally:
        for proc in procs.values():
            stop(proc)
        drop_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="messages per concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--no-worker", dest="worker", action="store_false", help="the gateway alone"
    )
    args = parser.parse_args()
    with provision(ROOT / ".data") as services:
        asyncio.run(run(args, services))


if __name__ == "__main__":
    main()
