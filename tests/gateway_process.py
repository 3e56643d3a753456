"""Real gateway instances and workers (`floorbell serve`, `floorbell worker`
subprocesses) and a small SSE client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from gateway.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "REDIS_PREFIX": settings.redis_prefix,
        "JWT_SECRET": settings.jwt_secret,
        "SSE_HEARTBEAT_SECONDS": str(settings.sse_heartbeat_s),
        "PUSH_GRACE_SECONDS": str(settings.push_grace_s),
        "LOGIN_ATTEMPTS_PER_MINUTE": "1000",
        "VAPID_PUBLIC_KEY": settings.vapid_public_key,
        "VAPID_PRIVATE_KEY": settings.vapid_private_key,
        **extra,
    }


class _Process:
    """A `floorbell` subprocess whose log goes to a file a test can read, never to a pipe
    nobody reads: a process that logs a lot (Redis outages, slow readers) would block once
    the pipe's buffer is full."""

    def __init__(self, command: list[str], env: dict[str, str], own_session: bool) -> None:
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", *command],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=own_session,
        )

    def log_text(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def log_tail(self, size: int = 2000) -> str:
        return self.log_text()[-size:]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """Stop it if it still runs; safe to call after `kill`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        self._log.close()


class GatewayProcess(_Process):
    """One `floorbell serve` on a free port: one process, or with `workers` a supervisor
    and that many gateway processes sharing the port (in a session of their own, so a
    test can press Ctrl-C on that group alone)."""

    def __init__(self, settings: Settings, name: str, workers: int = 1, **extra_env: str) -> None:
        self.port = free_port()
        self.name = name
        self.workers = workers
        env = gateway_env(settings, INSTANCE_ID=name, **extra_env)
        command = ["serve", "--port", str(self.port), "--workers", str(workers)]
        super().__init__(command, env, own_session=workers > 1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def children(self) -> list[int]:
        """The pids of the gateway processes of a supervisor."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def wait_ready(self, timeout_s: float = 20) -> None:
        """Until it answers; a supervisor, until all of its processes serve."""
        deadline = time.monotonic() + timeout_s * max(1, self.workers)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log_tail()}")
            if self.workers > 1:
                if "gateway processes serving" in self.log_text():
                    return
            else:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise TimeoutError(f"gateway {self.name} did not start")


class WorkerProcess(_Process):
    """One `floorbell worker` (relay, router, push fan-out), its health endpoints on a
    free port."""

    def __init__(self, settings: Settings, name: str, **extra_env: str) -> None:
        self.name = name
        self.health_port = free_port()
        env = gateway_env(settings, INSTANCE_ID=name, WORKER_HEALTH_PORT=str(self.health_port),
                          CLOCK_HEALTH_PORT="0", **extra_env)  # fmt: skip
        super().__init__(["worker"], env, own_session=False)

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}"

    def wait_ready(self, timeout_s: float = 20) -> None:
        """Until its health endpoints answer (its loops have started)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.health_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"worker {self.name} did not start")


@contextlib.contextmanager
def gateways(settings: Settings) -> Iterator[Callable[..., GatewayProcess]]:
    """A starter of gateway instances on `settings` (`start(name, **env)`, ready when it
    returns); every one started is stopped on leaving."""
    started: list[GatewayProcess] = []

    def start(name: str, **env: str) -> GatewayProcess:
        process = GatewayProcess(settings, name, **env)
        started.append(process)
        process.wait_ready()
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@dataclass
class Deployment:
    """A gateway and a worker that serve one database and key prefix together."""

    settings: Settings
    name: str  # in both processes' instance ids, so in their Redis client names
    gateway: GatewayProcess
    worker: WorkerProcess


@dataclass
class SseEvent:
    id: str | None
    event: str | None
    data: Any
    raw: str


@dataclass
class SseClient:
    """Reads an event stream frame by frame, keeping the raw text."""

    response: aiohttp.ClientResponse
    raw: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None

    async def next_frame(self, timeout_s: float = 5.0) -> str:
        lines = []
        while True:
            line = await asyncio.wait_for(self.response.content.readline(), timeout_s)
            if not line:
                raise EOFError("stream closed")
            text = line.decode()
            if text == "\n":
                frame = "".join(lines)
                self.raw.append(frame + "\n")
                return frame
            lines.append(text)

    async def next_event(self, timeout_s: float = 5.0) -> SseEvent:
        """The next event frame; comments and retry frames are recorded on the way."""
        while True:
            frame = await self.next_frame(timeout_s)
            fields: dict[str, str] = {}
            for line in frame.splitlines():
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "":
                    self.comments.append(value)
                elif name == "retry":
                    self.retry = int(value)
                else:
                    assert name not in fields, f"field {name} twice in one frame: {frame!r}"
                    fields[name] = value
            if "event" in fields:
                return SseEvent(
                    fields.get("id"), fields["event"], json.loads(fields["data"]), frame + "\n"
                )

    async def events_until(self, predicate: Any, timeout_s: float = 10.0) -> list[SseEvent]:
        """Events up to the first that satisfies `predicate`, within `timeout_s` in all."""
        deadline = time.monotonic() + timeout_s
        got = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [(e.event, e.data.get("data")) for e in got[-5:]]
                raise TimeoutError(f"no matching event within {timeout_s} s; last: {seen}")
            event = await self.next_event(remaining)
            got.append(event)
            if predicate(event):
                return got


async def open_stream(
    session: aiohttp.ClientSession,
    base_url: str,
    token: str,
    last_event_id: str | None = None,
    query: bool = False,
) -> SseClient:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{base_url}/api/sse/stream"
    if last_event_id and query:
        url += f"?last_event_id={last_event_id}"
    elif last_event_id:
        headers["Last-Event-ID"] = last_event_id
    response = await session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=None))
    assert response.status == 200, await response.text()
    return SseClient(response)
