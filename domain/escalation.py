"""Escalation: nobody is left alone with a breakdown.

What needs an answer: a critical ticket assigned to someone (created so, assigned,
reassigned, or raised to critical while assigned), a machine breakdown, an overdue
ticket — while the ticket is `received`. It is answered when the ticket leaves
`received`: the assignee's acknowledgement ("on my way"), a technician taking it, anyone
moving it on. A ticket waits once: after its answer, later alerts about it start nothing.

Unanswered, it climbs the admins' ladder (the `escalation` setting): step n is due
`after_minutes` after the wait began and is sent once, to its people (the assignee again,
the supervisors, the admins). A step due while no clock ran is sent when one runs again;
an assignee step of a ticket nobody holds is passed over (never sent late to whoever is
assigned afterwards). The wait counts the steps it climbed, so each is taken once.

Pure rules: the clock (`gateway.clock.escalation`) finds what is due at a `now` it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Any

from domain.errors import Invalid
from domain.events import (
    Event,
    MachineBrokeDown,
    TicketAssigned,
    TicketCreated,
    TicketEscalated,
    TicketMoved,
    TicketOverdue,
    TicketPriorityChanged,
)
from domain.model import Priority, Status, Ticket, Wait

LADDER_KEY = "escalation"  # the setting
STEPS_MAX = 10
AFTER_MINUTES_MAX = 7 * 24 * 60


class Audience(StrEnum):
    ASSIGNEE = "assignee"
    SUPERVISORS = "supervisors"
    ADMINS = "admins"


class Reason(StrEnum):
    """Why a ticket waits for an answer."""

    ASSIGNED = "assigned"  # a critical ticket given to someone
    BREAKDOWN = "breakdown"
    OVERDUE = "overdue"


class Answer(StrEnum):
    ACKNOWLEDGED = "acknowledged"  # the assignee: "on my way"
    TAKEN = "taken"  # a technician took the unassigned ticket
    MOVED = "moved"  # someone else moved it past `received`


@dataclass(frozen=True)
class Step:
    after_minutes: int
    to: Audience

    def as_json(self) -> dict[str, Any]:
        return {"after_minutes": self.after_minutes, "to": str(self.to)}


Ladder = tuple[Step, ...]
DEFAULT_LADDER: Ladder = (
    Step(5, Audience.ASSIGNEE),  # a reminder to the assignee
    Step(10, Audience.SUPERVISORS),
    Step(20, Audience.ADMINS),
)


def check_ladder(value: Any) -> Ladder:
    """The `escalation` setting: a list of `{after_minutes, to}`, later steps later (an
    empty list turns escalation off); Invalid when it is not that."""
    if not isinstance(value, list) or len(value) > STEPS_MAX:
        raise Invalid(f"escalation must be a list of at most {STEPS_MAX} steps.")
    steps = [_check_step(n, item) for n, item in enumerate(value, 1)]
    for earlier, later in pairwise(steps):
        if later.after_minutes <= earlier.after_minutes:
            raise Invalid("escalation: each step must come later than the one before.")
    return tuple(steps)


def _check_step(n: int, item: Any) -> Step:
    if not isinstance(item, dict) or set(item) != {"after_minutes", "to"}:
        raise Invalid(f"escalation step {n} must be {{after_minutes, to}}.")
    minutes, to = item["after_minutes"], item["to"]
    if type(minutes) is not int or not 1 <= minutes <= AFTER_MINUTES_MAX:
        raise Invalid(f"escalation step {n}: after_minutes must be 1 to {AFTER_MINUTES_MAX}.")
    if to not in Audience.__members__.values():
        raise Invalid(f"escalation step {n}: to must be assignee, supervisors or admins.")
    return Step(minutes, Audience(to))


def ladder_of(stored: Any) -> Ladder:
    """The ladder a stored setting holds; the default when there is none, or when it is
    not a ladder (a value stored before settings were checked): the settings show what
    holds, so an admin sees it."""
    try:
        return DEFAULT_LADDER if stored is None else check_ladder(stored)
    except Invalid:
        return DEFAULT_LADDER


def ladder_json(ladder: Ladder) -> list[dict[str, Any]]:
    return [step.as_json() for step in ladder]


# -- what needs an answer, and what answers it -------------------------------------------


def reason_to_wait(event: Event) -> Reason | None:
    """Whether `event` raised a critical alert that needs an answer. The card is the one
    the whole change left; an alert about a critical ticket one assigns oneself told no one."""
    if isinstance(event, MachineBrokeDown):
        return Reason.BREAKDOWN
    if isinstance(event, TicketOverdue):
        return Reason.OVERDUE
    if not isinstance(event, TicketCreated | TicketAssigned | TicketPriorityChanged):
        return None
    card = event.ticket
    assignee = card.get("assigned_to")
    critical_assigned = card.get("priority") == Priority.CRITICAL and assignee is not None
    if not critical_assigned or assignee == event.actor_id:
        return None
    if isinstance(event, TicketPriorityChanged) and event.to_priority != Priority.CRITICAL:
        return None
    return Reason.ASSIGNED


def follow(ticket: Ticket, events: Sequence[Event], now: datetime) -> Wait | None:
    """The ticket's wait after a change that yielded `events`, set on `ticket` (so the
    cards show it) and returned for saving; None when the change leaves it as it was."""
    wait = ticket.wait
    if wait is not None and wait.open and ticket.status is not Status.RECEIVED:
        answer, by = _answer(ticket, events)
        ticket.wait = replace(wait, answered_at=now, answer=str(answer), answered_by=by)
        return ticket.wait
    if wait is None and ticket.status is Status.RECEIVED:
        reason = next((r for e in events if (r := reason_to_wait(e)) is not None), None)
        if reason is not None:
            ticket.wait = Wait(str(reason), now)
            return ticket.wait
    return None


def _answer(ticket: Ticket, events: Iterable[Event]) -> tuple[Answer, int | None]:
    moved = next((e for e in events if isinstance(e, TicketMoved)), None)
    by = moved.actor_id if moved is not None else None
    took = any(
        isinstance(e, TicketAssigned) and e.previous_assignee is None and e.actor_id == by
        for e in events
    )
    if took:
        return Answer.TAKEN, by
    if by is not None and by == ticket.assigned_to:
        return Answer.ACKNOWLEDGED, by
    return Answer.MOVED, by


# -- the ladder at a given moment --------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """Step `number` (from 1) of the ladder, due now; `send` False: passed over (an
    assignee step of a ticket nobody holds)."""

    number: int
    step: Step
    send: bool


def due_steps(ladder: Ladder, ticket: Ticket, now: datetime) -> list[Due]:
    """The steps due at `now` that the ticket's wait has not climbed yet, in order."""
    wait = ticket.wait
    if wait is None or not wait.open or ticket.status is not Status.RECEIVED:
        return []
    return [
        Due(n, step, step.to is not Audience.ASSIGNEE or ticket.assigned_to is not None)
        for n, step in enumerate(ladder, 1)
        if n > wait.step and wait.since + timedelta(minutes=step.after_minutes) <= now
    ]


def climb(ticket: Ticket, due: Iterable[Due], now: datetime) -> list[TicketEscalated]:
    """Climb the due steps: the wait records how far it went and the latest step sent;
    an event for each step sent (by the clock: no actor), with the card as it then was."""
    wait = ticket.wait
    assert wait is not None
    events = []
    for d in due:
        wait = replace(wait, step=d.number)
        if d.send:
            wait = replace(wait, escalated_to=str(d.step.to), escalated_at=now)
            ticket.wait = wait
            events.append(
                TicketEscalated(
                    None, ticket.card(), d.number, str(d.step.to), d.step.after_minutes,
                    followers=sorted(ticket.followers),
                )
            )  # fmt: skip
    ticket.wait = wait
    return events
