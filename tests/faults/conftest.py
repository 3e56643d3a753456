"""Fixtures of the fault suite: databases and key prefixes of their own (a fault must not
reach the session's worker or other tests), and the suite's report."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from redis.asyncio import Redis

from gateway.db import create_pool
from gateway.ops.migrate import migrate
from gateway.ops.provision import drop_database, ensure_database
from tests.faults.report import FaultReport


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


@pytest.fixture(scope="session")
def fault_report() -> FaultReport:
    return FaultReport.shared()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in FaultReport.shared().lines():
        terminalreporter.write_line(line)
