"""`GET /api/presence`: who is online, on any gateway instance."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from gateway.api.guard import authenticated
from gateway.api.openapi import answers
from gateway.api.resources import resources
from gateway.realtime.presence import Presence

blueprint = Blueprint("presence", __name__, url_prefix="/api")


@blueprint.get("/presence")
@answers(200)
@authenticated
async def presence() -> list[dict[str, Any]]:
    res = resources()
    user_ids = [row["id"] for row in await res.pool.fetch("SELECT id FROM users ORDER BY id")]
    presence = Presence(res.redis, res.keys, res.settings.sse_heartbeat_s)
    snapshot: list[dict[str, Any]] = await presence.snapshot(user_ids)
    return snapshot
