"""The escalation ladder with a clock we control: every step at its minute, an answer at
each moment, two clocks at once, a clock that dies mid-pass or stays away between steps.

The module has a database of its own (`own_floor`): a pass at "twenty minutes from now"
climbs every open wait it finds, so it must find only this module's. Waits begin at the
real time of the write; each pass is given `since + minutes`. The default ladder holds
unless a test says otherwise: the assignee after 5 minutes, supervisors after 10, admins
after 20.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from domain.model import Actor, Role
from gateway.api.app import create_app
from gateway.clock.escalation import climb
from gateway.config import Settings
from gateway.db import create_pool
from gateway.services import tickets
from gateway.services.outbox import UnitOfWork
from tests.helpers import bearer, eventually, fresh_user, own_floor, token_for

Floor = tuple[Settings, asyncpg.Pool]


@pytest.fixture(scope="module")
async def floor(settings: Settings) -> AsyncIterator[Floor]:
    async with own_floor(settings) as made:
        yield made


@pytest.fixture(scope="module")
async def esc_client(floor: Floor) -> AsyncIterator[Any]:
    app = create_app(floor[0])
    async with app.test_app() as test_app:
        yield test_app.test_client()


@pytest.fixture(scope="module")
async def people(floor: Floor) -> dict[str, int]:
    rows = await floor[1].fetch("SELECT id, email FROM users")
    return {row["email"].split("@")[0]: row["id"] for row in rows}


def headers(floor: Floor, user_id: int, role: str) -> dict[str, str]:
    return bearer(token_for(floor[0].jwt_secret, user_id, role))


async def critical_ticket(client: Any, floor: Floor, people: dict[str, int], assignee: int) -> int:
    body = {"title": "Press P-200 jammed", "machine_id": 1, "priority": "critical",
            "assigned_to": assignee}  # fmt: skip
    response = await client.post(
        "/api/tickets", json=body, headers=headers(floor, people["supervisor"], "supervisor")
    )
    assert response.status_code == 201, await response.get_json()
    return int((await response.get_json())["id"])


async def since(pool: asyncpg.Pool, ticket_id: int) -> datetime:
    started: datetime = await pool.fetchval(
        "SELECT since FROM ticket_waits WHERE ticket_id = $1", ticket_id
    )
    assert started is not None, "the ticket does not wait for an answer"
    return started


async def steps(pool: asyncpg.Pool, ticket_id: int) -> list[tuple[int, str]]:
    """The escalation events written for the ticket, in order: (step, to)."""
    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE event_type = 'ticket_escalated'"
        " AND (payload->'ticket'->>'id')::bigint = $1 ORDER BY id",
        ticket_id,
    )
    return [(row["payload"]["step"], row["payload"]["to"]) for row in rows]


def at(start: datetime, minutes: float) -> datetime:
    return start + timedelta(minutes=minutes)


async def acknowledge(client: Any, floor: Floor, ticket_id: int, user_id: int) -> None:
    response = await client.post(
        f"/api/tickets/{ticket_id}/acknowledge", headers=headers(floor, user_id, "technician")
    )
    assert response.status_code == 200, await response.get_json()


async def waiting_for_lock(pool: asyncpg.Pool, count: int = 1) -> list[int]:
    """The backends waiting for a row lock (at least `count` of them), by pid."""

    async def waiting() -> list[int] | None:
        rows = await pool.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' ORDER BY backend_start"
        )
        return [row["pid"] for row in rows] if len(rows) >= count else None

    found = await eventually(waiting, 10, 0.02)
    assert found
    return found


# -- every step, once, at its minute -------------------------------------------------------


async def test_each_step_is_sent_once_at_its_minute(
    esc_client: Any, floor: Floor, people: dict[str, int]
) -> None:
    pool = floor[1]
    tech = await fresh_user(pool)
    ticket = await critical_ticket(esc_client, floor, people, tech)
    start = await since(pool, ticket)
    for minutes, expected in (
        (4.99, []),
        (5, [(1, "assignee")]),
        (9.99, [(1, "assignee")]),
        (10, [(1, "assignee"), (2, "supervisors")]),
        (19, [(1, "assignee"), (2, "supervisors")]),
        (20, [(1, "assignee"), (2, "supervisors"), (3, "admins")]),
        (600, [(1, "assignee"), (2, "supervisors"), (3, "admins")]),
    ):
        await climb(pool, at(start, minutes))
        assert await steps(pool, ticket) == expected, minutes

    response = await esc_client.get(
        f"/api/tickets/{ticket}", headers=headers(floor, tech, "technician")
    )
    card = await response.get_json()
    assert card["waiting_since"] == start.isoformat()
    assert (card["escalated_to"], card["escalated_at"]) == ("admins", at(start, 20).isoformat())
    [supervisors] = await pool.fetch(
        "SELECT payload FROM outbox WHERE event_type = 'ticket_escalated'"
        " AND (payload->'ticket'->>'id')::bigint = $1 AND payload->>'to' = 'supervisors'",
        ticket,
    )
    assert supervisors["payload"]["ticket"]["escalated_to"] == "supervisors"  # the board's card
    assert supervisors["payload"]["after_minutes"] == 10


async def test_a_breakdown_passes_over_the_assignee_step_it_has_nobody_for(
    esc_client: Any, floor: Floor, people: dict[str, int]
) -> None:
    pool = floor[1]
    response = await esc_client.post(
        "/api/machines/2/breakdown", json={"description": "Spindle seized"},
        headers=headers(floor, people["operator"], "operator"),
    )  # fmt: skip
    assert response.status_code == 201
    ticket = (await response.get_json())["id"]
    start = await since(pool, ticket)
    assert await pool.fetchval("SELECT reason FROM ticket_waits WHERE ticket_id = $1", ticket) == (
        "breakdown"
    )
    await climb(pool, at(start, 10))
    assert await steps(pool, ticket) == [(2, "supervisors")]
    tech = await fresh_user(pool)
    response = await esc_client.post(
        f"/api/tickets/{ticket}/assign", json={"assigned_to": tech},
        headers=headers(floor, people["supervisor"], "supervisor"),
    )  # fmt: skip
    assert response.status_code == 200
    await climb(pool, at(start, 20))  # the assignee's step is not sent late to the new one
    assert await steps(pool, ticket) == [(2, "supervisors"), (3, "admins")]


async def test_non_critical_work_never_escalates(
    esc_client: Any, floor: Floor, people: dict[str, int]
) -> None:
    pool = floor[1]
    response = await esc_client.post(
        "/api/tickets", json={"title": "Squeak", "machine_id": 1, "priority": "high",
                              "assigned_to": await fresh_user(pool)},
        headers=headers(floor, people["supervisor"], "supervisor"),
    )  # fmt: skip
    ticket = (await response.get_json())["id"]
    assert await pool.fetchval("SELECT 1 FROM ticket_waits WHERE ticket_id = $1", ticket) is None


# -- the answer, at each moment --------------------------------------------------------------


@pytest.mark.parametrize("answered_after", [0, 1, 2, 3])  # steps sent before the answer
async def test_the_acknowledgement_stops_the_ladder_at_once(
    answered_after: int, esc_client: Any, floor: Floor, people: dict[str, int]
) -> None:
    pool = floor[1]
    tech = await fresh_user(pool)
    ticket = await critical_ticket(esc_client, floor, people, tech)
    start = await since(pool, ticket)
    minute = (0, 5, 10, 20)[answered_after]
    if minute:
        await climb(pool, at(start, minute))
    await acknowledge(esc_client, floor, ticket, tech)
    await climb(pool, at(start, 600))
    assert len(await steps(pool, ticket)) == answered_after
    wait = await pool.fetchrow("SELECT * FROM ticket_waits WHERE ticket_id = $1", ticket)
    assert (wait["answer"], wait["answered_by"]) == ("acknowledged", tech)
    response = await esc_client.get(
        f"/api/tickets/{ticket}", headers=headers(floor, tech, "technician")
    )
    card = await response.get_json()
    assert card["status"] == "in_progress" and card["waiting_since"] is None
    assert card["escalated_to"] is None


async def test_a_technician_taking_a_breakdown_answers_it(
    esc_client: Any, floor: Floor, people: dict[str, int]
) -> None:
    pool = floor[1]
    response = await esc_client.post(
        "/api/machines/3/breakdown", json={"description": "Belt snapped"},
        headers=headers(floor, people["operator"], "operator"),
    )  # fmt: skip
    ticket = (await response.get_json())["id"]
    tech = await fresh_user(pool)
    response = await esc_client.put(
        f"/api/tickets/{ticket}", json={"status": "in_progress"},
        headers=headers(floor, tech, "technician"),
    )  # fmt: skip
    assert response.status_code == 200
    await climb(pool, at(await since(pool, ticket), 600))
    assert await steps(pool, ticket) == []
    wait = await pool.fetchrow("SELECT * FROM ticket_waits WHERE ticket_id = $1", ticket)
    assert (wait["answer"], wait["answered_by"]) == ("taken", tech)


async def test_a_supervisor_moving_it_on_answers_it(
    esc_client: Any, floor: Floor, people: dict[str, int]
) -> None:
    pool = floor[1]
    ticket = await critical_ticket(esc_client, floor, people, await fresh_user(pool))
    response = await esc_client.put(
        f"/api/tickets/{ticket}", json={"status": "diagnostic"},
        headers=headers(floor, people["supervisor"], "supervisor"),
    )  # fmt: skip
    assert response.status_code == 200
    await climb(pool, at(await since(pool, ticket), 600))
    assert await steps(pool, ticket) == []
    assert await pool.fetchval("SELECT answer FROM ticket_waits WHERE ticket_id = $1", ticket) == (
        "moved"
    )


async def test_a_step_due_as_the_acknowledgement_commits_is_not_sent(
    esc_client: Any, floor: Floor, people: dict[str, int]
) -> None:
    """The acknowledgement holds the ticket when the clock comes for it; the clock reads
    the answer once it gets the ticket, and sends nothing."""
    pool = floor[1]
    tech = await fresh_user(pool)
    ticket = await critical_ticket(esc_client, floor, people, tech)
    start = await since(pool, ticket)
    async with UnitOfWork(pool) as uow:
        await tickets.acknowledge(uow, Actor(tech, Role.TECHNICIAN), ticket)
        clock = asyncio.create_task(climb(pool, at(start, 10)))
        await waiting_for_lock(pool)
        await uow.commit()
    await clock
    assert await steps(pool, ticket) == []


async def test_a_step_the_clock_holds_first_goes_out_before_the_answer(
    esc_client: Any, floor: Floor, people: dict[str, int]
) -> None:
    pool = floor[1]
    tech = await fresh_user(pool)
    ticket = await critical_ticket(esc_client, floor, people, tech)
    start = await since(pool, ticket)
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE", ticket)
        clock = asyncio.create_task(climb(pool, at(start, 10)))
        await waiting_for_lock(pool, 1)
        answer = asyncio.create_task(acknowledge(esc_client, floor, ticket, tech))
        await waiting_for_lock(pool, 2)
    await asyncio.gather(clock, answer)
    assert await steps(pool, ticket) == [(1, "assignee"), (2, "supervisors")]
    order = await pool.fetch(
        "SELECT event_type FROM outbox WHERE (payload->'ticket'->>'id')::bigint = $1"
        " AND event_type IN ('ticket_escalated', 'ticket_moved') ORDER BY id",
        ticket,
    )
    assert [row["event_type"] for row in order] == [
        "ticket_escalated", "ticket_escalated", "ticket_moved",
    ]  # fmt: skip


# -- two clocks, a clock that dies, a clock that stays away ------------------------------------


async def test_two_clocks_send_each_step_once(
    esc_client: Any, floor: Floor, people: dict[str, int]
) -> None:
    settings, pool = floor
    ids = [await critical_ticket(esc_client, floor, people, await fresh_user(pool))
           for _ in range(6)]  # fmt: skip
    latest = max([await since(pool, ticket) for ticket in ids])
    other = await create_pool(settings.database_url, min_size=2, max_size=4)
    try:
        for minutes in (5, 10, 20):
            moment = at(latest, minutes)
            await asyncio.gather(*(climb(p, moment) for p in (pool, other, pool, other)))
    finally:
        await other.close()
    for ticket in ids:
        assert await steps(pool, ticket) == [(1, "assignee"), (2, "supervisors"), (3, "admins")]


async def test_a_clock_killed_mid_pass_leaves_its_steps_to_the_next(
    esc_client: Any, floor: Floor, people: dict[str, int]
) -> None:
    pool = floor[1]
    ticket = await critical_ticket(esc_client, floor, people, await fresh_user(pool))
    start = await since(pool, ticket)
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE", ticket)
        clock = asyncio.create_task(climb(pool, at(start, 10)))
        [pid] = await waiting_for_lock(pool)
        await holder.execute("SELECT pg_terminate_backend($1)", pid)  # the clock's process dies
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await clock
    assert await steps(pool, ticket) == []
    assert (
        await pool.fetchval("SELECT count(*) FROM ticket_escalations WHERE ticket_id = $1", ticket)
        == 0
    )  # its claims rolled back with it
    await climb(pool, at(start, 10))  # the clock comes back
    assert await steps(pool, ticket) == [(1, "assignee"), (2, "supervisors")]


async def test_steps_due_while_no_clock_ran_are_sent_once_when_one_returns(
    esc_client: Any, floor: Floor, people: dict[str, int]
) -> None:
    pool = floor[1]
    ticket = await critical_ticket(esc_client, floor, people, await fresh_user(pool))
    start = await since(pool, ticket)
    await climb(pool, at(start, 5))
    assert await steps(pool, ticket) == [(1, "assignee")]
    # No clock from minute 5 to minute 25: both later steps fell due meanwhile.
    await climb(pool, at(start, 25))
    await climb(pool, at(start, 26))
    assert await steps(pool, ticket) == [(1, "assignee"), (2, "supervisors"), (3, "admins")]


# -- the admins' ladder --------------------------------------------------------------------------


async def test_the_ladder_is_the_admins_to_set(
    esc_client: Any, floor: Floor, people: dict[str, int]
) -> None:
    pool = floor[1]
    admin = headers(floor, people["admin"], "admin")
    settings = await (await esc_client.get("/api/settings", headers=admin)).get_json()
    assert settings["escalation"] == [
        {"after_minutes": 5, "to": "assignee"}, {"after_minutes": 10, "to": "supervisors"},
        {"after_minutes": 20, "to": "admins"},
    ]  # fmt: skip
    for bad in ([{"after_minutes": 0, "to": "admins"}], "soon", [{"to": "admins"}]):
        response = await esc_client.put("/api/settings", json={"escalation": bad}, headers=admin)
        assert response.status_code == 422, bad
        assert (await response.get_json())["error"]["code"] == "invalid"
    supervisor = headers(floor, people["supervisor"], "supervisor")
    response = await esc_client.put("/api/settings", json={"escalation": []}, headers=supervisor)
    assert response.status_code == 403

    ladder = [{"after_minutes": 2, "to": "admins"}]
    response = await esc_client.put("/api/settings", json={"escalation": ladder}, headers=admin)
    assert response.status_code == 200 and (await response.get_json())["escalation"] == ladder
    try:
        ticket = await critical_ticket(esc_client, floor, people, await fresh_user(pool))
        start = await since(pool, ticket)
        await climb(pool, at(start, 1))
        assert await steps(pool, ticket) == []
        await climb(pool, at(start, 2))
        assert await steps(pool, ticket) == [(1, "admins")]
        response = await esc_client.put("/api/settings", json={"escalation": []}, headers=admin)
        assert (await response.get_json())["escalation"] == []  # escalation off
        assert await climb(pool, at(start, 600)) == 0
    finally:
        await pool.execute("DELETE FROM settings WHERE key = 'escalation'")
