"""The ticket lifecycle rules, without any database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain import tickets as rules
from domain.errors import Invalid, InvalidTransition, PermissionDenied
from domain.events import TicketAssigned, TicketMoved
from domain.model import Actor, Priority, Role, Status, Ticket

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ADMIN, SUPERVISOR = Actor(1, Role.ADMIN), Actor(2, Role.SUPERVISOR)
TECH, OTHER_TECH, OPERATOR = (
    Actor(3, Role.TECHNICIAN),
    Actor(4, Role.TECHNICIAN),
    Actor(5, Role.OPERATOR),
)


def ticket(status: Status = Status.RECEIVED, assigned_to: int | None = None) -> Ticket:
    return Ticket(
        id=10,
        ticket_id="T-2026-001",
        title="Leak",
        description="",
        machine_id=1,
        priority=Priority.MEDIUM,
        status=status,
        reported_by=5,
        assigned_to=assigned_to,
        scheduled_date=None,
        created_at=NOW,
        updated_at=NOW,
        closed_at=None,
    )


def test_supervisor_moves_any_ticket_backwards_too() -> None:
    t = ticket(Status.COMPLETED, assigned_to=3)
    t.closed_at = NOW
    events = rules.move(t, SUPERVISOR, Status.IN_PROGRESS, NOW)
    assert t.status is Status.IN_PROGRESS and t.closed_at is None
    assert [type(e) for e in events] == [TicketMoved]
    assert events[0].payload()["from_status"] == "completed"


def test_nobody_leaves_the_archive() -> None:
    with pytest.raises(InvalidTransition):
        rules.move(ticket(Status.ARCHIVED), ADMIN, Status.RECEIVED, NOW)


def test_technician_moves_own_ticket_only() -> None:
    rules.move(ticket(assigned_to=3), TECH, Status.DIAGNOSTIC, NOW)
    with pytest.raises(PermissionDenied):
        rules.move(ticket(assigned_to=4), TECH, Status.DIAGNOSTIC, NOW)


def test_technician_takes_unassigned_ticket_by_moving_it_in_progress() -> None:
    t = ticket()
    events = rules.move(t, TECH, Status.IN_PROGRESS, NOW)
    assert t.assigned_to == 3
    assert [type(e) for e in events] == [TicketAssigned, TicketMoved]
    with pytest.raises(PermissionDenied):
        rules.move(ticket(), TECH, Status.DIAGNOSTIC, NOW)


def test_operator_cannot_move_or_assign() -> None:
    with pytest.raises(PermissionDenied):
        rules.move(ticket(), OPERATOR, Status.DIAGNOSTIC, NOW)
    with pytest.raises(PermissionDenied):
        rules.assign(ticket(), OPERATOR, 3, Role.TECHNICIAN, NOW)


def test_assignment_rules() -> None:
    t = ticket()
    assert rules.assign(t, SUPERVISOR, 3, Role.TECHNICIAN, NOW)
    assert rules.assign(t, SUPERVISOR, 3, Role.TECHNICIAN, NOW) == []  # no change, no event
    with pytest.raises(Invalid):
        rules.assign(t, SUPERVISOR, 5, Role.OPERATOR, NOW)
    with pytest.raises(PermissionDenied):
        rules.assign(t, TECH, 4, Role.TECHNICIAN, NOW)


def test_completion_sets_closed_at() -> None:
    t = ticket(Status.IN_PROGRESS, assigned_to=3)
    rules.move(t, TECH, Status.COMPLETED, NOW)
    assert t.closed_at == NOW


def test_acknowledge() -> None:
    t = ticket(assigned_to=3)
    assert rules.acknowledge(t, TECH, NOW) and t.status is Status.IN_PROGRESS
    assert rules.acknowledge(t, TECH, NOW) == []  # twice is harmless
    with pytest.raises(PermissionDenied):
        rules.acknowledge(ticket(assigned_to=3), OTHER_TECH, NOW)
    with pytest.raises(InvalidTransition):
        rules.acknowledge(ticket(Status.WAITING_PARTS, assigned_to=3), TECH, NOW)


def test_priority_is_for_managers() -> None:
    with pytest.raises(PermissionDenied):
        rules.change_priority(ticket(assigned_to=3), TECH, Priority.HIGH, NOW)
    assert rules.change_priority(ticket(), SUPERVISOR, Priority.CRITICAL, NOW)
