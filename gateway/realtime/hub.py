"""The per-instance stream hub: one Redis reader serving every local SSE connection.

A single reader XREADs two streams, whatever the number of users connected here — the
board stream and the live stream (every user-stream entry, mirrored with its user and
id) — with an explicit last id per key, never `$`. It builds each entry's frame body
once and offers it to every local connection that should see it. Each connection has a
bounded queue: a client too slow to read is cut off (it resumes by id) instead of
growing memory, and one whose writes stall for `SSE_WRITE_TIMEOUT_SECONDS` is
disconnected; presence changes wait beside the queue, the latest per user. Catch-up on
connect reads the user's own stream, which keeps history, and takes the board's part
from the latest board entries the hub keeps in memory when it can.

The history has a generation (`gateway.history`: created by the first reader of a
history, lost with it, renewed when another primary serves it), carried in every
cursor: a resume from another generation is told `history_lost`, and when the hub sees
the generation change under it (Redis lost its data, or failed over) it ends every
stream, so that each client resumes and is told.

A connection is registered and unregistered by one context (`Hub.connection`), which
also covers an open that fails or is abandoned halfway: none can stay behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from gateway.config import Settings
from gateway.history import began_ms, queue_generation
from gateway.keys import Keys
from gateway.metrics import SSE_CONNECTIONS
from gateway.realtime.batching import RoundTrips
from gateway.realtime.connection import HEARTBEAT, Connection, Item, item_from, live_item
from gateway.realtime.cursor import Cursor, CursorRejected, parse_cursor
from gateway.realtime.framed import FLUSH_EVERY_S, FramedStamps
from gateway.realtime.presence import PRESENCE_REPLIES, Presence
from gateway.realtime.recent_board import RecentBoard
from gateway.redis_client import redis_client
from gateway.streams import Entry, as_reply, as_text, last_id
from gateway.supervision import Loop, shielded
from gateway.wire import START, USER_B, id_key

log = logging.getLogger(__name__)
BLOCK_MS = 2000
READ_COUNT = 1000
CATCH_UP_MAX = 5000
DISPATCH_CHUNK = 100  # entries offered before connections get to write
EPOCH_REPLIES = 1  # of `queue_generation`
UNSTAMPED = frozenset({"unread_count"})  # user-stream entries that are no notification


@dataclass(frozen=True)
class Opened:
    """An opened connection: where it stands before its catch-up (what `connected`
    carries), why it was reset (if it was), and its catch-up frames."""

    connection: Connection
    start: Cursor
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
    # Redis 7 counts every entry ever added; on 6.2, a position other than the start that
    # is older than the first entry left is taken as trimmed past.
    added = info.get("entries-added")
    trimmed = int(added) > int(info["length"]) if added is not None else pos != START
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


def _note_framed(framed: FramedStamps, item: Item) -> None:
    """A notification handed to its person's live connections (once per instance)."""
    notification_id = json.loads("{" + item.tail).get("notification_id")
    if isinstance(notification_id, int):
        framed.note(notification_id)


class Hub:
    def __init__(
        self, settings: Settings, keys: Keys, control: Redis, framed: FramedStamps | None = None
    ) -> None:
        """`framed`: where the hub notes each notification it hands to a live connection."""
        self._settings, self._keys, self._control = settings, keys, control
        self._framed = framed
        self.presence = Presence(control, keys, settings.sse_heartbeat_s)
        self._round_trips = RoundTrips(control)  # connects and drops come in storms
        self._by_user: dict[int, set[Connection]] = {}
        self._board_pos = self._live_pos = START
        self._epoch = ""
        self._to_generation_start = False  # a new generation: where it began is yet to read
        self._closing = False
        self._retention_ms = settings.stream_retention_hours * 3600 * 1000
        self._recent = RecentBoard(START, self._retention_ms)

    async def start(self) -> None:
        self._reader = redis_client(self._settings, "hub-reader", single_connection=True)
        async with self._control.pipeline(transaction=False) as pipe:
            self._queue_epoch(pipe)
            *_, epoch = await pipe.execute()
        self._epoch = as_text(epoch)
        self._board_pos = await last_id(self._control, self._keys.board_stream)
        self._live_pos = await last_id(self._control, self._keys.live_stream)
        self._recent = RecentBoard(self._board_pos, self._retention_ms)

    def loops(self) -> list[Loop]:
        """What the process's supervisor runs: the reader and the heartbeats."""
        beat_s = min(1.0, self._settings.sse_heartbeat_s / 4)
        loops = [
            Loop("hub_reader", self.read_pass, 0.0, stale_after_s=3 * BLOCK_MS / 1000 + 5),
            Loop("hub_heartbeats", self.beat_pass, beat_s),
        ]
        if self._framed is not None:  # its drain writes what is noted as the process stops
            framed = self._framed
            loops.append(Loop("framed_stamps", framed.flush, FLUSH_EVERY_S, drain=framed.flush))
        return loops

    async def close(self) -> None:
        """End every stream (clients reconnect elsewhere), then stop reading."""
        self._closing = True
        self._end_streams()
        await self._reader.aclose()

    def _end_streams(self) -> None:
        for connections in self._by_user.values():
            for conn in connections:
                conn.offer(None)

    # -- connections ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def connection(
        self, user_id: int, last_event_id: str | None, max_frames: int
    ) -> AsyncIterator[Opened]:
        """A connection for the time of the block: registered before its position is
        decided (so that nothing appended meanwhile is missed; entries seen twice are
        dropped by id), unregistered however the block ends — an open that fails or is
        cancelled halfway included."""
        conn = Connection(Cursor(user_id), max_frames)
        self._by_user.setdefault(user_id, set()).add(conn)
        SSE_CONNECTIONS.inc()
        try:
            if self._closing:
                conn.offer(None)  # the instance is stopping: the stream ends at once
            yield await self._open(conn, last_event_id)
        finally:
            await shielded(self._unregister(conn))

    async def _open(self, conn: Connection, last_event_id: str | None) -> Opened:
        """Presence, generation, position and catch-up take one Redis round trip (two
        after a rejected id); the board's part comes from memory when it can."""
        user_id = conn.user_id
        # What this hub has read of the board: anything later reaches `conn` live.
        board_now = self._board_pos
        cursor, reset, board_items = None, None, None
        if last_event_id:
            try:
                cursor = parse_cursor(last_event_id, user_id)
                if cursor.epoch == self._epoch:
                    board_items = self._recent.after(cursor.board_pos)
            except CursorRejected as rejected:
                reset = rejected.reason
        user_stream = self._keys.user_stream(user_id)

        def queue(pipe: Pipeline) -> None:
            self.presence.connect(pipe, user_id, conn.id)
            self._queue_epoch(pipe)
            if cursor is None:
                pipe.xrevrange(user_stream, count=1)
                return
            _queue_catch_up(pipe, user_stream, cursor.user_pos)
            if board_items is None:
                _queue_catch_up(pipe, self._keys.board_stream, cursor.board_pos)

        # Shielded: an open abandoned here (the client gone) leaves the round trip going,
        # and the disconnect waits for it, or it could reach Redis first on another
        # connection and leave the connection in presence.
        conn.recorded = self._round_trips.submit(queue)
        replies = await asyncio.shield(conn.recorded)
        _raise_errors(replies[: PRESENCE_REPLIES + EPOCH_REPLIES])
        epoch = as_text(replies[PRESENCE_REPLIES + EPOCH_REPLIES - 1])
        replies = replies[PRESENCE_REPLIES + EPOCH_REPLIES :]
        if epoch != self._epoch:  # the reader has not seen it yet: see to it now
            self._new_history(epoch)
        if cursor:
            try:
                if cursor.epoch != epoch:
                    raise CursorRejected("history_lost")
                items = _caught_up(replies[:2], cursor.user_pos, board=False)
                if board_items is None:
                    board_items = _caught_up(replies[2:], cursor.board_pos, board=True)
                items += board_items
                return Opened(conn, cursor, None, self._frames_after(conn, cursor, items))
            except CursorRejected as rejected:
                reset = rejected.reason
            replies = await self._round_trips.run(lambda pipe: pipe.xrevrange(user_stream, count=1))
            _raise_errors(replies)
        if self._to_generation_start:  # a new generation, its board position not yet known
            await self._skip_to_generation_start()
            board_now = self._board_pos
        start = Cursor(user_id, _first_id(replies[0]), board_now, epoch)
        conn.start_at(start)
        return Opened(conn, start, reset, [])

    def _queue_epoch(self, pipe: Pipeline) -> None:
        """The history's generation (EPOCH_REPLIES replies, the last one its value),
        created when the history has none yet or renewed after a failover: a new one
        each time, never one seen before."""
        queue_generation(pipe, self._keys)

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

    async def _unregister(self, conn: Connection) -> None:
        if conn.recorded is not None and not conn.recorded.done():
            await asyncio.wait([conn.recorded])  # its connect lands first
        connections = self._by_user.get(conn.user_id, set())
        if conn in connections:
            connections.discard(conn)
            SSE_CONNECTIONS.dec()
        if not connections:
            self._by_user.pop(conn.user_id, None)
        try:
            replies = await self._round_trips.run(
                lambda pipe: self.presence.disconnect(pipe, conn.user_id, conn.id)
            )
            _raise_errors(replies)
        except (RedisError, OSError) as exc:  # its presence lapses on its own (no refresh)
            log.warning("hub: recording a disconnect failed: %s", exc)

    # -- the reader ---------------------------------------------------------------------

    async def read_pass(self) -> None:
        """One read of both streams (blocking up to BLOCK_MS), offered to the connections.
        The history's generation comes in the same round trip: a new one means Redis
        lost what this hub was following."""
        board, live = self._keys.board_stream, self._keys.live_stream
        if self._to_generation_start:
            await self._skip_to_generation_start()
        async with self._reader.pipeline(transaction=False) as pipe:
            self._queue_epoch(pipe)
            pipe.xread({board: self._board_pos, live: self._live_pos}, count=READ_COUNT,
                       block=BLOCK_MS)  # fmt: skip
            *_, epoch, reply = await pipe.execute()
        if as_text(epoch) != self._epoch:
            self._new_history(as_text(epoch))
            return  # what was read followed the lost history's positions: read again
        for stream, entries in as_reply(reply):
            dispatch = self._dispatch_board if stream.decode() == board else self._dispatch_live
            for start in range(0, len(entries), DISPATCH_CHUNK):
                dispatch(entries[start : start + DISPATCH_CHUNK])
                # Let the connections write before the next chunk: a burst (a
                # thousand arrivals' presence) must not fill their queues at once.
                await asyncio.sleep(0)

    def _new_history(self, epoch: str) -> None:
        """The history changed generation under us: follow the new one from its start,
        and end every stream so that each client resumes and learns what was lost."""
        if self._epoch:
            log.warning("hub: the stream history was lost (generation %s, now %s); ending"
                        " every stream", self._epoch, epoch)  # fmt: skip
            self._end_streams()
        self._epoch = epoch
        self._board_pos = self._live_pos = START
        self._recent = RecentBoard(START, self._retention_ms)
        self._to_generation_start = True

    async def _skip_to_generation_start(self) -> None:
        """Read the new generation from where it began, not from the start of streams a
        failover left full: entries from before were either seen or are covered by the
        `history_lost` every client of the old generation is told."""
        began = await began_ms(self._control, self._keys)  # the reader may be blocked
        self._to_generation_start = False
        if began and self._board_pos == self._live_pos == START:
            self._board_pos = self._live_pos = f"{began - 1}-0"
            self._recent = RecentBoard(self._board_pos, self._retention_ms)

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
                if self._framed is not None and item.event_type not in UNSTAMPED:
                    _note_framed(self._framed, item)

    # -- heartbeats -----------------------------------------------------------------------

    async def beat_pass(self) -> None:
        """A few times per heartbeat period (one timer for all connections): a comment to
        each connection that sent nothing for a heartbeat, a disconnect for each whose
        writes stalled past the write timeout (or that was cut off while stalled), and a
        presence refresh for those last refreshed a heartbeat ago. Due times follow when
        each connection opened, so twenty thousand connections do not all beat at once."""
        period = self._settings.sse_heartbeat_s
        write_timeout = self._settings.sse_write_timeout_s
        now, due = time.monotonic(), []
        for connections in self._by_user.values():
            for conn in connections:
                stalled = conn.writing_for(now)
                if stalled is not None and (stalled >= write_timeout or conn.cut_off):
                    conn.drop()
                    continue
                if now - conn.last_write >= period and conn.queue.empty():
                    conn.offer(HEARTBEAT)
                if now - conn.refreshed_at >= period:
                    due.append(conn)
        if due:
            await self.presence.refresh([(conn.user_id, conn.id) for conn in due])
            for conn in due:
                conn.refreshed_at = now
