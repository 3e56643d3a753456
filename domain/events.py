"""Domain events: facts, named in the past tense, that a committed write produced.

Each event is written to the outbox in the same transaction as the change it records;
`payload()` is what travels (JSON) to the router, which reads it back with `from_stored`
and decides who is told.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

Card = dict[str, Any]


@dataclass(frozen=True)
class Event:
    type: ClassVar[str]
    actor_id: int | None

    def payload(self) -> dict[str, Any]:
        # Shallow: fields hold plain JSON values, encoded at once (asdict's deep copy of
        # every card cost more than the rest of a batch of escalations).
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "actor_id"}


@dataclass(frozen=True)
class TicketEvent(Event):
    """An event about a ticket: its card as the board shows it, and who follows it."""

    ticket: Card
    followers: list[int] = field(default_factory=list, kw_only=True)


@dataclass(frozen=True)
class TicketCreated(TicketEvent):
    type: ClassVar[str] = "ticket_created"


@dataclass(frozen=True)
class TicketUpdated(TicketEvent):
    """Fields other than status, assignee and priority changed."""

    type: ClassVar[str] = "ticket_updated"
    changes: list[str]


@dataclass(frozen=True)
class TicketMoved(TicketEvent):
    type: ClassVar[str] = "ticket_moved"
    from_status: str
    to_status: str


@dataclass(frozen=True)
class TicketAssigned(TicketEvent):
    type: ClassVar[str] = "ticket_assigned"
    previous_assignee: int | None


@dataclass(frozen=True)
class TicketPriorityChanged(TicketEvent):
    type: ClassVar[str] = "ticket_priority_changed"
    from_priority: str
    to_priority: str


@dataclass(frozen=True)
class CommentAdded(TicketEvent):
    type: ClassVar[str] = "comment_added"
    comment_id: int
    author_name: str
    excerpt: str


@dataclass(frozen=True)
class TicketOverdue(TicketEvent):
    type: ClassVar[str] = "ticket_overdue"
    day: str


@dataclass(frozen=True)
class TicketEscalated(TicketEvent):
    """A critical alert went unanswered for `after_minutes`: step `step` of the ladder
    tells `to` (`assignee`, `supervisors` or `admins`)."""

    type: ClassVar[str] = "ticket_escalated"
    step: int
    to: str
    after_minutes: int


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
class MachineBrokeDown(TicketEvent):
    type: ClassVar[str] = "machine_breakdown"
    machine_id: int
    machine_name: str


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


@dataclass(frozen=True)
class UnknownEvent(Event):
    """A stored event of a type this version does not know: it tells nobody."""

    type: ClassVar[str] = "unknown"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        TicketCreated, TicketUpdated, TicketMoved, TicketAssigned, TicketPriorityChanged,
        CommentAdded, TicketOverdue, TicketEscalated, MessageSent, MachineBrokeDown,
        InterventionPlanned, MaintenanceDue, UserRegistered, RoleChanged, SettingsChanged,
        BroadcastSent, CountsChanged,
    )
}  # fmt: skip


def from_stored(event_type: str, actor_id: int | None, payload: dict[str, Any]) -> Event:
    """The typed event of a stored payload (`UnknownEvent` for a type this version does not
    know); keys it does not know are ignored, so events written by a newer version read."""
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        return UnknownEvent(actor_id)
    known = {f.name for f in fields(cls)} - {"actor_id"}
    return cls(actor_id, **{k: v for k, v in payload.items() if k in known})
