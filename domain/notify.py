"""Who is told of what: the event catalogue (CONTRACT section 5) as code.

Works on typed events (`domain.events`; the router reads them back from the stream with
`from_stored`). The actor of a change is never notified of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

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
    TicketEvent,
    TicketMoved,
    TicketOverdue,
    TicketPriorityChanged,
    TicketUpdated,
    UserRegistered,
)
from domain.model import Role
from domain.permissions import MANAGERS

CRITICAL_TYPES = frozenset(
    {"ticket_assigned", "ticket_reassigned", "ticket_overdue", "machine_breakdown"}
)
NOTIFICATION_TYPES = (
    "ticket_assigned",
    "ticket_reassigned",
    "ticket_status_changed",
    "ticket_priority_changed",
    "ticket_closed",
    "comment_added",
    "ticket_overdue",
    "new_message",
    "machine_breakdown",
    "intervention_planned",
    "maintenance_due",
    "user_registered",
    "role_changed",
    "settings_changed",
    "broadcast",
)

# Domain event -> the board event every open board receives, with the card.
BOARD_EVENTS: dict[type[TicketEvent], str] = {
    TicketCreated: "ticket_created",
    TicketUpdated: "ticket_updated",
    TicketMoved: "ticket_moved",
    TicketAssigned: "ticket_updated",
    TicketPriorityChanged: "ticket_updated",
}

TITLE_MAX = 100
BODY_MAX = 200

# Users holding any of these roles (None: everyone).
Directory = Callable[[frozenset[Role] | None], list[int]]
ADMINS = frozenset({Role.ADMIN})


@dataclass(frozen=True)
class Notice:
    """One notification for one person."""

    user_id: int
    type: str
    title: str
    body: str
    url: str = "/"
    critical: bool = False
    pushable: bool = True  # False: in-app only (the previous assignee of a reassignment)
    data: dict[str, Any] = field(default_factory=dict)


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def ticket_url(ticket: dict[str, Any]) -> str:
    return f"/?ticket={int(ticket['id'])}"


def board_event(event: Event) -> str | None:
    """The board event type `event` yields, if any."""
    return BOARD_EVENTS.get(type(event))  # type: ignore[arg-type]


def notices_for(event: Event, directory: Directory) -> list[Notice]:
    build = _BUILDERS.get(type(event))
    if build is None:
        return []
    notices = build(event, directory)
    seen: set[tuple[int, str]] = set()
    result = []
    for notice in notices:
        key = (notice.user_id, notice.type)
        if notice.user_id == event.actor_id or key in seen:
            continue
        seen.add(key)
        result.append(notice)
    return result


def _ticket_notices(
    event: TicketEvent,
    kind: str,
    users: Iterable[int | None],
    title: str,
    body: str,
    critical: bool = False,
    pushable: bool = True,
) -> list[Notice]:
    ticket = event.ticket
    extra = {"ticket_id": ticket["id"], "ticket_code": ticket["ticket_id"]}
    return [
        Notice(
            user,
            kind,
            shorten(title, TITLE_MAX),
            shorten(body, BODY_MAX),
            ticket_url(ticket),
            critical or kind in CRITICAL_TYPES,
            pushable,
            extra,
        )
        for user in users
        if user is not None
    ]


def _label(ticket: dict[str, Any]) -> str:
    return f"{ticket['ticket_id']}: {ticket['title']}"


def _created(event: TicketCreated | TicketAssigned, directory: Directory) -> list[Notice]:
    ticket = event.ticket
    return _ticket_notices(
        event, "ticket_assigned", [ticket["assigned_to"]], "New ticket assigned", _label(ticket)
    )


def _assigned(event: TicketAssigned, directory: Directory) -> list[Notice]:
    ticket, previous = event.ticket, event.previous_assignee
    if previous is None:
        return _created(event, directory)
    return _ticket_notices(
        event,
        "ticket_reassigned",
        [ticket["assigned_to"]],
        "Ticket reassigned to you",
        _label(ticket),
    ) + _ticket_notices(
        event,
        "ticket_reassigned",
        [previous],
        "Ticket reassigned",
        f"{_label(ticket)} is no longer yours",
        pushable=False,
    )


def _moved(event: TicketMoved, directory: Directory) -> list[Notice]:
    ticket, followers = event.ticket, event.followers
    status = event.to_status.replace("_", " ")
    if event.to_status == "completed":
        closed = _ticket_notices(
            event,
            "ticket_closed",
            [ticket["reported_by"], *followers],
            "Ticket completed",
            _label(ticket),
        )
        told = {notice.user_id for notice in closed}
        others = [ticket["assigned_to"]] if ticket["assigned_to"] not in told else []
    else:
        closed, others = [], [ticket["assigned_to"], ticket["reported_by"], *followers]
    return closed + _ticket_notices(
        event, "ticket_status_changed", others, f"Ticket now {status}", _label(ticket)
    )


def _priority(event: TicketPriorityChanged, directory: Directory) -> list[Notice]:
    ticket = event.ticket
    raised_to_critical = event.to_priority == "critical"
    return _ticket_notices(
        event,
        "ticket_priority_changed",
        [ticket["assigned_to"], *event.followers],
        f"Priority now {event.to_priority}",
        _label(ticket),
        critical=raised_to_critical,
    )


def _comment(event: CommentAdded, directory: Directory) -> list[Notice]:
    ticket = event.ticket
    users = [ticket["reported_by"], ticket["assigned_to"], *event.followers]
    return _ticket_notices(
        event,
        "comment_added",
        users,
        f"{event.author_name} on {ticket['ticket_id']}",
        event.excerpt,
    )


def _overdue(event: TicketOverdue, directory: Directory) -> list[Notice]:
    ticket = event.ticket
    users = [ticket["assigned_to"], *directory(MANAGERS)]
    return _ticket_notices(event, "ticket_overdue", users, "Ticket overdue", _label(ticket))


def _breakdown(event: MachineBrokeDown, directory: Directory) -> list[Notice]:
    users = directory(MANAGERS | {Role.TECHNICIAN})
    return _ticket_notices(
        event,
        "machine_breakdown",
        users,
        f"Breakdown: {event.machine_name}",
        _label(event.ticket),
    )


def _message(event: MessageSent, directory: Directory) -> list[Notice]:
    recipient = event.recipient_id
    users = [recipient] if recipient is not None else directory(None)
    body = "Audio message" if event.audio else event.excerpt
    url = f"/?conversation={event.sender_id}" if recipient is not None else "/?messages=public"
    extra = {"message_id": event.message_id, "sender_id": event.sender_id, "audio": event.audio}
    return [
        Notice(
            user,
            "new_message",
            shorten(f"Message from {event.sender_name}", TITLE_MAX),
            shorten(body, BODY_MAX),
            url,
            data=extra,
        )
        for user in users
    ]


def _simple(
    kind: str,
    users: Iterable[int],
    title: str,
    body: str,
    url: str = "/",
    extra: dict[str, Any] | None = None,
) -> list[Notice]:
    return [
        Notice(
            user,
            kind,
            shorten(title, TITLE_MAX),
            shorten(body, BODY_MAX),
            url,
            kind in CRITICAL_TYPES,
            data=extra or {},
        )
        for user in users
    ]


def _intervention(event: InterventionPlanned, directory: Directory) -> list[Notice]:
    return _simple(
        "intervention_planned",
        [event.assigned_to],
        f"Intervention on {event.machine_name}",
        f"Planned for {event.scheduled_for}. {event.note}".strip(),
        extra={"machine_id": event.machine_id},
    )


def _maintenance(event: MaintenanceDue, directory: Directory) -> list[Notice]:
    return _simple(
        "maintenance_due",
        directory(MANAGERS),
        f"Maintenance due: {event.machine_name}",
        "Its preventive-maintenance interval has elapsed.",
        extra={"machine_id": event.machine_id},
    )


def _registered(event: UserRegistered, directory: Directory) -> list[Notice]:
    return _simple(
        "user_registered",
        directory(ADMINS),
        "New user",
        f"{event.full_name} <{event.email}> joined as {event.role}",
    )


def _role(event: RoleChanged, directory: Directory) -> list[Notice]:
    return _simple(
        "role_changed",
        [event.user_id],
        "Your role changed",
        f"You are now {event.to_role} (was {event.from_role}).",
    )


def _settings(event: SettingsChanged, directory: Directory) -> list[Notice]:
    return _simple("settings_changed", directory(ADMINS), "Settings changed", ", ".join(event.keys))


def _broadcast(event: BroadcastSent, directory: Directory) -> list[Notice]:
    users = directory(None) if isinstance(event.to, str) else event.to
    return _simple("broadcast", users, event.title, event.body)


_BUILDERS: dict[type[Event], Callable[[Any, Directory], list[Notice]]] = {
    TicketCreated: _created,
    TicketAssigned: _assigned,
    TicketMoved: _moved,
    TicketPriorityChanged: _priority,
    CommentAdded: _comment,
    TicketOverdue: _overdue,
    MachineBrokeDown: _breakdown,
    MessageSent: _message,
    InterventionPlanned: _intervention,
    MaintenanceDue: _maintenance,
    UserRegistered: _registered,
    RoleChanged: _role,
    SettingsChanged: _settings,
    BroadcastSent: _broadcast,
}
