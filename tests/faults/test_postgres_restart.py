"""PostgreSQL stopped and started again (a restart by an operator, an upgrade) while a
gateway and a worker run on it and people keep writing: a PostgreSQL of the test's own,
from pgserver, on the same port before and after. Writes during the outage get 503 with
`Retry-After`, never a 500; every message committed arrives once to the reader's SSE
client, and delivery resumes within seconds of the return."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from gateway.config import Settings
from gateway.db import create_pool
from gateway.ops.migrate import migrate
from gateway.ops.provision import ensure_database
from tests.faults.faults import OwnPostgres
from tests.faults.report import FaultReport, Row
from tests.faults.watch import SseWatch
from tests.gateway_process import GatewayProcess, WorkerProcess
from tests.helpers import bearer, eventually, fresh_user, token_for

OUTAGE_S = 2.0


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[OwnPostgres]:
    server = OwnPostgres(tmp_path / "pg")
    server.start()
    ensure_database(server.url)
    migrate(server.url)
    yield server
    server.stop()


@pytest.fixture
async def people(own_postgres: OwnPostgres) -> tuple[int, int]:
    """A supervisor who writes, and the technician who reads (the pool closed before the
    outage: the test's own connections are not the point)."""
    pool = await create_pool(own_postgres.url)
    try:
        return await fresh_user(pool, role="supervisor"), await fresh_user(pool)
    finally:
        await pool.close()


async def send(session: aiohttp.ClientSession, gateway: GatewayProcess, token: str, to: int,
               text: str) -> tuple[int, int | None]:  # fmt: skip
    """POST a private message: the status, and the message's id when it was created."""
    body = {"message_type": "private", "recipient_id": to, "content": text}
    async with session.post(gateway.url + "/api/messages", json=body,
                            headers=bearer(token)) as response:  # fmt: skip
        if response.status == 503:
            assert int(response.headers["Retry-After"]) > 0
        created = response.status == 201
        return response.status, (await response.json())["id"] if created else None


async def test_a_restarted_postgresql_is_a_503_then_delivers_everything_once(
    own_postgres: OwnPostgres, own_prefix: str, people: tuple[int, int], settings: Settings,
    fault_report: FaultReport,
) -> None:  # fmt: skip
    writer, reader = people
    mine = replace(settings, database_url=own_postgres.url, redis_prefix=own_prefix)
    name = f"fault-pgrestart-{uuid.uuid4().hex[:6]}"
    gateway, worker = GatewayProcess(mine, name), WorkerProcess(mine, f"{name}-worker")
    token = token_for(settings.jwt_secret, writer, "supervisor")
    committed: list[str] = []
    during: list[int] = []
    try:
        await asyncio.gather(asyncio.to_thread(gateway.wait_ready),
                             asyncio.to_thread(worker.wait_ready))  # fmt: skip
        watch = SseWatch(gateway.url, token_for(settings.jwt_secret, reader),
                         kinds=("new_message",), key="message_id")  # fmt: skip
        async with aiohttp.ClientSession() as session, watch:
            for n in range(3):
                status, made = await send(session, gateway, token, reader, f"before {n}")
                assert status == 201 and made
                committed.append(str(made))
            assert await eventually(lambda: watch.has_all(set(committed)), 15)

            await asyncio.to_thread(own_postgres.stop)
            deadline = time.monotonic() + OUTAGE_S
            while time.monotonic() < deadline:
                status, _ = await send(session, gateway, token, reader, "during")
                during.append(status)
                await asyncio.sleep(0.1)
            await asyncio.to_thread(own_postgres.start)
            back_at = time.monotonic()

            async def written(text: str) -> int | None:
                status, made = await send(session, gateway, token, reader, text)
                assert status in (201, 503), status
                return made

            for n in range(3):
                committed.append(str(await eventually(lambda n=n: written(f"after {n}"), 20)))
            await eventually(lambda: watch.has_all(set(committed)), 20)
            await asyncio.sleep(0.5)  # a duplicate would come meanwhile
        row = Row.of("PostgreSQL stopped and restarted (own)", committed, watch.arrivals, back_at,
                     f"{len(during)} writes during the outage: {sorted(set(during))}")  # fmt: skip
        fault_report.add(row)
        assert during and set(during) == {503}, during  # never a 500, nothing half written
        assert row.exactly_once, (row, worker.log_tail())
    finally:
        await asyncio.gather(asyncio.to_thread(gateway.stop), asyncio.to_thread(worker.stop))
