"""One gateway instance served by Hypercorn, stopping cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from gateway.app import create_app
from gateway.config import Settings
from gateway.lifecycle import stop_on_signals
from gateway.resources import EXTENSION


def hypercorn_config(host: str, port: int) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.backlog = 4096  # bursts of reconnecting clients after a restart
    config.graceful_timeout = 5
    config.keep_alive_timeout = 75
    config.accesslog = None
    return config


async def serve(settings: Settings, host: str, port: int) -> None:
    stop = stop_on_signals()
    app = create_app(settings)

    async def shutdown_trigger() -> None:
        await stop.wait()
        # End the streams first: Hypercorn would otherwise wait its grace period for them.
        await app.extensions[EXTENSION].end_streams()

    print(f"gateway {settings.instance_id} listening on http://{host}:{port}", flush=True)
    await hypercorn_serve(app, hypercorn_config(host, port), shutdown_trigger=shutdown_trigger)
