"""Who is told of what: the event catalogue (CONTRACT section 5) as code.

Works on the stored form of an event (type, actor, JSON data) because the router reads
events back from the stream. The actor of a change is never notified of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from domain.model import Role

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

# Domain event type -> the board event every open board receives.
BOARD_EVENTS = {
    "ticket_created": "ticket_created",
    "ticket_updated": "ticket_updated",
    "ticket_moved": "ticket_moved",
    "ticket_assigned": "ticket_updated",
    "ticket_priority_changed": "ticket_updated",
    "ticket_deleted": "ticket_deleted",
}

TITLE_MAX = 100
BODY_MAX = 200

# Users holding any of these roles (None: everyone).
Directory = Callable[[frozenset[Role] | None], list[int]]
MANAGERS = frozenset({Role.SUPERVISOR, Role.ADMIN})
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


def notices_for(
    event_type: str, actor_id: int | None, data: dict[str, Any], directory: Directory
) -> list[Notice]:
    build = _BUILDERS.get(event_type)
    if build is None:
        return []
    notices = build(data, directory)
    seen: set[tuple[int, str]] = set()
    result = []
    for notice in notices:
        key = (notice.user_id, notice.type)
        if notice.user_id == actor_id or key in seen:
            continue
        seen.add(key)
        result.append(notice)
    return result


def _ticket_notices(
    data: dict[str, Any],
    kind: str,
    users: Iterable[int | None],
    title: str,
    body: str,
    critical: bool = False,
    pushable: bool = True,
) -> list[Notice]:
    ticket = data["ticket"]
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


def _created(data: dict[str, Any], directory: Directory) -> list[Notice]:
    ticket = data["ticket"]
    return _ticket_notices(
        data, "ticket_assigned", [ticket["assigned_to"]], "New ticket assigned", _label(ticket)
    )


def _assigned(data: dict[str, Any], directory: Directory) -> list[Notice]:
    ticket, previous = data["ticket"], data.get("previous_assignee")
    if previous is None:
        return _created(data, directory)
    return _ticket_notices(
        data,
        "ticket_reassigned",
        [ticket["assigned_to"]],
        "Ticket reassigned to you",
        _label(ticket),
    ) + _ticket_notices(
        data,
        "ticket_reassigned",
        [previous],
        "Ticket reassigned",
        f"{_label(ticket)} is no longer yours",
        pushable=False,
    )


def _moved(data: dict[str, Any], directory: Directory) -> list[Notice]:
    ticket = data["ticket"]
    followers = data.get("followers", [])
    status = data["to_status"].replace("_", " ")
    if data["to_status"] == "completed":
        closed = _ticket_notices(
            data,
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
        data, "ticket_status_changed", others, f"Ticket now {status}", _label(ticket)
    )


def _priority(data: dict[str, Any], directory: Directory) -> list[Notice]:
    ticket = data["ticket"]
    raised_to_critical = data["to_priority"] == "critical"
    return _ticket_notices(
        data,
        "ticket_priority_changed",
        [ticket["assigned_to"], *data.get("followers", [])],
        f"Priority now {data['to_priority']}",
        _label(ticket),
        critical=raised_to_critical,
    )


def _comment(data: dict[str, Any], directory: Directory) -> list[Notice]:
    ticket = data["ticket"]
    users = [ticket["reported_by"], ticket["assigned_to"], *data.get("followers", [])]
    return _ticket_notices(
        data,
        "comment_added",
        users,
        f"{data['author_name']} on {ticket['ticket_id']}",
        data["excerpt"],
    )


def _overdue(data: dict[str, Any], directory: Directory) -> list[Notice]:
    ticket = data["ticket"]
    users = [ticket["assigned_to"], *directory(MANAGERS)]
    return _ticket_notices(data, "ticket_overdue", users, "Ticket overdue", _label(ticket))


def _breakdown(data: dict[str, Any], directory: Directory) -> list[Notice]:
    users = directory(MANAGERS | {Role.TECHNICIAN})
    return _ticket_notices(
        data,
        "machine_breakdown",
        users,
        f"Breakdown: {data['machine_name']}",
        _label(data["ticket"]),
    )


def _message(data: dict[str, Any], directory: Directory) -> list[Notice]:
    recipient = data.get("recipient_id")
    users = [recipient] if recipient is not None else directory(None)
    body = "Audio message" if data.get("audio") else data["excerpt"]
    url = f"/?conversation={data['sender_id']}" if recipient is not None else "/?messages=public"
    extra = {
        "message_id": data["message_id"],
        "sender_id": data["sender_id"],
        "audio": bool(data.get("audio")),
    }
    return [
        Notice(
            user,
            "new_message",
            shorten(f"Message from {data['sender_name']}", TITLE_MAX),
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


def _intervention(data: dict[str, Any], directory: Directory) -> list[Notice]:
    return _simple(
        "intervention_planned",
        [data["assigned_to"]],
        f"Intervention on {data['machine_name']}",
        f"Planned for {data['scheduled_for']}. {data.get('note', '')}".strip(),
        extra={"machine_id": data["machine_id"]},
    )


def _maintenance(data: dict[str, Any], directory: Directory) -> list[Notice]:
    return _simple(
        "maintenance_due",
        directory(MANAGERS),
        f"Maintenance due: {data['machine_name']}",
        "Its preventive-maintenance interval has elapsed.",
        extra={"machine_id": data["machine_id"]},
    )


def _registered(data: dict[str, Any], directory: Directory) -> list[Notice]:
    return _simple(
        "user_registered",
        directory(ADMINS),
        "New user",
        f"{data['full_name']} <{data['email']}> joined as {data['role']}",
    )


def _role(data: dict[str, Any], directory: Directory) -> list[Notice]:
    return _simple(
        "role_changed",
        [data["user_id"]],
        "Your role changed",
        f"You are now {data['to_role']} (was {data['from_role']}).",
    )


def _settings(data: dict[str, Any], directory: Directory) -> list[Notice]:
    return _simple(
        "settings_changed", directory(ADMINS), "Settings changed", ", ".join(data["keys"])
    )


def _broadcast(data: dict[str, Any], directory: Directory) -> list[Notice]:
    users = directory(None) if data["to"] == "all" else data["to"]
    return _simple("broadcast", users, data["title"], data["body"])


_BUILDERS: dict[str, Callable[[dict[str, Any], Directory], list[Notice]]] = {
    "ticket_created": _created,
    "ticket_assigned": _assigned,
    "ticket_moved": _moved,
    "ticket_priority_changed": _priority,
    "comment_added": _comment,
    "ticket_overdue": _overdue,
    "machine_breakdown": _breakdown,
    "new_message": _message,
    "intervention_planned": _intervention,
    "maintenance_due": _maintenance,
    "user_registered": _registered,
    "role_changed": _role,
    "settings_changed": _settings,
    "broadcast": _broadcast,
}
