"""The per-instance stream hub: one Redis reader serving every local SSE connection.

A single task XREADs two streams, whatever the number of users connected here — the
board stream and the live stream (every user-stream entry, mirrored with its user and
id) — with an explicit last id per key, never `$`. It builds each entry's frame body
once and offers it to every local connection that should see it. Each connection has a
bounded queue: a client too slow to read is cut off (it resumes by id) instead of
growing memory. Catch-up on connect reads the user's own stream, which keeps history.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from gateway.batch import RoundTrips
from gateway.config import Settings
from gateway.cursor import START, Cursor, CursorRejected, id_key, parse_cursor
from gateway.keys import Keys
from gateway.metrics import SSE_CONNECTIONS, SSE_SLOW_DISCONNECTS
from gateway.presence import PRESENCE_REPLIES, Presence
from gateway.retry import Backoff
from gateway.streams import Entry, as_reply, last_id

log = logging.getLogger(__name__)
BLOCK_MS = 2000
READ_COUNT = 1000
CATCH_UP_MAX = 5000


@dataclass(frozen=True)
class Item:
    """One stream entry, ready to frame: `tail` is its envelope JSON minus the leading `{`.
    Built once per entry and shared by every connection it is offered to."""

    board: bool
    entry_id: str
    key: tuple[int, int]  # entry_id, comparable
    event_type: str
    tail: str


# Offered by the hub to idle connections every heartbeat: an SSE comment, no event.
HEARTBEAT = Item(board=False, entry_id="", key=(-1, -1), event_type="", tail="")
HEARTBEAT_FRAME = ": heartbeat\n\n"


def render(frame_id: str, event_type: str, tail: str) -> str:
    """An SSE frame. `tail` is JSON (no raw line breaks); `event_type` is sanitised once,
    when its item is built."""
    return f'id: {frame_id}\nevent: {event_type}\ndata: {{"id":"{frame_id}",{tail}\n\n'


def item_from(board: bool, entry_id: bytes, fields: dict[bytes, bytes]) -> Item:
    text = entry_id.decode()
    event_type = fields[b"t"].decode().replace("\r", "").replace("\n", "")
    return Item(board, text, id_key(text), event_type, fields[b"e"].decode()[1:])


def live_item(fields: dict[bytes, bytes]) -> tuple[int, Item]:
    """A live-stream entry: its user, and the item as it stands in that user's stream."""
    return int(fields[b"u"]), item_from(False, fields[b"i"], fields)


class Connection:
    """One SSE client: its bounded queue and its position in both streams."""

    def __init__(self, cursor: Cursor, max_frames: int) -> None:
        self.id = uuid.uuid4().hex
        self.user_id = cursor.user_id
        self._user_pos, self._board_pos = cursor.user_pos, cursor.board_pos
        self._user_key, self._board_key = id_key(cursor.user_pos), id_key(cursor.board_pos)
        self.queue: asyncio.Queue[Item | None] = asyncio.Queue(max_frames)
        self.cut_off = False

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

    def frame(self, item: Item) -> str | None:
        """The frame for `item`, or None when this connection already sent it. The hot
        path of a busy board: positions are kept as comparable tuples."""
        if item is HEARTBEAT:
            return HEARTBEAT_FRAME
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
        self._board_pos = await self.tail(self._keys.board_stream)
        self._live_pos = await self.tail(self._keys.live_stream)
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

    async def tail(self, stream: str) -> str:
        return await last_id(self._control, stream)

    async def open(self, user_id: int, last_event_id: str | None, max_frames: int) -> Opened:
        """A new connection, registered before its position is decided, so that nothing
        appended meanwhile is missed (entries seen twice are dropped by id). Presence,
        position and catch-up take one Redis round trip (two after a rejected id)."""
        conn = Connection(Cursor(user_id), max_frames)
        self._by_user.setdefault(user_id, set()).add(conn)
        SSE_CONNECTIONS.inc()
        cursor, reset = None, None
        if last_event_id:
            try:
                cursor = parse_cursor(last_event_id, user_id)
            except CursorRejected as rejected:
                reset = rejected.reason

        def queue(pipe: Pipeline) -> None:
            self.presence.connect(pipe, user_id, conn.id)
            if cursor:
                self._queue_catch_up(pipe, cursor)
            else:
                self._queue_tails(pipe, user_id)

        replies = await self._round_trips.run(queue)
        _raise_errors(replies[:PRESENCE_REPLIES])
        replies = replies[PRESENCE_REPLIES:]
        if cursor:
            try:
                return Opened(conn, None, self._catch_up(conn, cursor, replies))
            except CursorRejected as rejected:
                reset = rejected.reason
            replies = await self._round_trips.run(lambda pipe: self._queue_tails(pipe, user_id))
            _raise_errors(replies)
        user_last, board_last = replies
        conn.start_at(Cursor(user_id, _first_id(user_last), _first_id(board_last)))
        return Opened(conn, reset, [])

    def _queue_tails(self, pipe: Pipeline, user_id: int) -> None:
        pipe.xrevrange(self._keys.user_stream(user_id), count=1)
        pipe.xrevrange(self._keys.board_stream, count=1)

    def _streams(self, cursor: Cursor) -> tuple[tuple[str, str, bool], ...]:
        """(stream, position in it, is the board) for both streams a connection follows."""
        return (
            (self._keys.user_stream(cursor.user_id), cursor.user_pos, False),
            (self._keys.board_stream, cursor.board_pos, True),
        )

    def _queue_catch_up(self, pipe: Pipeline, cursor: Cursor) -> None:
        for stream, pos, _ in self._streams(cursor):
            pipe.xinfo_stream(stream)  # an error reply when the stream does not exist
            pipe.xrange(stream, min=f"({pos}", count=CATCH_UP_MAX + 1)

    def _catch_up(self, conn: Connection, cursor: Cursor, replies: list[Any]) -> list[str]:
        """Check the id against what the streams still hold; the frames of what came
        after it, in stream-id order."""
        items: list[Item] = []
        for index, (_, pos, board) in enumerate(self._streams(cursor)):
            info, entries = replies[2 * index], replies[2 * index + 1]
            _check_position(info, pos)
            if isinstance(entries, Exception):
                raise entries
            if len(entries) > CATCH_UP_MAX:
                raise CursorRejected("too_far_behind")
            items += [item_from(board, entry_id, fields) for entry_id, fields in entries]
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
                if stream.decode() == board:
                    self._dispatch_board(entries)
                else:
                    self._dispatch_live(entries)

    def _dispatch_board(self, entries: list[Entry]) -> None:
        for entry_id, fields in entries:
            item = item_from(True, entry_id, fields)
            self._board_pos = item.entry_id
            for connections in self._by_user.values():
                for conn in connections:
                    conn.offer(item)

    def _dispatch_live(self, entries: list[Entry]) -> None:
        for entry_id, fields in entries:
            self._live_pos = entry_id.decode()
            connections = self._by_user.get(int(fields[b"u"]))
            if connections:
                _, item = live_item(fields)
                for conn in connections:
                    conn.offer(item)

    async def _beat_loop(self) -> None:
        """Every heartbeat: a comment to each idle connection (one timer for all, not one
        per connection), and this instance's connections marked live in presence."""
        while not self._closing:
            await asyncio.sleep(self._settings.sse_heartbeat_s)
            connections = [c for conns in self._by_user.values() for c in conns]
            for conn in connections:
                if conn.queue.empty():
                    conn.offer(HEARTBEAT)
            live = [(c.user_id, c.id) for c in connections]
            try:
                await self.presence.refresh(live)
            except (RedisError, OSError) as exc:
                log.warning("hub: presence refresh failed: %s", exc)
