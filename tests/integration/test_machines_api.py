"""The machine API against real PostgreSQL: the fleet, breakdowns, interventions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.helpers import bearer, eventually

BIG = 2**70


def _name() -> str:
    return f"Test press {uuid.uuid4().hex[:8]}"


async def _outbox_mark(db: asyncpg.Pool) -> int:
    return int(await db.fetchval("SELECT coalesce(max(id), 0) FROM outbox"))


async def _events_since(db: asyncpg.Pool, mark: int) -> list[tuple[str, dict[str, Any]]]:
    rows = await db.fetch("SELECT event_type, payload FROM outbox WHERE id > $1 ORDER BY id", mark)
    return [(row["event_type"], row["payload"]) for row in rows]


async def _machine(client: Any, tokens: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/machines", json={"name": _name(), **fields}, headers=bearer(tokens["admin"])
    )
    assert response.status_code == 201, await response.get_data()
    machine: dict[str, Any] = await response.get_json()
    return machine


async def _counts(db: asyncpg.Pool) -> tuple[int, ...]:
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM machines), (SELECT count(*) FROM tickets),"
        " (SELECT count(*) FROM interventions), (SELECT count(*) FROM outbox)"
    )
    return tuple(row)


def _soon() -> str:
    return (datetime.now(UTC) + timedelta(days=3)).isoformat()


async def test_everyone_lists_machines(client: Any, tokens: dict[str, str]) -> None:
    response = await client.get("/api/machines", headers=bearer(tokens["operator"]))
    assert response.status_code == 200
    machines = await response.get_json()
    assert {"Press P-200", "CNC Mill M-7"} <= {m["name"] for m in machines}
    assert set(machines[0]) >= {
        "id",
        "name",
        "location",
        "status",
        "pm_interval_days",
        "last_pm_at",
    }


async def test_list_needs_login(client: Any) -> None:
    response = await client.get("/api/machines")
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == "unauthorized"


async def test_admin_adds_a_machine(client: Any, tokens: dict[str, str]) -> None:
    last_pm = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    machine = await _machine(
        client, tokens, location="  Hall D ", pm_interval_days=30, last_pm_at=last_pm.isoformat()
    )
    assert machine["location"] == "Hall D" and machine["status"] == "operational"
    assert machine["pm_interval_days"] == 30
    assert datetime.fromisoformat(machine["last_pm_at"]) == last_pm
    response = await client.get(f"/api/machines/{machine['id']}", headers=bearer(tokens["tech1"]))
    assert await response.get_json() == machine


async def test_naive_last_pm_is_utc(client: Any, tokens: dict[str, str]) -> None:
    machine = await _machine(client, tokens, last_pm_at="2024-03-01T08:00:00")
    assert datetime.fromisoformat(machine["last_pm_at"]) == datetime(2024, 3, 1, 8, tzinfo=UTC)


async def test_duplicate_machine_name_is_a_conflict(
    client: Any, tokens: dict[str, str], db: Any
) -> None:
    machine = await _machine(client, tokens)
    before = await _counts(db)
    response = await client.post(
        "/api/machines", json={"name": machine["name"].upper()}, headers=bearer(tokens["admin"])
    )
    assert response.status_code == 409
    assert (await response.get_json())["error"]["code"] == "conflict"
    assert await _counts(db) == before


@pytest.mark.parametrize("role", ["supervisor", "tech1", "operator"])
async def test_only_admins_add_machines(
    client: Any, tokens: dict[str, str], db: Any, role: str
) -> None:
    before = await _counts(db)
    response = await client.post(
        "/api/machines", json={"name": _name()}, headers=bearer(tokens[role])
    )
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "forbidden"
    assert await _counts(db) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": 42},
        {"name": None},
        {"name": "x" * 201},
        {"name": "nul\u0000byte"},
        {"name": "lone \ud800 surrogate"},
        {"name": "ok", "location": ["Hall"]},
        {"name": "ok", "status": "broken"},
        {"name": "ok", "status": ""},
        {"name": "ok", "pm_interval_days": 0},
        {"name": "ok", "pm_interval_days": -5},
        {"name": "ok", "pm_interval_days": BIG},
        {"name": "ok", "pm_interval_days": "30"},
        {"name": "ok", "pm_interval_days": 30.5},
        {"name": "ok", "pm_interval_days": True},
        {"name": "ok", "last_pm_at": "last tuesday"},
        {"name": "ok", "last_pm_at": BIG},
        {"name": "ok", "last_pm_at": "2999-01-01T00:00:00Z"},
        {"name": "ok", "last_pm_at": "2024-02-30T00:00:00Z"},
        {"name": "ok", "last_pm_at": "0001-01-01T00:00:00+05:00"},
        ["not", "an", "object"],
        "just a string",
        12,
        None,
    ],
)
async def test_bad_machine_input_is_a_clear_4xx(
    client: Any, tokens: dict[str, str], db: Any, body: Any
) -> None:
    before = await _counts(db)
    response = await client.post("/api/machines", json=body, headers=bearer(tokens["admin"]))
    assert 400 <= response.status_code < 500
    error = (await response.get_json())["error"]
    assert error["code"] and error["message"]
    assert await _counts(db) == before


@pytest.mark.parametrize(
    "path",
    ["/api/machines/987654321", "/api/machines/-1", f"/api/machines/{BIG}", "/api/machines/abc"],
)
async def test_unknown_machine_is_404(client: Any, tokens: dict[str, str], path: str) -> None:
    response = await client.get(path, headers=bearer(tokens["operator"]))
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"


async def test_operator_reports_a_breakdown(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any
) -> None:
    machine = await _machine(client, tokens)
    mark = await _outbox_mark(db)
    response = await client.post(
        f"/api/machines/{machine['id']}/breakdown",
        json={"description": "Hydraulic hose burst, oil on the floor"},
        headers=bearer(tokens["operator"]),
    )
    assert response.status_code == 201
    ticket = await response.get_json()
    assert ticket["ticket_id"].startswith("T-") and ticket["status"] == "received"
    assert ticket["priority"] == "high" and ticket["machine_id"] == machine["id"]
    assert ticket["reported_by"] == users["operator"]
    # Written once, in the reporter's language (the demo operator's is the default, French).
    assert ticket["title"].startswith("Panne\u00a0: Hydraulic hose burst")
    assert ticket["description"] == "Hydraulic hose burst, oil on the floor"

    status = await db.fetchval("SELECT status FROM machines WHERE id = $1", machine["id"])
    assert status == "down"
    events = await _events_since(db, mark)
    assert [kind for kind, _ in events] == ["ticket_created", "machine_breakdown"]
    breakdown = events[1][1]
    assert breakdown["machine_id"] == machine["id"] and breakdown["machine_name"] == machine["name"]
    assert breakdown["ticket"]["id"] == ticket["id"]


async def test_breakdown_priority_and_board(client: Any, tokens: dict[str, str]) -> None:
    machine = await _machine(client, tokens)
    response = await client.post(
        f"/api/machines/{machine['id']}/breakdown",
        json={"description": "Smoke from the motor", "priority": "critical"},
        headers=bearer(tokens["tech2"]),
    )
    assert response.status_code == 201
    ticket = await response.get_json()
    assert ticket["priority"] == "critical"
    board = await client.get("/api/tickets", headers=bearer(tokens["operator"]))
    assert ticket["id"] in {t["id"] for t in (await board.get_json())["tickets"]}


async def test_breakdown_alerts_the_maintenance_team(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any, worker: None
) -> None:
    machine = await _machine(client, tokens)
    response = await client.post(
        f"/api/machines/{machine['id']}/breakdown",
        json={"description": "Conveyor jammed"},
        headers=bearer(tokens["operator"]),
    )
    ticket_id = (await response.get_json())["id"]

    async def alerted() -> list[asyncpg.Record]:
        return await db.fetch(
            "SELECT user_id, critical FROM notifications WHERE type = 'machine_breakdown'"
            " AND (data->>'ticket_id')::bigint = $1",
            ticket_id,
        )

    rows = await eventually(alerted, 10)
    told = {row["user_id"] for row in rows}
    assert {users["admin"], users["supervisor"], users["tech1"], users["tech2"]} <= told
    assert users["operator"] not in told  # the reporter is the actor
    assert all(row["critical"] for row in rows)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"description": ""},
        {"description": "   "},
        {"description": None},
        {"description": 5},
        {"description": "x" * 10_001},
        {"description": "a\u0000b"},
        {"description": "ok", "priority": "urgent"},
        {"description": "ok", "priority": 3},
        ["description"],
        "description",
    ],
)
async def test_bad_breakdown_input_is_a_clear_4xx(
    client: Any, tokens: dict[str, str], db: Any, body: Any
) -> None:
    before = await _counts(db)
    response = await client.post(
        "/api/machines/1/breakdown", json=body, headers=bearer(tokens["operator"])
    )
    assert 400 <= response.status_code < 500
    error = (await response.get_json())["error"]
    assert error["code"] and error["message"]
    assert await _counts(db) == before


@pytest.mark.parametrize("machine", ["987654321", "-3", str(BIG), "0"])
async def test_breakdown_of_unknown_machine_is_404(
    client: Any, tokens: dict[str, str], db: Any, machine: str
) -> None:
    before = await _counts(db)
    response = await client.post(
        f"/api/machines/{machine}/breakdown",
        json={"description": "Broken"},
        headers=bearer(tokens["operator"]),
    )
    # An id no route accepts (negative, beyond bigint) meets only the PWA's GET catch-all.
    assert response.status_code in (404, 405)
    assert (await response.get_json())["error"]["code"] in ("not_found", "method_not_allowed")
    assert await _counts(db) == before


async def test_breakdown_without_json_content_type(
    client: Any, tokens: dict[str, str], db: Any
) -> None:
    before = await _counts(db)
    response = await client.post(
        "/api/machines/1/breakdown",
        data="description=Broken",
        headers={**bearer(tokens["operator"]), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= response.status_code < 500
    assert (await response.get_json())["error"]["code"]
    assert await _counts(db) == before


async def test_supervisor_plans_an_intervention(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any
) -> None:
    machine = await _machine(client, tokens)
    mark = await _outbox_mark(db)
    when = _soon()
    response = await client.post(
        f"/api/machines/{machine['id']}/interventions",
        json={
            "scheduled_for": when,
            "assigned_to": users["tech1"],
            "note": " Replace the filters ",
        },
        headers=bearer(tokens["supervisor"]),
    )
    assert response.status_code == 201
    intervention = await response.get_json()
    assert (
        intervention["machine_id"] == machine["id"]
        and intervention["assigned_to"] == users["tech1"]
    )
    assert intervention["note"] == "Replace the filters"
    assert intervention["assignee_name"] == "Theo Technician"
    assert intervention["created_by"] == users["supervisor"]
    assert datetime.fromisoformat(intervention["scheduled_for"]) == datetime.fromisoformat(when)
    assert (
        await db.fetchval("SELECT count(*) FROM interventions WHERE id = $1", intervention["id"])
        == 1
    )
    events = await _events_since(db, mark)
    assert [kind for kind, _ in events] == ["intervention_planned"]
    assert events[0][1]["intervention_id"] == intervention["id"]
    assert events[0][1]["assigned_to"] == users["tech1"]


async def test_the_assignee_is_told_of_the_intervention(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any, worker: None
) -> None:
    machine = await _machine(client, tokens)
    response = await client.post(
        f"/api/machines/{machine['id']}/interventions",
        json={"scheduled_for": _soon(), "assigned_to": users["tech2"]},
        headers=bearer(tokens["admin"]),
    )
    assert response.status_code == 201

    async def told() -> list[int]:
        rows = await db.fetch(
            "SELECT user_id FROM notifications WHERE type = 'intervention_planned'"
            " AND (data->>'machine_id')::bigint = $1",
            machine["id"],
        )
        return [row["user_id"] for row in rows]

    assert await eventually(told, 10) == [users["tech2"]]


@pytest.mark.parametrize("role", ["tech1", "operator"])
async def test_only_managers_plan_interventions(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any, role: str
) -> None:
    before = await _counts(db)
    response = await client.post(
        "/api/machines/1/interventions",
        json={"scheduled_for": _soon(), "assigned_to": users["tech1"]},
        headers=bearer(tokens[role]),
    )
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "forbidden"
    assert await _counts(db) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"scheduled_for": "soon", "assigned_to": "tech1"},
        {"scheduled_for": "2030-01-01T08:00:00Z"},
        {"assigned_to": "TECH1"},
        {"scheduled_for": "not a date", "assigned_to": "TECH1"},
        {"scheduled_for": BIG, "assigned_to": "TECH1"},
        {"scheduled_for": "2030-13-01T08:00:00Z", "assigned_to": "TECH1"},
        {"scheduled_for": "2001-01-01T08:00:00Z", "assigned_to": "TECH1"},
        {"scheduled_for": "9999-12-31T23:59:59-05:00", "assigned_to": "TECH1"},
        {"scheduled_for": "SOON", "assigned_to": -1},
        {"scheduled_for": "SOON", "assigned_to": 0},
        {"scheduled_for": "SOON", "assigned_to": BIG},
        {"scheduled_for": "SOON", "assigned_to": 987654321},
        {"scheduled_for": "SOON", "assigned_to": "OPERATOR"},
        {"scheduled_for": "SOON", "assigned_to": "7"},
        {"scheduled_for": "SOON", "assigned_to": True},
        {"scheduled_for": "SOON", "assigned_to": None},
        {"scheduled_for": "SOON", "assigned_to": "TECH1", "note": "x" * 2001},
        {"scheduled_for": "SOON", "assigned_to": "TECH1", "note": 12},
        {"scheduled_for": "SOON", "assigned_to": "TECH1", "note": "a\u0000"},
        [1, 2, 3],
        "schedule it",
    ],
)
async def test_bad_intervention_input_is_a_clear_4xx(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any, body: Any
) -> None:
    if isinstance(body, dict):
        body = {key: _resolve(value, users) for key, value in body.items()}
    before = await _counts(db)
    response = await client.post(
        "/api/machines/1/interventions", json=body, headers=bearer(tokens["supervisor"])
    )
    assert 400 <= response.status_code < 500, await response.get_data()
    error = (await response.get_json())["error"]
    assert error["code"] and error["message"]
    assert await _counts(db) == before


def _resolve(value: Any, users: dict[str, int]) -> Any:
    """Placeholders the parameter list cannot know: demo user ids, a near date."""
    if value == "SOON":
        return _soon()
    if isinstance(value, str) and value.isupper() and value.lower() in users:
        return users[value.lower()]
    return value


async def test_intervention_on_unknown_machine_is_404(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any
) -> None:
    before = await _counts(db)
    response = await client.post(
        "/api/machines/987654321/interventions",
        json={"scheduled_for": _soon(), "assigned_to": users["tech1"]},
        headers=bearer(tokens["supervisor"]),
    )
    assert response.status_code == 404
    assert await _counts(db) == before
