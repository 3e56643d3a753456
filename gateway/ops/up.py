"""`floorbell up` (what `make run` does): provision, migrate, seed, then run the Procfile.

The Procfile processes run under honcho, each in its own session: Ctrl-C reaches this
process only, which stops them (SIGTERM, SIGKILL after honcho's grace period or at a
second Ctrl-C), and then the embedded PostgreSQL and Redis when `provision` started them.

A signal handler runs between any two bytecodes of the main thread, so whatever it calls
must never wait for something the interrupted code may hold: here it only queues its
lines (`queue.SimpleQueue.put` is reentrant) and sends signals. One thread prints.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import queue
import signal
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
from honcho.environ import parse_procfile
from honcho.manager import SYSTEM_PRINTER_NAME, Manager
from honcho.printer import Message, Printer

from gateway.config import Settings
from gateway.ops.key_files import (
    JWT_SECRET_FILE,
    VAPID_FILE,
    load_or_create_jwt_secret,
    load_or_create_vapid_keys,
)
from gateway.ops.migrate import migrate
from gateway.ops.provision import ensure_database, provision
from gateway.ops.seed import seed

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = ROOT / "Procfile"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
FLUSH_TIMEOUT_S = 5.0  # for the console to take the last lines before the databases stop
# Terminated by our own SIGINT/SIGTERM handling (honcho's return codes): a clean stop.
STOPPED_BY_SIGNAL = (130, 143)


def up(data_dir: Path, port: int | None) -> None:
    """Provision, migrate, seed, create secrets, run every Procfile process until Ctrl-C."""
    data_dir = data_dir.absolute()
    env = dict(os.environ)
    env.setdefault("DEMO_MODE", "1")  # a demo is what this command runs
    if port is not None:
        env["PORT"] = str(port)
    port = Settings.from_env(env).port  # a malformed PORT fails here, before anything starts
    _require_free_port(port)
    with provision(data_dir) as services:
        env.update(services)
        database_url = services["DATABASE_URL"]
        ensure_database(database_url)
        applied = migrate(database_url)
        print(f"Migrations applied: {', '.join(applied)}" if applied else "Schema is up to date")
        env.update(_secrets(data_dir, env))
        settings = Settings.from_env(env)
        logins = asyncio.run(_seed(database_url, settings.demo_password))
        print(f"Demo logins (password {settings.demo_password}):\n  " + "\n  ".join(logins))
        returncode = _run_procfile(_process_env(env, data_dir), port)
    if returncode not in (None, 0, *STOPPED_BY_SIGNAL):
        sys.exit(f"a process exited with status {returncode}; everything was stopped")


def _require_free_port(port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            sys.exit(f"port {port} is already in use: stop what runs there, or pass --port")


def _secrets(data_dir: Path, env: dict[str, str]) -> dict[str, str]:
    """JWT secret and VAPID keys from the environment, else from (or new in) `data_dir`."""
    found: dict[str, str] = {}
    if env.get("JWT_SECRET"):
        print("JWT secret: JWT_SECRET from the environment")
    else:
        new = not (data_dir / JWT_SECRET_FILE).exists()
        found["JWT_SECRET"] = load_or_create_jwt_secret(data_dir)
        print(f"JWT secret: {'created' if new else 'using'} {data_dir / JWT_SECRET_FILE}")
    if env.get("VAPID_PUBLIC_KEY") and env.get("VAPID_PRIVATE_KEY"):
        print("VAPID keys: VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY from the environment")
    else:
        new = not (data_dir / VAPID_FILE).exists()
        found["VAPID_PUBLIC_KEY"], found["VAPID_PRIVATE_KEY"] = load_or_create_vapid_keys(data_dir)
        print(f"VAPID keys: {'created' if new else 'using'} {data_dir / VAPID_FILE}")
    return found


async def _seed(database_url: str, password: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return await seed(conn, password)
    finally:
        await conn.close()


def _process_env(env: dict[str, str], data_dir: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)  # where this very `floorbell` is installed
    return {
        **env,
        "PATH": os.pathsep.join([bin_dir, env.get("PATH", os.defpath)]),
        "FLOORBELL_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",  # lines reach the console as they are written
    }


def _run_procfile(env: dict[str, str], port: int) -> int | None:
    """Run every Procfile process until Ctrl-C or until one of them exits."""
    processes = parse_procfile(PROCFILE.read_text()).processes
    printer = _QueuedPrinter(f"http://{HOST}:{port}")
    manager = _Manager(printer=printer)
    for name, command in processes.items():
        manager.add_process(name, command, env={**env, "PORT": str(port)}, cwd=str(ROOT))
    try:
        manager.loop()
    finally:
        printer.close()
    return manager.returncode


class _Manager(Manager):  # type: ignore[misc]
    """honcho's process manager, safe whenever a signal lands.

    honcho's own handler may run before every process has said its pid (it would fail on
    the missing one) and only ever waits for the grace period; this one sends what can be
    sent, and a second Ctrl-C kills at once. Its lines go through the queued printer.
    """

    returncode: int | None

    def _start(self) -> None:
        super()._start()  # forks the process runners: no thread of ours exists before
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self._printer.start()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._system_print(f"{signal.Signals(signum).name} received\n")
        if self.returncode is None:
            self.returncode = 128 + signum
        if self._terminating:
            self.kill()
        else:
            self.terminate()

    def _killall(self, force: bool = False) -> None:
        for name, process in self._processes.items():
            if "returncode" in process or "pid" not in process:
                continue  # stopped, or not started yet (the final SIGKILL reaches it)
            signame = "SIGKILL" if force else "SIGTERM"
            self._system_print(f"sending {signame} to {name} (pid {process['pid']})\n")
            if force:
                self._procmgr.kill(process["pid"])
            else:
                self._procmgr.terminate(process["pid"])


class _QueuedPrinter(Printer):  # type: ignore[misc]
    """honcho's console printer made safe for signal handlers: `write` only queues, and a
    thread prints, so a handler interrupting a line being printed never waits for it.
    The thread also says the app's URL once the app answers."""

    def __init__(self, url: str) -> None:
        super().__init__(sys.stdout)
        self.url = url
        self._lines: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []

    def write(self, message: Any) -> None:
        self._lines.put(message)

    def start(self) -> None:
        """Start printing, and probing for the app (after honcho forked its runners)."""
        for target, name in ((self._print_lines, "console"), (self._announce, "ready-probe")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Print what is queued (for a few seconds at most: the console may be stuck)."""
        self._done.set()
        self._lines.put(None)
        for thread in self._threads:
            thread.join(FLUSH_TIMEOUT_S)

    def _print_lines(self) -> None:
        while (message := self._lines.get()) is not None:
            super().write(message)

    def _announce(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._done.wait(0.2):
            if _answers(f"{self.url}/healthz"):
                self._say(f"Floorbell is running at {self.url} (Ctrl-C stops everything)")
                return
            if time.monotonic() > deadline:
                self._say(f"{self.url}/healthz does not answer yet; see the web lines above")
                return

    def _say(self, text: str) -> None:
        now = datetime.datetime.now()
        self.write(Message("line", text + "\n", now, SYSTEM_PRINTER_NAME, None))


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
