"""Push subscriptions (a person's devices): validation and storage.

Upsert by endpoint: the endpoint identifies the browser profile, so a phone handed to
someone else who subscribes moves to them. A person keeps at most `MAX_DEVICES`; a new
device evicts the least recently used one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.push.vapid import b64url_decode

MAX_DEVICES = 10
P256_POINT_BYTES = 65
AUTH_SECRET_BYTES = 16


class InvalidKeys(ValueError):
    """Subscription keys that cannot encrypt a push."""


@dataclass(frozen=True)
class Subscription:
    """What a push needs to reach one device."""

    id: int
    user_id: int
    endpoint: str
    p256dh: str
    auth: str


def check_keys(p256dh: str, auth: str) -> None:
    """`p256dh` must be an uncompressed point on P-256 and `auth` a 16-byte secret."""
    try:
        point, secret = b64url_decode(p256dh), b64url_decode(auth)
    except ValueError as exc:
        raise InvalidKeys(f"keys must be URL-safe base64 ({exc})") from None
    if len(point) != P256_POINT_BYTES or point[0] != 0x04:
        raise InvalidKeys(f"keys.p256dh must be a {P256_POINT_BYTES}-byte uncompressed P-256 point")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise InvalidKeys("keys.p256dh is not a point on the P-256 curve") from None
    if len(secret) != AUTH_SECRET_BYTES:
        raise InvalidKeys(f"keys.auth must be a {AUTH_SECRET_BYTES}-byte secret, got {len(secret)}")


async def upsert(
    conn: asyncpg.Connection, user_id: int, endpoint: str, p256dh: str, auth: str,
    expiration_time: int | None, device_type: str | None, device_name: str | None,
) -> tuple[int, bool]:  # fmt: skip
    """Store the device for `user_id`; (id, new to this user). Evicts beyond MAX_DEVICES."""
    async with conn.transaction():
        # One subscribe at a time per person, so two new devices cannot both squeeze in.
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", user_id)
        row = await conn.fetchrow(
            "WITH previous AS (SELECT user_id FROM push_subscriptions WHERE endpoint = $2)"
            " INSERT INTO push_subscriptions"
            " (user_id, endpoint, p256dh, auth, expiration_time, device_type, device_name,"
            "  last_used)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp())"
            " ON CONFLICT (endpoint) DO UPDATE SET user_id = EXCLUDED.user_id,"
            " p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,"
            " expiration_time = EXCLUDED.expiration_time,"
            " device_type = COALESCE(EXCLUDED.device_type, push_subscriptions.device_type),"
            " device_name = COALESCE(EXCLUDED.device_name, push_subscriptions.device_name),"
            " last_used = EXCLUDED.last_used"
            " RETURNING id, (SELECT user_id FROM previous) AS previous_user",
            user_id, endpoint, p256dh, auth, expiration_time, device_type, device_name,
        )  # fmt: skip
        await conn.execute(
            "DELETE FROM push_subscriptions WHERE user_id = $1 AND id <> $2 AND id NOT IN"
            " (SELECT id FROM push_subscriptions WHERE user_id = $1 AND id <> $2"
            "  ORDER BY last_used DESC, id DESC LIMIT $3)",
            user_id, row["id"], MAX_DEVICES - 1,
        )  # fmt: skip
    return int(row["id"]), row["previous_user"] != user_id


async def unsubscribe(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, endpoint: str) -> bool:
    result = await conn.execute(
        "DELETE FROM push_subscriptions WHERE endpoint = $1 AND user_id = $2", endpoint, user_id
    )
    return bool(result != "DELETE 0")


async def devices(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, endpoint, device_type, device_name, expiration_time, created_at, last_used"
        " FROM push_subscriptions WHERE user_id = $1 ORDER BY last_used DESC, id DESC",
        user_id,
    )
    return [
        {"id": row["id"], "endpoint": row["endpoint"], "deviceType": row["device_type"],
         "deviceName": row["device_name"], "expirationTime": row["expiration_time"],
         "createdAt": _iso(row["created_at"]), "lastUsed": _iso(row["last_used"])}
        for row in rows
    ]  # fmt: skip


async def for_users(
    conn: asyncpg.Connection | asyncpg.Pool, user_ids: list[int]
) -> list[Subscription]:
    rows = await conn.fetch(
        "SELECT id, user_id, endpoint, p256dh, auth FROM push_subscriptions"
        " WHERE user_id = ANY($1::bigint[]) ORDER BY id",
        user_ids,
    )
    return [Subscription(**dict(row)) for row in rows]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
