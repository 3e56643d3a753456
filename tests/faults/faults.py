"""The faults themselves, made real and kept to what the test owns: its database's
backends, its Redis clients, its key prefix, its processes, a PostgreSQL of its own."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from gateway.ops.provision import PG_LOG, _PostgresControl, database_name, replace_database
from tests.gateway_process import free_port

# Every key of the prefix gone in one step, as when Redis restarts without its data: a
# script runs atomically, so no write lands between two deletions.
_LOSE_KEYS = """
local keys = redis.call('KEYS', ARGV[1])
for i = 1, #keys, 1000 do
  redis.call('DEL', unpack(keys, i, math.min(i + 999, #keys)))
end
return #keys
"""


async def lose_keys(redis: Redis, prefix: str) -> int:
    """Delete every key of `prefix` at once; how many there were."""
    return int(await redis.eval(_LOSE_KEYS, 0, f"{prefix}*"))


async def terminate_backends(database_url: str) -> int:
    """`pg_terminate_backend` on every session of the test's database but this one."""
    conn = await asyncpg.connect(replace_database(database_url, "postgres"))
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database_name(database_url),
        )
        return len(rows)
    finally:
        await conn.close()


async def kill_clients(redis: Redis, name_part: str) -> int:
    """CLIENT KILL each Redis client whose name holds `name_part` (our processes name
    their connections after their instance)."""
    clients = await redis.client_list()
    ids = [c["id"] for c in clients if name_part in (c.get("name") or "")]
    for client_id in ids:
        await redis.client_kill_filter(_id=client_id)
    return len(ids)


class OwnPostgres:
    """A PostgreSQL of the test's own, from pgserver's binaries as the embedded one is,
    that the test stops and starts again on the same port (no other user of the
    machine's server is disturbed)."""

    def __init__(self, home: Path) -> None:
        self._home = home
        self._control = _PostgresControl(home, log=lambda _: None)
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/floorbell"

    def start(self) -> None:
        """Start it (a cluster is made the first time); returns once it accepts."""
        self._control._ensure_cluster()
        options = f"-h 127.0.0.1 -p {self.port} -k ''"
        self._control._pg_ctl("-l", str(self._home / PG_LOG), "-o", options, "start")

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, as a restart by an operator ends them."""
        self._control._pg_ctl("-m", "fast", "stop")
