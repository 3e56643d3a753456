"""SSE clients that misbehave, against a real gateway process: a storm of opens reset
right after the request (a reconnect storm, phones losing their network), and a reader
that never reads (a sleeping phone, a half-open NAT) while the board is busy. Neither may
leave a connection behind: the `floorbell_sse_connections` gauge and the person's
presence are as they were, within two heartbeats."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import aiohttp
import asyncpg
import pytest
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import Keys
from tests.faults.report import FaultReport, Row
from tests.gateway_process import GatewayProcess, gateways, open_stream
from tests.helpers import eventually, fresh_user, token_for

OPENS = 200
WRITE_TIMEOUT_S = 2
FLOOD = 400  # board entries of 16 KiB: far more than socket buffers hold, less than the queue
TCP_CLOSE, TCP_CLOSE_WAIT = 7, 8  # tcpi_state of a socket reset, or shut, by its peer


@pytest.fixture
def gateway_of(settings: Settings, own_prefix: str) -> Iterator[Callable[..., GatewayProcess]]:
    """Start a gateway on the test's own key prefix (its presence and board its own)."""
    with gateways(replace(settings, redis_prefix=own_prefix)) as start:
        yield start


def request(token: str) -> bytes:
    return (f"GET /api/sse/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n").encode()  # fmt: skip


async def aborted_open(port: int, token: str, after_s: float) -> None:
    """Send the request, wait `after_s`, then reset the connection (SO_LINGER 0: an RST,
    no FIN), without reading a byte."""
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, request(token))
        await asyncio.sleep(after_s)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def gauge(gateway: GatewayProcess) -> float:
    async with aiohttp.ClientSession() as session:
        async with session.get(gateway.url + "/metrics") as response:
            text = await response.text()
    lines = [line for line in text.splitlines() if line.startswith("floorbell_sse_connections ")]
    return float(lines[0].split()[1])


async def presence_of(redis: Redis, keys: Keys, user: int) -> tuple[int, bool]:
    """The user's connections as presence has them, and whether they are online."""
    connections = int(await redis.zcard(keys.presence_connections(user)))
    return connections, await redis.zscore(keys.presence_online, user) is not None


async def test_aborted_opens_leave_no_connection_behind(
    gateway_of: Callable[..., GatewayProcess], db: asyncpg.Pool, redis: Redis,
    settings: Settings, own_prefix: str, fault_report: FaultReport,
) -> None:  # fmt: skip
    gateway, keys = gateway_of("fault-aborted-opens"), Keys(own_prefix)
    user = await fresh_user(db)
    token = token_for(settings.jwt_secret, user)
    before = await gauge(gateway), await presence_of(redis, keys, user)
    # In waves, each reset at another point of its open: before the request is read, while
    # it is authenticated, during the Redis round trip, after the first frame.
    for wave in range(OPENS // 50):
        await asyncio.gather(*(aborted_open(gateway.port, token, (n % 10) * 0.004 * wave)
                               for n in range(50)))  # fmt: skip

    async def as_before() -> bool:
        return (await gauge(gateway), await presence_of(redis, keys, user)) == before

    settled = await _within(as_before, 2 * settings.sse_heartbeat_s + 1)
    after = await gauge(gateway), await presence_of(redis, keys, user)
    fault_report.add(Row(f"{OPENS} SSE opens reset by the client", 0, 0, 0, None,
                         f"gauge {before[0]:.0f} -> {after[0]:.0f}, presence connections"
                         f" {before[1][0]} -> {after[1][0]}"))  # fmt: skip
    assert settled, gateway.log_tail()
    async with aiohttp.ClientSession() as session:  # and the gateway serves as before
        stream = await open_stream(session, gateway.url, token)
        assert (await stream.next_event()).event == "connected"
        stream.response.close()


async def test_a_reader_that_never_reads_is_dropped_within_the_write_timeout(
    gateway_of: Callable[..., GatewayProcess], db: asyncpg.Pool, redis: Redis,
    settings: Settings, own_prefix: str, fault_report: FaultReport,
) -> None:  # fmt: skip
    gateway = gateway_of("fault-never-reads", SSE_WRITE_TIMEOUT_SECONDS=str(WRITE_TIMEOUT_S))
    keys = Keys(own_prefix)
    sleeper, watcher = await fresh_user(db), await fresh_user(db)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    try:
        stuck.connect(("127.0.0.1", gateway.port))
        stuck.sendall(request(token_for(settings.jwt_secret, sleeper)))  # never reads again
        assert await eventually(lambda: _online(redis, keys, sleeper), 5)
        async with aiohttp.ClientSession() as session:
            watching = token_for(settings.jwt_secret, watcher)
            healthy = await open_stream(session, gateway.url, watching)
            await healthy.next_event()
            reading = asyncio.create_task(  # it reads all along
                healthy.events_until(lambda e: e.data["data"].get("body") == "last", 30)
            )
            flooded_at = await flood(redis, keys)
            closed = await _within(lambda: _closed(stuck), WRITE_TIMEOUT_S + 3)
            closed_after = time.monotonic() - flooded_at
            got = await reading
            healthy.response.close()
        released = await _within(lambda: _released(redis, keys, sleeper, gateway),
                                 2 * settings.sse_heartbeat_s + 1)  # fmt: skip
        fault_report.add(Row("SSE reader that never reads (4 KiB window)", FLOOD,
                             sum(e.event == "broadcast" for e in got), 0, None,
                             f"closed {closed_after:.1f} s after the flood" if closed else
                             "never closed"))  # fmt: skip
        assert closed, "the gateway never closed the stalled stream"
        assert closed_after <= WRITE_TIMEOUT_S + 2
        assert released, "its presence or its connection stayed"
        assert sum(e.event == "broadcast" for e in got) == FLOOD  # the others got everything
    finally:
        stuck.close()


async def flood(redis: Redis, keys: Keys) -> float:
    """FLOOD broadcasts of 16 KiB on the board, the last one marked; when it was done."""

    def payload(body: str) -> str:
        return json.dumps({"type": "broadcast", "ts": "", "actor_id": None,
                           "data": {"title": "load", "body": body}})  # fmt: skip

    async with redis.pipeline(transaction=False) as pipe:
        for n in range(FLOOD):
            pipe.xadd(
                keys.board_stream,
                {"t": "broadcast", "e": payload("last" if n == FLOOD - 1 else "x" * 16384)},
            )
        await pipe.execute()
    return time.monotonic()


async def _within(probe: Callable[[], object], timeout_s: float) -> bool:
    """Whether the async `probe` turns truthy within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await probe():  # type: ignore[misc]
            return True
        await asyncio.sleep(0.05)
    return False


async def _online(redis: Redis, keys: Keys, user: int) -> bool:
    return (await presence_of(redis, keys, user))[0] == 1


async def _closed(sock: socket.socket) -> bool:
    """Whether the peer reset or shut the connection, read from the kernel (TCP_INFO)
    without reading the socket."""
    state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    return state in (TCP_CLOSE, TCP_CLOSE_WAIT)


async def _released(redis: Redis, keys: Keys, user: int, gateway: GatewayProcess) -> bool:
    return await presence_of(redis, keys, user) == (0, False) and await gauge(gateway) == 0
