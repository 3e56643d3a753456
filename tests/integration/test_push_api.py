"""The /api/push routes, preferences and the admin's statistics."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from gateway.config import Settings
from gateway.push.vapid import b64url
from tests.helpers import bearer, fresh_user, token_for
from tests.push_fixtures import Device, PushEmulator


def subscription(endpoint: str, device: Device | None = None, **extra: Any) -> dict[str, Any]:
    return {"subscription": {"endpoint": endpoint, "keys": (device or Device()).keys, **extra},
            "deviceType": "mobile", "deviceName": "Pixel 8"}  # fmt: skip


async def person(
    db: asyncpg.Pool, settings: Settings, role: str = "technician"
) -> tuple[int, dict[str, str]]:
    user_id = await fresh_user(db, role)
    return user_id, bearer(token_for(settings.jwt_secret, user_id, role))


async def test_the_public_key_needs_no_login(client: Any, settings: Settings) -> None:
    response = await client.get("/api/push/vapid-public-key")
    assert response.status_code == 200
    assert await response.get_json() == {"publicKey": settings.vapid_public_key}


async def test_subscribe_upserts_by_endpoint_and_lists_devices(
    client: Any, db: asyncpg.Pool, settings: Settings, push_emulator: PushEmulator
) -> None:
    _, headers = await person(db, settings)
    browser = await push_emulator.subscribe(settings.vapid_public_key)
    body = {"subscription": {"endpoint": browser["endpoint"], "keys": browser["keys"],
                             "expirationTime": None}, "deviceName": "Firefox on Linux"}  # fmt: skip
    first = await client.post("/api/push/subscribe", json=body, headers=headers)
    assert first.status_code == 201
    again = await client.post("/api/push/subscribe", json=body, headers=headers)
    assert again.status_code == 200
    assert (await again.get_json())["id"] == (await first.get_json())["id"]
    devices = await (await client.get("/api/push/subscriptions", headers=headers)).get_json()
    assert [(d["endpoint"], d["deviceName"]) for d in devices] == [
        (browser["endpoint"], "Firefox on Linux")
    ]


async def test_an_endpoint_subscribed_by_someone_else_moves_to_them(
    client: Any, db: asyncpg.Pool, settings: Settings, push_emulator: PushEmulator
) -> None:
    _, before = await person(db, settings)
    _, after = await person(db, settings)
    endpoint = (await push_emulator.subscribe(settings.vapid_public_key))["endpoint"]
    assert (
        await client.post("/api/push/subscribe", json=subscription(endpoint), headers=before)
    ).status_code == 201
    moved = await client.post("/api/push/subscribe", json=subscription(endpoint), headers=after)
    assert moved.status_code == 201  # new to this person
    assert await (await client.get("/api/push/subscriptions", headers=before)).get_json() == []
    assert len(await (await client.get("/api/push/subscriptions", headers=after)).get_json()) == 1


async def test_unsubscribe_removes_only_ones_own_device(
    client: Any, db: asyncpg.Pool, settings: Settings, push_emulator: PushEmulator
) -> None:
    _, owner = await person(db, settings)
    _, stranger = await person(db, settings)
    endpoint = (await push_emulator.subscribe(settings.vapid_public_key))["endpoint"]
    await client.post("/api/push/subscribe", json=subscription(endpoint), headers=owner)
    other = await client.post(
        "/api/push/unsubscribe", json={"endpoint": endpoint}, headers=stranger
    )
    assert await other.get_json() == {"removed": False}
    mine = await client.post("/api/push/unsubscribe", json={"endpoint": endpoint}, headers=owner)
    assert await mine.get_json() == {"removed": True}
    assert await (await client.get("/api/push/subscriptions", headers=owner)).get_json() == []


async def test_an_eleventh_device_evicts_the_least_recently_used(
    client: Any, db: asyncpg.Pool, settings: Settings, push_emulator: PushEmulator
) -> None:
    user_id, headers = await person(db, settings)
    endpoints = [f"{push_emulator.url}/notify/device-{user_id}-{n}" for n in range(11)]
    for endpoint in endpoints[:10]:
        assert (
            await client.post("/api/push/subscribe", json=subscription(endpoint), headers=headers)
        ).status_code == 201
    # The oldest device was used a moment ago: the second oldest is now the least recent.
    await db.execute(
        "UPDATE push_subscriptions SET last_used = now() WHERE endpoint = $1", endpoints[0]
    )
    await client.post("/api/push/subscribe", json=subscription(endpoints[10]), headers=headers)
    kept = {
        d["endpoint"]
        for d in await (await client.get("/api/push/subscriptions", headers=headers)).get_json()
    }
    assert len(kept) == 10
    assert kept == set(endpoints) - {endpoints[1]}


def _p256dh() -> str:
    return Device().keys["p256dh"]


REFUSED = {
    "plain http": {"endpoint": "http://fcm.googleapis.com/fcm/send/x"},
    "loopback address": {"endpoint": "https://127.0.0.1/push/x"},
    "private address": {"endpoint": "https://10.0.0.8/push/x"},
    "link-local metadata": {"endpoint": "https://169.254.169.254/latest/meta-data"},
    "IPv6 loopback": {"endpoint": "https://[::1]/push/x"},
    "loopback name": {"endpoint": "https://localhost/push/x"},
    "name that does not resolve": {"endpoint": "https://push.nowhere.invalid/x"},
    "credentials": {"endpoint": "https://user:pw@fcm.googleapis.com/x"},
    "emulator port not allowed": {"endpoint": "http://localhost:1/notify/x"},
    "short p256dh": {
        "keys": {"p256dh": b64url(b"\x04" + os.urandom(31)), "auth": b64url(os.urandom(16))}
    },
    "p256dh off the curve": {
        "keys": {"p256dh": b64url(b"\x04" + b"\x07" * 64), "auth": b64url(os.urandom(16))}
    },
    "auth of 8 bytes": {"keys": {"p256dh": _p256dh(), "auth": b64url(os.urandom(8))}},
    "auth not base64": {"keys": {"p256dh": _p256dh(), "auth": "%%%%"}},
    "keys missing": {"keys": None},
    "endpoint missing": {"endpoint": None},
    "expiration negative": {"expirationTime": -5},
}


@pytest.mark.parametrize("change", REFUSED.values(), ids=REFUSED.keys())
async def test_every_unusable_subscription_is_422(
    change: dict[str, Any],
    client: Any,
    db: asyncpg.Pool,
    settings: Settings,
    push_emulator: PushEmulator,
) -> None:
    _, headers = await person(db, settings)
    body = subscription(f"{push_emulator.url}/notify/refused")
    body["subscription"].update(change)
    body["subscription"] = {k: v for k, v in body["subscription"].items() if v is not None}
    response = await client.post("/api/push/subscribe", json=body, headers=headers)
    assert response.status_code == 422, await response.get_json()
    assert await (await client.get("/api/push/subscriptions", headers=headers)).get_json() == []


async def test_a_public_address_is_accepted(
    client: Any, db: asyncpg.Pool, settings: Settings
) -> None:
    _, headers = await person(db, settings)
    response = await client.post("/api/push/subscribe", json=subscription("https://8.8.8.8/push/x"),
                                 headers=headers)  # fmt: skip
    assert response.status_code == 201
    await client.post(
        "/api/push/unsubscribe", json={"endpoint": "https://8.8.8.8/push/x"}, headers=headers
    )


async def test_push_routes_need_a_login(client: Any) -> None:
    for path in ("/api/push/subscribe", "/api/push/unsubscribe", "/api/push/test"):
        assert (await client.post(path, json={})).status_code == 401
    assert (await client.get("/api/push/subscriptions")).status_code == 401


async def test_a_test_push_reaches_each_device_and_counts_failures(
    client: Any, db: asyncpg.Pool, settings: Settings, push_emulator: PushEmulator
) -> None:
    _, headers = await person(db, settings)
    browsers = [await push_emulator.subscribe(settings.vapid_public_key) for _ in range(2)]
    for browser in browsers:
        body = {"subscription": {"endpoint": browser["endpoint"], "keys": browser["keys"]}}
        await client.post("/api/push/subscribe", json=body, headers=headers)
    response = await client.post("/api/push/test", headers=headers)
    assert await response.get_json() == {"sentCount": 2, "failedCount": 0}
    [received] = await push_emulator.messages(browsers[0]["clientHash"])
    assert received["data"]["type"] == "test" and received["data"]["url"] == "/"

    await push_emulator.expire(browsers[1]["clientHash"])
    response = await client.post("/api/push/test", headers=headers)
    assert await response.get_json() == {"sentCount": 1, "failedCount": 1}
    devices = await (await client.get("/api/push/subscriptions", headers=headers)).get_json()
    assert [d["endpoint"] for d in devices] == [browsers[0]["endpoint"]]  # the expired one is gone


async def test_preferences_default_then_change_in_part(
    client: Any, db: asyncpg.Pool, settings: Settings
) -> None:
    _, headers = await person(db, settings)
    defaults = await (
        await client.get("/api/notifications/preferences", headers=headers)
    ).get_json()
    assert defaults["types"]["ticket_assigned"] == {"push": True, "inapp": True}
    assert defaults["types"]["comment_added"] == {"push": True, "inapp": True}
    assert defaults["types"]["maintenance_due"] == {"push": False, "inapp": True}
    assert defaults["dnd"] == {"enabled": False, "start": "22:00", "end": "06:00",
                               "timezone": "UTC",
                               "allow_critical": True}  # fmt: skip
    change = {"types": {"comment_added": {"push": False}},
              "dnd": {"enabled": True, "timezone": "Europe/Paris"}}  # fmt: skip
    saved = await (
        await client.put("/api/notifications/preferences", json=change, headers=headers)
    ).get_json()
    assert saved["types"]["comment_added"] == {"push": False, "inapp": True}
    assert saved["dnd"]["timezone"] == "Europe/Paris" and saved["dnd"]["start"] == "22:00"
    again = await (await client.get("/api/notifications/preferences", headers=headers)).get_json()
    assert again == saved


@pytest.mark.parametrize(
    "change",
    [
        {"types": {"no_such_type": {"push": True}}},
        {"types": {"comment_added": {"push": "yes"}}},
        {"types": {"comment_added": {"sms": True}}},
        {"dnd": {"start": "25:00"}},
        {"dnd": {"end": "6am"}},
        {"dnd": {"start": "06:00", "end": "06:00"}},
        {"dnd": {"timezone": "Europe/Atlantis"}},
        {"dnd": {"enabled": 1}},
        {"colour": "blue"},
    ],
)
async def test_bad_preferences_are_422(change: dict[str, Any], client: Any, db: asyncpg.Pool,
                                       settings: Settings) -> None:  # fmt: skip
    _, headers = await person(db, settings)
    response = await client.put("/api/notifications/preferences", json=change, headers=headers)
    assert response.status_code == 422


async def test_notification_stats_are_for_admins(client: Any, db: asyncpg.Pool, settings: Settings,
                                                 tokens: dict[str, str]) -> None:  # fmt: skip
    user_id, headers = await person(db, settings)
    assert (await client.get("/api/admin/notification-stats", headers=headers)).status_code == 403

    async def maintenance_due() -> dict[str, int]:
        stats = await (await client.get("/api/admin/notification-stats",
                                        headers=bearer(tokens["admin"]))).get_json()  # fmt: skip
        names = {"created", "delivered_live", "pushed", "push_failed", "delivered_inapp",
                 "clicked", "read", "dead_lettered"}  # fmt: skip
        assert set(stats["types"]["ticket_assigned"]) == names
        return dict(stats["types"]["maintenance_due"])

    before = await maintenance_due()
    now = datetime.now(UTC)
    stamps = [(now, now, now), (now, None, None), (None, None, None)]  # seen, clicked, read
    ids = [await db.fetchval(
        "INSERT INTO notifications (user_id, event_id, type, title, body, seen_at, clicked_at,"
        " read_at) VALUES ($1, $2, 'maintenance_due', 'Due', 'Press', $3, $4, $5) RETURNING id",
        user_id, -n, *times,
    ) for n, times in enumerate(stamps, 1)]  # fmt: skip
    await db.execute(
        "INSERT INTO push_logs (notification_id, subscription_id, user_id, endpoint, status,"
        " attempt) VALUES ($1, 1, $3, 'e', 'sent', 1), ($2, 1, $3, 'e', 'retry', 1),"
        " ($2, 1, $3, 'e', 'send_failed', 2)",
        ids[0], ids[1], user_id,
    )  # fmt: skip
    after = await maintenance_due()
    assert {k: after[k] - before[k] for k in after} == {
        "created": 3, "delivered_live": 0, "pushed": 1, "push_failed": 1, "delivered_inapp": 2,
        "clicked": 1, "read": 1, "dead_lettered": 0,
    }  # fmt: skip
