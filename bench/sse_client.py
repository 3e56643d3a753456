"""The SSE load client of `bench/sse.py`: one process holding its share of connections.

Plain asyncio protocols (no HTTP library): each connection writes its HTTP/1.1 GET by
hand, undoes the chunked framing and splits SSE frames on blank lines. Commands arrive
as JSON lines on stdin, one answer per command goes out as a JSON line on stdout:

    {"cmd": "open", "port", "path", "users", "secret", "concurrency"}  open and wait for `connected`
    {"cmd": "phase", "phase", "track"}   count marker frames of this phase from now on
    {"cmd": "report"}                    delays histogram, counts, alive connections
    {"cmd": "disconnect"}                close every connection, keep each last id
    {"cmd": "resume", "expect", "timeout"}  reopen all at once with Last-Event-ID
    {"cmd": "close"}                     close everything; {"cmd": "exit"} ends the process

Marker frames carry `BM<phase>-<seq>_<unix time sent>_` somewhere in their data; the
delay is the arrival time minus that send time (one machine, so clocks agree).

`Poster` (a keep-alive HTTP/1.1 POST pool) is used by the orchestrator for the API calls.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.services.credentials import issue_token  # noqa: E402

RESET_REASON = re.compile(rb'"reason":"([a-z_]+)"')
MARK = re.compile(rb"BM(\d+)-(\d+)_(\d+\.\d+)_")
OPEN_TIMEOUT_S = 60.0
LINGER_OFF = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT left on the client side


def bucket(delay_ms: float) -> float:
    """Histogram key: 0.1 ms steps below 100 ms, 1 ms steps above."""
    return round(delay_ms, 1) if delay_ms < 100 else float(round(delay_ms))


class Recorder:
    """What the connections of this process saw during the current phase."""

    def __init__(self) -> None:
        self.phase = -1
        self.track = False
        self.reset(-1, False)

    def reset(self, phase: int, track: bool) -> None:
        self.phase, self.track = phase, track
        self.hist: dict[float, int] = {}
        self.count = self.stale = self.dupes = self.frames = self.resets = 0
        self.reset_reasons: dict[str, int] = {}
        self.first = self.last = 0.0

    def marker(self, conn: SseConnection, match: re.Match[bytes], now: float) -> None:
        phase, seq, sent = int(match[1]), int(match[2]), float(match[3])
        if phase != self.phase:
            self.stale += 1
            return
        if self.track:
            if seq in conn.seen:
                self.dupes += 1
                return
            conn.seen.add(seq)
        self.count += 1
        key = bucket((now - sent) * 1000)
        self.hist[key] = self.hist.get(key, 0) + 1
        self.first = self.first or now
        self.last = now

    def report(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "count": self.count,
            "stale": self.stale,
            "dupes": self.dupes,
            "frames": self.frames,
            "resets": self.resets,
            "reset_reasons": self.reset_reasons,
            "first": self.first,
            "last": self.last,
            "hist": [[k, v] for k, v in self.hist.items()],
        }


class SseConnection(asyncio.Protocol):
    def __init__(self, recorder: Recorder, request: bytes) -> None:
        self.recorder, self.request = recorder, request
        self.opened: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.raw = b""
        self.body = b""
        self.headers_done = False
        self.chunked = False
        self.chunk_left = -1  # bytes of the current chunk still to come; -1: read a size line
        self.last_id: bytes | None = None
        self.seen: set[int] = set()
        self.complete_at = 0.0
        self.expect = 0
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_result(False)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self.headers_done:
            self.raw += data
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self.raw[:end], self.raw[end + 4 :]
            self.raw = b""
            self.headers_done = True
            if not head.startswith(b"HTTP/1.1 200"):
                self.abort()
                return
            self.chunked = b"transfer-encoding: chunked" in head.lower()
        self.body += self._dechunk(data) if self.chunked else data
        if b"\n\n" in self.body:  # one split per read: a burst of frames costs linear time
            *frames, self.body = self.body.split(b"\n\n")
            for frame in frames:
                self._frame(frame, now)

    def _dechunk(self, data: bytes) -> bytes:
        self.raw += data
        out = []
        while self.raw:
            if self.chunk_left < 0:
                line_end = self.raw.find(b"\r\n")
                if line_end < 0:
                    break
                self.chunk_left = int(self.raw[:line_end].split(b";")[0], 16)
                self.raw = self.raw[line_end + 2 :]
                if self.chunk_left == 0:  # the stream ended (cut off, or shutdown)
                    self.raw = b""
                    self.abort()
                    break
            take = self.raw[: self.chunk_left]
            out.append(take)
            self.raw = self.raw[len(take) :]
            self.chunk_left -= len(take)
            if self.chunk_left == 0:
                if len(self.raw) < 2:
                    self.chunk_left = 0  # wait for the CRLF after the chunk
                    break
                self.raw = self.raw[2:]
                self.chunk_left = -1
        return b"".join(out)

    def _frame(self, frame: bytes, now: float) -> None:
        if frame.startswith(b":") or frame.startswith(b"retry:"):
            return
        if frame.startswith(b"id: "):
            self.last_id = frame[4 : frame.index(b"\n")]
        if b"event: connected" in frame:
            if not self.opened.done():
                self.opened.set_result(True)
            return
        recorder = self.recorder
        recorder.frames += 1
        if b"event: reset" in frame:
            recorder.resets += 1
            reason = RESET_REASON.search(frame)
            key = reason[1].decode() if reason else "?"
            recorder.reset_reasons[key] = recorder.reset_reasons.get(key, 0) + 1
        match = MARK.search(frame)
        if match:
            recorder.marker(self, match, now)
            if self.expect and len(self.seen) >= self.expect and not self.complete_at:
                self.complete_at = now

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_OFF)
                except OSError:
                    pass
            self.transport.close()
        self.closed = True


class Client:
    def __init__(self, source: str) -> None:
        self.source = source
        self.recorder = Recorder()
        self.conns: list[SseConnection] = []
        self.specs: list[tuple[int, str]] = []  # (user id, token) per connection
        self.port = 0
        self.path = ""

    def request(self, token: str, user: int, last_id: bytes | None) -> bytes:
        path = self.path.format(user=user)
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{self.port}",
            f"Authorization: Bearer {token}",
            "Accept: text/event-stream",
            "Cache-Control: no-cache",
        ]
        if last_id:
            lines.append(f"Last-Event-ID: {last_id.decode()}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def connect(
        self,
        user: int,
        token: str,
        last_id: bytes | None,
        gate: asyncio.Semaphore | None,
        expect: int = 0,
    ) -> SseConnection:
        loop = asyncio.get_running_loop()
        conn = SseConnection(self.recorder, self.request(token, user, last_id))
        conn.last_id, conn.expect = last_id, expect

        async def attempt() -> None:
            await loop.create_connection(
                lambda: conn, "127.0.0.1", self.port, local_addr=(self.source, 0)
            )
            await asyncio.wait_for(asyncio.shield(conn.opened), OPEN_TIMEOUT_S)

        try:
            if gate is None:
                await attempt()
            else:
                async with gate:
                    await attempt()
        except (OSError, TimeoutError):
            conn.abort()
        return conn

    async def open(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.port, self.path = cmd["port"], cmd["path"]
        ttl = 6 * 3600
        specs = [(u, issue_token(cmd["secret"], u, "technician", ttl)) for u in cmd["users"]]
        gate = asyncio.Semaphore(cmd["concurrency"]) if cmd["concurrency"] else None
        start = time.time()
        conns = await asyncio.gather(*(self.connect(u, t, None, gate) for u, t in specs))
        self.specs += specs  # added to those already open
        self.conns += conns
        ok = sum(1 for c in conns if not c.closed and c.opened.done() and c.opened.result())
        return {
            "ok": ok,
            "failed": len(conns) - ok,
            "start": start,
            "end": time.time(),
        }

    def alive(self) -> int:
        return sum(1 for c in self.conns if not c.closed and c.opened.done() and c.opened.result())

    async def resume(self, cmd: dict[str, Any]) -> dict[str, Any]:
        expect, timeout = cmd["expect"], cmd["timeout"]
        gate = asyncio.Semaphore(cmd["concurrency"]) if cmd.get("concurrency") else None
        last_ids = [c.last_id for c in self.conns]
        start = time.time()
        tasks = [
            asyncio.ensure_future(self.connect(u, t, last, gate, expect))
            for (u, t), last in zip(self.specs, last_ids, strict=True)
        ]
        self.conns = list(await asyncio.gather(*tasks))
        deadline = start + timeout
        while time.time() < deadline and any(not c.complete_at for c in self.conns):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        done = [c.complete_at for c in self.conns if c.complete_at]
        return {
            "start": start,
            "complete": len(done),
            "clients": len(self.conns),
            "done_at": sorted(done),
            "missing": sum(max(0, expect - len(c.seen)) for c in self.conns),
            "failed": sum(1 for c in self.conns if not c.opened.done() or not c.opened.result()),
            **self.recorder.report(),
        }

    def disconnect(self) -> dict[str, Any]:
        alive = self.alive()
        for conn in self.conns:
            conn.abort()
        return {
            "closed": len(self.conns),
            "alive": alive,
            "with_id": sum(1 for c in self.conns if c.last_id),
        }

    async def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        name = cmd["cmd"]
        if name == "open":
            return await self.open(cmd)
        if name == "phase":
            self.recorder.reset(cmd["phase"], cmd.get("track", False))
            for conn in self.conns:
                conn.seen = set()
                conn.complete_at, conn.expect = 0.0, 0
            return {"alive": self.alive()}
        if name == "report":
            return {"alive": self.alive(), **self.recorder.report()}
        if name == "disconnect":
            result = self.disconnect()
            await asyncio.sleep(0.2)
            return result
        if name == "resume":
            return await self.resume(cmd)
        if name == "close":
            result = self.disconnect()
            self.conns, self.specs = [], []
            await asyncio.sleep(0.2)
            return result
        raise ValueError(f"unknown command {name}")


async def serve_commands(source: str) -> None:
    client = Client(source)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    for _ in range(100_000):  # bounded: far more commands than any run sends
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        if cmd["cmd"] == "exit":
            client.disconnect()
            break
        try:
            answer = await client.handle(cmd)
        except Exception as exc:  # report, never hang the orchestrator
            answer = {"error": repr(exc)}
        print(json.dumps(answer), flush=True)


class Poster:
    """Keep-alive HTTP/1.1 POSTs of JSON over a bounded pool of raw asyncio streams."""

    def __init__(self, port: int, token: str, size: int = 128) -> None:
        self.port, self.token, self.size = port, token, size
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self.opened = 0
        self.statuses: dict[int, int] = {}
        self.durations: list[float] = []

    async def _take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle.empty() and self.opened < self.size:
            self.opened += 1
            return await asyncio.open_connection("127.0.0.1", self.port)
        return await self.idle.get()

    async def post(self, path: str, body: dict[str, Any]) -> int:
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        reader, writer = await self._take()
        started = time.time()
        try:
            writer.write(head + payload)
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            status = int(raw[9:12])
            length = 0
            for line in raw.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            self.idle.put_nowait((reader, writer))
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            writer.close()
            self.opened -= 1
            status = 0
        self.durations.append((time.time() - started) * 1000)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return status

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait()[1].close()


if __name__ == "__main__":
    asyncio.run(serve_commands(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"))
