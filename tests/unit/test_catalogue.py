"""CONTRACT.md section 5, row by row: who is told of each event, whether it is critical,
and whether it is pushed by default. Written from the contract's table, not from the
catalogue's own constants, so a catalogue that told nobody, or told the wrong people,
fails here.

The people: admins 1 and 6, supervisor 2, technicians 3 and 4, operators 5 and 7. A
ticket is reported by 5, assigned to 3, followed by 7. Every actor below is someone the
row does not name, so that "the actor is never told" (tested on its own) hides nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from domain.events import (
    BroadcastSent,
    CommentAdded,
    Event,
    InterventionPlanned,
    MachineBrokeDown,
    MaintenanceDue,
    MessageSent,
    RoleChanged,
    SettingsChanged,
    TicketAssigned,
    TicketCreated,
    TicketEscalated,
    TicketMoved,
    TicketOverdue,
    TicketPriorityChanged,
    UserRegistered,
)
from domain.model import Role
from domain.notify import notices_for
from domain.preferences import default_types

ADMINS, SUPERVISORS, TECHNICIANS, OPERATORS = {1, 6}, {2}, {3, 4}, {5, 7}
EVERYONE = ADMINS | SUPERVISORS | TECHNICIANS | OPERATORS
ROLES = {
    Role.ADMIN: ADMINS,
    Role.SUPERVISOR: SUPERVISORS,
    Role.TECHNICIAN: TECHNICIANS,
    Role.OPERATOR: OPERATORS,
}
REPORTER, ASSIGNEE, FOLLOWER, OTHER_TECH = 5, 3, 7, 4
# In-app only by default (section 5): every other type is pushed by default.
IN_APP_BY_DEFAULT = {"maintenance_due", "user_registered", "role_changed", "settings_changed"}


def directory(roles: frozenset[Role] | None) -> list[int]:
    return sorted(EVERYONE if roles is None else set().union(*(ROLES[r] for r in roles)))


def card(**changes: Any) -> dict[str, Any]:
    ticket = {"id": 10, "ticket_id": "T-2026-010", "title": "Leak", "status": "received",
              "reported_by": REPORTER, "assigned_to": ASSIGNEE, "priority": "high"}  # fmt: skip
    return ticket | changes


FOLLOWED = {"followers": [FOLLOWER]}

# (row, event, {recipient: pushed at all (False: in-app only)}, critical)
ROWS: list[tuple[str, Event, dict[int, bool], bool]] = [
    ("ticket_assigned", TicketAssigned(2, card(), previous_assignee=None), {ASSIGNEE: True}, True),
    ("ticket_assigned", TicketCreated(2, card()), {ASSIGNEE: True}, True),  # created assigned
    (
        "ticket_reassigned",
        TicketAssigned(2, card(assigned_to=OTHER_TECH), previous_assignee=ASSIGNEE),
        {OTHER_TECH: True, ASSIGNEE: False},
        True,
    ),
    (
        "ticket_status_changed",
        TicketMoved(2, card(), from_status="received", to_status="diagnostic", **FOLLOWED),
        {ASSIGNEE: True, REPORTER: True, FOLLOWER: True},
        False,
    ),
    (
        "ticket_priority_changed",
        TicketPriorityChanged(2, card(), from_priority="low", to_priority="high", **FOLLOWED),
        {ASSIGNEE: True, FOLLOWER: True},
        False,
    ),
    (
        "ticket_priority_changed",  # raised to critical: critical
        TicketPriorityChanged(2, card(), from_priority="high", to_priority="critical", **FOLLOWED),
        {ASSIGNEE: True, FOLLOWER: True},
        True,
    ),
    (
        "ticket_closed",
        TicketMoved(2, card(), from_status="in_progress", to_status="completed", **FOLLOWED),
        {REPORTER: True, FOLLOWER: True},
        False,
    ),
    (
        "comment_added",
        CommentAdded(2, card(), comment_id=1, author_name="Sam", excerpt="Done", **FOLLOWED),
        {REPORTER: True, ASSIGNEE: True, FOLLOWER: True},
        False,
    ),
    (
        "ticket_overdue",
        TicketOverdue(None, card(), day="2026-11-25"),
        {ASSIGNEE: True} | dict.fromkeys(SUPERVISORS | ADMINS, True),
        True,
    ),
    (
        "new_message",
        MessageSent(
            3,
            message_id=1,
            sender_id=3,
            sender_name="Theo",
            message_type="private",
            recipient_id=OTHER_TECH,
            excerpt="",
            audio=True,
        ),
        {OTHER_TECH: True},
        False,
    ),
    (
        "machine_breakdown",
        MachineBrokeDown(REPORTER, card(), machine_id=1, machine_name="Press"),
        dict.fromkeys(SUPERVISORS | ADMINS | TECHNICIANS, True),
        True,
    ),
    (
        "intervention_planned",
        InterventionPlanned(
            2,
            intervention_id=1,
            machine_id=1,
            machine_name="Press",
            assigned_to=OTHER_TECH,
            scheduled_for="2026-12-02",
            note="",
        ),
        {OTHER_TECH: True},
        False,
    ),
    (
        "maintenance_due",
        MaintenanceDue(None, machine_id=1, machine_name="Press", day="2026-12-01"),
        dict.fromkeys(SUPERVISORS | ADMINS, True),
        False,
    ),
    (
        "user_registered",
        UserRegistered(None, user_id=9, email="new@example.com", full_name="New", role="operator"),
        dict.fromkeys(ADMINS, True),
        False,
    ),
    (
        "role_changed",
        RoleChanged(1, user_id=REPORTER, from_role="operator", to_role="technician"),
        {REPORTER: True},
        False,
    ),
    (
        "settings_changed",
        SettingsChanged(None, keys=["escalation"]),
        dict.fromkeys(ADMINS, True),
        False,
    ),
    (
        "broadcast",
        BroadcastSent(1, title="Drill", body="At noon", to=[ASSIGNEE, REPORTER]),
        {ASSIGNEE: True, REPORTER: True},
        False,
    ),
    (
        "broadcast",  # to everyone: all but the sender
        BroadcastSent(1, title="Drill", body="At noon", to="all"),
        dict.fromkeys(EVERYONE - {1}, True),
        False,
    ),
    # The step's people: the assignee again, supervisors, admins.
    (
        "ticket_escalated",
        TicketEscalated(None, card(), step=1, to="assignee", after_minutes=5),
        {ASSIGNEE: True},
        True,
    ),
    (
        "ticket_escalated",
        TicketEscalated(None, card(), step=2, to="supervisors", after_minutes=10),
        dict.fromkeys(SUPERVISORS, True),
        True,
    ),
    (
        "ticket_escalated",
        TicketEscalated(None, card(), step=3, to="admins", after_minutes=20),
        dict.fromkeys(ADMINS, True),
        True,
    ),
]


@pytest.mark.parametrize(
    ("row", "event", "told", "critical"), ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)]
)
def test_the_catalogue_row(row: str, event: Event, told: dict[int, bool], critical: bool) -> None:
    notices = [n for n in notices_for(event, directory) if n.type == row]
    assert {n.user_id: n.pushable for n in notices} == told
    assert {n.critical for n in notices} == {critical}
    assert default_types()[row]["push"] is (row not in IN_APP_BY_DEFAULT)
    if row == "new_message":
        assert [n.data["audio"] for n in notices] == [True]


@pytest.mark.parametrize(("row", "event", "told", "critical"), ROWS)
def test_the_actor_is_never_told(
    row: str, event: Event, told: dict[int, bool], critical: bool
) -> None:
    """Whoever of the row's recipients makes the change is left out."""
    actor = next(iter(told))
    as_actor = type(event)(**{**event.__dict__, "actor_id": actor})
    assert actor not in {n.user_id for n in notices_for(as_actor, directory) if n.type == row}
