"""The per-instance stream hub: one Redis reader serving every local SSE connection.

A single task XREADs two streams, whatever the number of users connected here — the
board stream and the live stream (every user-stream entry, mirrored with its user and
id) — with an explicit last id per key, never `$`. It builds each entry's frame body
once and offers it to every local connection that should see it. Each connection has a
bounded queue: a client too slow to read is cut off (it resumes by id) instead of
growing memory; presence changes wait beside the queue, the latest per user. Catch-up
on connect reads the user's own stream, which keeps history, and takes the board's
part from the latest board entries the hub keeps in memory when it can.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from gateway.config import Settings
from gateway.cursor import START, Cursor, CursorRejected, id_key, parse_cursor
from gateway.keys import Keys
from gateway.metrics import SSE_CONNECTIONS, SSE_SLOW_DISCONNECTS
from gateway.presence import PRESENCE_REPLIES, Presence
from gateway.retry import Backoff
from gateway.round_trips import RoundTrips
from gateway.streams import Entry, as_reply, last_id, now_ms

log = logging.getLogger(__name__)
BLOCK_MS = 2000
READ_COUNT = 1000
CATCH_UP_MAX = 5000
RECENT_BOARD = 10_000  # board entries kept in memory for resumes
DISPATCH_CHUNK = 100  # entries offered before connections get to write


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
HEARTBEAT_FRAME = ": heartbeat\n\n"
# Queued when a connection's first pending presence change arrives: wakes its writer.
PRESENCE_PENDING = Item(board=False, entry_id="", key=(-1, -1), event_type="", tail="")
WRITE_BATCH = 256  # queued items written in one send


def render(frame_id: str, event_type: str, tail: str) -> str:
    """An SSE frame. `tail` is JSON (no raw line breaks); `event_type` is sanitised once,
    when its item is built."""
    return f'id: {frame_id}\nevent: {event_type}\ndata: {{"id":"{frame_id}",{tail}\n\n'


def item_from(board: bool, entry_id: bytes, fields: dict[bytes, bytes]) -> Item:
    text = entry_id.decode()
    event_type = fields[b"t"].decode().replace("\r", "").replace("\n", "")
    body = fields[b"e"].decode()
    presence_of = json.loads(body)["data"]["user_id"] if event_type == "presence" else None
    return Item(board, text, id_key(text), event_type, body[1:], presence_of)


def live_item(fields: dict[bytes, bytes]) -> Item:
    """A live-stream entry as it stands in its user's own stream."""
    return item_from(False, fields[b"i"], fields)


class Connection:
    """One SSE client: its bounded queue and its position in both streams."""

    def __init__(self, cursor: Cursor, max_frames: int) -> None:
        self.id = uuid.uuid4().hex
        self.user_id = cursor.user_id
        self._user_pos, self._board_pos = cursor.user_pos, cursor.board_pos
        self._user_key, self._board_key = id_key(cursor.user_pos), id_key(cursor.board_pos)
        self.queue: asyncio.Queue[Item | None] = asyncio.Queue(max_frames)
        # Presence is state: per user only the latest change waits to be written, outside
        # the queue's bound, so a storm of arrivals (every one told to everyone) costs no
        # one their connection, and a flap not yet written goes out once.
        self._presence: dict[int, Item] = {}
        self.cut_off = False
        # When it last sent something, and when presence last heard of it: heartbeats
        # and refreshes fall due per connection, spread over time, not all at once.
        self.last_write = self.refreshed_at = time.monotonic()

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.user_id, self._user_pos, self._board_pos)

    def start_at(self, cursor: Cursor) -> None:
        """Set where this connection stands; queued entries up to there are dropped."""
        self._user_pos, self._board_pos = cursor.user_pos, cursor.board_pos
        self._user_key, self._board_key = id_key(cursor.user_pos), id_key(cursor.board_pos)

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
        frames = "".join(frame for item in items if (frame := self.frame(item)))
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
        frame_id = f"{self.user_id}:{self._user_pos}:{self._board_pos}"
        return render(frame_id, item.event_type, item.tail)


@dataclass(frozen=True)
class Opened:
    """A registered connection, why it was reset (if it was), its catch-up frames."""

    connection: Connection
    reset: str | None
    catch_up: list[str]


def _raise_errors(replies: list[Any]) -> None:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply


def _first_id(entries: list[Entry]) -> str:
    return entries[0][0].decode() if entries else START


def _check_position(info: dict[str, Any] | Exception, pos: str) -> None:
    """Refuse a position no longer (or never) in its stream; `info` is its XINFO STREAM,
    or the error of a stream that does not exist."""
    if isinstance(info, Exception):  # no such stream: nothing ever there, or all expired
        if pos != START:
            raise CursorRejected("expired")
        return
    if id_key(pos) > id_key(info["last-generated-id"]):
        raise CursorRejected("unknown")
    trimmed = int(info["entries-added"]) > int(info["length"])
    first = info.get("first-entry")
    if trimmed and (first is None or id_key(pos) < id_key(first[0])):
        raise CursorRejected("expired")


def _queue_catch_up(pipe: Pipeline, stream: str, pos: str) -> None:
    pipe.xinfo_stream(stream)  # an error reply when the stream does not exist
    pipe.xrange(stream, min=f"({pos}", count=CATCH_UP_MAX + 1)


def _caught_up(replies: list[Any], pos: str, board: bool) -> list[Item]:
    """The entries after `pos`, from `_queue_catch_up`'s replies, once the position is
    checked against what the stream still holds."""
    info, entries = replies
    _check_position(info, pos)
    if isinstance(entries, Exception):
        raise entries
    return [item_from(board, entry_id, fields) for entry_id, fields in entries]


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


class Hub:
    def __init__(self, settings: Settings, keys: Keys, control: Redis) -> None:
        self._settings, self._keys, self._control = settings, keys, control
        self.presence = Presence(control, keys, settings.sse_heartbeat_s)
        self._round_trips = RoundTrips(control)  # connects and drops come in storms
        self._by_user: dict[int, set[Connection]] = {}
        self._board_pos = self._live_pos = START
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._reader = Redis.from_url(self._settings.redis_url, single_connection_client=True)
        self._board_pos = await last_id(self._control, self._keys.board_stream)
        self._live_pos = await last_id(self._control, self._keys.live_stream)
        retention_ms = self._settings.stream_retention_hours * 3600 * 1000
        self._recent = RecentBoard(self._board_pos, retention_ms)
        self._tasks = [
            asyncio.create_task(self._read_loop()),
            asyncio.create_task(self._beat_loop()),
        ]

    async def close(self) -> None:
        """End every stream (clients reconnect elsewhere), then stop reading."""
        self._closing = True
        for connections in self._by_user.values():
            for conn in connections:
                conn.offer(None)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._reader.aclose()

    async def open(self, user_id: int, last_event_id: str | None, max_frames: int) -> Opened:
        """A new connection, registered before its position is decided, so that nothing
        appended meanwhile is missed (entries seen twice are dropped by id). Presence,
        position and catch-up take one Redis round trip (two after a rejected id); the
        board's part comes from memory when it can."""
        conn = Connection(Cursor(user_id), max_frames)
        self._by_user.setdefault(user_id, set()).add(conn)
        SSE_CONNECTIONS.inc()
        # What this hub has read of the board: anything later reaches `conn` live.
        board_now = self._board_pos
        cursor, reset, board_items = None, None, None
        if last_event_id:
            try:
                cursor = parse_cursor(last_event_id, user_id)
                board_items = self._recent.after(cursor.board_pos)
            except CursorRejected as rejected:
                reset = rejected.reason
        user_stream = self._keys.user_stream(user_id)

        def queue(pipe: Pipeline) -> None:
            self.presence.connect(pipe, user_id, conn.id)
            if cursor is None:
                pipe.xrevrange(user_stream, count=1)
                return
            _queue_catch_up(pipe, user_stream, cursor.user_pos)
            if board_items is None:
                _queue_catch_up(pipe, self._keys.board_stream, cursor.board_pos)

        replies = await self._round_trips.run(queue)
        _raise_errors(replies[:PRESENCE_REPLIES])
        replies = replies[PRESENCE_REPLIES:]
        if cursor:
            try:
                items = _caught_up(replies[:2], cursor.user_pos, board=False)
                if board_items is None:
                    board_items = _caught_up(replies[2:], cursor.board_pos, board=True)
                items += board_items
                return Opened(conn, None, self._frames_after(conn, cursor, items))
            except CursorRejected as rejected:
                reset = rejected.reason
            replies = await self._round_trips.run(lambda pipe: pipe.xrevrange(user_stream, count=1))
            _raise_errors(replies)
        conn.start_at(Cursor(user_id, _first_id(replies[0]), board_now))
        return Opened(conn, reset, [])

    @staticmethod
    def _frames_after(conn: Connection, cursor: Cursor, items: list[Item]) -> list[str]:
        """The catch-up frames, in stream-id order; of a user's presence changes only the
        last (presence is state: the flaps of a mass reconnect replay as nothing)."""
        latest = {item.presence_of: item for item in items if item.presence_of is not None}
        items = [
            item for item in items if item.presence_of is None or latest[item.presence_of] is item
        ]
        if len(items) > CATCH_UP_MAX:
            raise CursorRejected("too_far_behind")
        conn.start_at(cursor)
        items.sort(key=lambda item: item.key)
        return [frame for item in items if (frame := conn.frame(item))]

    async def unregister(self, conn: Connection) -> None:
        connections = self._by_user.get(conn.user_id, set())
        if conn in connections:
            connections.discard(conn)
            SSE_CONNECTIONS.dec()
        if not connections:
            self._by_user.pop(conn.user_id, None)
        await self._round_trips.run(
            lambda pipe: self.presence.disconnect(pipe, conn.user_id, conn.id)
        )

    async def _read_loop(self) -> None:
        backoff = Backoff()
        board, live = self._keys.board_stream, self._keys.live_stream
        while not self._closing:
            try:
                reply = as_reply(
                    await self._reader.xread(
                        {board: self._board_pos, live: self._live_pos},
                        count=READ_COUNT,
                        block=BLOCK_MS,
                    )
                )
                backoff.reset()
            except (RedisError, OSError) as exc:
                delay = backoff.next_delay()
                log.warning("hub: Redis read failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            for stream, entries in reply:
                dispatch = self._dispatch_board if stream.decode() == board else self._dispatch_live
                for start in range(0, len(entries), DISPATCH_CHUNK):
                    dispatch(entries[start : start + DISPATCH_CHUNK])
                    # Let the connections write before the next chunk: a burst (a
                    # thousand arrivals' presence) must not fill their queues at once.
                    await asyncio.sleep(0)

    def _dispatch_board(self, entries: list[Entry]) -> None:
        for entry_id, fields in entries:
            item = item_from(True, entry_id, fields)
            self._board_pos = item.entry_id
            self._recent.add(item)
            user = item.presence_of
            for connections in self._by_user.values():
                for conn in connections:
                    if user is None:
                        conn.offer(item)
                    else:
                        conn.offer_presence(item, user)

    def _dispatch_live(self, entries: list[Entry]) -> None:
        for entry_id, fields in entries:
            self._live_pos = entry_id.decode()
            connections = self._by_user.get(int(fields[b"u"]))
            if connections:
                item = live_item(fields)
                for conn in connections:
                    conn.offer(item)

    async def _beat_loop(self) -> None:
        """A few times per heartbeat period (one timer for all connections): a comment to
        each connection that sent nothing for a heartbeat, and a presence refresh for those
        last refreshed a heartbeat ago. Due times follow when each connection opened, so
        twenty thousand connections do not all beat in the same instant."""
        period = self._settings.sse_heartbeat_s
        while not self._closing:
            await asyncio.sleep(min(1.0, period / 4))
            now, due = time.monotonic(), []
            for connections in self._by_user.values():
                for conn in connections:
                    if now - conn.last_write >= period and conn.queue.empty():
                        conn.offer(HEARTBEAT)
                    if now - conn.refreshed_at >= period:
                        due.append(conn)
            if not due:
                continue
            try:
                await self.presence.refresh([(conn.user_id, conn.id) for conn in due])
            except (RedisError, OSError) as exc:
                log.warning("hub: presence refresh failed: %s", exc)
                continue
            for conn in due:
                conn.refreshed_at = now
