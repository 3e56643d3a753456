"""How a process connects to Redis: every connection named after its instance (so
`CLIENT LIST` shows who holds what), with keepalives and a reply deadline, so that a
connection cut without a word (a half-open NAT, a black-holed network) fails within
seconds instead of blocking its loop for good."""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from gateway.config import Settings

CONNECT_TIMEOUT_S = 2.0
# Longer than any blocking read of ours (2 s at most): a reply later than this means the
# connection is dead.
SOCKET_TIMEOUT_S = 5.0


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
    return Redis.from_url(settings.redis_url, single_connection_client=single_connection,
                          **_options(settings, role))  # fmt: skip


def redis_pool_client(settings: Settings, role: str, max_connections: int) -> Redis:
    """A client whose bounded pool waits for a free connection: a burst of requests
    queues briefly instead of failing."""
    pool = BlockingConnectionPool.from_url(settings.redis_url, max_connections=max_connections,
                                           timeout=5, **_options(settings, role))  # fmt: skip
    return Redis(connection_pool=pool)
