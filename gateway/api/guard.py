"""The `authenticated` guard of every `/api/` route but login and the VAPID key: a
bearer header or the session cookie, the role read afresh on each request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from quart import g, request

from domain.model import Actor, Role
from gateway.api.resources import resources
from gateway.errors import ApiError
from gateway.services.credentials import decode_token

SESSION_COOKIE = "floorbell_session"

P = ParamSpec("P")
R = TypeVar("R")


def token_from_request() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(SESSION_COOKIE)


def authenticated(
    handler: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R]]:
    """Require a valid JWT; the caller is then `g.actor`."""

    @wraps(handler)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        token = token_from_request()
        if not token:
            raise ApiError(401, "unauthorized", "Log in first.")
        res = resources()
        claimed = decode_token(res.settings.require_jwt_secret(), token)
        # The role is read afresh: a demotion or a deleted account takes effect at once,
        # not when the token expires.
        role = await res.roles.of(claimed.id)
        if role is None:
            raise ApiError(401, "unauthorized", "This account no longer exists.")
        g.actor = Actor(claimed.id, Role(role))
        return await handler(*args, **kwargs)

    return guarded


def current_actor() -> Actor:
    actor: Actor = g.actor
    return actor
