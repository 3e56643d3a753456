"""Settings routes (admin): application settings as a JSON object of snake_case keys."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, RootModel, StringConstraints
from quart import Blueprint
from quart_schema import validate_request

from gateway.api.guard import authenticated, current_actor
from gateway.api.inputs import committed
from gateway.api.openapi import answers
from gateway.api.resources import resources
from gateway.services import users

blueprint = Blueprint("settings", __name__, url_prefix="/api/settings")

SettingKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class SettingsIn(RootModel[dict[SettingKey, Any]]):
    """`{key: any JSON value}`: at most 50 snake_case keys of at most 64 characters."""

    root: dict[SettingKey, Any] = Field(min_length=1, max_length=50)


@blueprint.get("")
@answers(200, 403)
@authenticated
async def read_settings() -> dict[str, Any]:
    async with resources().pool.acquire() as conn:
        return await users.read_settings(conn, current_actor())


@blueprint.put("")
@answers(200, 403)
@authenticated
@validate_request(SettingsIn)
async def write_settings(data: SettingsIn) -> dict[str, Any]:
    return await committed(users.write_settings, data.root)
