"""Who may do what (CONTRACT section 2): every permission rule in one place.

Operators report tickets and breakdowns and comment; technicians also move tickets
assigned to them and take an unassigned one by moving it to `in_progress`; supervisors
and admins do anything to tickets and assign them; only admins manage users, roles,
machines, settings and broadcasts. Everyone sees the board.
"""

from __future__ import annotations

from domain.errors import Invalid, PermissionDenied
from domain.model import Actor, Role, Status, Ticket

MANAGERS = frozenset({Role.SUPERVISOR, Role.ADMIN})
ASSIGNABLE_ROLES = frozenset({Role.TECHNICIAN, Role.SUPERVISOR, Role.ADMIN})


def require_admin(actor: Actor, what: str) -> None:
    if actor.role is not Role.ADMIN:
        raise PermissionDenied(f"Only admins may {what}.")


def require_manager(actor: Actor, what: str) -> None:
    if actor.role not in MANAGERS:
        raise PermissionDenied(f"Only supervisors and admins may {what}.")


def require_assignable(role: Role | None, what: str = "Tickets") -> None:
    """Work is assigned to technicians, supervisors or admins; `role` is the assignee's
    (None: no such user)."""
    if role not in ASSIGNABLE_ROLES:
        raise Invalid(f"{what} are assigned to technicians, supervisors or admins.")


def require_may_assign(actor: Actor, assignee_role: Role | None) -> None:
    """A manager assigns, and only to someone who may be assigned."""
    require_manager(actor, "assign tickets")
    require_assignable(assignee_role)


def may_work_on(ticket: Ticket, actor: Actor) -> bool:
    """Move, edit: managers, and the technician it is assigned to."""
    return actor.role in MANAGERS or (
        actor.role is Role.TECHNICIAN and ticket.assigned_to == actor.id
    )


def takes_ticket(ticket: Ticket, actor: Actor, to: Status) -> bool:
    """A technician moving an unassigned ticket to `in_progress` takes it."""
    return actor.role is Role.TECHNICIAN and ticket.assigned_to is None and to is Status.IN_PROGRESS


def require_may_move(ticket: Ticket, actor: Actor, to: Status) -> None:
    if takes_ticket(ticket, actor, to) or may_work_on(ticket, actor):
        return
    if actor.role is Role.OPERATOR:
        raise PermissionDenied("Operators report tickets but do not move them.")
    if ticket.assigned_to is None:
        raise PermissionDenied("Take an unassigned ticket by moving it to in_progress.")
    raise PermissionDenied(
        "Only the assigned technician, supervisors and admins may move this ticket."
    )


def require_may_edit(ticket: Ticket, actor: Actor) -> None:
    if not may_work_on(ticket, actor):
        raise PermissionDenied(
            "Only the assigned technician, supervisors and admins may edit this ticket."
        )


def require_assignee(ticket: Ticket, actor: Actor) -> None:
    if ticket.assigned_to != actor.id:
        raise PermissionDenied("Only the assignee acknowledges a ticket.")


def sees_deliveries_of(actor: Actor, user_id: int) -> bool:
    """Who was told what, and when they saw it: supervisors and admins see everyone's on
    a ticket's timeline; anyone else their own."""
    return actor.role in MANAGERS or actor.id == user_id
