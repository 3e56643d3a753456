"""The inbox: a person's notification history with read, seen and clicked state."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, request
from quart_schema import validate_request

from domain.events import CountsChanged
from gateway.auth import authenticated, current_actor
from gateway.errors import ApiError
from gateway.resources import resources

blueprint = Blueprint("notifications", __name__, url_prefix="/api/notifications")
COLUMNS = "id, type, title, body, url, data, critical, created_at, seen_at, read_at, clicked_at"
PAGE_MAX = 200


class SeenIds(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=500)


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    for name in ("created_at", "seen_at", "read_at", "clicked_at"):
        out[name] = out[name].isoformat() if out[name] else None
    return out


def _positive_arg(name: str, default: int | None, maximum: int) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    if not raw.isdigit() or not 0 < int(raw) <= maximum:
        raise ApiError(422, "validation_error", f"{name} must be an integer from 1 to {maximum}.")
    return int(raw)


@blueprint.get("")
@authenticated
async def list_notifications() -> list[dict[str, Any]]:
    limit = _positive_arg("limit", 50, PAGE_MAX)
    before = _positive_arg("before", None, 2**62)
    unread = request.args.get("unread", "").lower() in ("1", "true", "yes")
    rows = await resources().pool.fetch(
        f"SELECT {COLUMNS} FROM notifications WHERE user_id = $1"
        " AND ($2::bigint IS NULL OR id < $2) AND (NOT $3 OR read_at IS NULL)"
        " ORDER BY id DESC LIMIT $4",
        current_actor().id,
        before,
        unread,
        limit,
    )
    return [_row(row) for row in rows]


@blueprint.get("/unread-count")
@authenticated
async def unread_count() -> dict[str, int]:
    count = await resources().pool.fetchval(
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
        current_actor().id,
    )
    return {"count": count}


async def _mark(column: str, ids: list[int] | None) -> int:
    """Stamp `column` on the caller's notifications (all unread ones when ids is None);
    reading changes the badges, so every device of the caller is told."""
    actor = current_actor()
    async with resources().unit_of_work() as uow:
        result = await uow.conn.execute(
            f"UPDATE notifications SET {column} = now() WHERE user_id = $1"
            f" AND {column} IS NULL AND ($2::bigint[] IS NULL OR id = ANY($2))",
            actor.id,
            ids,
        )
        updated = int(result.split()[-1])
        if updated and column == "read_at":
            uow.emit(CountsChanged(actor.id, actor.id))
        await uow.commit()
    return updated


async def _require_own(notification_id: int) -> None:
    owner = await resources().pool.fetchval(
        "SELECT user_id FROM notifications WHERE id = $1", notification_id
    )
    if owner != current_actor().id:
        raise ApiError(404, "not_found", f"Notification {notification_id} does not exist.")


@blueprint.post("/<int:notification_id>/read")
@authenticated
async def read_one(notification_id: int) -> dict[str, int]:
    await _require_own(notification_id)
    return {"updated": await _mark("read_at", [notification_id])}


@blueprint.post("/read-all")
@authenticated
async def read_all() -> dict[str, int]:
    return {"updated": await _mark("read_at", None)}


@blueprint.post("/seen")
@authenticated
@validate_request(SeenIds)
async def seen(data: SeenIds) -> dict[str, int]:
    """A visible page acknowledges what it displayed: those are not pushed."""
    return {"updated": await _mark("seen_at", data.ids)}


@blueprint.post("/<int:notification_id>/clicked")
@authenticated
async def clicked(notification_id: int) -> dict[str, int]:
    await _require_own(notification_id)
    return {"updated": await _mark("clicked_at", [notification_id])}
