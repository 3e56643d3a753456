"""The escalation rules, without any database: what needs an answer, what answers it,
which step is due at a moment, and who each step tells."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import escalation
from domain import tickets as rules
from domain.errors import Invalid
from domain.escalation import DEFAULT_LADDER, Audience, Step, check_ladder, due_steps, follow
from domain.events import MachineBrokeDown, TicketCreated, TicketOverdue
from domain.model import Actor, Priority, Role, Status, Ticket, Wait
from domain.notify import notices_for

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SUPERVISOR, TECH, OTHER_TECH = (
    Actor(2, Role.SUPERVISOR),
    Actor(3, Role.TECHNICIAN),
    Actor(4, Role.TECHNICIAN),
)
ROLES = {1: Role.ADMIN, 2: Role.SUPERVISOR, 6: Role.SUPERVISOR, 3: Role.TECHNICIAN}


def directory(roles: frozenset[Role] | None) -> list[int]:
    return [user for user, role in ROLES.items() if roles is None or role in roles]


def ticket(priority: Priority = Priority.CRITICAL, assigned_to: int | None = None,
           wait: Wait | None = None) -> Ticket:  # fmt: skip
    return Ticket(
        id=10, ticket_id="T-2026-001", title="Press down", description="", machine_id=1,
        priority=priority, status=Status.RECEIVED, reported_by=5, assigned_to=assigned_to,
        scheduled_date=None, created_at=T0, updated_at=T0, closed_at=None, wait=wait,
    )  # fmt: skip


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


# -- the ladder ---------------------------------------------------------------------------


def test_the_default_ladder_reminds_then_climbs() -> None:
    assert [(s.after_minutes, s.to) for s in DEFAULT_LADDER] == [
        (5, Audience.ASSIGNEE), (10, Audience.SUPERVISORS), (20, Audience.ADMINS),
    ]  # fmt: skip
    assert escalation.ladder_of(None) == DEFAULT_LADDER
    assert escalation.ladder_of([]) == ()  # escalation off


def test_a_ladder_reads_back_as_written() -> None:
    steps = [{"after_minutes": 2, "to": "assignee"}, {"after_minutes": 3, "to": "admins"}]
    assert escalation.ladder_json(check_ladder(steps)) == steps


@pytest.mark.parametrize(
    "value",
    [
        {"after_minutes": 5, "to": "assignee"},  # not a list
        [{"after_minutes": 5}],
        [{"after_minutes": 5, "to": "everyone"}],
        [{"after_minutes": 0, "to": "admins"}],
        [{"after_minutes": "5", "to": "admins"}],
        [{"after_minutes": True, "to": "admins"}],
        [{"after_minutes": 5.5, "to": "admins"}],
        [{"after_minutes": 10**6, "to": "admins"}],
        [{"after_minutes": 5, "to": "admins", "extra": 1}],
        [{"after_minutes": 10, "to": "assignee"}, {"after_minutes": 10, "to": "admins"}],
        [{"after_minutes": 10, "to": "assignee"}, {"after_minutes": 5, "to": "admins"}],
        [{"after_minutes": n, "to": "admins"} for n in range(1, 13)],
    ],
)
def test_bad_ladders_are_refused(value: Any) -> None:
    with pytest.raises(Invalid):
        check_ladder(value)
    assert escalation.ladder_of(value) == DEFAULT_LADDER  # a stored one reads as the default


# -- what needs an answer -----------------------------------------------------------------------


def test_assigning_a_critical_ticket_starts_the_wait() -> None:
    t = ticket()
    events = rules.assign(t, SUPERVISOR, TECH.id, Role.TECHNICIAN, T0)
    assert follow(t, events, T0) == Wait("assigned", T0)
    card = t.card()
    assert card["waiting_since"] == T0.isoformat() and card["escalated_to"] is None


def test_non_critical_work_waits_for_nobody() -> None:
    t = ticket(priority=Priority.HIGH)
    assert follow(t, rules.assign(t, SUPERVISOR, TECH.id, Role.TECHNICIAN, T0), T0) is None
    assert t.card()["waiting_since"] is None


def test_raising_an_assigned_ticket_to_critical_starts_the_wait() -> None:
    t = ticket(priority=Priority.HIGH, assigned_to=TECH.id)
    assert follow(t, rules.change_priority(t, SUPERVISOR, Priority.CRITICAL, T0), T0) is not None


def test_assigning_oneself_a_critical_ticket_told_nobody() -> None:
    t = ticket()
    assert follow(t, rules.assign(t, SUPERVISOR, SUPERVISOR.id, Role.SUPERVISOR, T0), T0) is None


def test_breakdowns_and_overdue_tickets_wait_even_unassigned() -> None:
    for event in (
        MachineBrokeDown(5, ticket().card(), 1, "Press"),
        TicketOverdue(None, ticket(priority=Priority.LOW).card(), "2026-11-25"),
    ):
        t = ticket()
        assert follow(t, [event], T0) is not None
    assert follow(ticket(), [TicketCreated(5, ticket().card())], T0) is None  # unassigned


def test_a_ticket_waits_once() -> None:
    answered = Wait("assigned", T0, answered_at=minutes(1), answer="acknowledged")
    t = ticket(wait=answered)
    assert follow(t, rules.assign(t, SUPERVISOR, OTHER_TECH.id, Role.TECHNICIAN, T0), T0) is None
    assert t.wait == answered and t.card()["waiting_since"] is None


# -- what answers it ------------------------------------------------------------------------------


def test_the_assignees_acknowledgement_answers() -> None:
    t = ticket(assigned_to=TECH.id, wait=Wait("assigned", T0, escalated_to="supervisors",
                                             escalated_at=minutes(10)))  # fmt: skip
    wait = follow(t, rules.acknowledge(t, TECH, minutes(12)), minutes(12))
    assert wait is not None
    assert (wait.answered_at, wait.answer, wait.answered_by) == (minutes(12), "acknowledged", 3)
    card = t.card()  # the board stops showing the wait at once
    assert card["waiting_since"] is card["escalated_to"] is card["escalated_at"] is None


def test_a_technician_taking_the_ticket_answers() -> None:
    t = ticket(wait=Wait("breakdown", T0))
    wait = follow(t, rules.move(t, TECH, Status.IN_PROGRESS, minutes(3)), minutes(3))
    assert wait is not None and (wait.answer, wait.answered_by) == ("taken", TECH.id)


def test_anyone_moving_it_on_answers() -> None:
    t = ticket(assigned_to=TECH.id, wait=Wait("assigned", T0))
    wait = follow(t, rules.move(t, SUPERVISOR, Status.DIAGNOSTIC, minutes(3)), minutes(3))
    assert wait is not None and (wait.answer, wait.answered_by) == ("moved", SUPERVISOR.id)


def test_other_changes_do_not_answer() -> None:
    t = ticket(assigned_to=TECH.id, wait=Wait("assigned", T0))
    events = rules.edit(t, SUPERVISOR, {"title": "Press 4 down"}, minutes(1))
    events += rules.assign(t, SUPERVISOR, OTHER_TECH.id, Role.TECHNICIAN, minutes(1))
    assert follow(t, events, minutes(1)) is None and t.wait == Wait("assigned", T0)


# -- which step is due at a moment --------------------------------------------------------------


def _due(t: Ticket, climbed: int, at: datetime) -> list[tuple[int, bool]]:
    if t.wait is not None:
        t.wait = replace(t.wait, step=climbed)
    return [(d.number, d.send) for d in due_steps(DEFAULT_LADDER, t, at)]


def test_each_step_falls_due_at_its_minute() -> None:
    t = ticket(assigned_to=TECH.id, wait=Wait("assigned", T0))
    assert _due(t, 0, minutes(4.99)) == []
    assert _due(t, 0, minutes(5)) == [(1, True)]
    assert _due(t, 1, minutes(9.99)) == []
    assert _due(t, 1, minutes(10)) == [(2, True)]
    assert _due(t, 2, minutes(20)) == [(3, True)]
    assert _due(t, 3, minutes(600)) == []


def test_steps_missed_while_no_clock_ran_are_all_due_once() -> None:
    t = ticket(assigned_to=TECH.id, wait=Wait("assigned", T0))
    assert _due(t, 1, minutes(25)) == [(2, True), (3, True)]


def test_the_assignee_step_of_an_unassigned_ticket_is_passed_over() -> None:
    assert _due(ticket(wait=Wait("breakdown", T0)), 0, minutes(10)) == [(1, False), (2, True)]


def test_nothing_is_due_once_answered() -> None:
    t = ticket(assigned_to=TECH.id, wait=Wait("assigned", T0, answered_at=minutes(1)))
    assert _due(t, 0, minutes(30)) == []


def test_a_shorter_ladder_climbs_what_it_has() -> None:
    t = ticket(assigned_to=TECH.id, wait=Wait("assigned", T0))
    ladder = (Step(1, Audience.ADMINS),)
    assert [d.number for d in due_steps(ladder, t, minutes(30))] == [1]
    assert due_steps((), t, minutes(30)) == []


# -- who each step tells -------------------------------------------------------------------------


def test_climbing_marks_the_card_and_each_step_tells_its_people() -> None:
    t = ticket(assigned_to=TECH.id, wait=Wait("assigned", T0))
    reminder, supervisors, admins = escalation.climb(
        t, due_steps(DEFAULT_LADDER, t, minutes(20)), minutes(20)
    )
    assert t.wait is not None and t.wait.step == 3
    assert t.card()["escalated_to"] == "admins"
    assert t.card()["escalated_at"] == minutes(20).isoformat()
    assert reminder.ticket["escalated_to"] == "assignee"  # the card as each step left it
    assert (supervisors.step, supervisors.to, supervisors.after_minutes) == (2, "supervisors", 10)
    [notice] = notices_for(reminder, directory)
    assert (notice.user_id, notice.text, notice.critical) == (3, "ticket_escalated.reminder", True)
    assert notice.data == {"ticket_id": 10, "ticket_code": "T-2026-001", "step": 1,
                           "to": "assignee"}  # fmt: skip
    assert {n.user_id for n in notices_for(supervisors, directory)} == {2, 6}
    assert [n.user_id for n in notices_for(admins, directory)] == [1]
    assert all(n.params["minutes"] == 20 for n in notices_for(admins, directory))


def test_a_step_passed_over_is_climbed_but_sends_nothing() -> None:
    t = ticket(wait=Wait("breakdown", T0))
    [supervisors] = escalation.climb(t, due_steps(DEFAULT_LADDER, t, minutes(10)), minutes(10))
    assert supervisors.step == 2 and t.wait is not None and t.wait.step == 2
