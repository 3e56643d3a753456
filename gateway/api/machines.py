"""Machine routes: the fleet, breakdown reports and planned interventions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator
from quart import Blueprint
from quart_schema import validate_request

from domain.model import MachineStatus, Priority
from gateway.api.guard import authenticated
from gateway.api.inputs import ID_ROUTE, Id, Text, committed
from gateway.api.openapi import answers
from gateway.api.resources import resources
from gateway.api.tickets import as_utc
from gateway.services import machines
from gateway.services.ticket_store import ticket_json

blueprint = Blueprint("machines", __name__, url_prefix="/api/machines")


class MachineIn(BaseModel):
    name: Text = Field(min_length=1, max_length=200)
    location: Text = Field(default="", max_length=200)
    status: MachineStatus = MachineStatus.OPERATIONAL
    pm_interval_days: int | None = Field(default=None, strict=True, gt=0, le=3650)
    last_pm_at: datetime | None = None

    _utc = field_validator("last_pm_at")(as_utc)


class BreakdownIn(BaseModel):
    description: Text = Field(min_length=1, max_length=10_000)
    priority: Priority = Priority.HIGH


class InterventionIn(BaseModel):
    scheduled_for: datetime
    assigned_to: Id
    note: Text = Field(default="", max_length=2000)

    _utc = field_validator("scheduled_for")(as_utc)


@blueprint.get("")
@answers(200)
@authenticated
async def list_machines() -> list[dict[str, Any]]:
    async with resources().pool.acquire() as conn:
        return await machines.list_machines(conn)


@blueprint.post("")
@answers(201, 403, 409)
@authenticated
@validate_request(MachineIn)
async def create_machine(data: MachineIn) -> tuple[dict[str, Any], int]:
    return await committed(machines.create, data.model_dump()), 201


@blueprint.get(f"/<{ID_ROUTE}:machine_id>")
@answers(200)
@authenticated
async def get_machine(machine_id: int) -> dict[str, Any]:
    async with resources().pool.acquire() as conn:
        return await machines.get(conn, machine_id)


@blueprint.post(f"/<{ID_ROUTE}:machine_id>/breakdown")
@answers(201, 403)
@authenticated
@validate_request(BreakdownIn)
async def report_breakdown(machine_id: int, data: BreakdownIn) -> tuple[dict[str, Any], int]:
    ticket = await committed(machines.report_breakdown, machine_id, data.description, data.priority)
    return ticket_json(ticket), 201


@blueprint.post(f"/<{ID_ROUTE}:machine_id>/interventions")
@answers(201, 403)
@authenticated
@validate_request(InterventionIn)
async def plan_intervention(machine_id: int, data: InterventionIn) -> tuple[dict[str, Any], int]:
    return await committed(machines.plan_intervention, machine_id, data.model_dump()), 201
