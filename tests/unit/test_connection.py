"""One SSE connection's queue: frames in stream order, presence coalesced per user and
outside the slow-reader bound."""

from __future__ import annotations

import json
import re

from gateway.realtime.connection import Connection, Item, item_from
from gateway.realtime.cursor import Cursor

START = Cursor(7, "1-0", "1-0", "e1")


def board_entry(ms: int, event_type: str, data: dict[str, object]) -> Item:
    body = json.dumps({"type": event_type, "ts": "t", "actor_id": None, "data": data})
    fields = {b"t": event_type.encode(), b"e": body.encode()}
    return item_from(True, f"{ms}-0".encode(), fields)


def presence(ms: int, user: int, online: bool) -> Item:
    return board_entry(ms, "presence", {"user_id": user, "online": online})


def sent(frames: str) -> list[tuple[str, str]]:
    """(id, event) of each frame."""
    return re.findall(r"id: (\S+)\nevent: (\S+)\n", frames)


async def test_a_storm_of_presence_costs_no_connection() -> None:
    conn = Connection(START, max_frames=2)
    for user in range(100):
        item = presence(10 + user, user, True)
        conn.offer_presence(item, user)
    assert not conn.cut_off
    frames, ending = await conn.next_frames()
    assert len(sent(frames)) == 100 and not ending


async def test_only_the_latest_change_of_a_user_waits() -> None:
    conn = Connection(START, max_frames=10)
    conn.offer_presence(presence(10, 3, False), 3)
    conn.offer_presence(presence(11, 4, True), 4)
    conn.offer_presence(presence(12, 3, True), 3)  # back before the first was written
    frames, _ = await conn.next_frames()
    bodies = [json.loads(line[6:]) for line in frames.splitlines() if line.startswith("data: ")]
    assert [(b["data"]["user_id"], b["data"]["online"]) for b in bodies] == [(4, True), (3, True)]
    assert [b["id"] for b in bodies] == ["7:1-0:11-0:e1", "7:1-0:12-0:e1"]


async def test_presence_and_board_changes_keep_stream_order() -> None:
    conn = Connection(START, max_frames=10)
    conn.offer_presence(presence(10, 3, True), 3)
    conn.offer(board_entry(11, "ticket_moved", {"ticket": {"id": 1}}))
    conn.offer_presence(presence(12, 4, True), 4)
    frames, _ = await conn.next_frames()
    assert sent(frames) == [
        ("7:1-0:10-0:e1", "presence"),
        ("7:1-0:11-0:e1", "ticket_moved"),
        ("7:1-0:12-0:e1", "presence"),
    ]


async def test_other_entries_still_cut_off_a_slow_reader() -> None:
    conn = Connection(START, max_frames=2)
    for ms in range(10, 13):
        conn.offer(board_entry(ms, "ticket_moved", {"ticket": {"id": ms}}))
    assert conn.cut_off
