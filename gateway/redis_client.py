"""How a process connects to Redis: every connection named after its instance (so
`CLIENT LIST` shows who holds what), with keepalives and a reply deadline, so that a
connection cut without a word (a half-open NAT, a black-holed network) fails within
seconds instead of blocking its loop for good.

With `REDIS_SENTINELS`, the address is the primary that the Sentinels name for
`REDIS_SENTINEL_SERVICE`, asked again at every new connection (redis-py's
`SentinelConnectionPool`): after a failover, a connection to the old primary fails (or is
refused writes, once it is a replica), is dropped, and the next one goes to the new
primary, so every process follows on its own. What the history lost with it is the
history generation's business (`gateway.history`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from gateway.config import Settings

CONNECT_TIMEOUT_S = 2.0
# Longer than any blocking read of ours (2 s at most): a reply later than this means the
# connection is dead.
SOCKET_TIMEOUT_S = 5.0
POOL_WAIT_S = 5  # how long a request waits for a free connection of a bounded pool


def client_name(settings: Settings, role: str) -> str:
    return f"floorbell:{settings.instance_id}:{role}"


def _options(settings: Settings, role: str) -> dict[str, Any]:
    return {
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "client_name": client_name(settings, role),
    }


def redis_client(settings: Settings, role: str, *, single_connection: bool = False) -> Redis:
    """A client of its own pool (`single_connection`: one connection, for a reader whose
    blocking reads must not hold up anyone else)."""
    if settings.redis_sentinels:
        return _owning(_sentinel_pool(settings, role, _SentinelPool), single_connection)
    return Redis.from_url(settings.redis_url, single_connection_client=single_connection,
                          **_options(settings, role))  # fmt: skip


def redis_pool_client(settings: Settings, role: str, max_connections: int) -> Redis:
    """A client whose bounded pool waits for a free connection: a burst of requests
    queues briefly instead of failing."""
    bounds = {"max_connections": max_connections, "timeout": POOL_WAIT_S}
    if settings.redis_sentinels:
        return _owning(_sentinel_pool(settings, role, _BlockingSentinelPool, **bounds), False)
    pool = BlockingConnectionPool.from_url(settings.redis_url, **bounds, **_options(settings, role))
    return Redis(connection_pool=pool)


def describe_redis(settings: Settings) -> str:
    """Where Redis is found, for a console (no password)."""
    if settings.redis_sentinels:
        sentinels = ",".join(f"{host}:{port}" for host, port in settings.redis_sentinels)
        return f"the primary of {settings.redis_sentinel_service!r} named by Sentinels {sentinels}"
    parts = urlsplit(settings.redis_url)
    if parts.password is None:
        return settings.redis_url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def sentinel(settings: Settings) -> Sentinel:
    """A client of the Sentinels themselves (closed with `aclose`)."""
    options: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_keepalive": True,
    }
    if settings.redis_sentinel_password:
        options["password"] = settings.redis_sentinel_password
    return Sentinel(list(settings.redis_sentinels), sentinel_kwargs=options)  # type: ignore[no-untyped-call]


async def close_sentinel(manager: Sentinel) -> None:
    """Close the clients of the Sentinels themselves (`Sentinel.aclose` is younger than
    the redis-py versions we support)."""
    for client in manager.sentinels:
        await client.aclose()


class _SentinelPool(SentinelConnectionPool):
    """A pool of connections to the current primary that owns its Sentinel clients."""

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            await close_sentinel(self.sentinel_manager)


class _BlockingSentinelPool(_SentinelPool, BlockingConnectionPool):
    """Bounded, and waiting for a free connection, like `BlockingConnectionPool`."""


def _sentinel_pool(
    settings: Settings, role: str, pool_class: type[_SentinelPool], **extra: Any
) -> _SentinelPool:
    """The database and credentials of REDIS_URL apply; its address does not."""
    options = _options(settings, role)
    url = parse_url(settings.redis_url)
    for name in ("db", "username", "password"):
        if url.get(name) is not None:
            options[name] = url[name]
    if urlsplit(settings.redis_url).scheme == "rediss":
        options["ssl"] = True
    return pool_class(settings.redis_sentinel_service, sentinel(settings), **options, **extra)


def _owning(pool: ConnectionPool, single_connection: bool) -> Redis:
    """A client that closes its pool (and so its Sentinel clients) when closed."""
    client = Redis(connection_pool=pool, single_connection_client=single_connection)
    client.auto_close_connection_pool = True
    return client
