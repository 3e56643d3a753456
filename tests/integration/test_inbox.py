"""The inbox: history, read state, seen and clicked, and the badges that follow."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import Keys
from tests.helpers import bearer, eventually, fresh_user, token_for


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


async def _unread_counts(redis: Redis, stream: str) -> list[dict[str, int]]:
    """The `unread_count` events of a user's stream, in order."""
    return [
        json.loads(fields[b"e"])["data"]
        for _, fields in await redis.xrange(stream)
        if fields[b"t"] == b"unread_count"
    ]


async def test_read_updates_counts_on_every_device(
    client: Any,
    tokens: dict[str, str],
    worker: None,
    redis: Redis,
    settings: Settings,
    db: Any,
) -> None:
    """A person of one's own, so the counts are known: 1 unread once assigned, 0 once read;
    the stream every device follows says both, in that order."""
    tech = await fresh_user(db)
    token = token_for(settings.jwt_secret, tech)
    ticket = await _assign_new_ticket(client, tokens, tech)
    stream = Keys(settings.redis_prefix).user_stream(tech)

    async def told_of_one() -> bool:
        return [c["notifications"] for c in await _unread_counts(redis, stream)] == [1]

    assert await eventually(told_of_one)
    [item] = await _about(client, token, ticket["id"], "?unread=true")
    response = await client.post(f"/api/notifications/{item['id']}/read", headers=bearer(token))
    assert (await response.get_json()) == {"updated": 1}
    count = await client.get("/api/notifications/unread-count", headers=bearer(token))
    assert await count.get_json() == {"count": 0}

    async def told_of_none() -> list[int]:
        return [c["notifications"] for c in await _unread_counts(redis, stream)]

    assert await eventually(lambda: _equals(told_of_none, [1, 0]))


async def _equals(probe: Any, expected: Any) -> bool:
    return bool(await probe() == expected)


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
    worker: None,
    redis: Redis,
    settings: Settings,
    db: Any,
) -> None:
    operator = await fresh_user(db, "operator")
    headers = bearer(token_for(settings.jwt_secret, operator, "operator"))
    off = {"types": {"comment_added": {"inapp": False}}}
    response = await client.put("/api/notifications/preferences", json=off, headers=headers)
    assert response.status_code == 200
    created = await client.post(
        "/api/tickets", json={"title": "Quiet", "machine_id": 1}, headers=headers
    )
    ticket = await created.get_json()
    await client.post(
        f"/api/tickets/{ticket['id']}/comments",
        json={"body": "Checked"},
        headers=bearer(tokens["tech1"]),
    )
    notification = (await eventually(lambda: _about(client, headers["Authorization"][7:],
                                                    ticket["id"])))[0]  # fmt: skip
    assert notification["type"] == "comment_added"
    # A message written after the comment is routed after it: once it is on the stream,
    # the comment's toast would be there too, had it been sent.
    body = {"message_type": "private", "recipient_id": operator, "content": "marker"}
    sent = await client.post("/api/messages", json=body, headers=bearer(tokens["admin"]))
    marker = (await sent.get_json())["id"]
    stream = Keys(settings.redis_prefix).user_stream(operator)

    async def live() -> list[dict[str, Any]]:
        entries = [json.loads(f[b"e"]) for _, f in await redis.xrange(stream)]
        shown = [e for e in entries if e.get("notification_id")]
        return shown if any(e["data"].get("message_id") == marker for e in shown) else []

    shown = await eventually(live)
    assert [e["type"] for e in shown] == ["new_message"]
    assert notification["id"] not in [e["notification_id"] for e in shown]


async def test_before_pages_back_through_the_inbox(
    client: Any, tokens: dict[str, str], worker: None, settings: Settings, db: Any
) -> None:
    tech = await fresh_user(db)
    headers = bearer(token_for(settings.jwt_secret, tech))
    for _ in range(5):
        await _assign_new_ticket(client, tokens, tech)

    async def all_five() -> list[dict[str, Any]]:
        found = await _inbox(client, headers["Authorization"][7:], "?limit=50")
        return found if len(found) == 5 else []

    everything = [n["id"] for n in await eventually(all_five)]
    assert everything == sorted(everything, reverse=True)  # newest first
    pages, before = [], None
    while True:
        query = f"?limit=2{f'&before={before}' if before else ''}"
        page = [n["id"] for n in await _inbox(client, headers["Authorization"][7:], query)]
        if not page:
            break
        pages.append(page)
        before = page[-1]
    assert pages == [everything[0:2], everything[2:4], everything[4:5]]
    unread_first = await _inbox(
        client, headers["Authorization"][7:], f"?unread=true&before={everything[1]}"
    )
    assert [n["id"] for n in unread_first] == everything[2:]
