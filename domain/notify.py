"""Who is told of what: the event catalogue (CONTRACT section 5) as code.

Works on typed events (`domain.events`; the router reads them back from the stream with
`from_stored`). The actor of a change is never notified of it. A notice names its words
(catalogue entries and their parameters); the router writes them in each recipient's
language (`gateway.texts`).
"""

from __future__ import annotations

import re
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
    TicketEscalated,
    TicketEvent,
    TicketMoved,
    TicketOverdue,
    TicketPriorityChanged,
    TicketUpdated,
    UserRegistered,
)
from domain.kinds import CRITICAL_TYPES
from domain.model import Role
from domain.permissions import MANAGERS

# Domain event -> the board event every open board receives, with the card.
BOARD_EVENTS: dict[type[TicketEvent], str] = {
    TicketCreated: "ticket_created",
    TicketUpdated: "ticket_updated",
    TicketMoved: "ticket_moved",
    TicketAssigned: "ticket_updated",
    TicketPriorityChanged: "ticket_updated",
    TicketEscalated: "ticket_updated",  # the card shows where it escalated
}

TITLE_MAX = 100
BODY_MAX = 200

# Users holding any of these roles (None: everyone).
Directory = Callable[[frozenset[Role] | None], list[int]]
ADMINS = frozenset({Role.ADMIN})
SUPERVISORS = frozenset({Role.SUPERVISOR})


@dataclass(frozen=True)
class Term:
    """A word of the domain's vocabulary (a status, a priority, a role): the reader's
    catalogue translates it as `<group>.<value>`."""

    group: str
    value: str


@dataclass(frozen=True)
class Moment:
    """An instant (ISO 8601), written in the reader's language and time zone."""

    iso: str


Param = str | int | Term | Moment


@dataclass(frozen=True)
class Notice:
    """One notification for one person, in no language yet: its words are the catalogue
    entries `notice.<text>.title` and `notice.<text>.body` filled with `params`, written
    in the recipient's language when the router stores it."""

    user_id: int
    type: str
    text: str
    params: dict[str, Param]
    url: str = "/"
    critical: bool = False
    pushable: bool = True  # False: in-app only (the previous assignee of a reassignment)
    data: dict[str, Any] = field(default_factory=dict)


# Runs of whitespace become one space, but no-break spaces stay: French sets one before
# a colon, and numbers group their digits with one.
_SPACES = re.compile(r"[^\S\u00a0\u202f\u2007]+")


def shorten(text: str, limit: int) -> str:
    text = _SPACES.sub(" ", text).strip(" ")
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
    text: str | None = None,
    critical: bool = False,
    pushable: bool = True,
    data: dict[str, Any] | None = None,
    **params: Param,
) -> list[Notice]:
    ticket = event.ticket
    extra = {"ticket_id": ticket["id"], "ticket_code": ticket["ticket_id"], **(data or {})}
    words: dict[str, Param] = {"code": ticket["ticket_id"], "ticket": ticket["title"], **params}
    return [
        Notice(
            user,
            kind,
            text or kind,
            words,
            ticket_url(ticket),
            critical or kind in CRITICAL_TYPES,
            pushable,
            extra,
        )
        for user in users
        if user is not None
    ]


def _created(event: TicketCreated | TicketAssigned, directory: Directory) -> list[Notice]:
    return _ticket_notices(event, "ticket_assigned", [event.ticket["assigned_to"]])


def _assigned(event: TicketAssigned, directory: Directory) -> list[Notice]:
    ticket, previous = event.ticket, event.previous_assignee
    if previous is None:
        return _created(event, directory)
    return _ticket_notices(event, "ticket_reassigned", [ticket["assigned_to"]]) + _ticket_notices(
        event,
        "ticket_reassigned",
        [previous],
        "ticket_reassigned.previous",
        pushable=False,
        data={"previous_assignee": True},
    )


def _moved(event: TicketMoved, directory: Directory) -> list[Notice]:
    ticket, followers = event.ticket, event.followers
    if event.to_status == "completed":
        closed = _ticket_notices(event, "ticket_closed", [ticket["reported_by"], *followers])
        told = {notice.user_id for notice in closed}
        others = [ticket["assigned_to"]] if ticket["assigned_to"] not in told else []
    else:
        closed, others = [], [ticket["assigned_to"], ticket["reported_by"], *followers]
    return closed + _ticket_notices(
        event, "ticket_status_changed", others, status=Term("status", event.to_status)
    )


def _priority(event: TicketPriorityChanged, directory: Directory) -> list[Notice]:
    ticket = event.ticket
    return _ticket_notices(
        event,
        "ticket_priority_changed",
        [ticket["assigned_to"], *event.followers],
        critical=event.to_priority == "critical",
        priority=Term("priority", event.to_priority),
    )


def _comment(event: CommentAdded, directory: Directory) -> list[Notice]:
    ticket = event.ticket
    users = [ticket["reported_by"], ticket["assigned_to"], *event.followers]
    return _ticket_notices(
        event, "comment_added", users, author=event.author_name, excerpt=event.excerpt
    )


def _overdue(event: TicketOverdue, directory: Directory) -> list[Notice]:
    ticket = event.ticket
    users = [ticket["assigned_to"], *directory(MANAGERS)]
    since = Moment(ticket.get("scheduled_date") or "")
    return _ticket_notices(event, "ticket_overdue", users, since=since)


def _escalated(event: TicketEscalated, directory: Directory) -> list[Notice]:
    """The step's people: the assignee again (a reminder), the supervisors, the admins."""
    to = event.to
    reminder = to == "assignee"
    if reminder:
        users: list[int | None] = [event.ticket["assigned_to"]]
    else:
        users = list(directory(SUPERVISORS if to == "supervisors" else ADMINS))
    return _ticket_notices(
        event,
        "ticket_escalated",
        users,
        "ticket_escalated.reminder" if reminder else "ticket_escalated",
        data={"step": event.step, "to": to},
        minutes=event.after_minutes,
    )


def _breakdown(event: MachineBrokeDown, directory: Directory) -> list[Notice]:
    users = directory(MANAGERS | {Role.TECHNICIAN})
    return _ticket_notices(event, "machine_breakdown", users, machine=event.machine_name)


def _message(event: MessageSent, directory: Directory) -> list[Notice]:
    recipient = event.recipient_id
    users = [recipient] if recipient is not None else directory(None)
    text = "new_message.audio" if event.audio else "new_message"
    url = f"/?conversation={event.sender_id}" if recipient is not None else "/?messages=public"
    extra = {"message_id": event.message_id, "sender_id": event.sender_id, "audio": event.audio}
    words: dict[str, Param] = {"sender": event.sender_name, "excerpt": event.excerpt}
    return [Notice(user, "new_message", text, words, url, data=extra) for user in users]


def _simple(
    kind: str,
    users: Iterable[int],
    params: dict[str, Param],
    extra: dict[str, Any] | None = None,
) -> list[Notice]:
    return [
        Notice(user, kind, kind, params, "/", kind in CRITICAL_TYPES, data=extra or {})
        for user in users
    ]


def _intervention(event: InterventionPlanned, directory: Directory) -> list[Notice]:
    return _simple(
        "intervention_planned",
        [event.assigned_to],
        {"machine": event.machine_name, "when": Moment(event.scheduled_for), "note": event.note},
        extra={"machine_id": event.machine_id},
    )


def _maintenance(event: MaintenanceDue, directory: Directory) -> list[Notice]:
    return _simple(
        "maintenance_due",
        directory(MANAGERS),
        {"machine": event.machine_name},
        extra={"machine_id": event.machine_id},
    )


def _registered(event: UserRegistered, directory: Directory) -> list[Notice]:
    return _simple(
        "user_registered",
        directory(ADMINS),
        {"name": event.full_name, "email": event.email, "role": Term("role", event.role)},
    )


def _role(event: RoleChanged, directory: Directory) -> list[Notice]:
    roles: dict[str, Param] = {
        "from_role": Term("role", event.from_role), "to_role": Term("role", event.to_role),
    }  # fmt: skip
    return _simple("role_changed", [event.user_id], roles)


def _settings(event: SettingsChanged, directory: Directory) -> list[Notice]:
    return _simple("settings_changed", directory(ADMINS), {"keys": ", ".join(event.keys)})


def _broadcast(event: BroadcastSent, directory: Directory) -> list[Notice]:
    users = directory(None) if isinstance(event.to, str) else event.to
    return _simple("broadcast", users, {"title": event.title, "body": event.body})


_BUILDERS: dict[type[Event], Callable[[Any, Directory], list[Notice]]] = {
    TicketCreated: _created,
    TicketAssigned: _assigned,
    TicketMoved: _moved,
    TicketPriorityChanged: _priority,
    CommentAdded: _comment,
    TicketOverdue: _overdue,
    TicketEscalated: _escalated,
    MachineBrokeDown: _breakdown,
    MessageSent: _message,
    InterventionPlanned: _intervention,
    MaintenanceDue: _maintenance,
    UserRegistered: _registered,
    RoleChanged: _role,
    SettingsChanged: _settings,
    BroadcastSent: _broadcast,
}
