"""The inbox: a person's notification history with read, seen and clicked state."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, request
from quart_schema import validate_request

from gateway.api.guard import authenticated, current_actor
from gateway.api.inputs import positive_arg
from gateway.api.resources import resources
from gateway.services import inbox

blueprint = Blueprint("notifications", __name__, url_prefix="/api/notifications")
PAGE_MAX = 200


class SeenIds(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=500)


@blueprint.get("")
@authenticated
async def list_notifications() -> list[dict[str, Any]]:
    limit = positive_arg("limit", PAGE_MAX) or 50
    before = positive_arg("before", 2**62)
    unread = request.args.get("unread", "").lower() in ("1", "true", "yes")
    return await inbox.page(resources().pool, current_actor().id, limit, before, unread)


@blueprint.get("/unread-count")
@authenticated
async def unread_count() -> dict[str, int]:
    return {"count": await inbox.unread_count(resources().pool, current_actor().id)}


async def _mark(column: str, ids: list[int] | None) -> dict[str, int]:
    async with resources().unit_of_work() as uow:
        return {"updated": await inbox.mark(uow, current_actor().id, column, ids)}


@blueprint.post("/<int:notification_id>/read")
@authenticated
async def read_one(notification_id: int) -> dict[str, int]:
    await inbox.require_own(resources().pool, current_actor().id, notification_id)
    return await _mark("read_at", [notification_id])


@blueprint.post("/read-all")
@authenticated
async def read_all() -> dict[str, int]:
    return await _mark("read_at", None)


@blueprint.post("/seen")
@authenticated
@validate_request(SeenIds)
async def seen(data: SeenIds) -> dict[str, int]:
    """A visible page acknowledges what it displayed: those are not pushed."""
    return await _mark("seen_at", data.ids)


@blueprint.post("/<int:notification_id>/clicked")
@authenticated
async def clicked(notification_id: int) -> dict[str, int]:
    await inbox.require_own(resources().pool, current_actor().id, notification_id)
    return await _mark("clicked_at", [notification_id])
