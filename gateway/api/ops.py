"""Operations: liveness, readiness, metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Blueprint, Response

from gateway.api.resources import resources
from gateway.metrics import exposition

blueprint = Blueprint("ops", __name__)


@blueprint.get("/healthz")
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "instance": resources().settings.instance_id}


@blueprint.get("/readyz")
async def readyz() -> tuple[dict[str, Any], int]:
    res = resources()
    checks: dict[str, str] = {}
    for name, probe in (("postgresql", res.pool.fetchval("SELECT 1")), ("redis", res.redis.ping())):
        try:
            await asyncio.wait_for(probe, 2)
            checks[name] = "ok"
        except Exception as exc:  # readiness reports any failure, whatever its kind
            checks[name] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return {"ready": ready, "checks": checks}, 200 if ready else 503


@blueprint.get("/metrics")
async def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, content_type=content_type)
