"""Notification preferences: per-type switches and quiet hours."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from quart import Blueprint
from quart_schema import validate_request

from gateway.api.guard import authenticated, current_actor
from gateway.api.openapi import answers
from gateway.api.resources import resources
from gateway.services import preferences

blueprint = Blueprint("preferences", __name__, url_prefix="/api")


class TypeChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    push: StrictBool | None = None
    inapp: StrictBool | None = None


class QuietHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool | None = None
    start: str | None = Field(default=None, max_length=5)
    end: str | None = Field(default=None, max_length=5)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    allow_critical: StrictBool | None = None


class PreferencesIn(BaseModel):
    """Any part of the preferences; what is left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    types: dict[str, TypeChoice] | None = Field(default=None, max_length=64)
    dnd: QuietHoursIn | None = None


@blueprint.get("/notifications/preferences")
@answers(200)
@authenticated
async def get_preferences() -> dict[str, Any]:
    return (await preferences.load_preferences(resources().pool, current_actor().id)).as_json()


@blueprint.put("/notifications/preferences")
@answers(200)
@authenticated
@validate_request(PreferencesIn)
async def put_preferences(data: PreferencesIn) -> dict[str, Any]:
    user_id = current_actor().id
    types = {kind: choice.model_dump(exclude_none=True)
             for kind, choice in (data.types or {}).items()}  # fmt: skip
    dnd = data.dnd.model_dump(exclude_none=True) if data.dnd else None
    updated = await preferences.update_preferences(resources().pool, user_id, types, dnd)
    return updated.as_json()
