"""The delivery ladder end to end: HTTP write -> outbox -> router -> push fan-out (the
session's `floorbell worker`) -> the `web-push-testing` emulator, which decrypts.

Each test has people of its own, so no other test's notification reaches their devices.
The session settings use a grace period of 1 s and a digest check every second.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import Keys
from gateway.realtime.presence import Presence
from tests.helpers import (
    bearer,
    eventually,
    fresh_user,
    record_connection,
    record_disconnect,
    token_for,
)
from tests.push_fixtures import PushEmulator

# No "wait, then assert nothing came": a push that must not be sent is checked against a
# marker push that must come after it, so a late push fails the test instead of passing.


class Person:
    def __init__(self, user_id: int, role: str, headers: dict[str, str]) -> None:
        self.id, self.role, self.headers = user_id, role, headers
        self.devices: list[str] = []  # emulator client hashes


async def person(client: Any, db: asyncpg.Pool, settings: Settings, emulator: PushEmulator,
                 role: str = "technician", devices: int = 1,
                 language: str = "fr") -> Person:  # fmt: skip
    user_id = await fresh_user(db, role, language)
    someone = Person(user_id, role, bearer(token_for(settings.jwt_secret, user_id, role)))
    for _ in range(devices):
        browser = await emulator.subscribe(settings.vapid_public_key)
        body = {"subscription": {"endpoint": browser["endpoint"], "keys": browser["keys"]}}
        response = await client.post("/api/push/subscribe", json=body, headers=someone.headers)
        assert response.status_code == 201
        someone.devices.append(browser["clientHash"])
    return someone


async def pushes(emulator: PushEmulator, someone: Person, device: int = 0) -> list[dict[str, Any]]:
    return await emulator.messages(someone.devices[device])


async def wait_for_pushes(emulator: PushEmulator, someone: Person, count: int,
                          device: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    async def enough() -> list[dict[str, Any]] | None:
        found = await pushes(emulator, someone, device)
        return found if len(found) >= count else None

    found = await eventually(enough, 10)
    assert found, f"expected {count} pushes, got {await pushes(emulator, someone, device)}"
    return found


async def set_prefs(client: Any, someone: Person, change: dict[str, Any]) -> None:
    response = await client.put(
        "/api/notifications/preferences", json=change, headers=someone.headers
    )
    assert response.status_code == 200, await response.get_json()


async def assign_new_ticket(
    client: Any, tokens: dict[str, str], assignee: Person, title: str = "Leak"
) -> int:
    response = await client.post(
        "/api/tickets", json={"title": title, "machine_id": 1, "priority": "high",
                              "assigned_to": assignee.id}, headers=bearer(tokens["supervisor"]),
    )  # fmt: skip
    assert response.status_code == 201, await response.get_json()
    return int((await response.get_json())["id"])


async def reported_ticket(client: Any, reporter: Person) -> int:
    response = await client.post("/api/tickets", json={"title": "Noise", "machine_id": 2},
                                 headers=reporter.headers)  # fmt: skip
    assert response.status_code == 201
    return int((await response.get_json())["id"])


async def comment(client: Any, tokens: dict[str, str], ticket_id: int, text: str) -> None:
    response = await client.post(f"/api/tickets/{ticket_id}/comments", json={"body": text},
                                 headers=bearer(tokens["supervisor"]))  # fmt: skip
    assert response.status_code == 201


async def notification(db: asyncpg.Pool, someone: Person, kind: str, count: int = 1) -> list[int]:
    async def stored() -> list[int] | None:
        rows = await db.fetch(
            "SELECT id FROM notifications WHERE user_id = $1 AND type = $2 ORDER BY id",
            someone.id, kind,
        )  # fmt: skip
        return [row["id"] for row in rows] if len(rows) >= count else None

    found = await eventually(stored, 10, 0.02)
    assert found
    return found


@asynccontextmanager
async def online(redis: Redis, settings: Settings, someone: Person) -> AsyncIterator[None]:
    """An open SSE connection as the gateway records it in presence, kept alive."""
    presence = Presence(redis, Keys(settings.redis_prefix), settings.sse_heartbeat_s)
    connection = f"test-{uuid.uuid4().hex[:8]}"
    await record_connection(presence, someone.id, connection)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(0.3)
            await presence.refresh([(someone.id, connection)])

    task = asyncio.create_task(heartbeat())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await record_disconnect(presence, someone.id, connection)


async def push_delay_s(db: asyncpg.Pool, notification_id: int) -> float:
    """From the notification's creation to its push being answered by the push service
    (the log is written in batches, just after the push)."""

    async def logged() -> Any:
        return await db.fetchrow(
            "SELECT extract(epoch FROM l.created_at - n.created_at) AS delay FROM push_logs l"
            " JOIN notifications n ON n.id = l.notification_id WHERE l.notification_id = $1"
            " AND l.status = 'sent' ORDER BY l.id LIMIT 1", notification_id,
        )  # fmt: skip

    row = await eventually(logged)
    assert row is not None, "the push was never logged"
    return float(row["delay"])


async def test_an_offline_assignee_gets_one_push_per_device_at_once(
    client: Any, db: asyncpg.Pool, settings: Settings, tokens: dict[str, str],
    push_emulator: PushEmulator, worker: None,
) -> None:  # fmt: skip
    tech = await person(client, db, settings, push_emulator, devices=2, language="en")
    ticket_id = await assign_new_ticket(client, tokens, tech, "Hydraulic leak under the ram")
    [push] = await wait_for_pushes(push_emulator, tech, 1)
    [notification_id] = await notification(db, tech, "ticket_assigned")
    assert push["title"] == "New ticket assigned" and "Hydraulic leak under the ram" in push["body"]
    assert push["data"] == {"url": f"/?ticket={ticket_id}", "notification_id": notification_id,
                            "type": "ticket_assigned", "ticket_id": ticket_id}  # fmt: skip
    assert [a["action"] for a in push["actions"]] == ["view", "acknowledge"]
    assert push["tag"] == f"critical-ticket-{ticket_id}" and push["icon"] == "/icons/icon-192.png"
    await wait_for_pushes(push_emulator, tech, 1, device=1)
    marker = await assign_new_ticket(client, tokens, tech, "Marker")  # pushed after the first
    for device in (0, 1):
        received = await wait_for_pushes(push_emulator, tech, 2, device)
        assert [p["data"]["ticket_id"] for p in received] == [ticket_id, marker], device
    sent = await db.fetchval(
        "SELECT count(*) FROM push_logs WHERE notification_id = $1 AND status = 'sent'",
        notification_id,
    )
    assert sent == 2


async def test_an_offline_person_gets_exactly_one_push_per_notification(
    client: Any, db: asyncpg.Pool, settings: Settings, tokens: dict[str, str],
    push_emulator: PushEmulator, worker: None,
) -> None:  # fmt: skip
    reporter = await person(client, db, settings, push_emulator, role="operator")
    await set_prefs(client, reporter, {"types": {"comment_added": {"push": True}}})
    ticket_id = await reported_ticket(client, reporter)
    for n in range(3):
        await comment(client, tokens, ticket_id, f"Checked the bearing, note {n}")
    await wait_for_pushes(push_emulator, reporter, 3)
    await comment(client, tokens, ticket_id, "Marker: after the three")
    inbox = await notification(db, reporter, "comment_added", 4)
    received = await wait_for_pushes(push_emulator, reporter, 4)
    assert sorted(p["data"]["notification_id"] for p in received) == inbox
    assert {p["data"]["type"] for p in received} == {"comment_added"}


async def test_an_online_person_whose_page_acknowledges_gets_no_push(
    client: Any, db: asyncpg.Pool, redis: Redis, settings: Settings, tokens: dict[str, str],
    push_emulator: PushEmulator, worker: None,
) -> None:  # fmt: skip
    reporter = await person(client, db, settings, push_emulator, role="operator")
    await set_prefs(client, reporter, {"types": {"comment_added": {"push": True}}})
    ticket_id = await reported_ticket(client, reporter)
    async with online(redis, settings, reporter):
        await comment(client, tokens, ticket_id, "Seen on the open board")
        [notification_id] = await notification(db, reporter, "comment_added")
        seen = await client.post("/api/notifications/seen", json={"ids": [notification_id]},
                                 headers=reporter.headers)  # fmt: skip
        assert seen.status_code == 200
        # The marker, left unacknowledged, is pushed once its grace ends: after the first's.
        await comment(client, tokens, ticket_id, "Marker: nobody looks at this one")
        [_, marker] = await notification(db, reporter, "comment_added", 2)
        received = await wait_for_pushes(push_emulator, reporter, 1)
    assert [p["data"]["notification_id"] for p in received] == [marker]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM push_logs WHERE notification_id = $1", notification_id
        )
        == 0
    )


async def test_an_online_person_who_does_not_acknowledge_gets_it_after_the_grace(
    client: Any, db: asyncpg.Pool, redis: Redis, settings: Settings, tokens: dict[str, str],
    push_emulator: PushEmulator, worker: None,
) -> None:  # fmt: skip
    reporter = await person(client, db, settings, push_emulator, role="operator")
    await set_prefs(client, reporter, {"types": {"comment_added": {"push": True}}})
    ticket_id = await reported_ticket(client, reporter)
    async with online(redis, settings, reporter):
        await comment(client, tokens, ticket_id, "Nobody looked at this one")
        [push] = await wait_for_pushes(push_emulator, reporter, 1)
    [notification_id] = await notification(db, reporter, "comment_added")
    assert push["data"]["notification_id"] == notification_id
    assert await push_delay_s(db, notification_id) >= settings.push_grace_s - 0.05


async def test_a_critical_notification_is_pushed_at_once_even_online(
    client: Any, db: asyncpg.Pool, redis: Redis, settings: Settings, tokens: dict[str, str],
    push_emulator: PushEmulator, worker: None,
) -> None:  # fmt: skip
    """Order, not timing: a comment written before the second assignment waits out its
    grace (its person is online); the critical assignment does not, so it comes first."""
    tech = await person(client, db, settings, push_emulator)
    await set_prefs(client, tech, {"types": {"comment_added": {"push": True}}})
    async with online(redis, settings, tech):
        first = await assign_new_ticket(client, tokens, tech)
        await wait_for_pushes(push_emulator, tech, 1)
        await comment(client, tokens, first, "Waits for the grace")
        second = await assign_new_ticket(client, tokens, tech, "Critical, after the comment")
        received = await wait_for_pushes(push_emulator, tech, 3)
    assert [(p["data"]["type"], p["data"]["ticket_id"]) for p in received] == [
        ("ticket_assigned", first),
        ("ticket_assigned", second),
        ("comment_added", first),
    ]


async def test_the_previous_assignee_of_a_reassignment_is_never_pushed(
    client: Any, db: asyncpg.Pool, settings: Settings, tokens: dict[str, str],
    push_emulator: PushEmulator, worker: None,
) -> None:  # fmt: skip
    before = await person(client, db, settings, push_emulator)
    after = await person(client, db, settings, push_emulator)
    ticket_id = await assign_new_ticket(client, tokens, before)
    await wait_for_pushes(push_emulator, before, 1)
    response = await client.post(f"/api/tickets/{ticket_id}/assign", json={"assigned_to": after.id},
                                 headers=bearer(tokens["supervisor"]))  # fmt: skip
    assert response.status_code == 200
    [push] = await wait_for_pushes(push_emulator, after, 1)
    assert push["data"]["type"] == "ticket_reassigned"
    await notification(db, before, "ticket_reassigned")  # told in the app...
    marker = await assign_new_ticket(client, tokens, before, "Marker")
    received = await wait_for_pushes(push_emulator, before, 2)
    assert [(p["data"]["type"], p["data"]["ticket_id"]) for p in received] == [
        ("ticket_assigned", ticket_id),
        ("ticket_assigned", marker),
    ]  # ... but not pushed


async def test_a_type_turned_off_is_not_pushed(
    client: Any, db: asyncpg.Pool, settings: Settings, tokens: dict[str, str],
    push_emulator: PushEmulator, worker: None,
) -> None:  # fmt: skip
    tech = await person(client, db, settings, push_emulator)
    await set_prefs(client, tech, {"types": {"ticket_assigned": {"push": False},
                                             "comment_added": {"push": True}}})  # fmt: skip
    ticket_id = await assign_new_ticket(client, tokens, tech)
    await notification(db, tech, "ticket_assigned")
    await comment(client, tokens, ticket_id, "Marker: a type still pushed")
    received = await wait_for_pushes(push_emulator, tech, 1)
    assert [p["data"]["type"] for p in received] == ["comment_added"]


async def test_a_gone_subscription_is_removed(
    client: Any, db: asyncpg.Pool, settings: Settings, tokens: dict[str, str],
    push_emulator: PushEmulator, worker: None,
) -> None:  # fmt: skip
    tech = await person(client, db, settings, push_emulator)
    await push_emulator.expire(tech.devices[0])
    await assign_new_ticket(client, tokens, tech)
    [notification_id] = await notification(db, tech, "ticket_assigned")

    async def removed() -> bool:
        return not await db.fetchval(
            "SELECT count(*) FROM push_subscriptions WHERE user_id = $1", tech.id
        )

    assert await eventually(removed, 10)
    log = await db.fetchrow("SELECT status, http_status FROM push_logs WHERE notification_id = $1",
                            notification_id)  # fmt: skip
    assert (log["status"], log["http_status"]) == ("gone", 410)


def quiet_window_around_now() -> tuple[str, str]:
    now = datetime.now(UTC)
    return (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=1)).strftime(
        "%H:%M"
    )


async def test_quiet_hours_hold_pushes_then_send_one_digest(
    client: Any, db: asyncpg.Pool, settings: Settings, tokens: dict[str, str],
    push_emulator: PushEmulator, worker: None,
) -> None:  # fmt: skip
    tech = await person(client, db, settings, push_emulator)
    start, end = quiet_window_around_now()
    quiet = {
        "enabled": True,
        "start": start,
        "end": end,
        "timezone": "UTC",
        "allow_critical": False,
    }
    await set_prefs(client, tech, {"dnd": quiet})
    for title in ("Conveyor jam", "Spindle noise", "Oil on the floor"):
        await assign_new_ticket(client, tokens, tech, title)
    ids = await notification(db, tech, "ticket_assigned", 3)

    async def all_held() -> bool:
        return bool(
            await db.fetchval("SELECT count(*) FROM push_held WHERE user_id = $1", tech.id) == 3
        )

    assert await eventually(all_held, 10)
    await client.post("/api/notifications/seen", json={"ids": ids[:1]}, headers=tech.headers)

    # Quiet hours end (here: switched off), and the digest follows within the check interval:
    # the first push of all, so none was sent during the quiet hours.
    await set_prefs(client, tech, {"dnd": {"enabled": False}})
    [digest] = await wait_for_pushes(push_emulator, tech, 1)
    assert digest["title"] == "2 notifications pendant votre absence"  # the seen one left out
    assert digest["data"]["url"] == "/" and digest["data"]["type"] == "digest"
    assert "Oil on the floor" in digest["body"] and "Conveyor jam" not in digest["body"]
    marker = await assign_new_ticket(client, tokens, tech, "Marker after the digest")
    received = await wait_for_pushes(push_emulator, tech, 2)
    assert [p["data"].get("ticket_id") for p in received] == [None, marker]  # one digest


async def test_critical_pushes_pierce_quiet_hours_when_allowed(
    client: Any, db: asyncpg.Pool, settings: Settings, tokens: dict[str, str],
    push_emulator: PushEmulator, worker: None,
) -> None:  # fmt: skip
    tech = await person(client, db, settings, push_emulator)
    start, end = quiet_window_around_now()
    await set_prefs(client, tech, {"types": {"comment_added": {"push": True}},
                                   "dnd": {"enabled": True, "start": start, "end": end,
                                           "allow_critical": True}})  # fmt: skip
    ticket_id = await assign_new_ticket(client, tokens, tech)
    [push] = await wait_for_pushes(push_emulator, tech, 1)
    assert push["data"]["type"] == "ticket_assigned"
    await comment(client, tokens, ticket_id, "Not urgent")
    [held] = await notification(db, tech, "comment_added")

    async def is_held() -> bool:
        return bool(
            await db.fetchval("SELECT count(*) FROM push_held WHERE notification_id = $1", held)
        )

    assert await eventually(is_held, 10)
    assert len(await pushes(push_emulator, tech)) == 1


async def test_each_person_reads_a_push_in_their_own_language(
    client: Any, db: asyncpg.Pool, settings: Settings, tokens: dict[str, str],
    push_emulator: PushEmulator, worker: None,
) -> None:  # fmt: skip
    """A French technician assigned a ticket by an English-speaking supervisor reads French;
    an English one, English — title, body and action buttons, decrypted by the emulator."""
    supervisor = bearer(tokens["supervisor"])
    english_actor = await client.patch("/api/auth/me", json={"language": "en"}, headers=supervisor)
    assert (await english_actor.get_json())["language"] == "en"
    french = await person(client, db, settings, push_emulator, language="fr")
    english = await person(client, db, settings, push_emulator, language="en")
    try:
        for assignee in (french, english):
            await assign_new_ticket(client, tokens, assignee, "Fuite hydraulique")
    finally:
        await client.patch("/api/auth/me", json={"language": "fr"}, headers=supervisor)
    [in_french] = await wait_for_pushes(push_emulator, french, 1)
    [in_english] = await wait_for_pushes(push_emulator, english, 1)
    assert in_french["title"] == "Nouveau ticket assigné"
    assert in_french["body"].endswith("\u00a0: Fuite hydraulique")
    assert [a["title"] for a in in_french["actions"]] == ["Voir le ticket", "J\u2019arrive"]
    assert in_english["title"] == "New ticket assigned"
    assert in_english["body"].endswith(": Fuite hydraulique")
    assert [a["title"] for a in in_english["actions"]] == ["View ticket", "On my way"]


async def test_a_comment_and_a_status_change_reach_an_offline_technician_by_default(
    client: Any, db: asyncpg.Pool, settings: Settings, tokens: dict[str, str],
    push_emulator: PushEmulator, worker: None,
) -> None:  # fmt: skip
    """The customer's plan: comments and status changes push without any preference set."""
    tech = await person(client, db, settings, push_emulator)
    ticket_id = await assign_new_ticket(client, tokens, tech, "Courroie")
    await comment(client, tokens, ticket_id, "Pièce commandée")
    moved = await client.put(f"/api/tickets/{ticket_id}", json={"status": "diagnostic"},
                             headers=bearer(tokens["supervisor"]))  # fmt: skip
    assert moved.status_code == 200
    received = await wait_for_pushes(push_emulator, tech, 3)
    kinds = [push["data"]["type"] for push in received]
    assert sorted(kinds) == ["comment_added", "ticket_assigned", "ticket_status_changed"]
    by_kind = {push["data"]["type"]: push for push in received}
    assert by_kind["ticket_status_changed"]["title"] == "Statut modifié\u00a0: Diagnostic"


async def test_admins_change_the_default_push_choices_for_everyone(
    client: Any, db: asyncpg.Pool, settings: Settings, tokens: dict[str, str],
    push_emulator: PushEmulator, worker: None,
) -> None:  # fmt: skip
    """With comments turned off by default, a person who chose nothing gets no comment push;
    one who turned them on still does."""
    admin = bearer(tokens["admin"])
    off = await client.put("/api/settings", json={"default_push": {"comment_added": False}},
                           headers=admin)  # fmt: skip
    assert (
        off.status_code == 200 and (await off.get_json())["default_push"]["comment_added"] is False
    )
    try:
        default = await person(client, db, settings, push_emulator)
        keen = await person(client, db, settings, push_emulator)
        await set_prefs(client, keen, {"types": {"comment_added": {"push": True}}})
        for reporter in (default, keen):
            ticket_id = await reported_ticket(client, reporter)
            await comment(client, tokens, ticket_id, "Vu")
        await wait_for_pushes(push_emulator, keen, 1)
        await notification(db, default, "comment_added")
        # Pushed after the comment would have been: only it may arrive.
        marker = await assign_new_ticket(client, tokens, default, "Marker")

        async def marked() -> list[Any] | None:
            found = [p["data"].get("ticket_id") for p in await pushes(push_emulator, default)]
            return found if marker in found else None

        assert await eventually(marked, 10) == [marker]
    finally:
        back = await client.put("/api/settings", json={"default_push": {"comment_added": True}},
                                headers=admin)  # fmt: skip
        assert back.status_code == 200
