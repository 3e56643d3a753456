"""One gateway instance served by Uvicorn (httptools parser, uvloop event loop),
stopping cleanly on SIGINT/SIGTERM: on its own port, or on the socket a supervisor
(`gateway.processes.supervisor`) hands it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct

import uvicorn
from quart import Quart
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.api.app import create_app
from gateway.api.resources import EXTENSION
from gateway.api.sse import ABORT_EXTENSION
from gateway.config import Settings
from gateway.processes.health import QuietServer
from gateway.processes.supervisor import READY, RESTART_SIGNAL, die_with_supervisor
from gateway.supervision import stop_on_signals


class _AbortableHttp(HttpToolsProtocol):
    """Uvicorn's httptools protocol, offering each request a way to drop its connection at
    once (an ASGI scope extension). Closing a transport waits until its buffer is sent,
    which never happens for a client that stopped reading; aborting frees it now."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {ABORT_EXTENSION: {"abort": self._reset}}

    def _reset(self) -> None:
        """Abort with a reset. A socket closed with unsent data would otherwise stay with
        the kernel, its buffers full, waiting for a window that never opens (for minutes,
        FIN never sent): the client would not learn it was dropped."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


class _Server(QuietServer):
    """Under a supervisor, says on the ready pipe when it serves."""

    def __init__(self, config: uvicorn.Config, ready_fd: int | None = None) -> None:
        super().__init__(config)
        self._ready_fd = ready_fd

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self._ready_fd is not None and self.started:
            try:
                os.write(self._ready_fd, READY)
            except BrokenPipeError:  # the supervisor is gone: serve no one on its behalf
                self.should_exit = True
            finally:
                os.close(self._ready_fd)


def uvicorn_config(app: Quart, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_AbortableHttp,  # httptools: a C parser, where Hypercorn and h11 parse in Python
        ws="none",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",  # X-Forwarded-For only from a proxy on this host
        lifespan="on",
        backlog=4096,  # bursts of reconnecting clients after a restart
        timeout_keep_alive=75,
        timeout_graceful_shutdown=5,
        access_log=False,
        log_config=None,  # its messages go through the process's own logging set-up
    )


async def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    listen_fd: int | None = None,
    ready_fd: int | None = None,
) -> None:
    """Serve on host:port, or, under a supervisor, on the socket `listen_fd` (saying so
    on `ready_fd` once serving). Stage one of a stop ends the streams (clients reconnect
    elsewhere) before Uvicorn's own shutdown, which would otherwise wait its grace period
    for them; then requests in flight get that grace period, and the app's resources
    close with a deadline."""
    stop = stop_on_signals()
    sockets = None
    if listen_fd is not None:
        die_with_supervisor()
        signal.signal(RESTART_SIGNAL, signal.SIG_IGN)  # the supervisor's signal, not ours
        sockets = [socket.socket(fileno=listen_fd)]
        host, port = sockets[0].getsockname()[:2]
    app = create_app(settings)
    server = _Server(uvicorn_config(app, host, port), ready_fd)

    async def shutdown_trigger() -> None:
        await stop.wait()
        await app.extensions[EXTENSION].end_streams()
        server.should_exit = True

    print(f"gateway {settings.instance_id} listening on http://{host}:{port}", flush=True)
    trigger = asyncio.create_task(shutdown_trigger())
    try:
        await server.serve(sockets)
    finally:
        trigger.cancel()
