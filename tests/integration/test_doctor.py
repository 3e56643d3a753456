"""`floorbell doctor` against the real services, and against a dead one."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from gateway.config import Settings
from gateway.ops.doctor import doctor
from gateway.ops.provision import drop_database, ensure_database
from gateway.push.vapid import generate_keys


@pytest.fixture(scope="module")
def healthy(settings: Settings) -> Settings:
    public, private = generate_keys()
    return replace(settings, vapid_public_key=public, vapid_private_key=private)


async def test_all_good(healthy: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert await doctor(healthy) is True
    out = capsys.readouterr().out
    assert "✗" not in out
    for name in (
        "JWT_SECRET",
        "VAPID keys",
        "PostgreSQL",
        "migrations",
        "Redis",
        "Redis version",
        "web app",
    ):
        assert f"✓ {name}:" in out


async def test_dead_redis_fails_with_a_hint(
    healthy: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await doctor(replace(healthy, redis_url="redis://127.0.0.1:1/0")) is False
    out = capsys.readouterr().out
    assert "✗ Redis: cannot reach redis://127.0.0.1:1/0" in out
    assert "REDIS_URL" in out  # the hint
    assert "✓ PostgreSQL:" in out


async def test_config_problems_are_named(
    healthy: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    other_public, _ = generate_keys()
    broken = replace(healthy, jwt_secret="short", vapid_public_key=other_public)
    assert await doctor(broken) is False
    out = capsys.readouterr().out
    assert "✗ JWT_SECRET: only 5 bytes" in out
    assert "✗ VAPID keys: invalid (the VAPID public key does not match the private key)" in out
    assert await doctor(replace(healthy, vapid_private_key="")) is False
    assert "✗ VAPID keys: VAPID_PRIVATE_KEY not set" in capsys.readouterr().out


async def test_unmigrated_database_is_reported(
    healthy: Settings, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = database_url.rsplit("/", 1)[0] + f"/floorbell_empty_{uuid.uuid4().hex[:8]}"
    missing = empty + "_missing"
    ensure_database(empty)
    try:
        assert await doctor(replace(healthy, database_url=empty)) is False
        assert "✗ migrations: none applied" in capsys.readouterr().out
        assert await doctor(replace(healthy, database_url=missing)) is False
        assert "does not exist" in capsys.readouterr().out
    finally:
        drop_database(empty)
