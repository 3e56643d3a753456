"""The floor of `bench/sse.py`: the least an SSE server must do for the same job.

A minimal aiohttp server, fed by the same Redis streams as the gateway (no auth, no
database, no presence): `GET /stream?user=<id>` sends the board stream and that user's
notifications, with the same composite id (`<user>:<user stream id>:<board stream id>`)
and the same resume by `Last-Event-ID` (catch-up from the user's stream and the board).
One reader task per server XREADs the board stream and the live stream (the router's
mirror of every user-stream entry); each connection has a bounded frame buffer drained
by its handler, which writes whatever is pending in one go. One heartbeat task serves
every connection.

    .venv/bin/python bench/sse_floor.py --port 8123 --redis-url redis://... --prefix bench-x:

`bench/sse.py` starts as many of them as the gateway has processes, on one socket it
binds and hands over (`--fd`), as the gateway's supervisor does: the kernel hands each
connection to whichever process accepts first, for the floor as for the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from pathlib import Path

import uvloop
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.keys import Keys  # noqa: E402

START = "0-0"
MAX_PENDING = 1000
HEARTBEAT_S = 15
CATCH_UP_MAX = 5000


def id_key(stream_id: str) -> tuple[int, int]:
    ms, seq = stream_id.split("-")
    return int(ms), int(seq)


class Conn:
    __slots__ = ("board_pos", "cut_off", "pending", "user", "user_pos", "wake")

    def __init__(self, user: int, user_pos: str, board_pos: str) -> None:
        self.user, self.user_pos, self.board_pos = user, user_pos, board_pos
        self.pending: list[str] = []
        self.wake = asyncio.Event()
        self.cut_off = False

    def cursor(self) -> str:
        return f"{self.user}:{self.user_pos}:{self.board_pos}"

    def offer(self, board: bool, entry_id: str, event_type: str, tail: str) -> None:
        if board:
            if id_key(entry_id) <= id_key(self.board_pos):
                return
            self.board_pos = entry_id
        else:
            if id_key(entry_id) <= id_key(self.user_pos):
                return
            self.user_pos = entry_id
        if len(self.pending) >= MAX_PENDING:
            self.cut_off = True
        else:
            cursor = self.cursor()
            self.pending.append(
                f'id: {cursor}\nevent: {event_type}\ndata: {{"id":"{cursor}",{tail}\n\n'
            )
        self.wake.set()

    def note(self, text: str) -> None:
        self.pending.append(text)
        self.wake.set()


class Floor:
    def __init__(self, redis_url: str, keys: Keys) -> None:
        self.redis_url, self.keys = redis_url, keys
        self.by_user: dict[int, set[Conn]] = {}
        self.conns: set[Conn] = set()

    async def start(self, app: web.Application) -> None:
        # As the gateway: a bounded pool that waits for a free connection in a burst.
        pool = BlockingConnectionPool.from_url(self.redis_url, max_connections=64, timeout=30)
        self.control = Redis(connection_pool=pool)
        self.reader = Redis.from_url(self.redis_url, single_connection_client=True)
        self.board_pos = await self.tail(self.keys.board_stream)
        self.live_pos = await self.tail(self.keys.live_stream)
        self.tasks = [asyncio.create_task(self.read_loop()), asyncio.create_task(self.beat_loop())]
        print("floor ready", flush=True)

    async def stop(self, app: web.Application) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.reader.aclose()
        await self.control.aclose()

    async def tail(self, stream: str) -> str:
        last = await self.control.xrevrange(stream, count=1)
        return last[0][0].decode() if last else START

    async def read_loop(self) -> None:
        board, live = self.keys.board_stream, self.keys.live_stream
        while True:
            reply = await self.reader.xread(
                {board: self.board_pos, live: self.live_pos}, count=1000, block=2000
            )
            for stream, entries in reply or []:
                if stream.decode() == board:
                    for entry_id, fields in entries:
                        self.board_pos = entry_id.decode()
                        event_type, tail = fields[b"t"].decode(), fields[b"e"].decode()[1:]
                        for conn in self.conns:
                            conn.offer(True, self.board_pos, event_type, tail)
                else:
                    for entry_id, fields in entries:
                        self.live_pos = entry_id.decode()
                        targets = self.by_user.get(int(fields[b"u"]))
                        if targets:
                            user_id, event_type = fields[b"i"].decode(), fields[b"t"].decode()
                            tail = fields[b"e"].decode()[1:]
                            for conn in targets:
                                conn.offer(False, user_id, event_type, tail)

    async def beat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            for conn in self.conns:
                conn.note(": heartbeat\n\n")

    async def catch_up(self, conn: Conn) -> None:
        items = []
        for board, stream, pos in (
            (False, self.keys.user_stream(conn.user), conn.user_pos),
            (True, self.keys.board_stream, conn.board_pos),
        ):
            entries = await self.control.xrange(stream, min=f"({pos}", count=CATCH_UP_MAX)
            items += [(id_key(i.decode()), board, i.decode(), f) for i, f in entries]
        items.sort(key=lambda item: item[0])
        for _, board, entry_id, fields in items:
            conn.offer(board, entry_id, fields[b"t"].decode(), fields[b"e"].decode()[1:])

    async def stream(self, request: web.Request) -> web.StreamResponse:
        user = int(request.query["user"])
        raw = request.headers.get("Last-Event-ID", "")
        parts = raw.split(":")
        resumed = len(parts) == 3 and parts[0] == str(user)
        if resumed:
            conn = Conn(user, parts[1], parts[2])
        else:
            conn = Conn(
                user,
                await self.tail(self.keys.user_stream(user)),
                await self.tail(self.keys.board_stream),
            )
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        connected = json.dumps({"type": "connected", "data": {"user_id": user, "resumed": resumed}})
        await response.write(
            f"retry: 3000\n\nid: {conn.cursor()}\nevent: connected\ndata: {connected}\n\n".encode()
        )
        self.conns.add(conn)
        self.by_user.setdefault(user, set()).add(conn)
        try:
            if resumed:
                await self.catch_up(conn)
            while not conn.cut_off:
                await conn.wake.wait()
                conn.wake.clear()
                if conn.pending:
                    chunk, conn.pending = "".join(conn.pending), []
                    await response.write(chunk.encode())
        except ConnectionResetError:  # the client went away
            pass
        finally:
            self.conns.discard(conn)
            users = self.by_user.get(user)
            if users is not None:
                users.discard(conn)
                if not users:
                    del self.by_user[user]
        return response


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    place = parser.add_mutually_exclusive_group(required=True)
    place.add_argument("--port", type=int)
    place.add_argument("--fd", type=int, help="a bound socket to serve on, shared with others")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    args = parser.parse_args()
    floor = Floor(args.redis_url, Keys(args.prefix))
    app = web.Application()
    app.router.add_get("/stream", floor.stream)
    app.on_startup.append(floor.start)
    app.on_cleanup.append(floor.stop)
    # The same event loop as the gateway's processes: the floor measures the server, not the loop.
    uvloop.install()
    shared = args.fd is not None
    where = (
        {"sock": socket.socket(fileno=args.fd)}
        if shared
        else {"host": "127.0.0.1", "port": args.port}
    )
    web.run_app(
        app,
        **where,
        backlog=4096,
        access_log=None,
        print=None,
        handle_signals=True,
        shutdown_timeout=2,
    )


if __name__ == "__main__":
    main()
