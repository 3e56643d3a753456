"""Ticket routes: the board's cards, their lifecycle, comments and followers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator
from quart import Blueprint, request
from quart_schema import validate_request

from domain.model import Priority, Status
from gateway.api.guard import authenticated, current_actor
from gateway.api.inputs import idempotent, positive_arg
from gateway.api.resources import resources
from gateway.errors import ApiError
from gateway.services import ticket_store, tickets
from gateway.services.outbox import UnitOfWork
from gateway.services.ticket_store import ticket_json

blueprint = Blueprint("tickets", __name__, url_prefix="/api/tickets")

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


@blueprint.get("")
@authenticated
async def list_tickets() -> list[dict[str, Any]]:
    filters = _filters()
    async with resources().pool.acquire() as conn:
        return [ticket_json(t) for t in await ticket_store.search(conn, filters)]


@blueprint.post("")
@authenticated
@validate_request(TicketIn)
async def create_ticket(data: TicketIn) -> tuple[Any, int]:
    actor = current_actor()

    async def create(uow: UnitOfWork) -> dict[str, Any]:
        return ticket_json(await tickets.create(uow, actor, data.model_dump()))

    return await idempotent("tickets", create)


@blueprint.get("/<int:ticket_id>")
@authenticated
async def get_ticket(ticket_id: int) -> dict[str, Any]:
    async with resources().pool.acquire() as conn:
        return ticket_json(await ticket_store.load(conn, ticket_id))


@blueprint.put("/<int:ticket_id>")
@authenticated
@validate_request(TicketChange)
async def update_ticket(ticket_id: int, data: TicketChange) -> dict[str, Any]:
    changes = data.model_dump(exclude_unset=True)
    for name in ("title", "status", "priority"):
        if name in changes and changes[name] is None:
            raise ApiError(422, "validation_error", f"{name} cannot be null.")
    async with resources().unit_of_work() as uow:
        ticket = await tickets.update(uow, current_actor(), ticket_id, changes)
        await uow.commit()
    return ticket_json(ticket)


@blueprint.post("/<int:ticket_id>/assign")
@authenticated
@validate_request(Assignment)
async def assign_ticket(ticket_id: int, data: Assignment) -> dict[str, Any]:
    async with resources().unit_of_work() as uow:
        ticket = await tickets.assign(uow, current_actor(), ticket_id, data.assigned_to)
        await uow.commit()
    return ticket_json(ticket)


@blueprint.post("/<int:ticket_id>/acknowledge")
@authenticated
async def acknowledge_ticket(ticket_id: int) -> dict[str, Any]:
    async with resources().unit_of_work() as uow:
        ticket = await tickets.acknowledge(uow, current_actor(), ticket_id)
        await uow.commit()
    return ticket_json(ticket)


@blueprint.post("/<int:ticket_id>/comments")
@authenticated
@validate_request(CommentIn)
async def add_comment(ticket_id: int, data: CommentIn) -> tuple[dict[str, Any], int]:
    async with resources().unit_of_work() as uow:
        comment = await tickets.add_comment(uow, current_actor(), ticket_id, data.body)
        await uow.commit()
    return comment, 201


@blueprint.get("/<int:ticket_id>/comments")
@authenticated
async def list_comments(ticket_id: int) -> list[dict[str, Any]]:
    async with resources().unit_of_work() as uow:
        return await tickets.list_comments(uow, ticket_id)


@blueprint.post("/<int:ticket_id>/follow")
@authenticated
async def follow(ticket_id: int) -> dict[str, Any]:
    return await _set_follow(ticket_id, True)


@blueprint.delete("/<int:ticket_id>/follow")
@authenticated
async def unfollow(ticket_id: int) -> dict[str, Any]:
    return await _set_follow(ticket_id, False)


async def _set_follow(ticket_id: int, on: bool) -> dict[str, Any]:
    async with resources().unit_of_work() as uow:
        ticket = await tickets.follow(uow, current_actor(), ticket_id, on)
        await uow.commit()
    return ticket_json(ticket)
