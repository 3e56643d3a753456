"""`floorbell doctor`: check the configuration and the services, one line per check.

Each line starts with ✓ or ✗; a failure says what to do about it. Checks that depend
on an unreachable service are reported as skipped (✗) rather than guessed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from redis.exceptions import RedisError
from yoyo import read_migrations
from yoyo.migrations import default_migration_table

from gateway.config import Settings
from gateway.ops.key_files import MIN_JWT_SECRET_BYTES
from gateway.ops.migrate import SQL_DIR
from gateway.ops.provision import redact
from gateway.push.vapid import check_key_pair
from gateway.redis_client import close_sentinel, describe_redis, redis_client, sentinel

WEB_ROOT = Path(__file__).resolve().parents[2] / "web"
TIMEOUT_S = 5.0
MIN_REDIS = (6, 2)  # XAUTOCLAIM, which the consumers use to take over a dead one's entries


@dataclass(frozen=True)
class Check:
    ok: bool
    name: str
    detail: str
    hint: str = ""

    def line(self) -> str:
        text = f"{'✓' if self.ok else '✗'} {self.name}: {self.detail}"
        return text if self.ok or not self.hint else f"{text}\n    → {self.hint}"


async def doctor(settings: Settings) -> bool:
    """Print one line per check; True when every check passed."""
    checks = [check_jwt_secret(settings), check_vapid(settings), check_web()]
    checks += await check_postgres(settings)
    checks += await check_redis(settings)
    for check in checks:
        print(check.line(), flush=True)
    healthy = all(check.ok for check in checks)
    print("all good" if healthy else f"{sum(not c.ok for c in checks)} problem(s) found")
    return healthy


def check_jwt_secret(settings: Settings) -> Check:
    size = len(settings.jwt_secret.encode())
    if size >= MIN_JWT_SECRET_BYTES:
        return Check(True, "JWT_SECRET", f"{size} bytes")
    return Check(
        False, "JWT_SECRET", "not set" if size == 0 else f"only {size} bytes",
        f"set JWT_SECRET to at least {MIN_JWT_SECRET_BYTES} random bytes, or unset it to use"
        " the one `floorbell up` keeps in .data/jwt_secret",
    )  # fmt: skip


def check_vapid(settings: Settings) -> Check:
    public, private = settings.vapid_public_key, settings.vapid_private_key
    hint = "unset both VAPID keys to use .data/vapid.json, or print a pair with `floorbell vapid`"
    if not public or not private:
        missing = " and ".join(name for name, value in
                               (("VAPID_PUBLIC_KEY", public), ("VAPID_PRIVATE_KEY", private))
                               if not value)  # fmt: skip
        return Check(False, "VAPID keys", f"{missing} not set", hint)
    try:
        check_key_pair(public, private)
    except ValueError as exc:
        return Check(False, "VAPID keys", f"invalid ({exc})", hint)
    subject = settings.vapid_subject
    if not subject.startswith(("mailto:", "https://")):
        return Check(False, "VAPID keys", f"VAPID_SUBJECT {subject!r} is not a mailto: or"
                     " https: URL", "push services reject such a subject")  # fmt: skip
    return Check(True, "VAPID keys", f"a valid P-256 pair, subject {subject}")


def check_web() -> Check:
    if (WEB_ROOT / "index.html").is_file():
        return Check(True, "web app", f"{WEB_ROOT} present")
    return Check(False, "web app", f"{WEB_ROOT / 'index.html'} missing",
                 "run from a complete checkout of the repository")  # fmt: skip


async def check_postgres(settings: Settings) -> list[Check]:
    url = redact(settings.database_url)
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=TIMEOUT_S)
    except asyncpg.InvalidCatalogNameError:
        return [Check(False, "PostgreSQL", f"the database in {url} does not exist",
                      "create it and the schema with `floorbell migrate`")]  # fmt: skip
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return [
            Check(False, "PostgreSQL", f"cannot connect to {url} ({_reason(exc)})",
                  "start PostgreSQL or fix DATABASE_URL; `make run` starts an embedded one"),
            Check(False, "migrations", "skipped: PostgreSQL is unreachable"),
        ]  # fmt: skip
    try:
        version = await conn.fetchval("SHOW server_version")
        return [Check(True, "PostgreSQL", f"{url} answers (server {version})"),
                await _check_migrations(conn)]  # fmt: skip
    finally:
        await conn.close()


async def _check_migrations(conn: asyncpg.Connection) -> Check:
    expected = [migration.id for migration in read_migrations(str(SQL_DIR))]
    hint = "apply them with `floorbell migrate`"
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", default_migration_table):
        return Check(False, "migrations", "none applied (empty database)", hint)
    applied = {row["migration_id"] for row in
               await conn.fetch(f"SELECT migration_id FROM {default_migration_table}")}  # fmt: skip
    pending = [migration_id for migration_id in expected if migration_id not in applied]
    if pending:
        return Check(False, "migrations", f"pending: {', '.join(pending)}", hint)
    return Check(True, "migrations", f"all {len(expected)} applied")


async def check_redis(settings: Settings) -> list[Check]:
    checks = await check_sentinels(settings) if settings.redis_sentinels else []
    where = describe_redis(settings)
    hint = ("check that the Sentinels name a primary for REDIS_SENTINEL_SERVICE"
            if settings.redis_sentinels
            else "start Redis or fix REDIS_URL; `make run` starts an embedded one")  # fmt: skip
    redis = redis_client(settings, "doctor")
    try:
        await asyncio.wait_for(redis.ping(), TIMEOUT_S)
        info = await asyncio.wait_for(redis.info("server"), TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as exc:
        return [
            *checks,
            Check(False, "Redis", f"cannot reach {where} ({_reason(exc)})", hint),
            Check(False, "Redis version", "skipped: Redis is unreachable"),
        ]
    finally:
        await redis.aclose()
    version = str(info.get("redis_version", "0"))
    found = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    pinged = Check(True, "Redis", f"{where} answers PING")
    if found >= MIN_REDIS:
        return [*checks, pinged, Check(True, "Redis version", f"{version} (XAUTOCLAIM available)")]
    wanted = ".".join(map(str, MIN_REDIS))
    return [*checks, pinged, Check(False, "Redis version", f"{version} is older than {wanted}",
                          f"Floorbell needs Redis {wanted} or newer for XAUTOCLAIM")]  # fmt: skip


async def check_sentinels(settings: Settings) -> list[Check]:
    """Which primary the Sentinels name, and how many of them answer."""
    service = settings.redis_sentinel_service
    manager = sentinel(settings)
    try:
        replies = await asyncio.gather(
            *(asyncio.wait_for(one.sentinel_masters(), TIMEOUT_S) for one in manager.sentinels),
            return_exceptions=True,
        )
    finally:
        await close_sentinel(manager)
    named = [reply[service] for reply in replies if isinstance(reply, dict) and service in reply]
    answering = sum(isinstance(reply, dict) for reply in replies)
    asked = len(replies)
    if not named:
        failures = {_reason(reply) for reply in replies if isinstance(reply, BaseException)}
        why = f" ({'; '.join(sorted(failures))})" if failures else ""
        return [Check(False, "Redis Sentinel", f"none of {asked} names a primary for"
                      f" {service!r}{why}", "check REDIS_SENTINELS and REDIS_SENTINEL_SERVICE"
                      )]  # fmt: skip
    state = named[0]
    replicas = state.get("num-slaves", 0)
    detail = (f"{service!r} has its primary at {state['ip']}:{state['port']}, {answering} of"
              f" {asked} Sentinels answer, {replicas} replica(s) known")  # fmt: skip
    return [Check(answering * 2 > asked, "Redis Sentinel", detail,
                  "a failover needs a majority of the Sentinels")]  # fmt: skip


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
