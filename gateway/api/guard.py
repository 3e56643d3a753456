"""The `authenticated` guard of every `/api/` route but login and the VAPID key: a
bearer header or the session cookie, the role read afresh on each request, and a token
whose session was ended by logout refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import ParamSpec, TypeVar

from quart import g, request

from domain.model import Actor, Role
from gateway.api.openapi import NEEDS_SESSION
from gateway.api.resources import resources
from gateway.errors import ApiError
from gateway.services.credentials import decode_session, token_digest

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
        claimed, expires_at = decode_session(res.settings.require_jwt_secret(), token)
        # The role is read afresh: a demotion, a deleted account or a logout takes effect
        # at once, not when the token expires.
        digest = token_digest(token)
        role = await res.roles.of(claimed.id, digest)
        if role is None:
            raise ApiError(401, "unauthorized", "This session has ended; log in again.")
        g.actor = Actor(claimed.id, Role(role))
        g.session = Session(digest, expires_at)
        return await handler(*args, **kwargs)

    setattr(guarded, NEEDS_SESSION, True)  # the OpenAPI document says 401
    return guarded


@dataclass(frozen=True)
class Session:
    """The caller's session: its token's digest and expiry (what logout revokes)."""

    token_digest: bytes
    expires_at: datetime


def current_session() -> Session:
    session: Session = g.session
    return session


def current_actor() -> Actor:
    actor: Actor = g.actor
    return actor
