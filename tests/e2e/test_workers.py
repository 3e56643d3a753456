"""`floorbell serve --workers N`: several gateway processes on one port under a
supervisor, over real HTTP — resume across them, a killed process replaced while the
others serve, a rolling restart that never drops the port, and a stop that ends all."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from gateway.config import Settings
from gateway.processes.supervisor import STOP_DEADLINE_S
from tests.gateway_process import GatewayProcess, SseClient, SseEvent, open_stream
from tests.helpers import api, eventually, fresh_user, token_for

WORKERS = 2


@pytest.fixture(scope="module")
def multi(settings: Settings, db: Any, worker: None) -> Iterator[GatewayProcess]:
    process = GatewayProcess(settings, "gw-multi", workers=WORKERS)
    process.wait_ready()
    yield process
    process.stop()


async def stream_on(
    session: aiohttp.ClientSession,
    gateway: GatewayProcess,
    token: str,
    wanted: Callable[[str], bool],
    last_event_id: str | None = None,
) -> tuple[SseClient, SseEvent]:
    """A stream the kernel handed to an instance that `wanted` accepts (connections go
    to whichever process accepts first: try until one lands there), with its
    `connected` event."""
    for _ in range(60):
        stream = await open_stream(session, gateway.url, token, last_event_id=last_event_id)
        connected = await stream.next_event(timeout_s=15)
        if wanted(connected.data["data"]["instance"]):
            return stream, connected
        stream.response.close()
    raise AssertionError("no connection reached the wanted instance")


def instance_of(connected: SseEvent) -> str:
    return str(connected.data["data"]["instance"])


def pid_of(gateway: GatewayProcess, instance: str) -> int:
    found = re.search(
        rf"gateway process {re.escape(instance)} \(pid (\d+)\) ready", gateway.log_text()
    )
    assert found, gateway.log_text()[-2000:]
    return int(found.group(1))


async def message(
    session: aiohttp.ClientSession, gateway: GatewayProcess, token: str, to: int, text: str
) -> int:
    body = {"message_type": "private", "recipient_id": to, "content": text}
    return int((await api(session, gateway, token, "POST", "/api/messages", body))["id"])


async def received(stream: SseClient, message_id: int, timeout_s: float = 15) -> list[int]:
    """The `new_message` ids of the stream up to `message_id`'s."""
    events = await stream.events_until(
        lambda e: e.event == "new_message" and e.data["data"]["message_id"] == message_id,
        timeout_s,
    )
    return [e.data["data"]["message_id"] for e in events if e.event == "new_message"]


def last_id(stream: SseClient) -> str:
    """The id of the last event the stream received."""
    ids = [
        line[4:] for frame in stream.raw for line in frame.split("\n") if line.startswith("id: ")
    ]
    return ids[-1]


async def ended(stream: SseClient, timeout_s: float = 60) -> bool:
    """Whether the server ends the stream (read until it does); the response is closed."""
    try:
        while True:
            await stream.next_frame(timeout_s)
    except (EOFError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
        return True
    finally:
        stream.response.close()


async def test_processes_share_the_port_and_a_client_resumes_across_them(
    session: aiohttp.ClientSession,
    multi: GatewayProcess,
    tokens: dict[str, str],
    db: asyncpg.Pool,
    settings: Settings,
) -> None:
    assert len(multi.children()) == WORKERS
    user = await fresh_user(db)
    token = token_for(settings.jwt_secret, user)
    first, connected = await stream_on(session, multi, token, lambda _: True)
    before = await message(session, multi, tokens["supervisor"], user, "before")
    assert await received(first, before) == [before]
    resume_from = last_id(first)
    first.response.close()

    missed = [await message(session, multi, tokens["supervisor"], user, f"m{i}") for i in range(3)]
    elsewhere = instance_of(connected)
    resumed, again = await stream_on(
        session, multi, token, lambda instance: instance != elsewhere, last_event_id=resume_from
    )
    assert again.data["data"]["resumed"] is True
    assert await received(resumed, missed[-1]) == missed
    resumed.response.close()


async def test_a_killed_process_is_replaced_while_the_others_serve(
    session: aiohttp.ClientSession,
    multi: GatewayProcess,
    tokens: dict[str, str],
    db: asyncpg.Pool,
    settings: Settings,
) -> None:
    user = await fresh_user(db)
    token = token_for(settings.jwt_secret, user)
    doomed, doomed_hello = await stream_on(session, multi, token, lambda _: True)
    victim = instance_of(doomed_hello)
    survivor, _ = await stream_on(session, multi, token, lambda instance: instance != victim)
    victim_pid = pid_of(multi, victim)

    os.kill(victim_pid, signal.SIGKILL)
    assert await ended(doomed)
    # The other process goes on serving, its streams included.
    sent = await message(session, multi, tokens["supervisor"], user, "after the kill")
    assert await received(survivor, sent) == [sent]
    # The supervisor says so, and starts another process.
    await eventually(
        lambda: _async(
            "exited (signal SIGKILL); starting another" in multi.log_text()
            and len(multi.children()) == WORKERS
            and victim_pid not in multi.children()
            and multi.log_text().count(" ready") >= WORKERS + 1
        ),
        timeout_s=90,
    )
    # The killed process's client resumes where it was, wherever it lands.
    resumed, hello = await stream_on(
        session, multi, token, lambda _: True, last_event_id=doomed_hello.id
    )
    assert hello.data["data"]["resumed"] is True
    assert await received(resumed, sent) == [sent]
    resumed.response.close()
    survivor.response.close()


@pytest.mark.timeout(300)
async def test_rolling_restart_replaces_every_process_without_dropping_the_port(
    session: aiohttp.ClientSession,
    multi: GatewayProcess,
    tokens: dict[str, str],
    db: asyncpg.Pool,
    settings: Settings,
) -> None:
    user = await fresh_user(db)
    token = token_for(settings.jwt_secret, user)
    streams = []
    seen: set[str] = set()
    for _ in range(WORKERS):
        streams.append(await stream_on(session, multi, token, lambda i: i not in seen))
        seen.add(instance_of(streams[-1][1]))
    old_pids = set(multi.children())
    rounds = multi.log_text().count("rolling restart done")

    calls: list[int | str] = []
    running = asyncio.Event()
    running.set()
    prober = asyncio.create_task(_probe_until(multi.url, running, calls))
    os.kill(multi.proc.pid, signal.SIGHUP)
    await eventually(
        lambda: _async(multi.log_text().count("rolling restart done") > rounds), timeout_s=240
    )
    running.clear()
    await prober
    # Every request during the restart found a process to answer it.
    assert calls and set(calls) == {200}, calls
    new_pids = set(multi.children())
    assert len(new_pids) == WORKERS and not new_pids & old_pids
    # Each stream of a replaced process ended; its client resumes on a new process.
    sent = await message(session, multi, tokens["supervisor"], user, "after the restart")
    for stream, hello in streams:
        assert await ended(stream)
        resumed, again = await stream_on(
            session, multi, token, lambda i: i not in seen, last_event_id=hello.id
        )
        assert again.data["data"]["resumed"] is True
        assert await received(resumed, sent) == [sent]
        resumed.response.close()


async def _probe_until(url: str, running: asyncio.Event, calls: list[int | str]) -> None:
    """GET /healthz on a new connection each time, until `running` is cleared."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as client:
        while running.is_set():
            try:
                async with client.get(f"{url}/healthz") as response:
                    calls.append(response.status)
            except aiohttp.ClientError as exc:
                calls.append(repr(exc))
            await asyncio.sleep(0.02)


async def _async(value: bool) -> bool:
    return value


def _gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped by whoever adopted it counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
async def test_a_stop_signal_stops_every_process(
    session: aiohttp.ClientSession,
    settings: Settings,
    db: asyncpg.Pool,
    worker: None,
    how: str,
) -> None:
    gateway = GatewayProcess(settings, f"gw-stop-{how}", workers=WORKERS)
    try:
        gateway.wait_ready()
        children = gateway.children()
        assert len(children) == WORKERS
        user = await fresh_user(db)
        stream, _ = await stream_on(session, gateway, token_for(settings.jwt_secret, user),
                                    lambda _: True)  # fmt: skip
        if how == "ctrl-c":  # the terminal signals the whole foreground group
            os.killpg(gateway.proc.pid, signal.SIGINT)
        else:  # a process manager signals the supervisor alone
            gateway.proc.send_signal(signal.SIGTERM)
        assert await ended(stream, timeout_s=STOP_DEADLINE_S)
        assert await asyncio.to_thread(gateway.proc.wait, STOP_DEADLINE_S + 5) == 0
        assert all(_gone(pid) for pid in children)
        assert _refused(gateway.port)
        assert "stopping 2 gateway processes" in gateway.log_text()
    finally:
        gateway.stop()


async def test_a_killed_supervisor_takes_its_processes_with_it(
    settings: Settings, db: asyncpg.Pool, worker: None
) -> None:
    gateway = GatewayProcess(settings, "gw-orphans", workers=WORKERS)
    try:
        gateway.wait_ready()
        children = gateway.children()
        gateway.kill()
        await eventually(lambda: _async(all(_gone(pid) for pid in children)), timeout_s=30)
        assert _refused(gateway.port)
    finally:
        gateway.stop()
