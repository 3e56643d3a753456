"""The inbox: history, read state, seen and clicked, and the badges that follow."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import Keys
from tests.helpers import bearer, eventually


async def _assign_new_ticket(client: Any, tokens: dict[str, str], assignee: int) -> dict[str, Any]:
    response = await client.post(
        "/api/tickets",
        json={"title": "Inbox", "machine_id": 1, "assigned_to": assignee},
        headers=bearer(tokens["supervisor"]),
    )
    return await response.get_json()  # type: ignore[no-any-return]


async def _inbox(client: Any, token: str, query: str = "") -> list[dict[str, Any]]:
    return await (await client.get(f"/api/notifications{query}", headers=bearer(token))).get_json()  # type: ignore[no-any-return]


async def _about(client: Any, token: str, ticket_id: int, query: str = "") -> list[dict[str, Any]]:
    """The caller's notifications about one ticket."""
    inbox = await _inbox(client, token, query)
    return [n for n in inbox if n["data"].get("ticket_id") == ticket_id]


async def test_notification_lands_in_the_assignees_inbox_only(
    client: Any, tokens: dict[str, str], users: dict[str, int], worker: None
) -> None:
    ticket = await _assign_new_ticket(client, tokens, users["tech2"])

    found = await eventually(lambda: _about(client, tokens["tech2"], ticket["id"]))
    assert [(n["type"], n["url"], n["read_at"]) for n in found] == [
        ("ticket_assigned", f"/?ticket={ticket['id']}", None)
    ]
    assert not await _about(client, tokens["supervisor"], ticket["id"])  # the actor


async def test_read_updates_counts_on_every_device(
    client: Any,
    tokens: dict[str, str],
    users: dict[str, int],
    worker: None,
    redis: Redis,
    settings: Settings,
    db: Any,
) -> None:
    ticket = await _assign_new_ticket(client, tokens, users["tech1"])

    found = await eventually(lambda: _about(client, tokens["tech1"], ticket["id"], "?unread=true"))
    item = found[0]
    stream = Keys(settings.redis_prefix).user_stream(users["tech1"])
    position = (await redis.xrevrange(stream, count=1))[0][0].decode()
    before = await db.fetchval(
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL", users["tech1"]
    )
    response = await client.post(
        f"/api/notifications/{item['id']}/read", headers=bearer(tokens["tech1"])
    )
    assert (await response.get_json()) == {"updated": 1}
    after = (
        await (
            await client.get("/api/notifications/unread-count", headers=bearer(tokens["tech1"]))
        ).get_json()
    )["count"]
    assert after <= before - 1

    async def badge_update() -> bool:
        later = await redis.xrange(stream, min=f"({position}")
        return any(fields[b"t"] == b"unread_count" for _, fields in later)

    assert await eventually(badge_update)  # every device of tech1 hears the new count


async def test_others_notifications_are_404(
    client: Any, tokens: dict[str, str], users: dict[str, int], worker: None
) -> None:
    ticket = await _assign_new_ticket(client, tokens, users["tech1"])

    item = (await eventually(lambda: _about(client, tokens["tech1"], ticket["id"])))[0]
    for action in ("read", "clicked"):
        response = await client.post(
            f"/api/notifications/{item['id']}/{action}", headers=bearer(tokens["tech2"])
        )
        assert response.status_code == 404
    seen = await client.post(
        "/api/notifications/seen", json={"ids": [item["id"]]}, headers=bearer(tokens["tech2"])
    )
    assert (await seen.get_json()) == {"updated": 0}  # silently not theirs
    seen = await client.post(
        "/api/notifications/seen", json={"ids": [item["id"]]}, headers=bearer(tokens["tech1"])
    )
    assert (await seen.get_json()) == {"updated": 1}
    clicked = await client.post(
        f"/api/notifications/{item['id']}/clicked", headers=bearer(tokens["tech1"])
    )
    assert (await clicked.get_json()) == {"updated": 1}


async def test_read_all_and_bad_input(client: Any, tokens: dict[str, str]) -> None:
    response = await client.post("/api/notifications/read-all", headers=bearer(tokens["tech2"]))
    assert response.status_code == 200
    count = await (
        await client.get("/api/notifications/unread-count", headers=bearer(tokens["tech2"]))
    ).get_json()
    assert count == {"count": 0}
    for body in ({}, {"ids": []}, {"ids": ["x"]}, {"ids": list(range(501))}):
        response = await client.post(
            "/api/notifications/seen", json=body, headers=bearer(tokens["tech2"])
        )
        assert response.status_code == 422
    for query in ("?limit=0", "?limit=abc", "?before=-1", "?limit=100000"):
        response = await client.get(f"/api/notifications{query}", headers=bearer(tokens["tech2"]))
        assert response.status_code == 422


async def test_inapp_off_keeps_the_inbox_but_sends_no_live_toast(
    client: Any,
    tokens: dict[str, str],
    users: dict[str, int],
    worker: None,
    redis: Redis,
    settings: Settings,
) -> None:
    off = {"types": {"comment_added": {"inapp": False}}}
    response = await client.put(
        "/api/notifications/preferences", json=off, headers=bearer(tokens["operator"])
    )
    assert response.status_code == 200
    created = await client.post(
        "/api/tickets", json={"title": "Quiet", "machine_id": 1}, headers=bearer(tokens["operator"])
    )
    ticket = await created.get_json()
    await client.post(
        f"/api/tickets/{ticket['id']}/comments",
        json={"body": "Checked"},
        headers=bearer(tokens["tech1"]),
    )

    notification = (await eventually(lambda: _about(client, tokens["operator"], ticket["id"])))[0]
    assert notification["type"] == "comment_added"
    stream = Keys(settings.redis_prefix).user_stream(users["operator"])
    entries = await redis.xrange(stream)
    live_ids = [json.loads(f[b"e"]).get("notification_id") for _, f in entries]
    assert notification["id"] not in live_ids
    on = {"types": {"comment_added": {"inapp": True}}}
    await client.put("/api/notifications/preferences", json=on, headers=bearer(tokens["operator"]))
