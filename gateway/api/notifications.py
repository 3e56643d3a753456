"""The inbox: a person's notification history with read, seen and clicked state."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, request
from quart_schema import document_querystring, validate_request

from gateway.api.guard import authenticated, current_actor
from gateway.api.inputs import ID_ROUTE, positive_arg
from gateway.api.openapi import answers
from gateway.api.resources import resources
from gateway.services import inbox

blueprint = Blueprint("notifications", __name__, url_prefix="/api/notifications")
PAGE_MAX = 200


class SeenIds(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=500)


class InboxQuery(BaseModel):
    unread: bool | None = None
    limit: int | None = Field(default=None, ge=1, le=PAGE_MAX)
    before: int | None = Field(default=None, gt=0, description="a notification id: older ones")


@blueprint.get("")
@answers(200)
@document_querystring(InboxQuery)
@authenticated
async def list_notifications() -> list[dict[str, Any]]:
    limit = positive_arg("limit", PAGE_MAX) or 50
    before = positive_arg("before", 2**62)
    unread = request.args.get("unread", "").lower() in ("1", "true", "yes")
    return await inbox.page(resources().pool, current_actor().id, limit, before, unread)


@blueprint.get("/unread-count")
@answers(200)
@authenticated
async def unread_count() -> dict[str, int]:
    return {"count": await inbox.unread_count(resources().pool, current_actor().id)}


async def _mark(column: str, ids: list[int] | None) -> dict[str, int]:
    async with resources().unit_of_work() as uow:
        return {"updated": await inbox.mark(uow, current_actor().id, column, ids)}


@blueprint.post(f"/<{ID_ROUTE}:notification_id>/read")
@answers(200)
@authenticated
async def read_one(notification_id: int) -> dict[str, int]:
    await inbox.require_own(resources().pool, current_actor().id, notification_id)
    return await _mark("read_at", [notification_id])


@blueprint.post("/read-all")
@answers(200)
@authenticated
async def read_all() -> dict[str, int]:
    return await _mark("read_at", None)


@blueprint.post("/seen")
@answers(200)
@authenticated
@validate_request(SeenIds)
async def seen(data: SeenIds) -> dict[str, int]:
    """A visible page acknowledges what it displayed: those are not pushed."""
    return await _mark("seen_at", data.ids)


@blueprint.post(f"/<{ID_ROUTE}:notification_id>/clicked")
@answers(200)
@authenticated
async def clicked(notification_id: int) -> dict[str, int]:
    await inbox.require_own(resources().pool, current_actor().id, notification_id)
    return await _mark("clicked_at", [notification_id])
