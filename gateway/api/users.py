"""User routes: accounts and roles (admin), the directory of names (everyone) and
the demo logins the login page offers (no auth, demo mode only)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints
from quart import Blueprint
from quart_schema import validate_request

from domain.errors import NotFound
from domain.model import Role
from gateway.api.guard import authenticated, current_actor
from gateway.api.inputs import ID_ROUTE, Text, committed
from gateway.api.openapi import answers
from gateway.api.resources import resources
from gateway.services import users

blueprint = Blueprint("users", __name__, url_prefix="/api")

# Deliberately loose (a full check needs a mail round trip): one @, a dot in the domain.
Email = Annotated[Text, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class UserIn(BaseModel):
    email: Email
    full_name: Text = Field(min_length=1, max_length=200)
    role: Role
    # Not stripped: spaces may be part of a password.
    password: Annotated[str, StringConstraints(min_length=8, max_length=1024)]


class RoleIn(BaseModel):
    role: Role


@blueprint.get("/users")
@answers(200, 403)
@authenticated
async def list_users() -> list[dict[str, Any]]:
    async with resources().pool.acquire() as conn:
        return await users.list_users(conn, current_actor())


@blueprint.post("/users")
@answers(201, 403, 409)
@authenticated
@validate_request(UserIn)
async def register_user(data: UserIn) -> tuple[dict[str, Any], int]:
    return await committed(users.register, data.model_dump()), 201


@blueprint.patch(f"/users/<{ID_ROUTE}:user_id>/role")
@answers(200, 403, 409)
@authenticated
@validate_request(RoleIn)
async def change_role(user_id: int, data: RoleIn) -> dict[str, Any]:
    return await committed(users.change_role, user_id, data.role)


@blueprint.get("/users/directory")
@answers(200)
@authenticated
async def directory() -> list[dict[str, Any]]:
    async with resources().pool.acquire() as conn:
        return await users.directory(conn)


@blueprint.get("/demo-logins")
@answers(200, 404)
async def demo_logins() -> dict[str, Any]:
    res = resources()
    if not res.settings.demo_mode:
        raise NotFound("Demo mode is off.")
    async with res.pool.acquire() as conn:
        logins = await users.demo_logins(conn)
    return {"logins": logins, "password": res.settings.demo_password}
