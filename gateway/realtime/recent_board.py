"""The board's latest entries in a hub's memory, so that resumes need no Redis read."""

from __future__ import annotations

from bisect import bisect_right

from gateway.realtime.connection import Item
from gateway.wire import id_key, now_ms

RECENT_BOARD = 10_000  # board entries kept in memory for resumes


class RecentBoard:
    """The board's latest entries, as this hub read them: a resume whose board position
    is among them (after a restart, nearly all are) catches up from memory, with no
    Redis read and no parsing, and exactly in step with what the hub offers live."""

    def __init__(self, floor: str, retention_ms: int, size: int = RECENT_BOARD) -> None:
        self._items: list[Item] = []
        self._floor = id_key(floor)  # every entry after this one is in `_items`
        self._retention_ms = retention_ms
        self._size = size

    def add(self, item: Item) -> None:
        self._items.append(item)
        if len(self._items) >= 2 * self._size:  # trimmed in bulk, not per entry
            self._floor = self._items[-self._size - 1].key
            del self._items[: -self._size]

    def after(self, pos: str) -> list[Item] | None:
        """The entries after `pos`, or None when memory cannot tell (older than what is
        kept, or newer than what was read): Redis decides then."""
        key = id_key(pos)
        newest = self._items[-1].key if self._items else self._floor
        # Past the retention, the stream's trimming decides, as on any other instance.
        if key < self._floor or key > newest or key[0] < now_ms() - self._retention_ms:
            return None
        return self._items[bisect_right(self._items, key, key=lambda item: item.key) :]
