"""Ticket use cases: each loads, applies the domain rules, saves and emits its events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from domain import escalation, permissions
from domain import tickets as rules
from domain.events import CommentAdded, Event, TicketCreated
from domain.model import Actor, Priority, Status, Ticket
from domain.notify import shorten
from gateway.services import ticket_store as store
from gateway.services.outbox import UnitOfWork


def utcnow() -> datetime:
    return datetime.now(UTC)


async def create(uow: UnitOfWork, actor: Actor, fields: dict[str, Any]) -> Ticket:
    conn = uow.conn
    await store.require_machine(conn, fields["machine_id"])
    assignee = fields.get("assigned_to")
    if assignee is not None:
        permissions.require_may_assign(actor, await store.user_role(conn, assignee))
    now = utcnow()
    ticket = await store.insert(conn, {**fields, "reported_by": actor.id}, now)
    await emit_change(uow, ticket, [TicketCreated(actor.id, ticket.card())], now)
    return ticket


async def update(uow: UnitOfWork, actor: Actor, ticket_id: int, changes: dict[str, Any]) -> Ticket:
    """Apply a PUT: fields, then priority, then assignee, then status — each by its rule."""
    conn = uow.conn
    ticket = await store.load(conn, ticket_id, lock=True)
    now = utcnow()
    events: list[Event] = rules.edit(ticket, actor, changes, now)
    if "priority" in changes:
        events += rules.change_priority(ticket, actor, Priority(changes["priority"]), now)
    if "assigned_to" in changes:
        events += await _assign(uow, ticket, actor, changes["assigned_to"], now)
    if "status" in changes:
        events += rules.move(ticket, actor, Status(changes["status"]), now)
    await _finish(uow, ticket, events, now)
    return ticket


async def assign(uow: UnitOfWork, actor: Actor, ticket_id: int, assignee: int | None) -> Ticket:
    ticket = await store.load(uow.conn, ticket_id, lock=True)
    now = utcnow()
    await _finish(uow, ticket, await _assign(uow, ticket, actor, assignee, now), now)
    return ticket


async def _assign(
    uow: UnitOfWork, ticket: Ticket, actor: Actor, assignee: int | None, now: datetime
) -> list[Event]:
    role = await store.user_role(uow.conn, assignee) if assignee is not None else None
    events = rules.assign(ticket, actor, assignee, role, now)
    await store.refresh_names(uow.conn, ticket)
    return events


async def acknowledge(uow: UnitOfWork, actor: Actor, ticket_id: int) -> Ticket:
    ticket = await store.load(uow.conn, ticket_id, lock=True)
    now = utcnow()
    await _finish(uow, ticket, rules.acknowledge(ticket, actor, now), now)
    return ticket


async def _finish(uow: UnitOfWork, ticket: Ticket, events: list[Event], now: datetime) -> None:
    if events:
        await store.refresh_names(uow.conn, ticket)
        await store.save(uow.conn, ticket)
        await emit_change(uow, ticket, events, now)


async def emit_change(
    uow: UnitOfWork, ticket: Ticket, events: Sequence[Event], now: datetime
) -> None:
    """Emit the events of a change of `ticket` (its row already written): the wait for an
    answer they open or answer is saved in the same transaction, and every event carries
    the card as the change left it."""
    wait = escalation.follow(ticket, events, now)
    if wait is not None:
        await store.save_wait(uow.conn, ticket.id, wait)
    uow.emit(*rules.with_final_card(events, ticket))


async def add_comment(uow: UnitOfWork, actor: Actor, ticket_id: int, body: str) -> dict[str, Any]:
    conn = uow.conn
    ticket = await store.load(conn, ticket_id)
    row = await conn.fetchrow(
        "INSERT INTO comments (ticket_id, author_id, body) VALUES ($1, $2, $3)"
        " RETURNING id, ticket_id, author_id, body, created_at",
        ticket.id,
        actor.id,
        body,
    )
    author = await conn.fetchval("SELECT full_name FROM users WHERE id = $1", actor.id)
    uow.emit(
        CommentAdded(
            actor.id,
            ticket.card(),
            row["id"],
            author,
            shorten(body, 160),
            followers=sorted(ticket.followers),
        )
    )
    return {**dict(row), "author_name": author, "created_at": row["created_at"].isoformat()}


async def list_comments(uow: UnitOfWork, ticket_id: int) -> list[dict[str, Any]]:
    await store.load(uow.conn, ticket_id)
    rows = await uow.conn.fetch(
        "SELECT c.id, c.ticket_id, c.author_id, u.full_name AS author_name, c.body, c.created_at"
        " FROM comments c JOIN users u ON u.id = c.author_id WHERE c.ticket_id = $1 ORDER BY c.id",
        ticket_id,
    )
    return [{**dict(r), "created_at": r["created_at"].isoformat()} for r in rows]


async def follow(uow: UnitOfWork, actor: Actor, ticket_id: int, on: bool) -> Ticket:
    await store.load(uow.conn, ticket_id)
    if on:
        await uow.conn.execute(
            "INSERT INTO ticket_followers VALUES ($1, $2) ON CONFLICT DO NOTHING",
            ticket_id,
            actor.id,
        )
    else:
        await uow.conn.execute(
            "DELETE FROM ticket_followers WHERE ticket_id = $1 AND user_id = $2",
            ticket_id,
            actor.id,
        )
    return await store.load(uow.conn, ticket_id)
