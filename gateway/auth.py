"""Authentication: argon2 password hashes, HS256 JWTs (exp required), and the
`authenticated` guard that accepts a bearer header or the session cookie."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from quart import g, request

from domain.model import Actor, Role
from gateway.errors import ApiError

SESSION_COOKIE = "floorbell_session"
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verifying against this keeps an unknown email as slow as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-password")

P = ParamSpec("P")
R = TypeVar("R")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def issue_token(secret: str, user_id: int, role: str, ttl_s: int) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "role": role, "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_token(secret: str, token: str) -> Actor:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["sub", "role", "iat", "exp"]},
        )
        return Actor(int(claims["sub"]), Role(claims["role"]))
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise ApiError(401, "unauthorized", "The session is invalid or has expired.") from exc


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
        from gateway.resources import resources

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


def require_role(*roles: Role) -> None:
    if current_actor().role not in roles:
        raise ApiError(403, "forbidden", "Your role does not allow this.")
