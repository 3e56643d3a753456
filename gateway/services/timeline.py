"""A ticket's timeline, from what the database records: created, waiting for an answer,
assigned, each critical notification's way to its person (told, pushed to a device,
delivered live to an open app, seen, read, clicked), the steps of the escalation ladder,
and the answer.

Who was told what and when they saw it is shown to supervisors and admins for everyone,
to anyone else for themselves (`permissions.sees_deliveries_of`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from domain import permissions
from domain.model import Actor, Ticket
from gateway.services import ticket_store

ASSIGNMENTS = frozenset({"ticket_assigned", "ticket_reassigned"})
NOTIFICATIONS_MAX = 500
# What happened at the same instant, in the order it happened.
ORDER = ("created", "waiting", "assigned", "notified", "pushed", "delivered", "seen", "read",
         "clicked", "escalated", "answered")  # fmt: skip

_NOTIFICATIONS = """
SELECT n.id, n.user_id, u.full_name AS user_name, n.type, n.data,
       n.created_at AS told_at, n.framed_at, n.seen_at, n.read_at,
       n.clicked_at, p.pushed_at, p.devices
FROM notifications n
JOIN users u ON u.id = n.user_id
LEFT JOIN LATERAL (SELECT min(l.created_at) AS pushed_at, count(*) AS devices FROM push_logs l
                   WHERE l.notification_id = n.id AND l.status = 'sent') p ON true
WHERE n.critical AND n.data->>'ticket_id' = $1::text
ORDER BY n.id LIMIT $2
"""
_STEPS = """
SELECT step, audience, after_minutes, escalated_at FROM ticket_escalations
WHERE ticket_id = $1 AND sent ORDER BY step
"""
Entry = dict[str, Any]


async def timeline(conn: asyncpg.Connection, actor: Actor, ticket_id: int) -> dict[str, Any]:
    ticket = await ticket_store.load(conn, ticket_id)
    reporter = await _name(conn, ticket.reported_by)
    entries = [_entry(ticket.created_at, "created", ticket.reported_by, reporter)]
    entries += await _wait_entries(conn, ticket)
    for row in await conn.fetch(_NOTIFICATIONS, str(ticket_id), NOTIFICATIONS_MAX):
        entries += _notification_entries(row, permissions.sees_deliveries_of(actor, row["user_id"]))
    for row in await conn.fetch(_STEPS, ticket_id):
        entries.append(
            _entry(row["escalated_at"], "escalated", step=row["step"], to=row["audience"],
                   after_minutes=row["after_minutes"])
        )  # fmt: skip
    entries.sort(key=lambda e: (e["at"], ORDER.index(e["what"])))
    entries = [e | {"at": e["at"].isoformat()} for e in entries]
    return {"ticket_id": ticket.id, "waiting": _waiting(ticket), "entries": entries}


async def _name(conn: asyncpg.Connection, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    name: str | None = await conn.fetchval("SELECT full_name FROM users WHERE id = $1", user_id)
    return name


async def _wait_entries(conn: asyncpg.Connection, ticket: Ticket) -> list[Entry]:
    wait = ticket.wait
    if wait is None:
        return []
    entries = [_entry(wait.since, "waiting", reason=wait.reason)]
    if wait.answered_at is not None:
        name = await _name(conn, wait.answered_by)
        entries.append(
            _entry(wait.answered_at, "answered", wait.answered_by, name, answer=wait.answer)
        )
    return entries


def _notification_entries(row: asyncpg.Record, deliveries: bool) -> list[Entry]:
    user = (row["user_id"], row["user_name"])
    data = row["data"] or {}
    assigned = row["type"] in ASSIGNMENTS and not data.get("previous_assignee")
    entries = [_entry(row["told_at"], "assigned", *user)] if assigned else []
    if not deliveries:
        return entries
    told = {"type": row["type"], "notification_id": row["id"]}
    entries.append(_entry(row["told_at"], "notified", *user, **told))
    if row["pushed_at"] is not None:
        entries.append(_entry(row["pushed_at"], "pushed", *user, **told, devices=row["devices"]))
    for column, what in (("framed_at", "delivered"), ("seen_at", "seen"), ("read_at", "read"),
                         ("clicked_at", "clicked")):  # fmt: skip
        if row[column] is not None:
            entries.append(_entry(row[column], what, *user, **told))
    return entries


def _entry(
    at: datetime, what: str, user_id: int | None = None, user_name: str | None = None, **detail: Any
) -> Entry:
    entry: Entry = {"at": at, "what": what, "user_id": user_id, "user_name": user_name}
    return entry | detail


def _waiting(ticket: Ticket) -> dict[str, Any] | None:
    wait = ticket.wait
    if wait is None:
        return None
    return {
        "reason": wait.reason,
        "since": wait.since.isoformat(),
        "answered_at": wait.answered_at.isoformat() if wait.answered_at else None,
        "answer": wait.answer,
        "answered_by": wait.answered_by,
        "escalated_to": wait.escalated_to,
        "escalated_at": wait.escalated_at.isoformat() if wait.escalated_at else None,
    }
