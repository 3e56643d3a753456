"""The admin's broadcast: one announcement to everyone, or to a list of people."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_request

from gateway.api.guard import authenticated
from gateway.api.inputs import Id, Text, committed
from gateway.api.openapi import answers
from gateway.services import messages

blueprint = Blueprint("broadcast", __name__, url_prefix="/api/sse")


class BroadcastIn(BaseModel):
    title: Text = Field(min_length=1, max_length=100)
    body: Text = Field(min_length=1, max_length=1000)
    to: Literal["all"] | Annotated[list[Id], Field(min_length=1, max_length=1000)]


@blueprint.post("/broadcast")
@answers(202, 403)
@authenticated
@validate_request(BroadcastIn)
async def broadcast(data: BroadcastIn) -> tuple[dict[str, Any], int]:
    await committed(messages.broadcast, data.title, data.body, data.to)
    return {"queued": True}, 202
