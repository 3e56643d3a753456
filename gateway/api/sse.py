"""`GET /api/sse/stream`: a person's live events, resumable by `Last-Event-ID`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, cast

from quart import Blueprint, Response, make_response, request
from redis.exceptions import RedisError

from gateway.api.guard import authenticated, current_actor
from gateway.api.resources import resources
from gateway.config import Settings
from gateway.errors import ApiError
from gateway.metrics import SSE_FRAMES
from gateway.realtime.connection import Connection
from gateway.realtime.cursor import Cursor
from gateway.realtime.hub import Hub, Opened
from gateway.wire import envelope, frame, retry_frame

log = logging.getLogger(__name__)
blueprint = Blueprint("sse", __name__, url_prefix="/api/sse")
HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
# The server's way to drop a connection at once (`processes.serve` offers it): a client
# that stopped reading would otherwise keep its socket and buffers until it reads again.
ABORT_EXTENSION = "floorbell.abort"


def hub() -> Hub:
    found = resources().hub
    if found is None:  # ending its streams: the client's retry reaches another instance
        raise ApiError(503, "shutting_down", "This instance is shutting down; reconnect.")
    return found


def _control_frame(cursor: Cursor, event_type: str, data: dict[str, object]) -> str:
    return frame(cursor.encode(), event_type, envelope(event_type, data)[1:])


@blueprint.get("/stream")
@authenticated
async def stream() -> Response:
    actor, settings = current_actor(), resources().settings
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    extension = (request.scope.get("extensions") or {}).get(ABORT_EXTENSION) or {}
    frames = _frames(hub(), actor.id, raw, settings, extension.get("abort"))
    response = cast(Response, await make_response(frames, 200, HEADERS))
    response.timeout = None  # a stream outlives RESPONSE_TIMEOUT by design
    return response


async def _frames(
    the_hub: Hub,
    user_id: int,
    raw: str | None,
    settings: Settings,
    abort: Callable[[], None] | None,
) -> AsyncIterator[str]:
    """The whole stream, inside the hub's connection context: whichever way it ends — the
    client gone, the instance stopping, Redis failing during the open — the connection
    is unregistered."""
    try:
        async with the_hub.connection(user_id, raw, settings.sse_queue_frames) as opened:
            conn = opened.connection
            conn.attach(abort or _cancel(asyncio.current_task()))
            async with contextlib.aclosing(_chunks(opened, raw, settings)) as chunks:
                async for chunk in chunks:
                    # Suspended at `yield` exactly while the server sends the chunk: the
                    # hub drops the connection when that takes too long.
                    conn.writing(True)
                    yield chunk
                    conn.writing(False)
    except (RedisError, OSError) as exc:  # during the open: the client's retry comes back
        log.warning("SSE stream for user %d could not open: %s", user_id, exc)


def _cancel(task: asyncio.Task[Any] | None) -> Callable[[], None]:
    """Without the server's abort: cancel the writer (its socket closes once flushed)."""

    def cancel() -> None:
        if task is not None:
            task.cancel()

    return cancel


async def _chunks(opened: Opened, raw: str | None, settings: Settings) -> AsyncGenerator[str, None]:
    conn = opened.connection
    connected: dict[str, Any] = {
        "user_id": conn.user_id,
        "instance": settings.instance_id,
        "resumed": bool(raw) and opened.reset is None,
    }
    # One write for the opening frames and the catch-up: a storm of reconnects costs one
    # send each, not four. `connected` and `reset` carry where the client stands before
    # the catch-up, so an id recorded from them never skips it.
    first = [
        retry_frame(settings.sse_retry_ms),
        _control_frame(opened.start, "connected", connected),
    ]
    if opened.reset:
        first.append(_control_frame(opened.start, "reset", {"reason": opened.reset}))
    SSE_FRAMES.inc(len(opened.catch_up))
    yield "".join(first + opened.catch_up)
    async for frames in _live(conn):
        yield frames


async def _live(conn: Connection) -> AsyncIterator[str]:
    """Frames as the hub offers them (heartbeats included), until the connection is cut
    off for reading too slowly or the instance shuts down. Whatever is queued goes out in
    one write: one send per burst, not per frame, is what keeps a busy board cheap."""
    while not conn.cut_off:
        frames, ending = await conn.next_frames()
        if frames:
            SSE_FRAMES.inc(frames.count("\n\n"))
            yield frames
        if ending:  # the instance is shutting down: the client reconnects elsewhere
            return
