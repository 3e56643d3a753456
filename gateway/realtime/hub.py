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
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from gateway.config import Settings
from gateway.keys import Keys
from gateway.metrics import SSE_CONNECTIONS
from gateway.realtime.batching import RoundTrips
from gateway.realtime.connection import HEARTBEAT, Connection, Item, item_from, live_item
from gateway.realtime.cursor import Cursor, CursorRejected, parse_cursor
from gateway.realtime.presence import PRESENCE_REPLIES, Presence
from gateway.realtime.recent_board import RecentBoard
from gateway.retry import Backoff
from gateway.streams import Entry, as_reply, last_id
from gateway.wire import START, USER_B, id_key

log = logging.getLogger(__name__)
BLOCK_MS = 2000
READ_COUNT = 1000
CATCH_UP_MAX = 5000
DISPATCH_CHUNK = 100  # entries offered before connections get to write


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
            connections = self._by_user.get(int(fields[USER_B]))
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
