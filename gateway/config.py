"""One typed settings object, read from the environment once.

Every variable is documented in the README; a malformed value fails loudly at start-up
rather than surprising someone at the first request.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/floorbell"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def usable_cores() -> int:
    """The cores this process may run on (its affinity), not merely those the host has."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ConfigError(RuntimeError):
    """A configuration value is missing or malformed."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")
    return raw in ("1", "true", "yes", "on")


def _timezone(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name) or default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"{name} must be an IANA time zone such as Europe/Paris, got {value!r}"
        raise ConfigError(message) from None
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _addresses(env: Mapping[str, str], name: str) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port,…` (an IPv6 host in brackets) as (host, port) pairs."""
    addresses = []
    for item in _list(env, name):
        host, _, port = item.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise ConfigError(f"{name} takes host:port pairs separated by commas, got {item!r}")
        addresses.append((host, int(port)))
    return tuple(addresses)


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    origins = _list(env, name)
    for origin in origins:
        if not re.fullmatch(r"https?://[^/?#@\s]+", origin):
            raise ConfigError(f"{name} takes origins such as http://localhost:8090, got {origin!r}")
    return origins


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    redis_prefix: str = "floorbell:"
    # Sentinels to ask for the primary of `redis_sentinel_service`: when given, they take
    # precedence over the address of `redis_url` (whose database and credentials apply).
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_service: str = "mymaster"
    redis_sentinel_password: str = ""  # the Sentinels' own (their `requirepass`), if any
    jwt_secret: str = ""
    jwt_ttl_s: int = 12 * 3600
    vapid_public_key: str = ""
    vapid_private_key: str = ""
    vapid_subject: str = "mailto:ops@floorbell.invalid"
    port: int = 8000
    sse_heartbeat_s: int = 15
    sse_retry_ms: int = 3000
    sse_queue_frames: int = 1000
    sse_write_timeout_s: int = 30  # a reader that takes none of its frames this long is dropped
    stream_retention_hours: int = 24
    push_log_retention_days: int = 30  # delivery attempts kept (and counted in the stats)
    push_grace_s: int = 10
    push_endpoint_allow: tuple[str, ...] = ()
    push_concurrency: int = 200  # pushes in flight per worker process
    claim_idle_ms: int = 30_000  # a stopped worker's pending entries are finished after this
    dead_letter_attempts: int = 5  # failures of one entry before it is set aside
    push_digest_interval_s: int = 15  # how soon after quiet hours end their digest leaves
    demo_password: str = "floorbell"
    demo_mode: bool = False  # `floorbell up` turns it on: the login page offers the logins
    max_body_bytes: int = 6 * 1024 * 1024
    login_attempts_per_minute: int = 10
    clock_interval_s: int = 60
    clock_timezone: str = "UTC"  # the zone whose calendar days "once per day" alerts count
    health_host: str = "127.0.0.1"
    worker_health_port: int = 8001  # /healthz, /readyz, /metrics of `floorbell worker`; 0: none
    clock_health_port: int = 8002  # the same for `floorbell clock`
    web_concurrency: int = field(default_factory=lambda: usable_cores())  # `serve` processes
    instance_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        secret = env.get("JWT_SECRET", "")
        if secret and len(secret.encode()) < 32:
            raise ConfigError("JWT_SECRET must be at least 32 bytes for HS256")
        defaults = cls()
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=env.get("REDIS_URL") or DEFAULT_REDIS_URL,
            redis_prefix=env.get("REDIS_PREFIX") or defaults.redis_prefix,
            redis_sentinels=_addresses(env, "REDIS_SENTINELS"),
            redis_sentinel_service=(
                env.get("REDIS_SENTINEL_SERVICE") or defaults.redis_sentinel_service
            ),
            redis_sentinel_password=env.get("REDIS_SENTINEL_PASSWORD", ""),
            jwt_secret=secret,
            jwt_ttl_s=_int(env, "JWT_TTL_SECONDS", defaults.jwt_ttl_s, 60),
            vapid_public_key=env.get("VAPID_PUBLIC_KEY", ""),
            vapid_private_key=env.get("VAPID_PRIVATE_KEY", ""),
            vapid_subject=env.get("VAPID_SUBJECT") or defaults.vapid_subject,
            port=_int(env, "PORT", defaults.port, 1),
            sse_heartbeat_s=_int(env, "SSE_HEARTBEAT_SECONDS", defaults.sse_heartbeat_s, 1),
            sse_retry_ms=_int(env, "SSE_RETRY_MS", defaults.sse_retry_ms, 0),
            sse_queue_frames=_int(env, "SSE_QUEUE_FRAMES", defaults.sse_queue_frames, 10),
            sse_write_timeout_s=_int(
                env, "SSE_WRITE_TIMEOUT_SECONDS", defaults.sse_write_timeout_s, 1
            ),
            stream_retention_hours=_int(
                env, "STREAM_RETENTION_HOURS", defaults.stream_retention_hours, 1
            ),
            push_log_retention_days=_int(
                env, "PUSH_LOG_RETENTION_DAYS", defaults.push_log_retention_days, 1
            ),
            push_grace_s=_int(env, "PUSH_GRACE_SECONDS", defaults.push_grace_s, 0),
            push_endpoint_allow=_origins(env, "PUSH_ENDPOINT_ALLOW"),
            push_concurrency=_int(env, "PUSH_CONCURRENCY", defaults.push_concurrency, 1),
            # PUSH_CLAIM_IDLE_MS: its earlier name, when it applied to pushes only.
            claim_idle_ms=_int(
                env,
                "CLAIM_IDLE_MS",
                _int(env, "PUSH_CLAIM_IDLE_MS", defaults.claim_idle_ms, 100),
                100,
            ),
            dead_letter_attempts=_int(
                env, "DEAD_LETTER_ATTEMPTS", defaults.dead_letter_attempts, 1
            ),
            push_digest_interval_s=_int(
                env, "PUSH_DIGEST_INTERVAL_SECONDS", defaults.push_digest_interval_s, 1
            ),
            demo_password=env.get("DEMO_PASSWORD") or defaults.demo_password,
            demo_mode=_flag(env, "DEMO_MODE", defaults.demo_mode),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", defaults.max_body_bytes, 1024),
            login_attempts_per_minute=_int(
                env, "LOGIN_ATTEMPTS_PER_MINUTE", defaults.login_attempts_per_minute, 1
            ),
            clock_interval_s=_int(env, "CLOCK_INTERVAL_SECONDS", defaults.clock_interval_s, 1),
            clock_timezone=_timezone(env, "CLOCK_TIMEZONE", defaults.clock_timezone),
            health_host=env.get("HEALTH_HOST") or defaults.health_host,
            worker_health_port=_int(env, "WORKER_HEALTH_PORT", defaults.worker_health_port, 0),
            clock_health_port=_int(env, "CLOCK_HEALTH_PORT", defaults.clock_health_port, 0),
            web_concurrency=_int(env, "WEB_CONCURRENCY", defaults.web_concurrency, 1),
            instance_id=env.get("INSTANCE_ID") or defaults.instance_id,
        )

    def require_jwt_secret(self) -> str:
        if not self.jwt_secret:
            raise ConfigError("JWT_SECRET is not set (make run creates one under .data/)")
        return self.jwt_secret
