"""Reading and writing tickets in PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from domain.errors import Invalid, NotFound
from domain.model import Priority, Role, Status, Ticket, Wait, ticket_code

# A ticket with its names, its followers, and its wait for an answer (`escalation`).
TICKET_SELECT = """
SELECT t.*, m.name AS machine_name, u.full_name AS assignee_name,
       COALESCE((SELECT array_agg(f.user_id) FROM ticket_followers f WHERE f.ticket_id = t.id),
                '{}') AS followers,
       w.reason AS wait_reason, w.since AS wait_since, w.answered_at AS wait_answered_at,
       w.answer AS wait_answer, w.answered_by AS wait_answered_by, w.step AS wait_step,
       w.escalated_to, w.escalated_at
FROM tickets t
JOIN machines m ON m.id = t.machine_id
LEFT JOIN users u ON u.id = t.assigned_to
LEFT JOIN ticket_waits w ON w.ticket_id = t.id
"""


def ticket_from_row(row: asyncpg.Record) -> Ticket:
    return Ticket(
        id=row["id"],
        ticket_id=row["ticket_id"],
        title=row["title"],
        description=row["description"],
        machine_id=row["machine_id"],
        priority=Priority(row["priority"]),
        status=Status(row["status"]),
        reported_by=row["reported_by"],
        assigned_to=row["assigned_to"],
        scheduled_date=row["scheduled_date"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        closed_at=row["closed_at"],
        followers=frozenset(row["followers"]),
        machine_name=row["machine_name"],
        assignee_name=row["assignee_name"],
        wait=_wait_from_row(row),
    )


def _wait_from_row(row: asyncpg.Record) -> Wait | None:
    if row["wait_since"] is None:
        return None
    return Wait(
        reason=row["wait_reason"],
        since=row["wait_since"],
        answered_at=row["wait_answered_at"],
        answer=row["wait_answer"],
        answered_by=row["wait_answered_by"],
        step=row["wait_step"],
        escalated_to=row["escalated_to"],
        escalated_at=row["escalated_at"],
    )


def ticket_json(ticket: Ticket) -> dict[str, Any]:
    """The full ticket as the API returns it."""
    return {
        **ticket.card(),
        "description": ticket.description,
        "created_at": ticket.created_at.isoformat(),
        "closed_at": ticket.closed_at.isoformat() if ticket.closed_at else None,
        "followers": sorted(ticket.followers),
    }


async def load(conn: asyncpg.Connection, ticket_id: int, lock: bool = False) -> Ticket:
    if lock:
        # Serialise concurrent changes of one ticket: each sees the other's result.
        await conn.execute("SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE", ticket_id)
    row = await conn.fetchrow(TICKET_SELECT + " WHERE t.id = $1", ticket_id)
    if row is None:
        raise NotFound(f"Ticket {ticket_id} does not exist.")
    return ticket_from_row(row)


async def load_many(conn: asyncpg.Connection, ids: list[int], lock: bool = False) -> list[Ticket]:
    """The tickets of `ids` that exist, in id order; `lock` locks them in that order (so
    two writers locking several never deadlock)."""
    if lock:
        await conn.execute(
            "SELECT 1 FROM tickets WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE", ids
        )
    rows = await conn.fetch(TICKET_SELECT + " WHERE t.id = ANY($1::bigint[]) ORDER BY t.id", ids)
    return [ticket_from_row(row) for row in rows]


async def save_wait(conn: asyncpg.Connection, ticket_id: int, wait: Wait) -> None:
    """Store a wait opened or answered (an answer is final: it is never overwritten)."""
    await conn.execute(
        "INSERT INTO ticket_waits (ticket_id, reason, since, answered_at, answer, answered_by)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (ticket_id) DO UPDATE SET"
        " answered_at = EXCLUDED.answered_at, answer = EXCLUDED.answer,"
        " answered_by = EXCLUDED.answered_by WHERE ticket_waits.answered_at IS NULL",
        ticket_id, wait.reason, wait.since, wait.answered_at, wait.answer, wait.answered_by,
    )  # fmt: skip


async def refresh_names(conn: asyncpg.Connection, ticket: Ticket) -> None:
    ticket.assignee_name = (
        await conn.fetchval("SELECT full_name FROM users WHERE id = $1", ticket.assigned_to)
        if ticket.assigned_to is not None
        else None
    )


async def next_code(conn: asyncpg.Connection, year: int) -> str:
    number = await conn.fetchval(
        "INSERT INTO ticket_code_counters (year, last) VALUES ($1, 1)"
        " ON CONFLICT (year) DO UPDATE SET last = ticket_code_counters.last + 1 RETURNING last",
        year,
    )
    return ticket_code(year, number)


async def insert(conn: asyncpg.Connection, fields: dict[str, Any], now: datetime) -> Ticket:
    code = await next_code(conn, now.year)
    ticket_pk = await conn.fetchval(
        "INSERT INTO tickets (ticket_id, title, description, machine_id, priority, reported_by,"
        " assigned_to, scheduled_date, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
        code,
        fields["title"],
        fields["description"],
        fields["machine_id"],
        fields["priority"],
        fields["reported_by"],
        fields.get("assigned_to"),
        fields.get("scheduled_date"),
        now,
    )
    return await load(conn, ticket_pk)


async def save(conn: asyncpg.Connection, ticket: Ticket) -> None:
    await conn.execute(
        "UPDATE tickets SET title = $2, description = $3, priority = $4, status = $5,"
        " assigned_to = $6, scheduled_date = $7, updated_at = $8, closed_at = $9 WHERE id = $1",
        ticket.id,
        ticket.title,
        ticket.description,
        str(ticket.priority),
        str(ticket.status),
        ticket.assigned_to,
        ticket.scheduled_date,
        ticket.updated_at,
        ticket.closed_at,
    )


async def user_role(conn: asyncpg.Connection, user_id: int) -> Role | None:
    """The user's role; None when there is no such user."""
    role = await conn.fetchval("SELECT role FROM users WHERE id = $1", user_id)
    return Role(role) if role is not None else None


async def require_machine(conn: asyncpg.Connection, machine_id: int) -> str:
    name = await conn.fetchval("SELECT name FROM machines WHERE id = $1", machine_id)
    if name is None:
        raise Invalid(f"Machine {machine_id} does not exist.")
    return str(name)


# Kanban column order, then newest first: the order of the board and of its pages.
_RANK = "CASE t.status " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(Status)) + " END"
PageAfter = tuple[Status, int]  # the last card of the previous page: its status and id


async def search(
    conn: asyncpg.Connection, filters: dict[str, Any], limit: int, after: PageAfter | None
) -> tuple[list[Ticket], PageAfter | None]:
    """A page of tickets by column, newest first within each, and where the next page
    starts (None on the last)."""
    clauses, args = [], []
    for column in ("status", "priority", "assigned_to", "machine_id"):
        if filters.get(column) is not None:
            args.append(filters[column])
            clauses.append(f"t.{column} = ${len(args)}")
    if after is not None:
        args += [list(Status).index(after[0]), after[1]]
        rank, last = f"${len(args) - 1}", f"${len(args)}"
        clauses.append(f"({_RANK} > {rank} OR ({_RANK} = {rank} AND t.id < {last}))")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    args.append(limit + 1)  # one more says whether a next page exists
    order = f" ORDER BY {_RANK}, t.id DESC LIMIT ${len(args)}"
    rows = await conn.fetch(TICKET_SELECT + where + order, *args)
    tickets = [ticket_from_row(row) for row in rows[:limit]]
    more = len(rows) > limit
    return tickets, (tickets[-1].status, tickets[-1].id) if more else None
