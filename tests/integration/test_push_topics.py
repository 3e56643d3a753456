"""The `Topic` rule against a push service that honours it: pushes of one ticket waiting
for an offline phone replace each other, but never a critical one.

The notifications come from real writes (the session worker routes them); their person
has no device the session worker could reach, so this test alone pushes them, to a push
service of its own that keeps what waits for the phone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from gateway.config import Settings
from gateway.push.dispatch import Dispatcher, Job
from gateway.push.guard import EndpointGuard
from gateway.push.payload import notification_message
from gateway.push.sender import PushSender, VapidTokens
from gateway.push.store import notifications_to_push
from tests.helpers import bearer, eventually, fresh_user
from tests.push_fixtures import TopicPushService


@pytest.fixture
async def phone_service() -> AsyncIterator[TopicPushService]:
    service = await TopicPushService().start()
    yield service
    await service.stop()


async def _notifications(db: asyncpg.Pool, user_id: int, count: int) -> list[int]:
    async def stored() -> list[int] | None:
        rows = await db.fetch(
            "SELECT id FROM notifications WHERE user_id = $1 ORDER BY id", user_id
        )
        return [row["id"] for row in rows] if len(rows) >= count else None

    found = await eventually(stored, 10)
    assert found
    return found


async def _push_in_order(
    db: asyncpg.Pool, settings: Settings, service: TopicPushService, ids: list[int]
) -> None:
    tokens = VapidTokens(settings.vapid_private_key, settings.vapid_subject)
    guard = EndpointGuard.from_origins([service.origin])
    async with PushSender(guard, tokens) as sender:
        dispatcher = Dispatcher(db, sender)
        for row in await notifications_to_push(db, ids):  # one at a time, as they happened
            await dispatcher.deliver([Job(row["user_id"], notification_message(row), row["id"])])


async def test_a_lesser_push_never_replaces_a_waiting_critical_one(
    client: Any, db: asyncpg.Pool, settings: Settings, tokens: dict[str, str],
    phone_service: TopicPushService, worker: None,
) -> None:  # fmt: skip
    tech = await fresh_user(db, "technician", "en")
    supervisor = bearer(tokens["supervisor"])
    created = await client.post(
        "/api/tickets", headers=supervisor,
        json={"title": "Press 4 jammed", "machine_id": 1, "priority": "high", "assigned_to": tech},
    )  # fmt: skip
    ticket_id = (await created.get_json())["id"]
    for note in ("Parts ordered", "Parts arrived"):
        response = await client.post(
            f"/api/tickets/{ticket_id}/comments", json={"body": note}, headers=supervisor
        )
        assert response.status_code == 201
    ids = await _notifications(db, tech, 3)  # the assignment, then the two comments
    keys = phone_service.device.keys
    await db.execute(
        "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth) VALUES ($1, $2, $3, $4)",
        tech, phone_service.endpoint(), keys["p256dh"], keys["auth"],
    )  # fmt: skip

    await _push_in_order(db, settings, phone_service, ids)  # the phone is offline meanwhile
    delivered = phone_service.come_online()

    assert [push["data"]["type"] for push in delivered] == ["ticket_assigned", "comment_added"]
    assignment, comment = delivered
    assert assignment["title"] == "New ticket assigned"
    assert assignment["body"].endswith(": Press 4 jammed")
    assert comment["body"] == "Parts arrived"  # the later comment replaced the earlier one
    topics = [r.headers["Topic"] for r in phone_service.received]
    assert topics == [f"critical-ticket-{ticket_id}", f"ticket-{ticket_id}", f"ticket-{ticket_id}"]
