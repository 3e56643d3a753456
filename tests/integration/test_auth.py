"""Authentication: JWT rules, cookies, login errors."""

from __future__ import annotations

import re
import time
from typing import Any

import jwt
import pytest

from gateway.config import Settings
from tests.helpers import PASSWORD, bearer


async def test_login_sets_a_strict_httponly_cookie(client: Any) -> None:
    response = await client.post(
        "/api/auth/login", json={"email": "Tech1@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert body["user"]["role"] == "technician" and body["token"]
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


async def test_cookie_authenticates(client: Any) -> None:
    await client.post("/api/auth/login", json={"email": "tech2@example.com", "password": PASSWORD})
    me = await client.get("/api/auth/me")
    assert me.status_code == 200 and (await me.get_json())["email"] == "tech2@example.com"


async def test_bad_login_is_401(client: Any) -> None:
    for body in (
        {"email": "tech1@example.com", "password": "wrong"},
        {"email": "ghost@example.com", "password": "x"},
    ):
        response = await client.post("/api/auth/login", json=body)
        assert response.status_code == 401
        assert (await response.get_json())["error"]["code"] == "invalid_credentials"


def forged(settings: Settings, **changes: Any) -> str:
    now = int(time.time())
    claims = {"sub": "1", "role": "admin", "iat": now, "exp": now + 60}
    algorithm = changes.pop("algorithm", "HS256")
    key = changes.pop("key", settings.jwt_secret)
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=algorithm)


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": None},
        {"exp": int(time.time()) - 10},
        {"key": "another-secret-that-is-long-enough-123456"},
        {"algorithm": "HS512", "key": "k" * 64},
        {"role": "emperor"},
        {"sub": None},
    ],
)
async def test_bad_tokens_are_401(client: Any, settings: Settings, changes: dict[str, Any]) -> None:
    response = await client.get("/api/tickets", headers=bearer(forged(settings, **changes)))
    assert response.status_code == 401


async def test_alg_none_is_401(client: Any) -> None:
    token = jwt.encode(
        {"sub": "1", "role": "admin", "iat": 1, "exp": 2**40}, None, algorithm="none"
    )
    assert (await client.get("/api/tickets", headers=bearer(token))).status_code == 401


async def test_every_api_route_needs_a_token(app: Any) -> None:
    client = app.test_client()
    open_routes = {"/api/auth/login", "/api/push/vapid-public-key", "/api/demo-logins"}
    for rule in app.app.url_map.iter_rules():
        path = rule.rule
        if not path.startswith("/api/") or path in open_routes:
            continue
        url = re.sub(r"<[^>]+>", "1", path)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = await client.open(url, method=method)
            assert response.status_code == 401, (method, path)


async def test_logout_clears_cookie(client: Any, tokens: dict[str, str]) -> None:
    response = await client.post("/api/auth/logout", headers=bearer(tokens["operator"]))
    assert response.status_code == 200
    assert "floorbell_session=;" in response.headers["Set-Cookie"]


async def test_a_demotion_takes_effect_at_once(
    client: Any, tokens: dict[str, str], db: Any
) -> None:
    email = f"short-lived-{time.time_ns()}@example.com"
    created = await client.post(
        "/api/users",
        headers=bearer(tokens["admin"]),
        json={
            "email": email,
            "full_name": "Short Lived",
            "role": "admin",
            "password": "long-password",
        },
    )
    user = await created.get_json()
    login = await client.post("/api/auth/login", json={"email": email, "password": "long-password"})
    token = (await login.get_json())["token"]
    assert (await client.get("/api/users", headers=bearer(token))).status_code == 200
    await client.patch(
        f"/api/users/{user['id']}/role", json={"role": "operator"}, headers=bearer(tokens["admin"])
    )
    assert (await client.get("/api/users", headers=bearer(token))).status_code == 403


async def test_unknown_api_paths_are_404_for_every_method(client: Any) -> None:
    for method in ("GET", "POST", "PUT", "DELETE"):
        response = await client.open("/api/no-such-thing", method=method)
        assert response.status_code == 404, method
        assert (await response.get_json())["error"]["code"] == "not_found"
