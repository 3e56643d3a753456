"""Operations: liveness, readiness, metrics."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from gateway.api.resources import resources
from gateway.health import readiness
from gateway.metrics import exposition

blueprint = Blueprint("ops", __name__)


@blueprint.get("/healthz")
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "instance": resources().settings.instance_id}


@blueprint.get("/readyz")
async def readyz() -> tuple[dict[str, Any], int]:
    """PostgreSQL and Redis answer, and the hub's loops made progress lately."""
    res = resources()
    probes = {"postgresql": lambda: res.pool.fetchval("SELECT 1"), "redis": res.redis.ping}
    return await readiness(res.supervisor, probes)


@blueprint.get("/metrics")
async def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, content_type=content_type)
