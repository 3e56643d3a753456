"""`floorbell clock`: time-based events — overdue tickets, preventive maintenance due.

Each alert fires once per subject per calendar day. A pass claims `(kind, subject, day)`
in `clock_alerts` in the same transaction that writes the event to the outbox, so two
clocks running at once (a rolling deploy, a second `make run`) never emit twice, and a
pass that fails before committing leaves the claim free for the next one.

Deadlines are compared in absolute time (timestamptz against an aware `now`); the time
zone `CLOCK_TIMEZONE` only says where a "day" starts and ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from domain.events import MaintenanceDue, TicketOverdue
from domain.model import Status
from gateway.config import Settings
from gateway.db import create_pool
from gateway.lifecycle import sleep_unless_stopped, stop_on_signals
from gateway.retry import Backoff
from gateway.services import ticket_store
from gateway.uow import UnitOfWork

log = logging.getLogger(__name__)
GRACE_S = 5.0
TICKET_OVERDUE = TicketOverdue.type
MAINTENANCE_DUE = MaintenanceDue.type
CLOSED = (str(Status.COMPLETED), str(Status.ARCHIVED))
# A database outage is retried with backoff; anything else is a bug and stops the clock.
OUTAGES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)

OVERDUE_TICKETS = """
SELECT id FROM tickets
WHERE scheduled_date < $1 AND status <> ALL($2::text[])
ORDER BY id
"""
# An interval in hours, not days: a day-based interval would follow the session's
# daylight-saving rules, and the deadline must be an absolute instant.
MAINTENANCE_DEADLINE = "last_pm_at + pm_interval_days * interval '24 hours'"
MACHINES_DUE = f"""
SELECT id, name FROM machines
WHERE pm_interval_days IS NOT NULL AND (last_pm_at IS NULL OR {MAINTENANCE_DEADLINE} < $1)
"""
CLAIM = """
INSERT INTO clock_alerts (kind, subject_id, day) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING RETURNING subject_id
"""


def alert_day(now: datetime, timezone: str = "UTC") -> date:
    """The calendar day `now` falls on in `timezone`: the unit of "once per day"."""
    if now.tzinfo is None:
        raise ValueError("the clock needs an aware datetime; naive times are ambiguous")
    return now.astimezone(ZoneInfo(timezone)).date()


async def tick(pool: asyncpg.Pool, now: datetime, *, timezone: str = "UTC") -> dict[str, int]:
    """One pass: emit what is due at `now` and not yet emitted today; returns the counts."""
    day = alert_day(now, timezone)
    return {
        TICKET_OVERDUE: await _overdue_tickets(pool, now, day),
        MAINTENANCE_DUE: await _maintenance_due(pool, now, day),
    }


async def _overdue_tickets(pool: asyncpg.Pool, now: datetime, day: date) -> int:
    emitted = 0
    for row in await pool.fetch(OVERDUE_TICKETS, now, list(CLOSED)):
        async with UnitOfWork(pool) as uow:
            # Locked like any ticket change: completed meanwhile means no alert.
            ticket = await ticket_store.load(uow.conn, row["id"], lock=True)
            still_due = ticket.scheduled_date is not None and ticket.scheduled_date < now
            if not still_due or ticket.status.is_closed:
                continue
            if await uow.conn.fetchval(CLAIM, TICKET_OVERDUE, ticket.id, day) is None:
                continue  # already told today, possibly by another clock
            uow.emit(TicketOverdue(actor_id=None, ticket=ticket.card(), day=day.isoformat()))
            await uow.commit()
        log.info("ticket_overdue: %s (ticket %s), day %s", ticket.ticket_id, ticket.id, day)
        emitted += 1
    return emitted


async def _maintenance_due(pool: asyncpg.Pool, now: datetime, day: date) -> int:
    emitted = 0
    for row in await pool.fetch(MACHINES_DUE, now):
        async with UnitOfWork(pool) as uow:
            machine = await uow.conn.fetchrow(
                MACHINES_DUE + " AND id = $2 FOR UPDATE", now, row["id"]
            )
            if machine is None:  # serviced meanwhile
                continue
            if await uow.conn.fetchval(CLAIM, MAINTENANCE_DUE, machine["id"], day) is None:
                continue
            uow.emit(MaintenanceDue(None, machine["id"], machine["name"], day.isoformat()))
            await uow.commit()
        log.info("maintenance_due: %s (machine %s), day %s", machine["name"], machine["id"], day)
        emitted += 1
    return emitted


async def run_clock(
    settings: Settings, once: bool = False, stop: asyncio.Event | None = None
) -> None:
    """Tick every `CLOCK_INTERVAL_SECONDS` until SIGINT/SIGTERM (or `stop`), or once."""
    stop = stop or stop_on_signals()
    clock = _Clock(settings)
    print(
        f"clock {settings.instance_id}: every {settings.clock_interval_s} s,"
        f" days in {settings.clock_timezone}",
        flush=True,
    )
    try:
        while not stop.is_set():
            delay_s = await _finish_or_cancel(clock.run_pass(raise_outage=once), stop)
            if once:
                break
            await sleep_unless_stopped(stop, delay_s)
    finally:
        await asyncio.shield(clock.close())
        print(f"clock {settings.instance_id} stopped", flush=True)


class _Clock:
    """The pool and the retry state of a running clock; the pool is (re)opened lazily."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.backoff = Backoff(base_s=1.0, cap_s=float(max(settings.clock_interval_s, 5)))

    async def run_pass(self, raise_outage: bool = False) -> float:
        """One tick; returns the seconds to wait before the next one."""
        try:
            if self.pool is None:
                self.pool = await create_pool(self.settings.database_url, min_size=1, max_size=2)
            now = datetime.now(UTC)
            counts = await tick(self.pool, now, timezone=self.settings.clock_timezone)
        except OUTAGES as exc:
            if raise_outage:
                raise
            delay_s = self.backoff.next_delay()
            print(f"clock: database unavailable ({exc!r}); retrying in {delay_s:.1f} s", flush=True)
            return delay_s
        self.backoff.reset()
        if any(counts.values()) or raise_outage:
            summary = ", ".join(f"{count} {kind}" for kind, count in counts.items())
            print(f"clock: emitted {summary} (day {alert_day(now, self.settings.clock_timezone)})",
                  flush=True)  # fmt: skip
        return float(self.settings.clock_interval_s)

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            try:
                await asyncio.wait_for(pool.close(), GRACE_S)
            except TimeoutError:
                pool.terminate()


async def _finish_or_cancel(work: Coroutine[Any, Any, float], stop: asyncio.Event) -> float:
    """Run a pass; on stop it gets a grace period (stage one), then is cancelled (two)."""
    task = asyncio.create_task(work)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=GRACE_S)
    finally:
        stopped.cancel()
        task.cancel()  # a no-op when it finished
    (result,) = await asyncio.gather(task, return_exceptions=True)
    if isinstance(result, asyncio.CancelledError):
        return 0.0  # stopped mid-pass: its transaction rolled back, its claims stay free
    if isinstance(result, BaseException):
        raise result
    return result
