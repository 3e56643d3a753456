"""A `floorbell worker` SIGKILLed in the middle of its batch while another runs beside it:
two routers and two push fan-outs share the consumer groups, and the survivor claims what
the dead one held. Every event reaches its person's stream once, every notification is
pushed, and nothing recorded as sent goes out again (a push in flight at the kill, sent
but not yet recorded, may: that is the at-least-once edge the record narrows to).

The single-worker version, the heir started after the kill, is
`tests/integration/test_push_crash.py`, whose helpers this one uses."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from domain.events import BroadcastSent
from gateway.config import Settings
from gateway.keys import PUSH_GROUP, Keys
from gateway.services.outbox import UnitOfWork
from tests.faults.report import FaultReport, Row
from tests.faults.watch import StreamWatch
from tests.helpers import eventually
from tests.integration.test_push_crash import (
    all_sent,
    nothing_pending,
    sent,
    start_worker,
    subscribed_user,
)
from tests.push_fixtures import FakePushService

BROADCASTS = 40


async def held_by(redis: Redis, keys: Keys, consumer: str) -> int:
    """How many push entries `consumer` has read and not yet acknowledged."""
    try:
        pending: Any = await redis.xpending(keys.push_stream, PUSH_GROUP)
    except ResponseError:  # the group does not exist yet
        return 0
    counts = {c["name"].decode(): int(c["pending"]) for c in pending["consumers"] or []}
    return counts.get(consumer, 0)


async def test_a_worker_killed_beside_another_loses_nothing(
    own_database: str, own_prefix: str, pool: asyncpg.Pool, redis: Redis, settings: Settings,
    fault_report: FaultReport,
) -> None:  # fmt: skip
    keys = Keys(own_prefix)
    service = await FakePushService(delay_s=0.25).start()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        user = await subscribed_user(pool, service)
        for name in ("doomed", "survivor"):
            workers.append(start_worker(settings, own_database, own_prefix, service, name))
        titles = [f"Shift note {n}" for n in range(BROADCASTS)]
        async with StreamWatch(redis, keys.user_stream(user)) as watch:
            async with UnitOfWork(pool) as uow:
                uow.emit(*(BroadcastSent(None, title, "Line 2", [user]) for title in titles))
                await uow.commit()

            async def mid_batch() -> bool:
                return len(service.received) >= 5 and await held_by(redis, keys, "doomed") > 0

            assert await eventually(mid_batch, 30), "the doomed worker never got going"
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            in_flight = service.in_flight  # sent, not yet answered: not yet recorded
            recorded, received_before = await sent(pool), len(service.received)
            assert len(recorded) < BROADCASTS

            assert await eventually(lambda: _routed(pool, BROADCASTS), 30)
            wanted = {row["id"] for row in await pool.fetch("SELECT id FROM notifications")}
            assert await eventually(lambda: all_sent(pool, wanted), 30), "claims never finished"
            await eventually(lambda: watch.has_all(set(titles)), 10)
            assert await eventually(lambda: nothing_pending(redis, keys), 10)
            await asyncio.sleep(0.5)  # a duplicate would come meanwhile

        pushes = Counter(service.notification_ids())
        after = service.notification_ids()[received_before:]
        repeated = sum(n - 1 for n in pushes.values())
        events = Row.of("worker SIGKILLed beside another: events", titles, watch.arrivals, None,
                        "2 routers at once")  # fmt: skip
        pushed = Row("worker SIGKILLed beside another: pushes", len(wanted),
                     len(wanted & set(pushes)), repeated, None,
                     f"{in_flight} in flight at the kill")  # fmt: skip
        fault_report.add(events)
        fault_report.add(pushed)
        assert events.exactly_once, events
        assert set(pushes) == wanted  # nothing lost
        assert not recorded & set(after)  # what was recorded as sent never went out again
        assert repeated <= in_flight  # only what was in flight, unrecorded, went out twice
        sent_rows = await pool.fetchval("SELECT count(*) FROM push_logs WHERE status = 'sent'")
        assert sent_rows == BROADCASTS  # one device, one record per notification
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                await asyncio.to_thread(worker.wait, 20)
        await service.stop()


async def _routed(pool: asyncpg.Pool, count: int) -> bool:
    return int(await pool.fetchval("SELECT count(*) FROM notifications")) == count
