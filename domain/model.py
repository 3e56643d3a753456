"""Entities and value types of the maintenance domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    TECHNICIAN = "technician"
    OPERATOR = "operator"


class Status(StrEnum):
    """Ticket statuses, declared in Kanban column order."""

    RECEIVED = "received"
    DIAGNOSTIC = "diagnostic"
    IN_PROGRESS = "in_progress"
    WAITING_PARTS = "waiting_parts"
    COMPLETED = "completed"
    ARCHIVED = "archived"

    @property
    def is_closed(self) -> bool:
        return self in (Status.COMPLETED, Status.ARCHIVED)


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class MachineStatus(StrEnum):
    OPERATIONAL = "operational"
    DOWN = "down"
    MAINTENANCE = "maintenance"


class Language(StrEnum):
    """What a person reads the app, their notifications and pushes in."""

    FR = "fr"  # French as written in Québec: the plant's language, and the default
    EN = "en"


DEFAULT_LANGUAGE = Language.FR


class MessageType(StrEnum):
    PRIVATE = "private"
    PUBLIC = "public"


@dataclass(frozen=True)
class Actor:
    """Who is asking: the authenticated user."""

    id: int
    role: Role


@dataclass(frozen=True)
class Wait:
    """A critical alert about a ticket, waiting for an answer (`domain.escalation`): why
    and since when, how and by whom it was answered, how many steps of the ladder it
    climbed and the latest one sent."""

    reason: str
    since: datetime
    answered_at: datetime | None = None
    answer: str | None = None
    answered_by: int | None = None
    step: int = 0
    escalated_to: str | None = None
    escalated_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.answered_at is None


@dataclass
class Ticket:
    id: int
    ticket_id: str
    title: str
    description: str
    machine_id: int
    priority: Priority
    status: Status
    reported_by: int
    assigned_to: int | None
    scheduled_date: datetime | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    followers: frozenset[int] = field(default_factory=frozenset)
    machine_name: str = ""
    assignee_name: str | None = None
    wait: Wait | None = None

    def card(self) -> dict[str, object]:
        """The fields a board card shows; what board events carry."""
        return {
            "id": self.id,
            "ticket_id": self.ticket_id,
            "title": self.title,
            "machine_id": self.machine_id,
            "machine_name": self.machine_name,
            "priority": str(self.priority),
            "status": str(self.status),
            "reported_by": self.reported_by,
            "assigned_to": self.assigned_to,
            "assignee_name": self.assignee_name,
            "scheduled_date": _iso(self.scheduled_date),
            "updated_at": _iso(self.updated_at),
            **self._waiting(),
        }

    def _waiting(self) -> dict[str, str | None]:
        """How long an unanswered critical alert has waited and where it escalated, for
        the card to show; all None once answered (or when nothing waits)."""
        wait = self.wait if self.wait is not None and self.wait.open else None
        return {
            "waiting_since": _iso(wait.since) if wait else None,
            "escalated_to": wait.escalated_to if wait else None,
            "escalated_at": _iso(wait.escalated_at) if wait else None,
        }


def ticket_code(year: int, number: int) -> str:
    """Human code `T-YYYY-NNN`, unique per year."""
    return f"T-{year:04d}-{number:03d}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
