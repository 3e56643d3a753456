"""Retries are data, in one place: capped exponential backoff with full jitter, and which
failures are worth retrying at all.

A transient failure is an outage of a service (PostgreSQL or Redis unreachable,
restarting, refusing connections, a connection cut or timed out): retried, it succeeds
once the service is back. Anything else — a bug, a value a query refuses — fails the same
way every time; `gateway.pipeline.consumer` isolates the entry that causes it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import asyncpg
from redis import exceptions as redis_errors

# OSError covers refused and reset connections and every timeout (TimeoutError is one).
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    redis_errors.ConnectionError,  # BusyLoadingError included: Redis loading its data
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica promoted, the client still on the old master
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # the connection is closed or in an unusable state
    asyncpg.InternalClientError,  # e.g. "cannot switch to state …" after a cut connection
    asyncpg.exceptions.OperatorInterventionError,  # shutdown, restart, terminated backend
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.TransactionRollbackError,  # deadlock, serialisation failure
)


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is an outage that a later attempt may not meet."""
    return isinstance(exc, _TRANSIENT)


@dataclass
class Backoff:
    base_s: float = 0.2
    cap_s: float = 5.0
    attempt: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap_s, self.base_s * 2**self.attempt)
        self.attempt += 1
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.attempt = 0
