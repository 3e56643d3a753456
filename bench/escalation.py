"""Escalation benchmark: with many open critical tickets, how long one clock pass takes
and how many queries it sends, when nothing is due, when one step is due for all of
them, and when a clock comes back to three missed steps each.

    .venv/bin/python bench/escalation.py [--tickets 10000]

Runs on a PostgreSQL of its own (`bench/common.py`; `--shared-services`: the server
`provision` finds), in a throwaway database, with the clock's pool (two connections, as
`floorbell clock` opens). Every statement the pass sends is counted on
the client (asyncpg's query logger), BEGIN and COMMIT included, with the time spent
waiting for their answers (a warm-up pass first pays asyncpg's one-off type lookups).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from common import throwaway_database, throwaway_services

from gateway.clock.escalation import climb
from gateway.db import create_pool
from gateway.ops.seed import seed


class Queries:
    """Statements sent on the pool's connections, by their first word."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.elapsed_s = 0.0

    def __call__(self, logged: Any) -> None:
        self.kinds[logged.query.split(None, 1)[0].upper().rstrip(";")] += 1
        self.elapsed_s += logged.elapsed

    def reset(self) -> None:
        self.kinds.clear()
        self.elapsed_s = 0.0

    def summary(self) -> str:
        parts = ", ".join(f"{kind} {n}" for kind, n in self.kinds.most_common())
        return f"{sum(self.kinds.values())} queries ({parts})"


async def open_tickets(pool: asyncpg.Pool, count: int, waited: timedelta) -> None:
    """`count` critical tickets, received and assigned, waiting for an answer since `waited` ago."""
    await pool.execute("TRUNCATE ticket_waits, ticket_escalations, outbox")
    await pool.execute("DELETE FROM tickets WHERE ticket_id LIKE 'T-B-%'")
    tech = await pool.fetchval("SELECT id FROM users WHERE role = 'technician' ORDER BY id LIMIT 1")
    machine = await pool.fetchval("SELECT min(id) FROM machines")
    await pool.execute(
        "INSERT INTO tickets (ticket_id, title, machine_id, priority, reported_by, assigned_to)"
        " SELECT 'T-B-' || n, 'Bench ' || n, $2, 'critical', $3, $3"
        " FROM generate_series(1, $1) AS n",
        count, machine, tech,
    )  # fmt: skip
    await pool.execute(
        "INSERT INTO ticket_waits (ticket_id, reason, since)"
        " SELECT id, 'assigned', now() - $1::interval FROM tickets WHERE ticket_id LIKE 'T-B-%'",
        waited,
    )
    await pool.execute("ANALYZE tickets, ticket_waits, ticket_escalations")


async def one_pass(pool: asyncpg.Pool, queries: Queries, label: str, at: datetime) -> None:
    queries.reset()
    start = time.perf_counter()
    sent = await climb(pool, at)
    took_s = time.perf_counter() - start
    print(
        f"{label}: {took_s * 1000:,.0f} ms ({queries.elapsed_s * 1000:,.0f} ms of it in queries),"
        f" {sent:,} steps sent, {queries.summary()}"
    )


async def run(database_url: str, tickets: int) -> None:
    pool = await create_pool(database_url, min_size=2, max_size=2)
    queries = Queries()
    async with pool.acquire() as conn:
        await seed(conn, "bench")
    held = [await pool.acquire() for _ in range(2)]  # both connections: log what each sends
    for conn in held:
        conn.add_query_logger(queries)
    for conn in held:
        await pool.release(conn)

    print(f"{tickets:,} open critical tickets, the default ladder (5, 10, 20 minutes)")
    await open_tickets(pool, 1, timedelta(minutes=30))
    await climb(pool, datetime.now(UTC))  # asyncpg's one-off type lookups, not measured
    await open_tickets(pool, tickets, timedelta(minutes=1))
    now = datetime.now(UTC)
    await one_pass(pool, queries, "nothing due", now)
    await one_pass(pool, queries, "the reminder due for all", now + timedelta(minutes=5))
    await one_pass(pool, queries, "after it, nothing due", now + timedelta(minutes=6))

    await open_tickets(pool, tickets, timedelta(minutes=1))
    await one_pass(pool, queries, "a clock back after 25 minutes (3 steps each)",
                   now + timedelta(minutes=25))  # fmt: skip
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument(
        "--shared-services", action="store_true", help="the servers provision finds, not our own"
    )
    args = parser.parse_args()
    with throwaway_services(args.shared_services) as services:
        with throwaway_database(services, "escalation") as url:
            asyncio.run(run(url, args.tickets))


if __name__ == "__main__":
    main()
