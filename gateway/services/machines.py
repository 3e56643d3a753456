"""Machine use cases: the fleet, breakdown reports and planned interventions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from domain import permissions
from domain.errors import Conflict, Invalid, NotFound
from domain.events import InterventionPlanned, MachineBrokeDown, TicketCreated
from domain.model import DEFAULT_LANGUAGE, Actor, Language, MachineStatus, Priority, Ticket
from domain.notify import shorten
from gateway.services import ticket_store, tickets
from gateway.services.outbox import UnitOfWork
from gateway.texts import text

MACHINE_COLUMNS = "id, name, location, status, pm_interval_days, last_pm_at, created_at"
BREAKDOWN_TITLE_MAX = 120
# Clocks of phones and servers disagree a little; a date this close to now is not "future".
CLOCK_SKEW = timedelta(minutes=5)
# An intervention planned for "today" arrives as today's midnight: allow that much past.
PLANNING_PAST = timedelta(days=1)
PLANNING_HORIZON = timedelta(days=10 * 366)
# Far-off dates are typing mistakes, and at the edges of the calendar they cannot be read back.
EARLIEST_PM = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def machine_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "location": row["location"],
        "status": row["status"],
        "pm_interval_days": row["pm_interval_days"],
        "last_pm_at": _iso(row["last_pm_at"]),
        "created_at": _iso(row["created_at"]),
    }


async def list_machines(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {MACHINE_COLUMNS} FROM machines ORDER BY name, id")
    return [machine_json(row) for row in rows]


async def load(conn: asyncpg.Connection, machine_id: int, lock: bool = False) -> asyncpg.Record:
    suffix = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(
        f"SELECT {MACHINE_COLUMNS} FROM machines WHERE id = $1{suffix}", machine_id
    )
    if row is None:
        raise NotFound(f"Machine {machine_id} does not exist.")
    return row


async def get(conn: asyncpg.Connection, machine_id: int) -> dict[str, Any]:
    return machine_json(await load(conn, machine_id))


async def create(uow: UnitOfWork, actor: Actor, fields: dict[str, Any]) -> dict[str, Any]:
    permissions.require_admin(actor, "add machines")
    last_pm = fields.get("last_pm_at")
    if last_pm is not None and not EARLIEST_PM <= last_pm <= utcnow() + CLOCK_SKEW:
        raise Invalid("last_pm_at must lie between 1970 and now.")
    conn = uow.conn
    # Names identify machines on the floor: two creations of one name must not both pass.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('machines:name', 0))")
    name = fields["name"]
    if await conn.fetchval("SELECT 1 FROM machines WHERE lower(name) = lower($1)", name):
        raise Conflict(f"A machine named {name!r} already exists.")
    row = await conn.fetchrow(
        "INSERT INTO machines (name, location, status, pm_interval_days, last_pm_at)"
        f" VALUES ($1, $2, $3, $4, $5) RETURNING {MACHINE_COLUMNS}",
        name, fields.get("location", ""), str(fields.get("status", MachineStatus.OPERATIONAL)),
        fields.get("pm_interval_days"), last_pm,
    )  # fmt: skip
    return machine_json(row)


async def report_breakdown(
    uow: UnitOfWork, actor: Actor, machine_id: int, description: str, priority: Priority
) -> Ticket:
    """Anyone on the floor may report: a ticket opens, the machine goes down, and the
    maintenance team is alerted (even when the machine was already down: a second
    report may be a second fault)."""
    conn = uow.conn
    machine = await load(conn, machine_id, lock=True)
    # The ticket's title is written once, for everyone: in the reporter's language.
    language = await conn.fetchval("SELECT language FROM users WHERE id = $1", actor.id)
    words = text(
        Language(language or DEFAULT_LANGUAGE), "ticket.breakdown_title", description=description
    )
    title = shorten(words, BREAKDOWN_TITLE_MAX)
    fields = {"title": title, "description": description, "machine_id": machine_id,
              "priority": str(priority), "reported_by": actor.id}  # fmt: skip
    now = utcnow()
    ticket = await ticket_store.insert(conn, fields, now)
    await conn.execute(
        "UPDATE machines SET status = $2 WHERE id = $1", machine_id, str(MachineStatus.DOWN)
    )
    card = ticket.card()
    alerts = [
        TicketCreated(actor.id, card),
        MachineBrokeDown(actor.id, card, machine_id, machine["name"]),
    ]
    await tickets.emit_change(uow, ticket, alerts, now)  # the breakdown waits for an answer
    return ticket


async def plan_intervention(
    uow: UnitOfWork, actor: Actor, machine_id: int, fields: dict[str, Any]
) -> dict[str, Any]:
    permissions.require_manager(actor, "plan interventions")
    conn = uow.conn
    machine = await load(conn, machine_id)
    scheduled_for: datetime = fields["scheduled_for"]
    if scheduled_for < utcnow() - PLANNING_PAST:
        raise Invalid("scheduled_for is in the past.")
    if scheduled_for > utcnow() + PLANNING_HORIZON:
        raise Invalid("scheduled_for is more than ten years ahead.")
    assignee = fields["assigned_to"]
    permissions.require_assignable(await ticket_store.user_role(conn, assignee), "Interventions")
    note = fields.get("note", "")
    row = await conn.fetchrow(
        "INSERT INTO interventions (machine_id, assigned_to, scheduled_for, note, created_by)"
        " VALUES ($1, $2, $3, $4, $5)"
        " RETURNING id, machine_id, assigned_to, scheduled_for, note, created_by, created_at",
        machine_id, assignee, scheduled_for, note, actor.id,
    )  # fmt: skip
    assignee_name = await conn.fetchval("SELECT full_name FROM users WHERE id = $1", assignee)
    uow.emit(
        InterventionPlanned(
            actor.id, row["id"], machine_id, machine["name"], assignee,
            row["scheduled_for"].isoformat(), note,
        )
    )  # fmt: skip
    return {
        **dict(row),
        "machine_name": machine["name"],
        "assignee_name": assignee_name,
        "scheduled_for": row["scheduled_for"].isoformat(),
        "created_at": row["created_at"].isoformat(),
    }
