"""Users, roles, settings, the directory, demo logins and the admin's broadcast."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from domain.errors import Conflict
from domain.model import Actor, Role
from gateway.api.app import create_app
from gateway.config import ConfigError, Settings
from gateway.services import users as user_service
from gateway.services.outbox import UnitOfWork
from tests.helpers import bearer, eventually

BIG = 2**70
NON_ADMINS = ["supervisor", "tech1", "operator"]


def _email() -> str:
    return f"new-{uuid.uuid4().hex[:10]}@example.com"


def _key() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


async def _mark(db: asyncpg.Pool) -> int:
    return int(await db.fetchval("SELECT coalesce(max(id), 0) FROM outbox"))


async def _events_since(db: asyncpg.Pool, mark: int) -> list[tuple[str, dict[str, Any]]]:
    rows = await db.fetch("SELECT event_type, payload FROM outbox WHERE id > $1 ORDER BY id", mark)
    return [(row["event_type"], row["payload"]) for row in rows]


async def _counts(db: asyncpg.Pool) -> tuple[int, ...]:
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM settings),"
        " (SELECT count(*) FROM outbox),"
        " (SELECT string_agg(id || role, ',' ORDER BY id) FROM users)"
    )
    return tuple(row)


async def _register(client: Any, tokens: dict[str, str], **fields: Any) -> Any:
    body = {
        "email": _email(),
        "full_name": "Nina New",
        "role": "technician",
        "password": "long enough",
        **fields,
    }
    return await client.post("/api/users", json=body, headers=bearer(tokens["admin"]))


# Users ---------------------------------------------------------------------------------


async def test_admin_lists_users(
    client: Any, tokens: dict[str, str], users: dict[str, int]
) -> None:
    response = await client.get("/api/users", headers=bearer(tokens["admin"]))
    assert response.status_code == 200
    listed = await response.get_json()
    assert all(set(user) == {"id", "email", "full_name", "role", "language"} for user in listed)
    by_email = {user["email"]: user for user in listed}
    assert by_email["tech1@example.com"] == {
        "id": users["tech1"],
        "email": "tech1@example.com",
        "full_name": "Theo Technician",
        "role": "technician",
        "language": "fr",
    }


@pytest.mark.parametrize("role", NON_ADMINS)
async def test_only_admins_list_users(client: Any, tokens: dict[str, str], role: str) -> None:
    response = await client.get("/api/users", headers=bearer(tokens[role]))
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "forbidden"


@pytest.mark.parametrize("role", ["admin", *NON_ADMINS])
async def test_everyone_reads_the_directory(
    client: Any, tokens: dict[str, str], users: dict[str, int], role: str
) -> None:
    response = await client.get("/api/users/directory", headers=bearer(tokens[role]))
    assert response.status_code == 200
    entries = await response.get_json()
    assert all(set(entry) == {"id", "full_name", "role"} for entry in entries)
    assert {"id": users["tech2"], "full_name": "Tess Technician", "role": "technician"} in entries


async def test_admin_registers_a_user(client: Any, tokens: dict[str, str], db: Any) -> None:
    email = _email()
    mark = await _mark(db)
    response = await _register(client, tokens, email=f"  {email.upper()} ", full_name=" Nina New ")
    assert response.status_code == 201
    user = await response.get_json()
    assert user == {"id": user["id"], "email": email, "full_name": "Nina New", "role": "technician",
                    "language": "fr"}  # fmt: skip
    events = await _events_since(db, mark)
    assert events == [
        (
            "user_registered",
            {"user_id": user["id"], "email": email, "full_name": "Nina New", "role": "technician"},
        )
    ]
    login = await client.post("/api/auth/login", json={"email": email, "password": "long enough"})
    assert login.status_code == 200
    assert (await login.get_json())["user"]["id"] == user["id"]


async def test_duplicate_email_is_a_conflict(client: Any, tokens: dict[str, str], db: Any) -> None:
    email = _email()
    assert (await _register(client, tokens, email=email)).status_code == 201
    before = await _counts(db)
    for duplicate in (email, email.upper(), "TECH1@example.com"):
        response = await _register(client, tokens, email=duplicate)
        assert response.status_code == 409
        assert (await response.get_json())["error"]["code"] == "conflict"
    assert await _counts(db) == before


@pytest.mark.parametrize("role", NON_ADMINS)
async def test_only_admins_register_users(
    client: Any, tokens: dict[str, str], db: Any, role: str
) -> None:
    before = await _counts(db)
    response = await client.post(
        "/api/users",
        headers=bearer(tokens[role]),
        json={
            "email": _email(),
            "full_name": "Sneaky",
            "role": "admin",
            "password": "long enough",
        },
    )
    assert response.status_code == 403
    assert await _counts(db) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"email": "no-at-sign"},
        {"email": "two@@example.com"},
        {"email": "nodot@localhost"},
        {"email": "spaces in@example.com"},
        {"email": ""},
        {"email": "a" * 250 + "@example.com"},
        {"email": 12},
        {"email": None},
        {"email": "nul\u0000@example.com"},
        {"full_name": ""},
        {"full_name": "   "},
        {"full_name": "x" * 201},
        {"full_name": ["Nina"]},
        {"full_name": "a\u0000b"},
        {"role": "superuser"},
        {"role": "Admin"},
        {"role": ""},
        {"role": 1},
        {"password": "short"},
        {"password": "1234567"},
        {"password": 12345678},
        {"password": "x" * 1025},
        {"password": "\ud800" * 8},
        {"password": None},
    ],
)
async def test_bad_user_input_is_a_clear_4xx(
    client: Any, tokens: dict[str, str], db: Any, changes: dict[str, Any]
) -> None:
    before = await _counts(db)
    response = await _register(client, tokens, **changes)
    assert 400 <= response.status_code < 500, await response.get_data()
    error = (await response.get_json())["error"]
    assert error["code"] and error["message"]
    assert await _counts(db) == before


@pytest.mark.parametrize("body", [{}, {"email": "x@example.com"}, ["email"], "user", 5, None])
async def test_incomplete_user_bodies(
    client: Any, tokens: dict[str, str], db: Any, body: Any
) -> None:
    before = await _counts(db)
    response = await client.post("/api/users", json=body, headers=bearer(tokens["admin"]))
    assert response.status_code in (400, 422)
    assert (await response.get_json())["error"]["code"]
    assert await _counts(db) == before


# Roles ---------------------------------------------------------------------------------


async def test_change_role(client: Any, tokens: dict[str, str], db: Any) -> None:
    user = await (await _register(client, tokens)).get_json()
    url = f"/api/users/{user['id']}/role"
    mark = await _mark(db)
    response = await client.patch(url, json={"role": "supervisor"}, headers=bearer(tokens["admin"]))
    assert response.status_code == 200
    assert (await response.get_json())["role"] == "supervisor"
    assert await db.fetchval("SELECT role FROM users WHERE id = $1", user["id"]) == "supervisor"
    assert await _events_since(db, mark) == [
        (
            "role_changed",
            {"user_id": user["id"], "from_role": "technician", "to_role": "supervisor"},
        )
    ]
    mark = await _mark(db)
    unchanged = await client.patch(
        url, json={"role": "supervisor"}, headers=bearer(tokens["admin"])
    )
    assert unchanged.status_code == 200
    assert await _events_since(db, mark) == []


async def test_the_user_is_told_of_their_new_role(
    client: Any, tokens: dict[str, str], db: Any, worker: None
) -> None:
    user = await (await _register(client, tokens, role="operator")).get_json()
    await client.patch(
        f"/api/users/{user['id']}/role",
        json={"role": "technician"},
        headers=bearer(tokens["admin"]),
    )

    async def told() -> list[asyncpg.Record]:
        return await db.fetch(
            "SELECT user_id, body FROM notifications WHERE type = 'role_changed' AND user_id = $1",
            user["id"],
        )

    rows = await eventually(told, 10)
    assert len(rows) == 1 and "Technicien" in rows[0]["body"]  # in French, the default


@pytest.mark.parametrize("role", NON_ADMINS)
async def test_only_admins_change_roles(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any, role: str
) -> None:
    before = await _counts(db)
    response = await client.patch(
        f"/api/users/{users[role]}/role", json={"role": "admin"}, headers=bearer(tokens[role])
    )
    assert response.status_code == 403
    assert await _counts(db) == before


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/users/987654321/role", {"role": "operator"}, 404),
        ("/api/users/TECH2/role", {"role": "king"}, 422),
        ("/api/users/TECH2/role", {"role": None}, 422),
        ("/api/users/TECH2/role", {"role": ["admin"]}, 422),
        ("/api/users/TECH2/role", {}, 422),
        ("/api/users/TECH2/role", ["admin"], 422),
        ("/api/users/TECH2/role", "admin", 422),
        ("/api/users/-1/role", {"role": "operator"}, 404),
        (f"/api/users/{BIG}/role", {"role": "operator"}, 404),
    ],
)
async def test_bad_role_change_is_a_clear_4xx(
    client: Any,
    tokens: dict[str, str],
    users: dict[str, int],
    db: Any,
    path: str,
    body: Any,
    status: int,
) -> None:
    before = await _counts(db)
    response = await client.patch(
        path.replace("TECH2", str(users["tech2"])), json=body, headers=bearer(tokens["admin"])
    )
    # Ids no route accepts meet only the PWA's GET catch-all: 405 rather than 404.
    assert response.status_code == status or (status == 404 and response.status_code == 405)
    assert (await response.get_json())["error"]["code"]
    assert await _counts(db) == before


async def test_the_last_admin_keeps_the_role(db: asyncpg.Pool, users: dict[str, int]) -> None:
    admin = Actor(users["admin"], Role.ADMIN)
    async with UnitOfWork(db) as uow:  # never committed: the other admins come back
        await uow.conn.execute(
            "UPDATE users SET role = 'supervisor' WHERE role = 'admin' AND id <> $1", admin.id
        )
        with pytest.raises(Conflict):
            await user_service.change_role(uow, admin, admin.id, Role.OPERATOR)
    assert await db.fetchval("SELECT role FROM users WHERE id = $1", admin.id) == "admin"


async def test_an_admin_may_step_down_when_another_remains(
    client: Any, tokens: dict[str, str]
) -> None:
    second = await (await _register(client, tokens, role="admin")).get_json()
    login = await client.post(
        "/api/auth/login", json={"email": second["email"], "password": "long enough"}
    )
    token = (await login.get_json())["token"]
    response = await client.patch(
        f"/api/users/{second['id']}/role", json={"role": "operator"}, headers=bearer(token)
    )
    assert response.status_code == 200
    assert (await response.get_json())["role"] == "operator"


# Settings ------------------------------------------------------------------------------


async def test_settings_round_trip(client: Any, tokens: dict[str, str], db: Any) -> None:
    values = {
        _key(): 3,
        _key(): "text",
        _key(): [1, {"a": None}],
        _key(): {"nested": {"deep": True}},
        _key(): None,
        _key(): 1.5,
        _key(): BIG,
    }
    mark = await _mark(db)
    response = await client.put("/api/settings", json=values, headers=bearer(tokens["admin"]))
    assert response.status_code == 200
    stored = await response.get_json()
    assert {key: stored[key] for key in values} == values
    assert await _events_since(db, mark) == [("settings_changed", {"keys": sorted(values)})]
    read = await client.get("/api/settings", headers=bearer(tokens["admin"]))
    assert {key: (await read.get_json())[key] for key in values} == values

    first, second = sorted(values)[:2]
    mark = await _mark(db)
    same = await client.put(
        "/api/settings", json={first: values[first]}, headers=bearer(tokens["admin"])
    )
    assert same.status_code == 200
    assert await _events_since(db, mark) == []  # nothing changed, nobody is told
    await client.put(
        "/api/settings",
        json={first: values[first], second: "changed"},
        headers=bearer(tokens["admin"]),
    )
    assert await _events_since(db, mark) == [("settings_changed", {"keys": [second]})]


@pytest.mark.parametrize("role", NON_ADMINS)
async def test_only_admins_touch_settings(
    client: Any, tokens: dict[str, str], db: Any, role: str
) -> None:
    before = await _counts(db)
    read = await client.get("/api/settings", headers=bearer(tokens[role]))
    write = await client.put("/api/settings", json={_key(): 1}, headers=bearer(tokens[role]))
    assert read.status_code == write.status_code == 403
    assert await _counts(db) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"Bad-Key": 1},
        {"UPPER": 1},
        {"1starts_with_digit": 1},
        {"": 1},
        {"spaced key": 1},
        {"k" * 65: 1},
        {f"key_{i}": i for i in range(51)},
        {"ok_key": "nul \u0000 inside"},
        {"ok_key": {"nul\u0000key": 1}},
        {"ok_key": ["\ud800"]},
        {"ok_key": "x" * (65 * 1024)},
        {"ok_key": json.loads("[" * 40 + "]" * 40)},
        ["ok_key", 1],
        "ok_key",
        7,
        None,
    ],
)
async def test_bad_settings_are_a_clear_4xx(
    client: Any, tokens: dict[str, str], db: Any, body: Any
) -> None:
    before = await _counts(db)
    response = await client.put("/api/settings", json=body, headers=bearer(tokens["admin"]))
    assert 400 <= response.status_code < 500, await response.get_data()
    error = (await response.get_json())["error"]
    assert error["code"] and error["message"]
    assert await _counts(db) == before


@pytest.mark.parametrize("raw", ['{"ok_key": NaN}', '{"ok_key": Infinity}', '{"ok_key": 1', "{}}"])
async def test_settings_refuse_what_json_does_not_allow(
    client: Any, tokens: dict[str, str], db: Any, raw: str
) -> None:
    before = await _counts(db)
    response = await client.put(
        "/api/settings",
        data=raw,
        headers={**bearer(tokens["admin"]), "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500
    assert (await response.get_json())["error"]["code"]
    assert await _counts(db) == before


async def test_one_bad_value_writes_nothing(client: Any, tokens: dict[str, str], db: Any) -> None:
    good = _key()
    before = await _counts(db)
    response = await client.put(
        "/api/settings", json={good: 1, "zz_bad": "\u0000"}, headers=bearer(tokens["admin"])
    )
    assert response.status_code == 422
    assert await _counts(db) == before


# Broadcast -----------------------------------------------------------------------------


async def test_broadcast_to_everyone(client: Any, tokens: dict[str, str], db: Any) -> None:
    mark = await _mark(db)
    response = await client.post(
        "/api/sse/broadcast",
        headers=bearer(tokens["admin"]),
        json={"title": "Fire drill", "body": "At 11:00, assemble outside.", "to": "all"},
    )
    assert response.status_code == 202
    assert await response.get_json() == {"queued": True}
    assert await _events_since(db, mark) == [
        ("broadcast", {"title": "Fire drill", "body": "At 11:00, assemble outside.", "to": "all"})
    ]


async def test_broadcast_to_some_reaches_only_them(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any, worker: None
) -> None:
    title = f"Team B {uuid.uuid4().hex[:6]}"
    mark = await _mark(db)
    response = await client.post(
        "/api/sse/broadcast",
        headers=bearer(tokens["admin"]),
        json={
            "title": title,
            "body": "Meet at bay 3",
            "to": [users["tech1"], users["tech2"], users["tech1"]],
        },
    )
    assert response.status_code == 202
    assert (await _events_since(db, mark))[0][1]["to"] == [users["tech1"], users["tech2"]]

    async def told() -> list[int]:
        rows = await db.fetch(
            "SELECT user_id FROM notifications WHERE type = 'broadcast' AND title = $1", title
        )
        return sorted(row["user_id"] for row in rows)

    assert await eventually(told, 10) == sorted([users["tech1"], users["tech2"]])


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": "t", "body": "b"},
        {"title": "t", "body": "b", "to": "everyone"},
        {"title": "t", "body": "b", "to": []},
        {"title": "t", "body": "b", "to": [987654321]},
        {"title": "t", "body": "b", "to": [-1]},
        {"title": "t", "body": "b", "to": [BIG]},
        {"title": "t", "body": "b", "to": ["1"]},
        {"title": "t", "body": "b", "to": [True]},
        {"title": "t", "body": "b", "to": 1},
        {"title": "t", "body": "b", "to": None},
        {"title": "", "body": "b", "to": "all"},
        {"title": "x" * 101, "body": "b", "to": "all"},
        {"title": "t", "body": "", "to": "all"},
        {"title": "t", "body": "   ", "to": "all"},
        {"title": "t", "body": "x" * 1001, "to": "all"},
        {"title": 5, "body": "b", "to": "all"},
        {"title": "t\u0000", "body": "b", "to": "all"},
        ["all"],
        "all",
    ],
)
async def test_bad_broadcast_is_a_clear_4xx(
    client: Any, tokens: dict[str, str], db: Any, body: Any
) -> None:
    before = await _counts(db)
    response = await client.post("/api/sse/broadcast", json=body, headers=bearer(tokens["admin"]))
    assert 400 <= response.status_code < 500, await response.get_data()
    error = (await response.get_json())["error"]
    assert error["code"] and error["message"]
    assert await _counts(db) == before


@pytest.mark.parametrize("role", NON_ADMINS)
async def test_only_admins_broadcast(
    client: Any, tokens: dict[str, str], db: Any, role: str
) -> None:
    before = await _counts(db)
    response = await client.post(
        "/api/sse/broadcast",
        headers=bearer(tokens[role]),
        json={"title": "t", "body": "b", "to": "all"},
    )
    assert response.status_code == 403
    assert await _counts(db) == before


# Demo logins and docs ------------------------------------------------------------------


async def test_demo_logins_without_auth_in_demo_mode(settings: Settings, db: Any) -> None:
    app = create_app(replace(settings, demo_mode=True))
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/api/demo-logins")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["password"] == "floorbell"
    logins = {entry["email"]: entry["role"] for entry in body["logins"]}
    assert logins == {
        "admin@example.com": "admin",
        "supervisor@example.com": "supervisor",
        "tech1@example.com": "technician",
        "tech2@example.com": "technician",
        "operator@example.com": "operator",
    }


def test_demo_mode_is_off_unless_turned_on() -> None:
    assert Settings.from_env({}).demo_mode is False
    assert Settings.from_env({"DEMO_MODE": "1"}).demo_mode is True
    assert Settings.from_env({"DEMO_MODE": "0"}).demo_mode is False
    with pytest.raises(ConfigError):
        Settings.from_env({"DEMO_MODE": "maybe"})


async def test_no_demo_logins_outside_demo_mode(client: Any) -> None:
    response = await client.get("/api/demo-logins")  # the session's app: default settings
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"


async def test_routes_are_documented(client: Any) -> None:
    paths = (await (await client.get("/openapi.json")).get_json())["paths"]
    for path in (
        "/api/machines",
        "/api/messages",
        "/api/messages/audio",
        "/api/users",
        "/api/settings",
        "/api/sse/broadcast",
    ):
        assert path in paths
