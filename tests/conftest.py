"""Shared fixtures: real PostgreSQL and Redis, a throwaway database and key prefix per
run, the app, and logged-in demo users."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from gateway.api.app import create_app
from gateway.config import Settings
from gateway.ops.migrate import migrate
from gateway.ops.provision import drop_database, embedded_only, ensure_database, provision
from gateway.ops.seed import seed
from tests.helpers import PASSWORD
from tests.push_fixtures import EMULATOR_PORT, PushEmulator, push_test_settings

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = uuid.uuid4().hex[:8]


def pytest_configure(config: pytest.Config) -> None:
    """Temporary files of a run in a folder of this checkout's own: runs of several
    checkouts on one machine never remove each other's (pytest keeps only its last three
    run folders per user)."""
    if config.option.basetemp is None:
        digest = hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
        config.option.basetemp = Path(tempfile.gettempdir()) / f"floorbell-tests-{digest}"


@pytest.fixture(scope="session")
def services() -> Iterator[dict[str, str]]:
    # The embedded pass of `make test` runs beside the other one: servers of its own, so
    # that neither stops the other's when it ends first (on a machine that has none).
    with provision(ROOT / ".data" / "embedded-pass" if embedded_only() else ROOT / ".data") as env:
        yield env


@pytest.fixture(scope="session")
def database_url(services: dict[str, str]) -> Iterator[str]:
    base, _, _ = services["DATABASE_URL"].rpartition("/")
    url = f"{base}/floorbell_test_{RUN_ID}"
    ensure_database(url)
    migrate(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def settings(database_url: str, services: dict[str, str]) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=services["REDIS_URL"],
        redis_prefix=f"test-{RUN_ID}:",
        jwt_secret="test-secret-" + "x" * 40,
        sse_heartbeat_s=1,
        push_grace_s=1,
        login_attempts_per_minute=1000,
        instance_id=f"test-{RUN_ID}",
        worker_health_port=0,  # parallel runs on one machine: no fixed port
        clock_health_port=0,
        **push_test_settings(),  # VAPID keys, the push emulator admitted
    )


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    from gateway.db import create_pool

    pool = await create_pool(settings.database_url)
    async with pool.acquire() as conn:
        await seed(conn, PASSWORD)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    yield client
    keys = [key async for key in client.scan_iter(f"{settings.redis_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(scope="session")
async def app(settings: Settings, db: asyncpg.Pool) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.test_app() as test_app:
        yield test_app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture(scope="session")
async def users(db: asyncpg.Pool) -> dict[str, int]:
    rows = await db.fetch("SELECT id, email FROM users")
    return {row["email"].split("@")[0]: row["id"] for row in rows}


@pytest.fixture(scope="session")
async def tokens(app: Any, users: dict[str, int]) -> dict[str, str]:
    client = app.test_client()
    result = {}
    for name in users:
        if "@" in name:
            continue
        response = await client.post(
            "/api/auth/login", json={"email": f"{name}@example.com", "password": PASSWORD}
        )
        if response.status_code == 200:
            result[name] = (await response.get_json())["token"]
    return result


@pytest.fixture(scope="session")
async def worker(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[None]:
    """The relay and router running for the whole session, as `floorbell worker` does."""
    from gateway.processes.worker import run_worker

    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, stop))
    yield
    stop.set()
    await asyncio.wait_for(task, 15)


@pytest.fixture(scope="session")
def push_emulator() -> Iterator[PushEmulator]:
    """`web-push-testing` on the port the session settings admit."""
    emulator = PushEmulator(EMULATOR_PORT)
    emulator.start()
    yield emulator
    emulator.stop()
