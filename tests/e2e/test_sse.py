"""The SSE stream over real HTTP from real gateway processes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.keys import Keys
from tests.gateway_process import GatewayProcess, open_stream
from tests.helpers import api, eventually


async def new_ticket(
    session: aiohttp.ClientSession,
    gateway: GatewayProcess,
    tokens: dict[str, str],
    assignee: int | None = None,
    title: str = "Stream me",
) -> dict[str, Any]:
    body: dict[str, Any] = {"title": title, "machine_id": 1}
    if assignee:
        body["assigned_to"] = assignee
    return await api(session, gateway, tokens["supervisor"], "POST", "/api/tickets", body)  # type: ignore[no-any-return]


async def test_wire_format(
    session: aiohttp.ClientSession,
    gateway: GatewayProcess,
    tokens: dict[str, str],
    users: dict[str, int],
) -> None:
    stream = await open_stream(session, gateway.url, tokens["tech1"])
    headers = stream.response.headers
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-cache" and headers["X-Accel-Buffering"] == "no"
    assert await stream.next_frame() == "retry: 3000\n"
    connected = await stream.next_event()
    assert connected.event == "connected"
    assert connected.data["data"] == {
        "user_id": users["tech1"],
        "instance": gateway.name,
        "resumed": False,
    }
    assert connected.data["id"] == connected.id

    ticket = await new_ticket(
        session, gateway, tokens, assignee=users["tech1"], title="Line\r\ndata: forged"
    )
    events = await stream.events_until(lambda e: e.event == "ticket_assigned")
    assigned = events[-1]
    lines = assigned.raw.split("\n")
    assert lines[0] == f"id: {assigned.id}" and lines[1] == "event: ticket_assigned"
    assert lines[2].startswith("data: {") and lines[3:] == ["", ""]  # one data line, blank line
    envelope = assigned.data
    assert envelope["id"] == assigned.id and envelope["type"] == "ticket_assigned"
    assert envelope["actor_id"] == users["supervisor"] and envelope["ts"]
    assert envelope["url"] == f"/?ticket={ticket['id']}" and envelope["notification_id"] > 0
    assert "forged" in envelope["data"]["body"]  # text with CR/LF stays inside one data line
    assert any(
        e.event == "ticket_created" and e.data["data"]["ticket"]["id"] == ticket["id"]
        for e in events
    )
    await stream.response.release()


async def test_heartbeat(
    session: aiohttp.ClientSession, gateway: GatewayProcess, tokens: dict[str, str]
) -> None:
    stream = await open_stream(session, gateway.url, tokens["operator"])
    await stream.next_event()
    while stream.raw[-1] != ": heartbeat\n\n":  # every second in the test settings
        await stream.next_frame(timeout_s=3)
    await stream.response.release()


async def test_resume_replays_missed_events_exactly_once(
    session: aiohttp.ClientSession,
    gateway: GatewayProcess,
    tokens: dict[str, str],
    users: dict[str, int],
) -> None:
    stream = await open_stream(session, gateway.url, tokens["tech2"])
    await stream.next_event()
    first = await new_ticket(session, gateway, tokens, assignee=users["tech2"])
    got = await stream.events_until(lambda e: e.event == "ticket_assigned")
    last_id = got[-1].id
    stream.response.close()

    missed = [
        await new_ticket(session, gateway, tokens, assignee=users["tech2"], title=f"missed {i}")
        for i in range(3)
    ]
    await asyncio.sleep(0.5)  # let the worker route them
    resumed = await open_stream(session, gateway.url, tokens["tech2"], last_event_id=last_id)
    connected = await resumed.next_event()
    assert connected.data["data"]["resumed"] is True
    replay = await resumed.events_until(
        lambda e: e.event == "ticket_assigned" and e.data["data"]["ticket_id"] == missed[-1]["id"]
    )
    assigned = [e.data["data"]["ticket_id"] for e in replay if e.event == "ticket_assigned"]
    assert assigned == [t["id"] for t in missed]
    assert first["id"] not in assigned
    ids = [e.id for e in replay]
    assert len(ids) == len(set(ids))
    assert [tuple(i.split(":")) for i in ids] == sorted(tuple(i.split(":")) for i in ids)
    resumed.response.close()


async def test_reset_for_malformed_foreign_and_expired_ids(
    session: aiohttp.ClientSession,
    gateway: GatewayProcess,
    spare_gateway: Callable[..., GatewayProcess],
    tokens: dict[str, str],
    users: dict[str, int],
    redis: Redis,
    settings: Settings,
) -> None:
    probe = await open_stream(session, gateway.url, tokens["operator"])
    epoch = (await probe.next_event()).id.split(":")[3]  # type: ignore[union-attr]
    probe.response.close()
    uid = users["operator"]
    other = f"{users['tech1']}:0-0:0-0:{epoch}"
    for last_id, reason in (
        ("garbage", "malformed"),
        (other, "foreign"),
        (f"0:0-0:0-0:{epoch}", "foreign"),
        (f"{uid}:0-0:0-0:{epoch}x", "malformed"),
        (f"{uid}:0-0:0-0:0123abcd", "history_lost"),  # another generation of the history
        (f"{uid}:0-0:0-0", "history_lost"),  # an id from before generations
    ):
        stream = await open_stream(session, gateway.url, tokens["operator"], last_event_id=last_id)
        assert (await stream.next_event()).event == "connected"
        reset = await stream.next_event()
        assert (reset.event, reset.data["data"]["reason"]) == ("reset", reason)
        stream.response.close()
    # The query parameter works as well (EventSource polyfills).
    stream = await open_stream(
        session, gateway.url, tokens["operator"], last_event_id="x", query=True
    )
    await stream.next_event()
    assert (await stream.next_event()).event == "reset"
    stream.response.close()
    # History trimmed past the id: reset, then live events.
    keys = Keys(settings.redis_prefix)
    await new_ticket(session, gateway, tokens)
    board = keys.board_stream
    await eventually(lambda: redis.xlen(board))
    oldest = (await redis.xrange(board, count=1))[0][0].decode()
    stale = f"{uid}:0-0:{oldest}:{epoch}"
    await redis.xtrim(board, minid=f"{int(oldest.split('-')[0]) + 1}-0", approximate=False)
    await new_ticket(session, gateway, tokens)
    ahead = f"{uid}:0-0:99999999999999-0:{epoch}"  # never handed out
    stream = await open_stream(session, gateway.url, tokens["operator"], last_event_id=ahead)
    await stream.next_event()
    assert (await stream.next_event()).data["data"]["reason"] == "unknown"
    stream.response.close()
    # An instance started after the trim: this one still holds the entry in memory.
    fresh = spare_gateway("gw-after-trim")
    stream = await open_stream(session, fresh.url, tokens["operator"], last_event_id=stale)
    await stream.next_event()
    reset = await stream.next_event()
    assert reset.data["data"]["reason"] == "expired"
    await new_ticket(session, gateway, tokens, title="after reset")
    live = await stream.events_until(
        lambda e: e.event == "ticket_created" and e.data["data"]["ticket"]["title"] == "after reset"
    )
    assert live
    stream.response.close()


async def test_user_never_sees_anothers_notifications(
    session: aiohttp.ClientSession,
    gateway: GatewayProcess,
    tokens: dict[str, str],
    users: dict[str, int],
) -> None:
    spy = await open_stream(session, gateway.url, tokens["operator"])
    await spy.next_event()
    ticket = await new_ticket(
        session, gateway, tokens, assignee=users["tech1"], title="private to tech1"
    )
    seen = await spy.events_until(
        lambda e: e.event == "ticket_created" and e.data["data"]["ticket"]["id"] == ticket["id"]
    )
    await asyncio.sleep(0.5)
    assert not any(e.data.get("notification_id") for e in seen)
    spy.response.close()


async def test_several_connections_of_one_user_each_get_everything(
    session: aiohttp.ClientSession,
    gateway: GatewayProcess,
    tokens: dict[str, str],
    users: dict[str, int],
) -> None:
    phone = await open_stream(session, gateway.url, tokens["tech1"])
    desktop = await open_stream(session, gateway.url, tokens["tech1"])
    await phone.next_event()
    await desktop.next_event()
    ticket = await new_ticket(session, gateway, tokens, assignee=users["tech1"])
    for device in (phone, desktop):
        got = await device.events_until(
            lambda e: e.event == "ticket_assigned" and e.data["data"]["ticket_id"] == ticket["id"]
        )
        assert got[-1].data["notification_id"]
        device.response.close()


async def test_resume_on_another_instance_after_sigkill(
    session: aiohttp.ClientSession,
    spare_gateway: Callable[..., GatewayProcess],
    tokens: dict[str, str],
    users: dict[str, int],
    gateway: GatewayProcess,
) -> None:
    doomed = spare_gateway("gw-doomed")
    stream = await open_stream(session, doomed.url, tokens["tech1"])
    await stream.next_event()
    await new_ticket(session, gateway, tokens, assignee=users["tech1"])
    last = (await stream.events_until(lambda e: e.event == "ticket_assigned"))[-1].id
    doomed.kill()
    missed = [await new_ticket(session, gateway, tokens, assignee=users["tech1"]) for _ in range(3)]
    await asyncio.sleep(0.5)
    resumed = await open_stream(session, gateway.url, tokens["tech1"], last_event_id=last)
    assert (await resumed.next_event()).data["data"]["instance"] == gateway.name
    got = await resumed.events_until(
        lambda e: e.event == "ticket_assigned" and e.data["data"]["ticket_id"] == missed[-1]["id"]
    )
    assert [e.data["data"]["ticket_id"] for e in got if e.event == "ticket_assigned"] == [
        t["id"] for t in missed
    ]
    resumed.response.close()


async def test_slow_reader_is_cut_off_while_others_stay_live(
    settings: Settings,
    tokens: dict[str, str],
    redis: Redis,
    session: aiohttp.ClientSession,
    spare_gateway: Callable[..., GatewayProcess],
) -> None:
    small = spare_gateway("gw-small", SSE_QUEUE_FRAMES="10")
    reader, writer = await asyncio.open_connection("127.0.0.1", small.port)
    auth = f"Authorization: Bearer {tokens['operator']}"
    writer.write(f"GET /api/sse/stream HTTP/1.1\r\nHost: x\r\n{auth}\r\n\r\n".encode())
    await writer.drain()
    await reader.readuntil(b"event: connected")  # then never read again
    healthy = await open_stream(session, small.url, tokens["admin"])
    await healthy.next_event()
    board = Keys(settings.redis_prefix).board_stream
    payload = json.dumps(
        {
            "type": "broadcast",
            "ts": "",
            "actor_id": None,
            "data": {"title": "load", "body": "x" * 65536},
        }
    )
    for _ in range(300):  # ~20 MB: more than socket buffers and the 10-frame queue hold
        await redis.xadd(board, {"t": "broadcast", "e": payload})
        await healthy.events_until(lambda e: e.event == "broadcast")

    async def metric() -> bool:
        async with session.get(small.url + "/metrics") as response:
            text = await response.text()
        return "floorbell_sse_slow_disconnects_total 1.0" in text

    assert await eventually(metric, 10)
    await redis.xadd(board, {"t": "broadcast", "e": payload.replace("load", "still live")})
    got = await healthy.events_until(lambda e: e.event == "broadcast")
    assert got[-1].data["data"]["title"] == "still live"
    writer.close()
    healthy.response.close()


async def test_presence_across_instances(
    session: aiohttp.ClientSession,
    spare_gateway: Callable[..., GatewayProcess],
    tokens: dict[str, str],
    users: dict[str, int],
    gateway: GatewayProcess,
) -> None:
    other = spare_gateway("gw-presence")
    watcher = await open_stream(session, gateway.url, tokens["admin"])
    await watcher.next_event()
    ops = users["operator"]

    async def online_on_main() -> bool:
        rows = await api(session, gateway, tokens["admin"], "GET", "/api/presence")
        return any(r["user_id"] == ops and r["online"] for r in rows)

    stream = await open_stream(session, other.url, tokens["operator"])
    await stream.next_event()
    assert await watcher.events_until(
        lambda e: e.event == "presence" and e.data["data"] == {"user_id": ops, "online": True}
    )
    assert await eventually(online_on_main)
    other.kill()  # no clean-up: its connections must lapse on their own
    gone = await watcher.events_until(
        lambda e: e.event == "presence" and e.data["data"] == {"user_id": ops, "online": False},
        timeout_s=8,
    )
    assert gone
    assert not await online_on_main()
    watcher.response.close()
