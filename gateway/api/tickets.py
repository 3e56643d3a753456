"""Ticket routes: the board's cards, their lifecycle, comments and followers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from quart import Blueprint, request
from quart_schema import document_querystring, document_response, validate_request

from domain.model import Priority, Status
from gateway.api.guard import authenticated, current_actor
from gateway.api.inputs import ID_ROUTE, committed, idempotent, positive_arg, positive_int
from gateway.api.openapi import answers
from gateway.api.resources import resources
from gateway.errors import ApiError
from gateway.services import ticket_store, tickets, timeline
from gateway.services.outbox import UnitOfWork
from gateway.services.ticket_store import ticket_json

blueprint = Blueprint("tickets", __name__, url_prefix="/api/tickets")

PAGE_DEFAULT, PAGE_MAX = 100, 500
Title = Field(min_length=1, max_length=200)
Text = Field(default="", max_length=10_000)


def as_utc(value: datetime | None) -> datetime | None:
    """A date without a zone is read as UTC, so deadlines never drift by an offset."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class TicketIn(BaseModel):
    title: str = Title
    description: str = Text
    machine_id: int = Field(gt=0, lt=2**63)
    priority: Priority = Priority.MEDIUM
    scheduled_date: datetime | None = None
    assigned_to: int | None = Field(default=None, gt=0, lt=2**63)

    _utc = field_validator("scheduled_date")(as_utc)


class TicketChange(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    status: Status | None = None
    priority: Priority | None = None
    assigned_to: int | None = Field(default=None, gt=0, lt=2**63)
    scheduled_date: datetime | None = None

    _utc = field_validator("scheduled_date")(as_utc)


class Assignment(BaseModel):
    assigned_to: int | None = Field(gt=0, lt=2**63)


class CommentIn(BaseModel):
    body: str = Field(min_length=1, max_length=5000)


def _filters() -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for name, kind in (("status", Status), ("priority", Priority)):
        raw = request.args.get(name)
        if raw:
            if raw not in kind.__members__.values():
                raise ApiError(422, "validation_error", f"Unknown {name} {raw!r}.")
            filters[name] = raw
    assignee = request.args.get("assigned_to")
    filters["assigned_to"] = current_actor().id if assignee == "me" else positive_arg("assigned_to")
    filters["machine_id"] = positive_arg("machine_id")
    return filters


def _page_after() -> ticket_store.PageAfter | None:
    """The `cursor` argument: `<status>.<id>` of the previous page's last card."""
    raw = request.args.get("cursor", "")
    if raw == "":
        return None
    status, _, last = raw.rpartition(".")
    ticket_id = positive_int(last)
    if status not in Status.__members__.values() or ticket_id is None:
        raise ApiError(422, "validation_error", "cursor must be a next_cursor of this list.")
    return Status(status), ticket_id


class TicketQuery(BaseModel):
    """The list's filters and paging (documentation: `_filters` and `_page_after` read them)."""

    status: Status | None = None
    priority: Priority | None = None
    assigned_to: str | None = Field(default=None, description="`me` or a user id")
    machine_id: int | None = Field(default=None, gt=0)
    limit: int | None = Field(default=None, ge=1, le=PAGE_MAX)
    cursor: str | None = Field(default=None, description="a `next_cursor` of this list")


@blueprint.get("")
@answers(200)
@document_querystring(TicketQuery)
@authenticated
async def list_tickets() -> dict[str, Any]:
    """A page of the board: by column, newest first within each. `next_cursor`, when not
    null, is the `cursor` of the next page."""
    filters, after = _filters(), _page_after()
    limit = positive_arg("limit", PAGE_MAX) or PAGE_DEFAULT
    async with resources().pool.acquire() as conn:
        found, next_after = await ticket_store.search(conn, filters, limit, after)
    cursor = f"{next_after[0]}.{next_after[1]}" if next_after else None
    return {"tickets": [ticket_json(t) for t in found], "next_cursor": cursor}


@blueprint.post("")
@answers(201, 403)
@authenticated
@validate_request(TicketIn)
async def create_ticket(data: TicketIn) -> tuple[Any, int]:
    actor = current_actor()

    async def create(uow: UnitOfWork) -> dict[str, Any]:
        return ticket_json(await tickets.create(uow, actor, data.model_dump()))

    return await idempotent("tickets", create)


@blueprint.get(f"/<{ID_ROUTE}:ticket_id>")
@answers(200)
@authenticated
async def get_ticket(ticket_id: int) -> dict[str, Any]:
    async with resources().pool.acquire() as conn:
        return ticket_json(await ticket_store.load(conn, ticket_id))


class TimelineEntry(BaseModel):
    at: str
    what: Literal[
        "created", "waiting", "assigned", "notified", "pushed", "delivered", "seen", "read",
        "clicked", "escalated", "answered",
    ]  # fmt: skip
    user_id: int | None = None
    user_name: str | None = None
    type: str | None = Field(default=None, description="notified…clicked: the notification's")
    notification_id: int | None = None
    devices: int | None = Field(default=None, description="pushed: devices that took it")
    reason: str | None = Field(default=None, description="waiting: assigned|breakdown|overdue")
    step: int | None = None
    to: str | None = Field(default=None, description="escalated: assignee|supervisors|admins")
    after_minutes: int | None = None
    answer: str | None = Field(default=None, description="answered: acknowledged|taken|moved")


class Waiting(BaseModel):
    reason: str
    since: str
    answered_at: str | None
    answer: str | None
    answered_by: int | None
    escalated_to: str | None
    escalated_at: str | None


class Timeline(BaseModel):
    ticket_id: int
    waiting: Waiting | None
    entries: list[TimelineEntry]


@blueprint.get(f"/<{ID_ROUTE}:ticket_id>/timeline")
@answers(200)
@authenticated
@document_response(Timeline)
async def get_timeline(ticket_id: int) -> dict[str, Any]:
    """What happened to the ticket's critical alerts: assigned, told, pushed, delivered,
    seen, escalated, answered (others' deliveries: for supervisors and admins)."""
    async with resources().pool.acquire() as conn:
        return await timeline.timeline(conn, current_actor(), ticket_id)


@blueprint.put(f"/<{ID_ROUTE}:ticket_id>")
@answers(200, 403, 409)
@authenticated
@validate_request(TicketChange)
async def update_ticket(ticket_id: int, data: TicketChange) -> dict[str, Any]:
    changes = data.model_dump(exclude_unset=True)
    for name in ("title", "description", "status", "priority"):  # null clears only the others
        if name in changes and changes[name] is None:
            raise ApiError(422, "validation_error", f"{name} cannot be null.")
    return ticket_json(await committed(tickets.update, ticket_id, changes))


@blueprint.post(f"/<{ID_ROUTE}:ticket_id>/assign")
@answers(200, 403, 409)
@authenticated
@validate_request(Assignment)
async def assign_ticket(ticket_id: int, data: Assignment) -> dict[str, Any]:
    return ticket_json(await committed(tickets.assign, ticket_id, data.assigned_to))


@blueprint.post(f"/<{ID_ROUTE}:ticket_id>/acknowledge")
@answers(200, 403, 409)
@authenticated
async def acknowledge_ticket(ticket_id: int) -> dict[str, Any]:
    return ticket_json(await committed(tickets.acknowledge, ticket_id))


@blueprint.post(f"/<{ID_ROUTE}:ticket_id>/comments")
@answers(201)
@authenticated
@validate_request(CommentIn)
async def add_comment(ticket_id: int, data: CommentIn) -> tuple[dict[str, Any], int]:
    return await committed(tickets.add_comment, ticket_id, data.body), 201


@blueprint.get(f"/<{ID_ROUTE}:ticket_id>/comments")
@answers(200)
@authenticated
async def list_comments(ticket_id: int) -> list[dict[str, Any]]:
    async with resources().unit_of_work() as uow:
        return await tickets.list_comments(uow, ticket_id)


@blueprint.post(f"/<{ID_ROUTE}:ticket_id>/follow")
@answers(200)
@authenticated
async def follow(ticket_id: int) -> dict[str, Any]:
    return await _set_follow(ticket_id, True)


@blueprint.delete(f"/<{ID_ROUTE}:ticket_id>/follow")
@answers(200)
@authenticated
async def unfollow(ticket_id: int) -> dict[str, Any]:
    return await _set_follow(ticket_id, False)


async def _set_follow(ticket_id: int, on: bool) -> dict[str, Any]:
    return ticket_json(await committed(tickets.follow, ticket_id, on))
