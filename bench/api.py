"""API cost benchmark: CPU per `POST /api/messages`, in every process that serves it.

    .venv/bin/python bench/api.py [--requests 2000] [--concurrency 1 16] [--workers N]
        [--no-worker] [--shared-services] [--profile DIR]

Starts PostgreSQL and Redis servers of its own (`bench/common.py`), `python -m gateway
serve --workers N` (default: one process per core) and `python -m gateway worker` (which
relays, routes and decides pushes for every message) on a throwaway database, sends
private messages from one sender to 50 recipients over keep-alive connections, closed
loop at each concurrency, and prints requests/s, the API's p50/p99, and the CPU time
each process spent per message (from /proc, so everything the process did counts: HTTP,
JSON, validation, JWT, PostgreSQL and Redis round trips): the gateway, the worker, the
PostgreSQL and Redis servers (every process of the bench's own servers) and this client,
which sends the requests; the gateway's figure sums all of its processes. Latency
depends on the machine's load; CPU per message is the figure to compare between
versions, and their sum is what one message costs the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from common import (
    SECRET,
    Gateway,
    PidGroups,
    Profiler,
    Services,
    cpu_by_name,
    cpu_spent,
    free_port,
    gateway_command,
    pg_transactions,
    prefix,
    redis_commands,
    seed_users,
    start,
    stop,
    throwaway_database,
    throwaway_services,
)
from sse_client import Poster

from gateway.config import usable_cores
from gateway.services.credentials import issue_token

RECIPIENTS = 50
WARM_UP = 200


async def measure(
    port: int,
    token: str,
    recipients: list[int],
    concurrency: int,
    count: int,
    pids: PidGroups,
    redis_url: str,
    database: str,
    measuring: Callable[[], None] = lambda: None,
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
    measuring()
    cpu_before = cpu_by_name(pids, own="client")
    commands_before = redis_commands(redis_url)
    transactions_before = await pg_transactions(database)
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
    commands = (redis_commands(redis_url) - commands_before) / count
    await asyncio.sleep(1.5)  # PostgreSQL's backends report their statistics each second
    transactions = (await pg_transactions(database) - transactions_before) / count
    print(
        f"concurrency {concurrency:>3}: {count / elapsed:,.0f} requests/s, API p50 "
        f"{durations[len(durations) // 2]:.1f} ms p99 {durations[int(0.99 * len(durations))]:.1f}"
        f" ms, statuses {poster.statuses}; {cpu}; Redis commands/message {commands:.1f},"
        f" PostgreSQL transactions/message {transactions:.1f}",
        flush=True,
    )
    poster.close()


async def run(args: argparse.Namespace, services: Services, database: str) -> None:
    sender, recipients = await seed_users(database, RECIPIENTS)
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": services.redis_url,
        "JWT_SECRET": SECRET,
        "REDIS_PREFIX": prefix("api"),
        "WORKER_HEALTH_PORT": "0",
    }
    worker: subprocess.Popen[bytes] | None = None
    gateway = Gateway(env, free_port(), args.workers)
    try:
        if args.worker:
            worker = start(gateway_command("worker"), env)
        gateway.wait_ready()
        token = issue_token(SECRET, sender, "supervisor", 3600)

        def pids() -> dict[str, list[int]]:
            groups = {"gateway": gateway.pids(), **services.server_pids()}
            return groups | ({"worker": [worker.pid]} if worker else {})

        print(f"gateway: {args.workers} process(es); worker: {'yes' if worker else 'no'}")
        profiler = Profiler(args.profile)
        for concurrency in args.concurrency:
            profiled = [gateway.proc.pid, *([worker.pid] if worker else [])]
            name = f"api-c{concurrency}"
            await measure(
                gateway.port, token, recipients, concurrency, args.requests, pids,
                services.redis_url, database, lambda: profiler.start(profiled, name),  # noqa: B023
            )  # fmt: skip
            profiler.stop()
    finally:
        if worker is not None:
            stop(worker)
        gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="messages per concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--no-worker", dest="worker", action="store_false", help="the gateway alone"
    )
    parser.add_argument(
        "--workers", type=int, default=usable_cores(), help="gateway processes (serve --workers)"
    )
    parser.add_argument(
        "--shared-services", action="store_true", help="the servers provision finds, not our own"
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy raw stacks of the gateway and the worker here"
    )
    args = parser.parse_args()
    with throwaway_services(args.shared_services) as services:
        with throwaway_database(services, "api") as database:
            asyncio.run(run(args, services, database))


if __name__ == "__main__":
    main()
