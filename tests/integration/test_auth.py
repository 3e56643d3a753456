"""Authentication: JWT rules, cookies, login errors."""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import replace
from typing import Any

import jwt
import pytest

from gateway.api import auth
from gateway.api.app import create_app
from gateway.config import Settings
from gateway.keys import Keys
from gateway.services import credentials
from tests.helpers import PASSWORD, bearer
from tests.push_fixtures import Device, PushEmulator


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


async def login(client: Any, email: str = "operator@example.com") -> str:
    response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    return str((await response.get_json())["token"])


async def test_logout_ends_that_session_everywhere_and_only_it(client: Any) -> None:
    phone, desktop = await login(client), await login(client)
    assert phone != desktop  # every login is a session of its own
    response = await client.post("/api/auth/logout", headers=bearer(phone))
    assert response.status_code == 200
    assert "floorbell_session=;" in response.headers["Set-Cookie"]
    for presented in (bearer(phone), {"Cookie": f"floorbell_session={phone}"}):
        refused = await client.get("/api/auth/me", headers=presented)
        assert refused.status_code == 401
        assert (await refused.get_json())["error"]["code"] == "unauthorized"
    assert (await client.get("/api/auth/me", headers=bearer(desktop))).status_code == 200
    again = await client.post("/api/auth/logout", headers=bearer(phone))
    assert again.status_code == 401


async def test_logout_with_an_endpoint_unsubscribes_that_device(
    client: Any, db: Any, settings: Settings, push_emulator: PushEmulator
) -> None:
    token = await login(client, "tech2@example.com")
    for _ in range(2):
        browser = await push_emulator.subscribe(settings.vapid_public_key)
        body = {"subscription": {"endpoint": browser["endpoint"], "keys": Device().keys}}
        subscribed = await client.post("/api/push/subscribe", json=body, headers=bearer(token))
        assert subscribed.status_code in (200, 201)
    endpoints = {row["endpoint"] for row in await db.fetch(
        "SELECT endpoint FROM push_subscriptions WHERE user_id = $1", await user_id_of(db, token)
    )}  # fmt: skip
    assert len(endpoints) >= 2
    gone = next(iter(endpoints))
    response = await client.post("/api/auth/logout", json={"endpoint": gone}, headers=bearer(token))
    assert response.status_code == 200
    left = await db.fetch("SELECT endpoint FROM push_subscriptions WHERE endpoint = ANY($1)",
                          list(endpoints))  # fmt: skip
    assert {row["endpoint"] for row in left} == endpoints - {gone}


async def user_id_of(db: Any, token: str) -> int:
    return int(jwt.decode(token, options={"verify_signature": False})["sub"])


async def test_login_counters_always_expire(client: Any, redis: Any, settings: Settings) -> None:
    email = f"nobody-{uuid.uuid4().hex}@example.com"
    counter = Keys(settings.redis_prefix).login_attempts(f"email:{email}")
    await redis.set(counter, 4)  # as a crash between INCR and EXPIRE once left it
    await client.post("/api/auth/login", json={"email": email, "password": "wrong"})
    assert await redis.get(counter) == b"5"
    assert 0 < await redis.ttl(counter) <= 60
    fresh = f"other-{uuid.uuid4().hex}@example.com"
    await client.post("/api/auth/login", json={"email": fresh, "password": "wrong"})
    assert 0 < await redis.ttl(Keys(settings.redis_prefix).login_attempts(f"email:{fresh}")) <= 60


async def test_too_many_attempts_are_429(settings: Settings, db: Any) -> None:
    prefix = f"limit-{uuid.uuid4().hex[:8]}:"  # counters of its own, the address's included
    app = create_app(replace(settings, login_attempts_per_minute=2, redis_prefix=prefix))
    body = {"email": f"limited-{uuid.uuid4().hex}@example.com", "password": "wrong"}
    async with app.test_app() as test_app:
        client = test_app.test_client()
        codes = [(await client.post("/api/auth/login", json=body)).status_code for _ in range(3)]
    assert codes == [401, 401, 429]


async def test_passwords_are_verified_off_the_event_loop(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []

    def verify(stored: str | None, password: str) -> bool:
        threads.append(threading.current_thread())
        return credentials.verify_password(stored, password)

    monkeypatch.setattr(auth, "verify_password", verify)
    await login(client)
    assert threads and threading.main_thread() not in threads


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
