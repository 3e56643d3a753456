"""One SSE connection as the hub sees it: its bounded frame queue, the presence changes
waiting beside it, its position in both streams, and how its writes go.

The hub builds each stream entry's `Item` once and offers it to every connection that
should see it; a connection whose queue overflows is cut off (it resumes by id) instead
of growing memory. A connection writes what is queued in one send; a send that does not
complete (the client stopped reading: a sleeping phone, a half-open NAT) gets the
connection dropped by the hub — its socket aborted, so its buffers go too.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.metrics import SSE_SLOW_DISCONNECTS
from gateway.realtime.cursor import Cursor
from gateway.wire import (
    ENVELOPE_B,
    HEARTBEAT_FRAME,
    USER_ENTRY_B,
    event_type_of,
    frame,
    id_key,
    sse_id,
)

WRITE_BATCH = 256  # queued items written in one send


@dataclass(frozen=True)
class Item:
    """One stream entry, ready to frame: `tail` is its envelope JSON minus the leading `{`.
    Built once per entry and shared by every connection it is offered to."""

    board: bool
    entry_id: str
    key: tuple[int, int]  # entry_id, comparable
    event_type: str
    tail: str
    presence_of: int | None = None  # the user a `presence` entry is about


# Offered by the hub to idle connections every heartbeat: an SSE comment, no event.
HEARTBEAT = Item(board=False, entry_id="", key=(-1, -1), event_type="", tail="")
# Queued when a connection's first pending presence change arrives: wakes its writer.
PRESENCE_PENDING = Item(board=False, entry_id="", key=(-1, -1), event_type="", tail="")


def item_from(board: bool, entry_id: bytes, fields: dict[bytes, bytes]) -> Item:
    text = entry_id.decode()
    event_type = event_type_of(fields)
    body = fields[ENVELOPE_B].decode()
    presence_of = json.loads(body)["data"]["user_id"] if event_type == "presence" else None
    return Item(board, text, id_key(text), event_type, body[1:], presence_of)


def live_item(fields: dict[bytes, bytes]) -> Item:
    """A live-stream entry as it stands in its user's own stream."""
    return item_from(False, fields[USER_ENTRY_B], fields)


class Connection:
    """One SSE client: its bounded queue and its position in both streams."""

    def __init__(self, cursor: Cursor, max_frames: int) -> None:
        self.id = uuid.uuid4().hex
        self.user_id = cursor.user_id
        self.start_at(cursor)
        self.queue: asyncio.Queue[Item | None] = asyncio.Queue(max_frames)
        # Presence is state: per user only the latest change waits to be written, outside
        # the queue's bound, so a storm of arrivals (every one told to everyone) costs no
        # one their connection, and a flap not yet written goes out once.
        self._presence: dict[int, Item] = {}
        self.cut_off = False
        # When it last sent something, and when presence last heard of it: heartbeats
        # and refreshes fall due per connection, spread over time, not all at once.
        self.last_write = self.refreshed_at = time.monotonic()
        # Set while a send is under way (a monotonic time), by whoever writes the stream.
        self._writing_since: float | None = None
        self._abort: Callable[[], None] | None = None
        self.dropped = False
        # The round trip that records it in presence: its disconnect must land after.
        self.recorded: asyncio.Future[list[Any]] | None = None

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.user_id, self._user_pos, self._board_pos, self._epoch)

    def start_at(self, cursor: Cursor) -> None:
        """Set where this connection stands; queued entries up to there are dropped."""
        self._user_pos, self._board_pos, self._epoch = (
            cursor.user_pos,
            cursor.board_pos,
            cursor.epoch,
        )
        self._user_key, self._board_key = id_key(cursor.user_pos), id_key(cursor.board_pos)

    # -- writes --------------------------------------------------------------------------

    def attach(self, abort: Callable[[], None]) -> None:
        """How to drop this connection at once (abort its socket)."""
        self._abort = abort

    def writing(self, under_way: bool) -> None:
        """A send starts (True) or has completed (False)."""
        self._writing_since = time.monotonic() if under_way else None

    def writing_for(self, now: float) -> float | None:
        """How long the send under way has taken, if one is."""
        return None if self._writing_since is None else now - self._writing_since

    def drop(self) -> None:
        """Disconnect a client that stopped reading: abort its socket (the stream's
        writer then ends, and the connection is unregistered)."""
        if self.dropped:
            return
        self.dropped = True
        if not self.cut_off:
            SSE_SLOW_DISCONNECTS.inc()
        self.cut_off = True
        if self._abort is not None:
            self._abort()

    def offer(self, item: Item | None) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            if not self.cut_off:
                SSE_SLOW_DISCONNECTS.inc()
            self.cut_off = True

    def offer_presence(self, item: Item, user_id: int) -> None:
        if not self._presence:
            self.offer(PRESENCE_PENDING)
        self._presence[user_id] = item

    async def next_frames(self) -> tuple[str, bool]:
        """What to send next, waiting for it: the frames of everything queued (up to a
        batch) and of the pending presence changes, in stream order; and whether the
        stream ends after them (the instance is shutting down)."""
        batch = [await self.queue.get()]
        while len(batch) < WRITE_BATCH and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        ending = None in batch
        items = [item for item in batch if item is not None]
        if self._presence:
            items += self._presence.values()
            self._presence = {}
            items.sort(key=lambda item: item.key)
        frames = "".join(text for item in items if (text := self.frame(item)))
        if frames:
            self.last_write = time.monotonic()
        return frames, ending

    def frame(self, item: Item) -> str | None:
        """The frame for `item`, or None when this connection already sent it. The hot
        path of a busy board: positions are kept as comparable tuples."""
        if item is HEARTBEAT:
            return HEARTBEAT_FRAME
        if item is PRESENCE_PENDING:
            return None
        if item.board:
            if item.key <= self._board_key:
                return None
            self._board_pos, self._board_key = item.entry_id, item.key
        else:
            if item.key <= self._user_key:
                return None
            self._user_pos, self._user_key = item.entry_id, item.key
        frame_id = sse_id(self.user_id, self._user_pos, self._board_pos, self._epoch)
        return frame(frame_id, item.event_type, item.tail)
