"""One gateway instance served by Uvicorn (httptools parser, uvloop event loop),
stopping cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio

import uvicorn
from quart import Quart
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.api.app import create_app
from gateway.api.resources import EXTENSION
from gateway.api.sse import ABORT_EXTENSION
from gateway.config import Settings
from gateway.processes.health import QuietServer
from gateway.supervision import stop_on_signals


class _AbortableHttp(HttpToolsProtocol):
    """Uvicorn's httptools protocol, offering each request a way to drop its connection at
    once (an ASGI scope extension). Closing a transport waits until its buffer is sent,
    which never happens for a client that stopped reading; aborting frees it now."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {ABORT_EXTENSION: {"abort": self.transport.abort}}


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


async def serve(settings: Settings, host: str, port: int) -> None:
    """Stage one of a stop ends the streams (clients reconnect elsewhere) before Uvicorn's
    own shutdown, which would otherwise wait its grace period for them; then requests in
    flight get that grace period, and the app's resources close with a deadline."""
    stop = stop_on_signals()
    app = create_app(settings)
    server = QuietServer(uvicorn_config(app, host, port))

    async def shutdown_trigger() -> None:
        await stop.wait()
        await app.extensions[EXTENSION].end_streams()
        server.should_exit = True

    print(f"gateway {settings.instance_id} listening on http://{host}:{port}", flush=True)
    trigger = asyncio.create_task(shutdown_trigger())
    try:
        await server.serve()
    finally:
        trigger.cancel()
