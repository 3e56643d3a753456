"""Domain events: facts, named in the past tense, that a committed write produced.

Each event is written to the outbox in the same transaction as the change it records;
`payload()` is what travels (JSON) to the router, which decides who is told.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

Card = dict[str, Any]


@dataclass(frozen=True)
class Event:
    type: ClassVar[str]
    actor_id: int | None

    def payload(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("actor_id")
        return data


@dataclass(frozen=True)
class TicketCreated(Event):
    type: ClassVar[str] = "ticket_created"
    ticket: Card
    followers: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TicketUpdated(Event):
    """Fields other than status, assignee and priority changed."""

    type: ClassVar[str] = "ticket_updated"
    ticket: Card
    changes: list[str]
    followers: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TicketMoved(Event):
    type: ClassVar[str] = "ticket_moved"
    ticket: Card
    from_status: str
    to_status: str
    followers: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TicketAssigned(Event):
    type: ClassVar[str] = "ticket_assigned"
    ticket: Card
    previous_assignee: int | None
    followers: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TicketPriorityChanged(Event):
    type: ClassVar[str] = "ticket_priority_changed"
    ticket: Card
    from_priority: str
    to_priority: str
    followers: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class CommentAdded(Event):
    type: ClassVar[str] = "comment_added"
    ticket: Card
    comment_id: int
    author_name: str
    excerpt: str
    followers: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TicketOverdue(Event):
    type: ClassVar[str] = "ticket_overdue"
    ticket: Card
    day: str


@dataclass(frozen=True)
class MessageSent(Event):
    type: ClassVar[str] = "new_message"
    message_id: int
    sender_id: int
    sender_name: str
    message_type: str
    recipient_id: int | None
    excerpt: str
    audio: bool = False


@dataclass(frozen=True)
class MachineBrokeDown(Event):
    type: ClassVar[str] = "machine_breakdown"
    machine_id: int
    machine_name: str
    ticket: Card


@dataclass(frozen=True)
class InterventionPlanned(Event):
    type: ClassVar[str] = "intervention_planned"
    intervention_id: int
    machine_id: int
    machine_name: str
    assigned_to: int
    scheduled_for: str
    note: str


@dataclass(frozen=True)
class MaintenanceDue(Event):
    type: ClassVar[str] = "maintenance_due"
    machine_id: int
    machine_name: str
    day: str


@dataclass(frozen=True)
class UserRegistered(Event):
    type: ClassVar[str] = "user_registered"
    user_id: int
    email: str
    full_name: str
    role: str


@dataclass(frozen=True)
class RoleChanged(Event):
    type: ClassVar[str] = "role_changed"
    user_id: int
    from_role: str
    to_role: str


@dataclass(frozen=True)
class SettingsChanged(Event):
    type: ClassVar[str] = "settings_changed"
    keys: list[str]


@dataclass(frozen=True)
class BroadcastSent(Event):
    type: ClassVar[str] = "broadcast"
    title: str
    body: str
    to: str | list[int]


@dataclass(frozen=True)
class CountsChanged(Event):
    """Someone's unread counts changed by reading: their badges must follow."""

    type: ClassVar[str] = "counts_changed"
    user_id: int
