"""One gateway instance served by Uvicorn (httptools parser, uvloop event loop),
stopping cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from quart import Quart

from gateway.api.app import create_app
from gateway.api.resources import EXTENSION
from gateway.config import Settings
from gateway.lifecycle import stop_on_signals


class _Server(uvicorn.Server):
    """Signals belong to `stop_on_signals`: the streams must end before Uvicorn starts
    its own shutdown, which would otherwise wait its grace period for them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_config(app: Quart, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http="httptools",  # a C parser, where Hypercorn and h11 parse in Python
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
    stop = stop_on_signals()
    app = create_app(settings)
    server = _Server(uvicorn_config(app, host, port))

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
