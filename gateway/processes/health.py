"""The health endpoints of a process that serves no API (`floorbell worker`, `floorbell
clock`): `GET /healthz`, `/readyz` and `/metrics` on a port of its own, as an operator's
probes and Prometheus expect of every process. A minimal ASGI application under Uvicorn,
which the gateway already runs on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn

from gateway.metrics import exposition

log = logging.getLogger(__name__)
Ready = Callable[[], Awaitable[tuple[dict[str, Any], int]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
CLOSE_TIMEOUT_S = 3.0


class QuietServer(uvicorn.Server):
    """A Uvicorn server that leaves signals to the process (`stop_on_signals`): the
    process decides when and in which order its parts stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HealthServer:
    def __init__(self, instance: str, ready: Ready) -> None:
        self._instance, self._ready = instance, ready
        self._server: QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on `port` (0: not at all). A port already taken fails here, loudly:
        two workers on one host need a port each."""
        if port == 0:
            return
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise OSError(f"health port {host}:{port} is not free ({exc.strerror})") from exc
        self.port = int(sock.getsockname()[1])
        # ASGI 3 said outright: Uvicorn takes a bound method for an ASGI 2 application
        # (its guess looks at the method's `__call__`), and answers every request with a 500.
        config = uvicorn.Config(self._app, lifespan="off", access_log=False, log_config=None,
                                ws="none", http="httptools", interface="asgi3")  # fmt: skip
        self._server = QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        log.info("health endpoints on http://%s:%d/readyz", host, self.port)

    async def close(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(self._task, CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("health server did not stop in time")

    async def _app(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b'{"error": {"code": "method_not_allowed"}}')
        elif path == "/healthz":
            await _respond(send, 200, _json({"status": "ok", "instance": self._instance}))
        elif path == "/readyz":
            body, status = await self._ready()
            await _respond(send, status, _json(body))
        elif path == "/metrics":
            data, content_type = exposition()
            await _respond(send, 200, data, content_type)
        else:
            await _respond(send, 404, b'{"error": {"code": "not_found"}}')


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


async def _respond(
    send: Send, status: int, body: bytes, content_type: str = "application/json"
) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
