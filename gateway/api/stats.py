"""The admin's delivery statistics."""

from __future__ import annotations

from quart import Blueprint

from domain import permissions
from gateway.api.guard import authenticated, current_actor
from gateway.api.resources import resources
from gateway.services import stats

blueprint = Blueprint("stats", __name__, url_prefix="/api/admin")


@blueprint.get("/notification-stats")
@authenticated
async def notification_stats() -> dict[str, dict[str, int]]:
    permissions.require_admin(current_actor(), "see delivery statistics")
    res = resources()
    return await stats.notification_stats(res.pool, res.redis, res.keys)
