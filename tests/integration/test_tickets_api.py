"""The ticket API against real PostgreSQL: rules, errors, idempotency."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.helpers import bearer


async def create(client: Any, token: str, **fields: Any) -> Any:
    body = {"title": "Noisy bearing", "machine_id": 1, "priority": "medium", **fields}
    return await client.post("/api/tickets", json=body, headers=bearer(token))


async def test_operator_reports_and_supervisor_assigns(
    client: Any, tokens: dict[str, str], users: dict[str, int]
) -> None:
    response = await create(client, tokens["operator"], description="Grinding noise")
    assert response.status_code == 201
    ticket = await response.get_json()
    assert ticket["ticket_id"].startswith("T-") and ticket["status"] == "received"
    assert ticket["reported_by"] == users["operator"]

    response = await client.post(
        f"/api/tickets/{ticket['id']}/assign",
        json={"assigned_to": users["tech1"]},
        headers=bearer(tokens["supervisor"]),
    )
    assert response.status_code == 200
    assert (await response.get_json())["assignee_name"] == "Theo Technician"

    response = await client.post(
        f"/api/tickets/{ticket['id']}/acknowledge", headers=bearer(tokens["tech1"])
    )
    assert (await response.get_json())["status"] == "in_progress"


async def test_technician_takes_unassigned_ticket(
    client: Any, tokens: dict[str, str], users: dict[str, int]
) -> None:
    ticket = await (await create(client, tokens["operator"])).get_json()
    response = await client.put(
        f"/api/tickets/{ticket['id']}",
        json={"status": "in_progress"},
        headers=bearer(tokens["tech2"]),
    )
    assert response.status_code == 200
    assert (await response.get_json())["assigned_to"] == users["tech2"]
    response = await client.put(
        f"/api/tickets/{ticket['id']}",
        json={"status": "diagnostic"},
        headers=bearer(tokens["tech1"]),
    )
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "forbidden"


async def test_archived_is_final(client: Any, tokens: dict[str, str]) -> None:
    ticket = await (await create(client, tokens["operator"])).get_json()
    url, admin = f"/api/tickets/{ticket['id']}", bearer(tokens["admin"])
    assert (await client.put(url, json={"status": "archived"}, headers=admin)).status_code == 200
    response = await client.put(url, json={"status": "received"}, headers=admin)
    assert response.status_code == 409
    assert (await response.get_json())["error"]["code"] == "invalid_transition"


async def test_codes_are_sequential_per_year(client: Any, tokens: dict[str, str]) -> None:
    first = await (await create(client, tokens["operator"])).get_json()
    second = await (await create(client, tokens["operator"])).get_json()
    year, number = first["ticket_id"][2:6], int(first["ticket_id"][7:])
    assert second["ticket_id"] == f"T-{year}-{number + 1:03d}"


async def test_idempotency_key_replays_without_writing(
    client: Any, tokens: dict[str, str], db: Any
) -> None:
    headers = {**bearer(tokens["operator"]), "Idempotency-Key": "abc-123"}
    body = {"title": "Once only", "machine_id": 1}
    before = await db.fetchval("SELECT count(*) FROM tickets")
    first = await client.post("/api/tickets", json=body, headers=headers)
    again = await client.post("/api/tickets", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert await first.get_json() == await again.get_json()
    assert await db.fetchval("SELECT count(*) FROM tickets") == before + 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": "", "machine_id": 1},
        {"title": "x", "machine_id": "one"},
        {"title": "x", "machine_id": 1, "priority": "urgent"},
        {"title": "x", "machine_id": 999999},
        {"title": "x", "machine_id": -1},
        {"title": "x", "machine_id": 2**70},
        {"title": "x" * 201, "machine_id": 1},
        {"title": "x", "machine_id": 1, "scheduled_date": "tomorrow"},
        {"title": "x", "machine_id": 1, "assigned_to": 999999},
        ["not", "an", "object"],
        "just a string",
    ],
)
async def test_bad_ticket_input_is_a_clear_4xx(
    client: Any, tokens: dict[str, str], db: Any, body: Any
) -> None:
    before = await db.fetchval("SELECT count(*) FROM tickets")
    response = await client.post("/api/tickets", json=body, headers=bearer(tokens["admin"]))
    assert 400 <= response.status_code < 500
    error = (await response.get_json())["error"]
    assert error["code"] and error["message"]
    assert await db.fetchval("SELECT count(*) FROM tickets") == before


async def test_malformed_json_and_oversized_bodies(client: Any, tokens: dict[str, str]) -> None:
    headers = {**bearer(tokens["admin"]), "Content-Type": "application/json"}
    response = await client.post("/api/tickets", data="{nope", headers=headers)
    assert response.status_code in (400, 422)
    response = await client.post("/api/tickets", data="x" * (7 * 1024 * 1024), headers=headers)
    assert response.status_code == 413
    assert (await response.get_json())["error"]["code"]


async def test_unknown_ticket_is_404(client: Any, tokens: dict[str, str]) -> None:
    response = await client.get("/api/tickets/987654", headers=bearer(tokens["admin"]))
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"


async def test_filters(client: Any, tokens: dict[str, str], users: dict[str, int]) -> None:
    mine = await client.get("/api/tickets?assigned_to=me", headers=bearer(tokens["tech1"]))
    found = (await mine.get_json())["tickets"]
    assert found and all(t["assigned_to"] == users["tech1"] for t in found)
    bad = await client.get("/api/tickets?status=nope", headers=bearer(tokens["tech1"]))
    assert bad.status_code == 422


async def test_comments_and_follow(
    client: Any, tokens: dict[str, str], users: dict[str, int]
) -> None:
    ticket = await (await create(client, tokens["operator"])).get_json()
    url = f"/api/tickets/{ticket['id']}"
    followed = await client.post(f"{url}/follow", headers=bearer(tokens["tech1"]))
    assert users["tech1"] in (await followed.get_json())["followers"]
    response = await client.post(
        f"{url}/comments", json={"body": "On it"}, headers=bearer(tokens["tech1"])
    )
    assert response.status_code == 201
    comments = await (
        await client.get(f"{url}/comments", headers=bearer(tokens["operator"]))
    ).get_json()
    assert [c["body"] for c in comments] == ["On it"]
    unfollowed = await client.delete(f"{url}/follow", headers=bearer(tokens["tech1"]))
    assert users["tech1"] not in (await unfollowed.get_json())["followers"]


async def test_values_postgres_cannot_store_are_4xx(
    client: Any, tokens: dict[str, str], db: Any
) -> None:
    before = await db.fetchval("SELECT count(*) FROM tickets")
    headers = bearer(tokens["admin"])
    response = await client.post(
        "/api/tickets", json={"title": "nul\u0000byte", "machine_id": 1}, headers=headers
    )
    assert response.status_code == 422
    assert (await client.get(f"/api/tickets/{2**70}", headers=headers)).status_code in (404, 422)
    assert (await client.get("/api/tickets?machine_id=%C2%B2", headers=headers)).status_code == 422
    nested = "[" * 100_000 + "]" * 100_000
    response = await client.post(
        "/api/tickets", data=nested, headers={**headers, "Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert await db.fetchval("SELECT count(*) FROM tickets") == before


async def _machine(client: Any, token: str) -> int:
    response = await client.post(
        "/api/machines", json={"name": f"Pager {uuid.uuid4().hex[:8]}"}, headers=bearer(token)
    )
    assert response.status_code == 201
    return int((await response.get_json())["id"])


async def test_the_board_comes_in_pages_by_column_newest_first(
    client: Any, tokens: dict[str, str]
) -> None:
    admin = bearer(tokens["admin"])
    machine = await _machine(client, tokens["admin"])
    made: dict[str, list[int]] = {"received": [], "in_progress": [], "completed": []}
    for status in ["completed", "received", "in_progress", "received", "completed", "received"]:
        ticket = await (await create(client, tokens["admin"], machine_id=machine)).get_json()
        if status != "received":
            moved = {"status": status}
            response = await client.put(f"/api/tickets/{ticket['id']}", json=moved, headers=admin)
            assert response.status_code == 200
        made[status].append(ticket["id"])
    expected = [i for status in made for i in sorted(made[status], reverse=True)]

    seen, cursor, pages = [], None, 0
    while True:
        query = {"machine_id": machine, "limit": 2} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/api/tickets", query_string=query, headers=admin)
        page = await response.get_json()
        assert set(page) == {"tickets", "next_cursor"} and len(page["tickets"]) <= 2
        seen += [t["id"] for t in page["tickets"]]
        pages += 1
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == expected and pages == 3

    completed = await client.get(
        "/api/tickets",
        query_string={"machine_id": machine, "status": "completed", "limit": 1},
        headers=admin,
    )
    first = await completed.get_json()
    assert [t["id"] for t in first["tickets"]] == [max(made["completed"])]
    assert first["next_cursor"] is not None


@pytest.mark.parametrize("cursor", ["nope", "received.", "closed.4", "received.²", "received.-1"])
async def test_a_cursor_not_given_by_the_list_is_a_422(
    client: Any, tokens: dict[str, str], cursor: str
) -> None:
    response = await client.get(
        "/api/tickets", query_string={"cursor": cursor}, headers=bearer(tokens["admin"])
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "Bearing replaced, still noisy"),
        ("description", "Noise above 1200 rpm"),
        ("status", "diagnostic"),
        ("priority", "critical"),
        ("assigned_to", "tech2"),
        ("scheduled_date", "2031-05-04T10:00:00+00:00"),
    ],
)
async def test_put_changes_each_field(
    client: Any, tokens: dict[str, str], users: dict[str, int], field: str, value: str
) -> None:
    ticket = await (await create(client, tokens["operator"])).get_json()
    wanted: Any = users[value] if field == "assigned_to" else value
    url, admin = f"/api/tickets/{ticket['id']}", bearer(tokens["admin"])
    response = await client.put(url, json={field: wanted}, headers=admin)
    assert response.status_code == 200, await response.get_json()
    changed = await response.get_json()
    stored = await (await client.get(url, headers=admin)).get_json()
    for found in (changed, stored):
        assert found[field] == wanted
        untouched = {"title", "description", "status", "priority"} - {field}
        assert {k: found[k] for k in untouched} == {k: ticket[k] for k in untouched}
