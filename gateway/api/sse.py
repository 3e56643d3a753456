"""`GET /api/sse/stream`: a person's live events, resumable by `Last-Event-ID`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

from quart import Blueprint, Response, make_response, request

from gateway.api.guard import authenticated, current_actor
from gateway.api.resources import resources
from gateway.errors import ApiError
from gateway.metrics import SSE_FRAMES
from gateway.realtime.connection import Connection
from gateway.realtime.cursor import Cursor
from gateway.realtime.hub import Hub, Opened
from gateway.wire import envelope, frame, retry_frame

blueprint = Blueprint("sse", __name__, url_prefix="/api/sse")
HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


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
    opened = await hub().open(actor.id, raw, settings.sse_queue_frames)
    connected = {
        "user_id": actor.id,
        "instance": settings.instance_id,
        "resumed": bool(raw) and opened.reset is None,
    }
    frames = _frames(hub(), opened, connected, settings.sse_retry_ms)
    response = cast(Response, await make_response(frames, 200, HEADERS))
    response.timeout = None  # a stream outlives RESPONSE_TIMEOUT by design
    return response


async def _frames(
    the_hub: Hub,
    opened: Opened,
    connected: dict[str, object],
    retry_ms: int,
) -> AsyncIterator[str]:
    conn = opened.connection
    try:
        # One write for the opening frames and the catch-up: a storm of reconnects costs
        # one send each, not four.
        first = [retry_frame(retry_ms), _control_frame(conn.cursor, "connected", connected)]
        if opened.reset:
            first.append(_control_frame(conn.cursor, "reset", {"reason": opened.reset}))
        SSE_FRAMES.inc(len(opened.catch_up))
        yield "".join(first + opened.catch_up)
        async for frames in _live(conn):
            yield frames
    finally:
        await asyncio.shield(the_hub.unregister(conn))


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
