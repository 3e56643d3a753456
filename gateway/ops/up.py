"""`floorbell up` (what `make run` does): provision, migrate, seed, then run the Procfile.

The Procfile processes run under honcho, each in its own session: Ctrl-C reaches this
process only, which stops them (SIGTERM, SIGKILL after honcho's grace period), and then
the embedded PostgreSQL and Redis when `provision` started them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer

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
# Terminated by our own SIGINT/SIGTERM handling (honcho's return codes): a clean stop.
STOPPED_BY_SIGNAL = (130, 143)


def up(data_dir: Path, port: int | None) -> None:
    """Provision, migrate, seed, create secrets, run every Procfile process until Ctrl-C."""
    data_dir = data_dir.absolute()
    env = dict(os.environ)
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
    printer = _AnnouncingPrinter(f"http://{HOST}:{port}")
    manager = Manager(printer=printer)
    for name, command in processes.items():
        manager.add_process(name, command, env={**env, "PORT": str(port)}, cwd=str(ROOT))
    try:
        manager.loop()
    finally:
        printer.done.set()
    return manager.returncode  # type: ignore[no-any-return]


class _AnnouncingPrinter(Printer):  # type: ignore[misc]
    """honcho's console printer that also says the app's URL once the app answers.

    The readiness probe thread starts at the first line printed, after honcho forked its
    process runners: no fork ever happens while the thread runs.
    """

    def __init__(self, url: str) -> None:
        super().__init__(sys.stdout)
        self.url = url
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._probe: threading.Thread | None = None

    def write(self, message: Any) -> None:
        with self._lock:
            super().write(message)
        if self._probe is None:
            self._probe = threading.Thread(target=self._announce, name="ready-probe", daemon=True)
            self._probe.start()

    def _announce(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.done.wait(0.2):
            if _answers(f"{self.url}/healthz"):
                self._say(f"Floorbell is running at {self.url} (Ctrl-C stops everything)")
                return
            if time.monotonic() > deadline:
                self._say(f"{self.url}/healthz does not answer yet; see the web lines above")
                return

    def _say(self, text: str) -> None:
        with self._lock:
            print(text, file=self.output, flush=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
