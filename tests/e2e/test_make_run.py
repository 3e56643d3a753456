"""`make run` as an operator lives it: `floorbell up` migrates, seeds (idempotently),
starts every Procfile process and says where the app is; Ctrl-C or a process manager's
SIGTERM to the process group — once or twice, with the stack under load and the console
not keeping up — stops every process within seconds."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import psutil
import pytest

from gateway.ops.provision import EMBEDDED_ONLY, drop_database, replace_database
from gateway.services.users import DEMO_USERS
from tests.gateway_process import ROOT, free_port

READY_S = 90
STOPPED_WITHIN_S = 15  # honcho's 5 s grace at most, then the processes' own exit
PIPE_BYTES = 4096  # the console: a small pipe, so that a blocked reader blocks the printer
DEMO_TABLES = ("users", "machines", "tickets")
DEMO_COUNTS = (5, 4, 6)  # gateway.ops.seed's users, machines and tickets
GARBAGE = b"\x16\x03\x01 not http\r\n\r\n"  # each one makes the web process log a line


@dataclass
class Stack:
    """One `floorbell up` in its own process group, its console read by a thread that can
    stop reading (a terminal scrolled back, a paused pager, a slow log shipper)."""

    port: int
    proc: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)
    reading: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def read_console(self) -> None:
        assert self.proc.stdout is not None
        while self.reading.wait() and (line := self.proc.stdout.readline()):
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    def wait_for_line(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in:\n" + "\n".join(self.lines[-40:]))
            time.sleep(0.1)

    def console_backlog(self) -> int:
        """Bytes written to the console that nobody has read yet."""
        assert self.proc.stdout is not None
        count = bytearray(4)
        fcntl.ioctl(self.proc.stdout.fileno(), termios.FIONREAD, count)
        return int.from_bytes(count, sys.byteorder)

    def every_process(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]


@dataclass
class Load:
    """SSE clients holding streams open, API reads, and garbage on the HTTP port (each
    one a warning line on the console), until stopped; bounded in count and time."""

    stack: Stack
    token: str
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        targets = [self._stream] * 3 + [self._api] * 2 + [self._garbage] * 2
        for target in targets:
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self.threads.append(thread)

    def end(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def _until_stopped(self, limit: int = 20_000) -> Iterator[int]:
        deadline = time.monotonic() + 60
        for count in range(limit):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            yield count

    def _stream(self) -> None:
        request = (
            f"GET /api/sse/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.token}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", self.stack.port), timeout=1) as sock:
            sock.sendall(request.encode())
            for _ in self._until_stopped():
                try:
                    if not sock.recv(65536):
                        return  # the gateway ended the stream
                except TimeoutError:
                    continue
                except OSError:
                    return

    def _api(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        for _ in self._until_stopped():
            request = urllib.request.Request(f"{self.stack.url}/api/tickets", headers=headers)
            try:
                urllib.request.urlopen(request, timeout=2).close()
            except OSError:
                time.sleep(0.05)  # stopping

    def _garbage(self) -> None:
        for _ in self._until_stopped():
            try:
                with socket.create_connection(("127.0.0.1", self.stack.port), timeout=1) as sock:
                    sock.sendall(GARBAGE)
                    sock.recv(1024)
            except OSError:
                time.sleep(0.05)


@pytest.fixture(scope="module")
def stack_env(
    services: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """What `make run` would find: services already answering (the suite's), an empty
    database of its own, no secrets, no DEMO_MODE. Every stack of this module uses it."""
    database_url = replace_database(services["DATABASE_URL"], f"floorbell_up_{uuid.uuid4().hex}")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in (EMBEDDED_ONLY, "DEMO_MODE", "JWT_SECRET", "PORT")
        and not key.startswith("VAPID_")
    }
    env |= {
        "DATABASE_URL": database_url,
        "REDIS_URL": services["REDIS_URL"],
        "REDIS_PREFIX": f"up-{uuid.uuid4().hex[:8]}:",
        "FLOORBELL_DATA_DIR": str(tmp_path_factory.mktemp("up-data")),
        "LOGIN_ATTEMPTS_PER_MINUTE": "1000",
    }
    yield env
    drop_database(database_url)


@pytest.fixture(scope="module")
def runs() -> list[Stack]:
    """The stacks started so far on the module's database, in order."""
    return []


@pytest.fixture
def stack(stack_env: dict[str, str], runs: list[Stack]) -> Iterator[Stack]:
    port = free_port()
    # Ports of its own for the worker's and the clock's health endpoints too: another
    # stack (another test run, a `make run`) may hold the default ones.
    health = {"WORKER_HEALTH_PORT": str(free_port()), "CLOCK_HEALTH_PORT": str(free_port())}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "up", "--port", str(port)],
        env={**stack_env, **health},
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as in a terminal
    )
    assert proc.stdout is not None
    fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    running = Stack(port, proc)
    runs.append(running)
    running.reading.set()
    reader = threading.Thread(target=running.read_console, daemon=True)
    reader.start()
    started: list[psutil.Process] = [psutil.Process(proc.pid)]
    try:
        running.wait_for_line(f"Floorbell is running at {running.url}", READY_S)
        started = running.every_process()
        yield running
    finally:
        running.reading.set()
        for process in started:  # whatever a failed test left behind
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        proc.wait(10)
        reader.join(10)
        proc.stdout.close()


def _login(stack: Stack, email: str) -> str:
    body = json.dumps({"email": email, "password": "floorbell"}).encode()
    request = urllib.request.Request(
        f"{stack.url}/api/auth/login", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["token"])


def _get(stack: Stack, path: str) -> Any:
    with urllib.request.urlopen(f"{stack.url}{path}", timeout=5) as response:
        return json.load(response)


async def _counts(database_url: str) -> tuple[int, ...]:
    conn = await asyncpg.connect(database_url)
    try:
        return tuple(
            [await conn.fetchval(f"SELECT count(*) FROM {table}") for table in DEMO_TABLES]
        )
    finally:
        await conn.close()


async def _check_prepared(stack: Stack, runs: list[Stack], database_url: str) -> None:
    """The first run migrates, later ones find the schema; the demo data is there exactly
    once however often `make run` ran, and its logins are printed and offered."""
    console = "\n".join(stack.lines)
    if stack is runs[0]:
        assert "Migrations applied: " in console
    else:
        assert "Schema is up to date" in console
    for email, _, role in DEMO_USERS:
        assert f"{email} / floorbell ({role})" in console
    assert await _counts(database_url) == DEMO_COUNTS
    assert _get(stack, "/healthz")["status"] == "ok"
    demo = _get(stack, "/api/demo-logins")  # `up` runs a demo: the login page offers it
    assert {entry["email"] for entry in demo["logins"]} == {user[0] for user in DEMO_USERS}
    names = [" ".join(process.cmdline()) for process in stack.every_process()]
    for part in ("floorbell serve", "floorbell worker", "floorbell clock"):
        assert any(part in name for name in names), names


def _stop_under_load(stack: Stack, signum: int, times: int) -> None:
    """Load the stack, stop reading its console until the console is backed up, send
    `signum` to the process group `times` times, then read on: every process must be
    gone within seconds, and `up` exit cleanly."""
    load = Load(stack, _login(stack, "admin@example.com"))
    processes = stack.every_process()
    load.start()
    try:
        stack.wait_for_line("Invalid HTTP request", 30)  # the load reaches the console
        stack.reading.clear()
        deadline = time.monotonic() + 30
        while stack.console_backlog() < PIPE_BYTES - 200:  # the printer now waits on it
            assert time.monotonic() < deadline, "the console never backed up"
            time.sleep(0.05)
        for _ in range(times):
            os.killpg(stack.proc.pid, signum)
            time.sleep(0.3)
        time.sleep(1)  # handled while the console was stuck
    finally:
        stack.reading.set()
        load.end()
    _, alive = psutil.wait_procs(processes, timeout=STOPPED_WITHIN_S)
    assert not alive, [" ".join(process.cmdline()) for process in alive]
    assert stack.proc.wait(5) == 0


async def test_make_run_prepares_and_serves_the_demo(
    stack: Stack, runs: list[Stack], stack_env: dict[str, str]
) -> None:
    await _check_prepared(stack, runs, stack_env["DATABASE_URL"])
    os.killpg(stack.proc.pid, signal.SIGINT)
    assert stack.proc.wait(STOPPED_WITHIN_S) == 0


async def test_ctrl_c_stops_everything_under_load(
    stack: Stack, runs: list[Stack], stack_env: dict[str, str]
) -> None:
    await _check_prepared(stack, runs, stack_env["DATABASE_URL"])
    _stop_under_load(stack, signal.SIGINT, times=1)
    assert any("SIGINT received" in line for line in stack.lines)
    assert not any("sending SIGKILL" in line for line in stack.lines)  # they stopped when asked


async def test_sigterm_twice_stops_everything_under_load(
    stack: Stack, runs: list[Stack], stack_env: dict[str, str]
) -> None:
    await _check_prepared(stack, runs, stack_env["DATABASE_URL"])
    _stop_under_load(stack, signal.SIGTERM, times=2)
    assert sum("SIGTERM received" in line for line in stack.lines) == 2
