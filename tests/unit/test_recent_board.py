"""The board entries a hub keeps in memory for resumes: what it can answer, and when it
must leave the answer to Redis."""

from __future__ import annotations

from gateway.realtime.connection import Item
from gateway.realtime.recent_board import RecentBoard
from gateway.wire import now_ms

HOUR_MS = 3600 * 1000


def item(ms: int, seq: int = 0) -> Item:
    entry_id = f"{ms}-{seq}"
    return Item(True, entry_id, (ms, seq), "ticket_moved", '"type":"ticket_moved"}')


def ids(items: list[Item] | None) -> list[str] | None:
    return None if items is None else [i.entry_id for i in items]


def test_entries_after_a_position_it_saw() -> None:
    start = now_ms()
    recent = RecentBoard(f"{start}-0", HOUR_MS)
    for n in range(1, 6):
        recent.add(item(start + n))
    assert ids(recent.after(f"{start + 2}-0")) == [f"{start + n}-0" for n in (3, 4, 5)]
    assert ids(recent.after(f"{start}-0")) == [f"{start + n}-0" for n in range(1, 6)]
    assert recent.after(f"{start + 5}-0") == []  # up to date
    assert recent.after(f"{start + 2}-7") is not None  # between entries: still answerable


def test_what_it_cannot_tell_is_left_to_redis() -> None:
    start = now_ms()
    recent = RecentBoard(f"{start}-0", HOUR_MS)
    recent.add(item(start + 1))
    assert recent.after(f"{start - 1}-0") is None  # before this hub started reading
    assert recent.after(f"{start + 2}-0") is None  # not read yet (or never handed out)


def test_trimming_moves_the_floor() -> None:
    start = now_ms()
    recent = RecentBoard(f"{start}-0", HOUR_MS, size=3)
    for n in range(1, 7):
        recent.add(item(start + n))
    assert recent.after(f"{start + 2}-0") is None  # dropped from memory
    assert ids(recent.after(f"{start + 3}-0")) == [f"{start + n}-0" for n in (4, 5, 6)]


def test_past_the_retention_the_stream_decides() -> None:
    old = now_ms() - 2 * HOUR_MS
    recent = RecentBoard(f"{old}-0", HOUR_MS)
    recent.add(item(old + 1))
    recent.add(item(now_ms()))
    assert recent.after(f"{old + 1}-0") is None
