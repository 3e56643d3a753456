"""The admin's delivery statistics."""

from __future__ import annotations

from quart import Blueprint

from domain.model import Role
from gateway.api.guard import authenticated, require_role
from gateway.api.resources import resources
from gateway.services import stats

blueprint = Blueprint("stats", __name__, url_prefix="/api/admin")


@blueprint.get("/notification-stats")
@authenticated
async def notification_stats() -> dict[str, dict[str, int]]:
    require_role(Role.ADMIN)
    res = resources()
    return await stats.notification_stats(res.pool, res.redis, res.keys)
