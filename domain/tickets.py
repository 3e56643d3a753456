"""Rules of the ticket lifecycle: valid changes, and which events they yield.

Each rule checks permission (`domain.permissions`), mutates the ticket and returns the
events of the change; the service layer loads and saves. Moving back a column is allowed
(a repair that failed its test); leaving `archived` is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from domain import permissions
from domain.errors import InvalidTransition
from domain.events import (
    Event,
    TicketAssigned,
    TicketEvent,
    TicketMoved,
    TicketPriorityChanged,
    TicketUpdated,
)
from domain.model import Actor, Priority, Role, Status, Ticket

EDITABLE_FIELDS = ("title", "description", "scheduled_date")


def _followers(ticket: Ticket) -> list[int]:
    return sorted(ticket.followers)


def move(ticket: Ticket, actor: Actor, to: Status, now: datetime) -> list[Event]:
    """Move a card to another column; a technician moving an unassigned ticket to
    `in_progress` takes it."""
    if to == ticket.status:
        return []
    if ticket.status is Status.ARCHIVED:
        raise InvalidTransition("An archived ticket cannot leave the archive.")
    permissions.require_may_move(ticket, actor, to)
    takes_it = permissions.takes_ticket(ticket, actor, to)
    events: list[Event] = []
    if takes_it:
        events += assign(ticket, actor, actor.id, Role.TECHNICIAN, now, self_assign=True)
    from_status = ticket.status
    ticket.status = to
    if to.is_closed and ticket.closed_at is None:
        ticket.closed_at = now
    elif not to.is_closed:
        ticket.closed_at = None
    ticket.updated_at = now
    events.append(
        TicketMoved(
            actor.id, ticket.card(), str(from_status), str(to), followers=_followers(ticket)
        )
    )
    return events


def assign(
    ticket: Ticket,
    actor: Actor,
    assignee_id: int | None,
    assignee_role: Role | None,
    now: datetime,
    self_assign: bool = False,
) -> list[Event]:
    if not self_assign:
        permissions.require_manager(actor, "assign tickets")
    if assignee_id is not None:
        permissions.require_assignable(assignee_role)
    if assignee_id == ticket.assigned_to:
        return []
    previous = ticket.assigned_to
    ticket.assigned_to = assignee_id
    ticket.updated_at = now
    return [TicketAssigned(actor.id, ticket.card(), previous, followers=_followers(ticket))]


def change_priority(ticket: Ticket, actor: Actor, to: Priority, now: datetime) -> list[Event]:
    if to == ticket.priority:
        return []
    permissions.require_manager(actor, "change a ticket's priority")
    from_priority = ticket.priority
    ticket.priority = to
    ticket.updated_at = now
    return [
        TicketPriorityChanged(
            actor.id, ticket.card(), str(from_priority), str(to), followers=_followers(ticket)
        )
    ]


def edit(ticket: Ticket, actor: Actor, changes: dict[str, object], now: datetime) -> list[Event]:
    """Edit title, description or scheduled date."""
    changed = [
        name
        for name in EDITABLE_FIELDS
        if name in changes and changes[name] != getattr(ticket, name)
    ]
    if not changed:
        return []
    permissions.require_may_edit(ticket, actor)
    for name in changed:
        setattr(ticket, name, changes[name])
    ticket.updated_at = now
    return [TicketUpdated(actor.id, ticket.card(), changed, followers=_followers(ticket))]


def acknowledge(ticket: Ticket, actor: Actor, now: datetime) -> list[Event]:
    """The assignee says "on my way": a received ticket moves to in_progress."""
    permissions.require_assignee(ticket, actor)
    if ticket.status is Status.IN_PROGRESS:
        return []
    if ticket.status is not Status.RECEIVED:
        raise InvalidTransition(f"Ticket is {ticket.status}, not received.")
    return move(ticket, actor, Status.IN_PROGRESS, now)


def with_final_card(events: Iterable[Event], ticket: Ticket) -> list[Event]:
    """Every event of one change carries the card as the change left it, so a board
    applying any of them shows the final state."""
    card = ticket.card()
    return [replace(e, ticket=card) if isinstance(e, TicketEvent) else e for e in events]
