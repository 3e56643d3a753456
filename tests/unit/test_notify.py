"""Who is told: the event catalogue."""

from __future__ import annotations

from typing import Any

from domain.events import from_stored
from domain.model import Role
from domain.notify import Directory, Notice
from domain.notify import notices_for as notices_of

STAFF = {Role.ADMIN: [1], Role.SUPERVISOR: [2], Role.TECHNICIAN: [3, 4], Role.OPERATOR: [5]}


def directory(roles: frozenset[Role] | None) -> list[int]:
    return sorted(u for role, ids in STAFF.items() if roles is None or role in roles for u in ids)


def card(**overrides: Any) -> dict[str, Any]:
    base = {
        "id": 10,
        "ticket_id": "T-2026-001",
        "title": "Leak",
        "reported_by": 5,
        "assigned_to": 3,
        "status": "received",
    }
    return {**base, **overrides}


def notices_for(
    event_type: str, actor: int | None, data: dict[str, Any], people: Directory
) -> list[Notice]:
    """The notices of an event as the router reads it back from the stream."""
    return notices_of(from_stored(event_type, actor, data), people)


def told(event_type: str, actor: int | None, **data: Any) -> set[tuple[int, str]]:
    return {(n.user_id, n.type) for n in notices_for(event_type, actor, data, directory)}


def test_assignment_tells_the_assignee_critically() -> None:
    notices = notices_for(
        "ticket_assigned", 2, {"ticket": card(), "previous_assignee": None}, directory
    )
    assert [(n.user_id, n.type, n.critical, n.url) for n in notices] == [
        (3, "ticket_assigned", True, "/?ticket=10")
    ]


def test_reassignment_pushes_new_and_informs_previous_in_app() -> None:
    notices = notices_for(
        "ticket_assigned", 2, {"ticket": card(assigned_to=4), "previous_assignee": 3}, directory
    )
    assert {(n.user_id, n.pushable) for n in notices} == {(4, True), (3, False)}
    assert {n.type for n in notices} == {"ticket_reassigned"}


def test_the_actor_is_never_told() -> None:
    assert told(
        "ticket_moved",
        3,
        ticket=card(),
        from_status="received",
        to_status="diagnostic",
        followers=[3, 4],
    ) == {(5, "ticket_status_changed"), (4, "ticket_status_changed")}


def test_completion_tells_reporter_and_followers_it_closed() -> None:
    assert told(
        "ticket_moved",
        3,
        ticket=card(),
        from_status="in_progress",
        to_status="completed",
        followers=[1],
    ) == {(5, "ticket_closed"), (1, "ticket_closed")}


def test_breakdown_and_overdue_reach_staff() -> None:
    assert told("machine_breakdown", 5, machine_id=1, machine_name="Press", ticket=card()) == {
        (1, "machine_breakdown"),
        (2, "machine_breakdown"),
        (3, "machine_breakdown"),
        (4, "machine_breakdown"),
    }
    assert told("ticket_overdue", None, ticket=card(), day="2026-11-25") == {
        (3, "ticket_overdue"),
        (1, "ticket_overdue"),
        (2, "ticket_overdue"),
    }


def test_priority_critical_only_when_raised_to_critical() -> None:
    high = notices_for(
        "ticket_priority_changed",
        2,
        {"ticket": card(), "from_priority": "low", "to_priority": "high", "followers": []},
        directory,
    )
    crit = notices_for(
        "ticket_priority_changed",
        2,
        {"ticket": card(), "from_priority": "low", "to_priority": "critical", "followers": []},
        directory,
    )
    assert [n.critical for n in high] == [False] and [n.critical for n in crit] == [True]


def test_private_message_and_system_events() -> None:
    assert told(
        "new_message",
        3,
        message_id=1,
        sender_id=3,
        sender_name="Theo",
        message_type="private",
        recipient_id=4,
        excerpt="hi",
    ) == {(4, "new_message")}
    assert told("role_changed", 1, user_id=5, from_role="operator", to_role="technician") == {
        (5, "role_changed")
    }
    assert told("settings_changed", None, keys=["x"]) == {(1, "settings_changed")}
    assert told("settings_changed", 1, keys=["x"]) == set()  # the only admin is the actor
    assert told(
        "user_registered", None, user_id=9, email="a@b", full_name="A", role="operator"
    ) == {(1, "user_registered")}


def test_only_the_listed_types_consult_the_directory() -> None:
    """The router skips reading users for the other types: none of them may need it."""

    def refuse(roles: frozenset[Role] | None) -> list[int]:
        raise AssertionError("directory consulted")

    ticket = card()
    samples: dict[str, dict[str, Any]] = {
        "ticket_created": {"ticket": ticket},
        "ticket_assigned": {"ticket": ticket, "previous_assignee": 4},
        "ticket_moved": {"ticket": ticket, "from_status": "received", "to_status": "completed"},
        "ticket_priority_changed": {
            "ticket": ticket,
            "from_priority": "low",
            "to_priority": "high",
        },
        "comment_added": {"ticket": ticket, "comment_id": 1, "author_name": "A", "excerpt": "x"},
        "new_message": {
            "message_id": 1,
            "sender_id": 3,
            "sender_name": "T",
            "message_type": "private",
            "recipient_id": 4,
            "excerpt": "hi",
        },
        "intervention_planned": {
            "intervention_id": 1,
            "machine_id": 1,
            "machine_name": "P",
            "assigned_to": 3,
            "scheduled_for": "2026-11-26",
            "note": "",
        },
        "role_changed": {"user_id": 5, "from_role": "operator", "to_role": "technician"},
        "broadcast": {"title": "t", "body": "b", "to": [2]},
    }
    for event_type, data in samples.items():
        assert notices_for(event_type, 1, data, refuse), event_type
