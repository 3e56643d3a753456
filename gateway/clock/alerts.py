"""Time-based alerts: overdue tickets, preventive maintenance due (`floorbell clock`).

Each alert fires once per subject per calendar day. A pass claims `(kind, subject, day)`
in `clock_alerts` in the same transaction that writes the event to the outbox, so two
clocks running at once (a rolling deploy, a second `make run`) never emit twice, and a
pass that fails before committing leaves the claim free for the next one.

Deadlines are compared in absolute time (timestamptz against an aware `now`); the time
zone `CLOCK_TIMEZONE` only says where a "day" starts and ends.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg

from domain.events import MaintenanceDue, TicketOverdue
from domain.model import Status
from gateway.services import ticket_store, tickets
from gateway.services.outbox import UnitOfWork

log = logging.getLogger(__name__)
TICKET_OVERDUE = TicketOverdue.type
MAINTENANCE_DUE = MaintenanceDue.type
CLOSED = (str(Status.COMPLETED), str(Status.ARCHIVED))

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
            overdue = TicketOverdue(actor_id=None, ticket=ticket.card(), day=day.isoformat())
            await tickets.emit_change(uow, ticket, [overdue], now)  # waits for an answer
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
