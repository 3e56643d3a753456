"""Redis behind Sentinels, failing over for real: a gateway and a worker find the primary
through `REDIS_SENTINELS` (their REDIS_URL points at a closed port), SSE readers take a
steady flow of broadcasts, the replica's replication is black-holed for a moment (so it
lacks the last writes) and the primary is killed. After the promotion, every committed
broadcast reaches each reader once — or a `reset` `history_lost` came first and what
the reader did not see was committed before it (the inbox has it) — and each one is
pushed once to a device."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

import aiohttp
import asyncpg
import pytest

from domain.events import BroadcastSent
from gateway.config import Settings
from gateway.db import create_pool
from gateway.keys import Keys
from gateway.ops.doctor import check_redis
from gateway.ops.provision import provision
from gateway.services.outbox import UnitOfWork
from tests.faults.report import FaultReport, Row
from tests.faults.sentinels import SentinelSet
from tests.gateway_process import ROOT, GatewayProcess, SseClient, free_port, gateway_env
from tests.helpers import eventually, fresh_user, token_for
from tests.push_fixtures import FakePushService

CLOSED = "redis://127.0.0.1:1/0"  # nothing answers there: only the Sentinels lead to Redis
RATE_S = 0.05  # a broadcast every 50 ms


@pytest.fixture
async def sentinels(tmp_path: Path) -> AsyncIterator[SentinelSet]:
    servers = SentinelSet(tmp_path)
    try:
        yield await servers.start()
    finally:
        await servers.stop()


@dataclass
class Reader:
    """An SSE client as a browser is one: it resumes with the last id it saw."""

    name: str
    token: str
    titles: list[str] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # when each title came
    resets: list[tuple[str, float]] = field(default_factory=list)  # (reason, when)
    last_id: str | None = None

    async def run(self, session: aiohttp.ClientSession, url: str) -> None:
        while True:
            headers = {"Authorization": f"Bearer {self.token}"}
            if self.last_id:
                headers["Last-Event-ID"] = self.last_id
            try:
                timeout = aiohttp.ClientTimeout(total=None, sock_read=10)
                async with session.get(f"{url}/api/sse/stream", headers=headers,
                                       timeout=timeout) as response:  # fmt: skip
                    if response.status != 200:
                        await asyncio.sleep(0.2)
                        continue
                    stream = SseClient(response)
                    while True:
                        event = await stream.next_event(10)
                        self.last_id = event.id or self.last_id
                        if event.event == "reset":
                            self.resets.append((event.data["data"]["reason"], time.monotonic()))
                        elif event.event == "broadcast":
                            self.titles.append(event.data["data"]["title"])
                            self.arrivals.append(time.monotonic())
            except (EOFError, TimeoutError, aiohttp.ClientError, OSError):
                await asyncio.sleep(0.1)


async def test_a_failover_loses_nothing_silently_and_repeats_nothing(
    sentinels: SentinelSet, own_database: str, settings: Settings, fault_report: FaultReport
) -> None:
    prefix = f"sentinel-{uuid.uuid4().hex[:8]}:"
    pool = await create_pool(own_database)
    service = await FakePushService().start()
    mine = replace(settings, database_url=own_database, redis_url=CLOSED, redis_prefix=prefix)
    guarded = {"REDIS_SENTINELS": sentinels.env, "REDIS_SENTINEL_PASSWORD": sentinels.password}
    env = {**guarded, "PUSH_ENDPOINT_ALLOW": service.origin}
    gateway = GatewayProcess(mine, "sentinel-gw", **guarded)
    worker_log = tempfile.TemporaryFile()
    health_port = free_port()
    health = f"http://127.0.0.1:{health_port}"  # the worker's /readyz
    worker_env = gateway_env(mine, INSTANCE_ID="sentinel-w", WORKER_HEALTH_PORT=str(health_port))
    worker = _worker({**worker_env, **env}, worker_log)
    tasks: list[asyncio.Task[None]] = []
    committed: list[tuple[str, float]] = []  # (title, when committed)
    try:
        ann, bob, pushed_to = [await fresh_user(pool, language="en") for _ in range(3)]
        await service.subscribe(pool, pushed_to)
        readers = [Reader("ann-1", token_for(mine.jwt_secret, ann)),
                   Reader("ann-2", token_for(mine.jwt_secret, ann)),
                   Reader("bob", token_for(mine.jwt_secret, bob))]  # fmt: skip
        # Away while the primary's last writes go unreplicated (a phone asleep), back after
        # the promotion with its last id: what it missed is gone from the new primary.
        sleeper = Reader("bob-asleep", token_for(mine.jwt_secret, bob))
        await asyncio.to_thread(gateway.wait_ready)
        session = aiohttp.ClientSession()
        tasks += [asyncio.create_task(r.run(session, gateway.url)) for r in [*readers, sleeper]]
        asleep = tasks[-1]
        stop = asyncio.Event()
        producer = asyncio.create_task(_broadcast(pool, [ann, bob, pushed_to], committed, stop))
        tasks.append(producer)

        # Messages flow through the first primary, to every reader.
        await eventually(lambda: _all_saw([*readers, sleeper], 20), 30)
        asleep.cancel()
        assert sentinels.link is not None and sentinels.primary is not None
        sentinels.link.blackhole()  # from now on, the replica receives nothing
        await asyncio.sleep(1.0)
        assert sentinels.replica is not None
        keys = Keys(prefix)
        async with sentinels.primary.client() as primary, sentinels.replica.client() as replica:
            written, replicated = [await r.xlen(keys.live_stream) for r in (primary, replica)]
            assert await replica.exists(keys.history_epoch)  # the generation was replicated,
            assert replicated < written  # its last entries were not
        sentinels.primary.kill()
        killed = time.monotonic()
        await sentinels.until_promoted()
        promoted = time.monotonic()
        tasks.append(asyncio.create_task(sleeper.run(session, gateway.url)))
        readers.append(sleeper)
        target = len(committed) + 20
        await eventually(lambda: _flowing_again(readers, committed, target), 60)
        for process in (health, gateway.url):  # each followed the failover on its own
            await eventually(lambda: _ready(session, process), 30)  # noqa: B023
        stop.set()
        await producer
        total = [title for title, _ in committed]

        async def everything_arrived() -> bool:
            return all(set(total) <= set(r.titles) | _lost_before_reset(r, committed)
                       for r in readers)  # fmt: skip

        await eventually(everything_arrived, 30)
        await eventually(lambda: _received(service, len(total)), 30)
        await asyncio.sleep(1.0)  # time for a repeat to show

        for reader in readers:
            assert len(reader.titles) == len(set(reader.titles)), (reader.name, "twice")
            missed = set(total) - set(reader.titles)
            if missed:  # only what a history_lost reset announced may be missing
                assert any(reason == "history_lost" for reason, _ in reader.resets), reader
                assert missed <= _lost_before_reset(reader, committed), reader.name
            assert {reason for reason, _ in reader.resets} <= {"history_lost"}, reader.resets
        inbox = await pool.fetch(
            "SELECT user_id, title FROM notifications WHERE user_id = ANY($1::bigint[])",
            [ann, bob, pushed_to],
        )
        for user in (ann, bob, pushed_to):  # every broadcast routed, once per person
            assert sorted(row["title"] for row in inbox if row["user_id"] == user) == sorted(total)
        pushes = sorted(r.payload["title"] for r in service.received if r.payload)
        assert pushes == sorted(total)  # each pushed once
        gateway_log = gateway.log_text()
        assert "history was lost" in gateway_log, gateway_log[-1500:]
        back = min(t for r in readers for t in r.arrivals if t > promoted)
        live = min(len(r.titles) for r in readers)
        fault_report.add(Row("Redis primary SIGKILLed, Sentinel failover", len(total), live, 0,
                             back - promoted, f"the rest after a history_lost reset; promoted"
                             f" {promoted - killed:.1f} s after the kill"))  # fmt: skip
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(NameError):
            await session.close()
        with contextlib.suppress(NameError):  # the failover's timing, shown with -s
            back = [next((t for t in r.arrivals if t > killed), 0) - killed for r in readers]
            print(f"promoted {promoted - killed:.1f} s after the kill; first broadcast"
                  f" after it {min(back):.1f}-{max(back):.1f} s after the kill")  # fmt: skip
        for reader in readers:  # shown when the test fails
            print(reader.name, len(set(reader.titles)), "of", len(committed), reader.resets)
        gateway.stop()
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        worker_log.seek(0)
        print(worker_log.read().decode(errors="replace")[-4000:])
        worker_log.close()
        await service.stop()
        await pool.close()


async def _ready(session: aiohttp.ClientSession, base_url: str) -> bool:
    async with session.get(f"{base_url}/readyz") as response:
        return response.status == 200


def _worker(env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """`floorbell worker`: relay, router and push fan-out."""
    return subprocess.Popen([sys.executable, "-m", "gateway", "worker"], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


async def _broadcast(
    pool: asyncpg.Pool, users: list[int], committed: list[tuple[str, float]], stop: asyncio.Event
) -> None:
    """One broadcast every RATE_S, whatever Redis does: the outbox takes them."""
    n = 0
    while not stop.is_set():
        title = f"m{n:04d}"
        async with UnitOfWork(pool) as uow:
            uow.emit(BroadcastSent(None, title, "Line 2 restarts", users))
            await uow.commit()
        committed.append((title, time.monotonic()))
        n += 1
        await asyncio.sleep(RATE_S)


def _lost_before_reset(reader: Reader, committed: list[tuple[str, float]]) -> set[str]:
    """What a `history_lost` reset covers: messages committed before it (the reader
    refetches them); anything committed later must arrive live."""
    lost_at = [when for reason, when in reader.resets if reason == "history_lost"]
    if not lost_at:
        return set()
    return {title for title, when in committed if when < max(lost_at)}


async def _flowing_again(
    readers: list[Reader], committed: list[tuple[str, float]], index: int
) -> bool:
    """Whether every reader saw the `index`th broadcast or a later one."""
    return all(r.titles and int(r.titles[-1][1:]) >= index for r in readers)


async def _all_saw(readers: list[Reader], count: int) -> bool:
    return all(len(set(r.titles)) >= count for r in readers)


async def _received(service: FakePushService, count: int) -> bool:
    return len(service.received) >= count


async def test_doctor_and_provision_go_by_the_sentinels(
    sentinels: SentinelSet,
    own_database: str,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    mine = replace(settings, redis_url=CLOSED, redis_sentinels=_pairs(sentinels.env),
                   redis_sentinel_password=sentinels.password)  # fmt: skip
    assert sentinels.primary is not None and sentinels.replica is not None
    await _doctor_finds(mine, sentinels.primary.port)
    sentinels.primary.kill()
    await sentinels.until_promoted()
    await _doctor_finds(mine, sentinels.replica.port)
    monkeypatch.setenv("DATABASE_URL", own_database)
    monkeypatch.setenv("REDIS_SENTINELS", sentinels.env)
    monkeypatch.setenv("REDIS_SENTINEL_PASSWORD", sentinels.password)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("FLOORBELL_EMBEDDED", raising=False)  # which would ignore them
    said: list[str] = []
    with provision(tmp_path, said.append, local_redis=("127.0.0.1", 1)) as found:
        assert found == {"DATABASE_URL": own_database}  # no Redis started, none named
    assert any("Sentinels" in line for line in said), said
    for sentinel in sentinels.sentinels:
        sentinel.kill()
    checks = {check.name: check for check in await check_redis(mine)}
    assert not checks["Redis Sentinel"].ok and not checks["Redis"].ok


async def _doctor_finds(settings: Settings, port: int) -> None:
    checks = {check.name: check for check in await check_redis(settings)}
    assert all(check.ok for check in checks.values()), checks
    assert f"primary at 127.0.0.1:{port}, 3 of 3" in checks["Redis Sentinel"].detail


def _pairs(env: str) -> tuple[tuple[str, int], ...]:
    return Settings.from_env({"REDIS_SENTINELS": env}).redis_sentinels
