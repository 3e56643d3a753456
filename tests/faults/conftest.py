"""Fixtures of the fault suite: databases, key prefixes and processes of their own (a fault
must not reach the session's worker or other tests), a proxy before Redis, and the suite's
report."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import asyncpg
import pytest
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.db import create_pool
from gateway.ops.migrate import migrate
from gateway.ops.provision import drop_database, ensure_database
from tests.faults.proxy import Proxy
from tests.faults.report import FaultReport
from tests.gateway_process import Deployment, GatewayProcess, WorkerProcess


@pytest.fixture
def own_database(database_url: str) -> Iterator[str]:
    """A database of the test's own: its relay leads there alone, its backends are its own."""
    url = database_url.rsplit("/", 1)[0] + f"/floorbell_fault_{uuid.uuid4().hex[:8]}"
    ensure_database(url)
    migrate(url)
    yield url
    drop_database(url)


@pytest.fixture
async def pool(own_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's own database."""
    pool = await create_pool(own_database)
    yield pool
    try:  # a connection never given back would hold the close up for good
        await asyncio.wait_for(pool.close(), 5)
    except TimeoutError:
        pool.terminate()


@pytest.fixture
async def own_prefix(redis: Redis) -> AsyncIterator[str]:
    prefix = f"fault-{uuid.uuid4().hex[:8]}:"
    yield prefix
    found = [key async for key in redis.scan_iter(f"{prefix}*")]
    if found:
        await redis.delete(*found)


@pytest.fixture
async def deployment(
    own_database: str, own_prefix: str, settings: Settings
) -> AsyncIterator[Deployment]:
    """A gateway and a worker on the test's own database and key prefix, both ready."""
    mine = replace(settings, database_url=own_database, redis_prefix=own_prefix)
    name = f"fault-{uuid.uuid4().hex[:6]}"
    gateway, worker = GatewayProcess(mine, name), WorkerProcess(mine, f"{name}-worker")
    try:
        await asyncio.gather(asyncio.to_thread(gateway.wait_ready),
                             asyncio.to_thread(worker.wait_ready))  # fmt: skip
        yield Deployment(mine, name, gateway, worker)
    finally:
        await asyncio.gather(asyncio.to_thread(gateway.stop), asyncio.to_thread(worker.stop))


@pytest.fixture
async def redis_proxy(settings: Settings) -> AsyncIterator[Proxy]:
    """A TCP proxy before the machine's Redis, which the test slows, holds or cuts."""
    url = urlsplit(settings.redis_url)
    proxy = await Proxy(url.hostname or "127.0.0.1", url.port or 6379).start()
    yield proxy
    await proxy.stop()


@pytest.fixture(scope="session")
def fault_report() -> FaultReport:
    return FaultReport.shared()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in FaultReport.shared().lines():
        terminalreporter.write_line(line)
