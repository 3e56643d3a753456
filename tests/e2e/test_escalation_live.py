"""An unanswered critical alert, end to end on a floor of its own: a real `floorbell
serve`, the worker (relay, router, push fan-out) and the push emulator; the clock's pass
is given the moment it runs at. The escalation reaches each step's people live, in their
inbox and on their phones (through quiet hours when they allow critical alerts), every
open board sees where it escalated, the ticket's timeline tells the story, and the
statistics count it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from gateway.clock.escalation import climb
from gateway.config import Settings
from tests.gateway_process import GatewayProcess, SseEvent, open_stream
from tests.helpers import api, eventually, fresh_user, token_for
from tests.push_fixtures import PushEmulator

Floor = tuple[Settings, asyncpg.Pool]


class Someone:
    def __init__(self, floor: Floor, user_id: int, role: str) -> None:
        self.id, self.role = user_id, role
        self.token = token_for(floor[0].jwt_secret, user_id, role)
        self.device: str | None = None  # the emulator's client hash


async def someone(
    floor: Floor, session: aiohttp.ClientSession, gateway: GatewayProcess,
    emulator: PushEmulator | None, role: str, dnd: dict[str, Any] | None = None,
) -> Someone:  # fmt: skip
    person = Someone(floor, await fresh_user(floor[1], role), role)
    if emulator is not None:
        browser = await emulator.subscribe(floor[0].vapid_public_key)
        body = {"subscription": {"endpoint": browser["endpoint"], "keys": browser["keys"]}}
        await api(session, gateway, person.token, "POST", "/api/push/subscribe", body)
        person.device = browser["clientHash"]
    if dnd is not None:
        await api(session, gateway, person.token, "PUT", "/api/notifications/preferences",
                  {"dnd": dnd})  # fmt: skip
    return person


def quiet_now(allow_critical: bool) -> dict[str, Any]:
    """Quiet hours around the present moment, whatever the time of day the test runs."""
    now = datetime.now(UTC)
    start, end = (
        (now - timedelta(hours=1)).strftime("%H:%M"),
        (now + timedelta(hours=1)).strftime("%H:%M"),
    )
    return {"enabled": True, "start": start, "end": end, "timezone": "UTC",
            "allow_critical": allow_critical}  # fmt: skip


def is_escalation(to: str) -> Any:
    return lambda e: e.event == "ticket_escalated" and e.data["data"]["to"] == to


def board_card(event: SseEvent) -> dict[str, Any]:
    card: dict[str, Any] = event.data["data"]["ticket"]
    return card


async def test_an_unanswered_alert_climbs_to_its_people_and_stops_at_the_answer(
    floor: Floor, own_gateway: GatewayProcess, session: aiohttp.ClientSession,
    push_emulator: PushEmulator,
) -> None:  # fmt: skip
    pool = floor[1]
    tech = await someone(floor, session, own_gateway, push_emulator, "technician")
    allows = await someone(floor, session, own_gateway, push_emulator, "supervisor",
                           quiet_now(allow_critical=True))  # fmt: skip
    holds = await someone(floor, session, own_gateway, push_emulator, "supervisor",
                          quiet_now(allow_critical=False))  # fmt: skip
    admin = await someone(floor, session, own_gateway, None, "admin")
    tech_stream = await open_stream(session, own_gateway.url, tech.token)
    board = await open_stream(session, own_gateway.url, admin.token)  # another open board
    await tech_stream.next_event()  # connected
    await board.next_event()

    ticket = await api(session, own_gateway, admin.token, "POST", "/api/tickets", {
        "title": "Press P-200 jammed", "machine_id": 1, "priority": "critical",
        "assigned_to": tech.id,
    })  # fmt: skip
    assert ticket["waiting_since"] is not None and ticket["escalated_to"] is None
    await tech_stream.events_until(lambda e: e.event == "ticket_assigned")
    since = datetime.fromisoformat(ticket["waiting_since"])

    assert await climb(pool, since + timedelta(minutes=10)) >= 2  # the reminder, the supervisors
    got = await tech_stream.events_until(is_escalation("assignee"))
    reminder = got[-1].data
    assert reminder["data"]["critical"] is True and reminder["data"]["step"] == 1
    assert reminder["data"]["title"].startswith("Rappel")  # a fresh account reads French
    cards = await board.events_until(
        lambda e: e.event == "ticket_updated" and board_card(e)["escalated_to"] == "supervisors"
    )
    card = board_card(cards[-1])
    assert card["id"] == ticket["id"] and card["waiting_since"] == ticket["waiting_since"]
    assert card["escalated_at"] == (since + timedelta(minutes=10)).isoformat()

    async def pushed(person: Someone) -> list[dict[str, Any]]:
        assert person.device is not None
        return [p for p in await push_emulator.messages(person.device)
                if p["data"]["type"] == "ticket_escalated"]  # fmt: skip

    [push] = await eventually(lambda: pushed(allows), 10)  # through quiet hours
    assert push["title"].startswith("⚠ Sans réponse depuis 10") and "actions" not in push
    [reminded] = await eventually(lambda: pushed(tech), 10)
    assert [a["action"] for a in reminded["actions"]] == ["view", "acknowledge"]
    held = await eventually(lambda: pool.fetchval(
        "SELECT count(*) FROM push_held h JOIN notifications n ON n.id = h.notification_id"
        " WHERE h.user_id = $1 AND n.type = 'ticket_escalated'", holds.id,
    ), 10)  # fmt: skip
    assert held == 1 and await pushed(holds) == []
    inbox = await api(session, own_gateway, holds.token, "GET", "/api/notifications")
    assert [n["type"] for n in inbox] == ["ticket_escalated"] and inbox[0]["critical"]

    await api(session, own_gateway, tech.token, "POST", f"/api/tickets/{ticket['id']}/acknowledge")
    moved = await board.events_until(lambda e: e.event == "ticket_moved")
    assert board_card(moved[-1])["waiting_since"] is None  # every board stops the clock
    assert await climb(pool, since + timedelta(minutes=60)) == 0

    await _the_timeline_tells_it(session, own_gateway, ticket["id"], tech, admin, allows)
    await _the_statistics_count_it(session, own_gateway, admin, since)
    for stream in (tech_stream, board):
        stream.response.close()


async def _the_timeline_tells_it(
    session: aiohttp.ClientSession, gateway: GatewayProcess, ticket_id: int,
    tech: Someone, admin: Someone, supervisor: Someone,
) -> None:  # fmt: skip
    path = f"/api/tickets/{ticket_id}/timeline"

    async def delivered() -> dict[str, Any] | None:  # the gateway writes its stamps each second
        found = await api(session, gateway, admin.token, "GET", path)
        kinds = {(e["what"], e["user_id"]) for e in found["entries"]}
        return found if ("delivered", tech.id) in kinds and ("pushed", tech.id) in kinds else None

    timeline = await eventually(delivered, 10)
    assert timeline is not None
    story = [(e["what"], e["user_id"]) for e in timeline["entries"]
             if e["user_id"] in (None, tech.id, admin.id)]  # fmt: skip
    assert story[:3] == [("created", admin.id), ("waiting", None), ("assigned", tech.id)]
    # The clock's pass ran at "ten minutes later": its steps sort after the real-time answer.
    assert story[-2:] == [("escalated", None), ("escalated", None)]
    assert [e["to"] for e in timeline["entries"] if e["what"] == "escalated"] == [
        "assignee", "supervisors",
    ]  # fmt: skip
    [answered] = [e for e in timeline["entries"] if e["what"] == "answered"]
    assert answered["user_id"] == tech.id and answered["answer"] == "acknowledged"
    assert answered["user_name"]
    assert timeline["waiting"]["answer"] == "acknowledged"
    assert ("pushed", supervisor.id) in {(e["what"], e["user_id"]) for e in timeline["entries"]}
    # A technician sees their own deliveries, not the supervisors'.
    own = await api(session, gateway, tech.token, "GET", path)
    assert {e["user_id"] for e in own["entries"] if e["what"] == "notified"} == {tech.id}


async def _the_statistics_count_it(
    session: aiohttp.ClientSession, gateway: GatewayProcess, admin: Someone, since: datetime
) -> None:
    async def framed() -> dict[str, Any] | None:  # the gateway writes its stamps each second
        stats = await api(session, gateway, admin.token, "GET", "/api/admin/notification-stats")
        live = stats["types"]["ticket_escalated"]["delivered_live"]
        return stats if live >= 1 else None  # the reminder reached the assignee's open app

    stats = await eventually(framed, 10)
    escalated = stats["types"]["ticket_escalated"]
    assert escalated["created"] >= 3 and escalated["pushed"] >= 2
    assert stats["latency"]["frame"]["count"] >= 1 and stats["latency"]["push"]["count"] >= 1
    assert sum(stats["latency"]["push"]["counts"]) == stats["latency"]["push"]["count"]
    assert len(stats["acknowledgement"]) == 30  # the last 30 days, today included
    [today] = [d for d in stats["acknowledgement"] if d["day"] == since.date().isoformat()]
    assert today["alerts"] >= 1 and today["answered"] >= 1 and today["median_s"] is not None
    assert today["escalated"] >= 1 and today["escalated_to"]["supervisors"] >= 1
