"""Login, logout, who am I, and the language I read."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, Response, jsonify, request
from quart_schema import validate_request
from redis.exceptions import RedisError

from domain.model import DEFAULT_LANGUAGE, Language
from gateway.api.guard import SESSION_COOKIE, authenticated, current_actor, current_session
from gateway.api.openapi import answers
from gateway.api.resources import resources
from gateway.errors import ApiError
from gateway.services import users
from gateway.services.credentials import issue_token, verify_password
from gateway.services.login_limit import count_attempts

log = logging.getLogger(__name__)
blueprint = Blueprint("auth", __name__, url_prefix="/api/auth")
USER_COLUMNS = users.USER_COLUMNS
RATE_WINDOW_S = 60


class Login(BaseModel):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class LanguageIn(BaseModel):
    language: Language


class Logout(BaseModel):
    endpoint: str | None = Field(default=None, max_length=2048)


async def _check_rate(email: str) -> None:
    """At most N attempts a minute per email, five times that per client address."""
    res = resources()
    limit = res.settings.login_attempts_per_minute
    limits = {f"email:{email}": limit, f"ip:{request.remote_addr}": limit * 5}
    counters = [res.keys.login_attempts(subject) for subject in limits]
    try:
        counts = await count_attempts(res.redis, counters, RATE_WINDOW_S)
    except RedisError as exc:  # limiting is a guard, not a gate: log and let the login proceed
        log.warning("login rate limit unavailable: %s", exc)
        return
    if any(count > allowed for count, allowed in zip(counts, limits.values(), strict=True)):
        raise ApiError(429, "too_many_attempts", "Too many login attempts; wait a minute.")


@blueprint.post("/login")
@answers(200, 401, 429)
@validate_request(Login)
async def login(data: Login) -> Response:
    email = data.email.strip().lower()
    await _check_rate(email)
    res = resources()
    row = await res.pool.fetchrow(
        f"SELECT {USER_COLUMNS}, first_login_at, password_hash FROM users WHERE lower(email) = $1",
        email,
    )
    # argon2 takes tens of milliseconds of CPU by design: off the event loop, so that a
    # shift change's logins do not stall every stream of this instance.
    stored = row["password_hash"] if row else None
    if not await asyncio.to_thread(verify_password, stored, data.password) or row is None:
        raise ApiError(401, "invalid_credentials", "Wrong email or password.")
    settings = res.settings
    token = issue_token(settings.require_jwt_secret(), row["id"], row["role"], settings.jwt_ttl_s)
    user = {k: row[k] for k in ("id", "email", "full_name", "role", "language")}
    if row["first_login_at"] is None:
        async with res.pool.acquire() as conn:
            user = await users.first_login(conn, row["id"], _browser_language())
    response = jsonify({"token": token, "user": user})
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.jwt_ttl_s,
        httponly=True,
        samesite="Strict",
        secure=request.scheme == "https",
        path="/",
    )
    return response


@blueprint.post("/logout")
@answers(200)
@authenticated
async def logout() -> Response:
    body: dict[str, Any] = await request.get_json(silent=True) or {}
    endpoint = Logout.model_validate(body).endpoint if isinstance(body, dict) else None
    session = current_session()
    async with resources().pool.acquire() as conn, conn.transaction():
        # The token stops working everywhere (bearer or cookie), not only in this browser.
        await conn.execute(
            "INSERT INTO revoked_tokens (digest, expires_at) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING",
            session.token_digest,
            session.expires_at,
        )
        if endpoint:
            # A shared phone stops ringing for the person who logged out of it.
            await conn.execute(
                "DELETE FROM push_subscriptions WHERE endpoint = $1 AND user_id = $2",
                endpoint,
                current_actor().id,
            )
    response = jsonify({"ok": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@blueprint.get("/me")
@answers(200)
@authenticated
async def me() -> dict[str, Any]:
    row = await resources().pool.fetchrow(
        f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", current_actor().id
    )
    if row is None:
        raise ApiError(401, "unauthorized", "This account no longer exists.")
    return dict(row)


@blueprint.patch("/me")
@authenticated
@validate_request(LanguageIn)
async def change_language(data: LanguageIn) -> dict[str, Any]:
    async with resources().pool.acquire() as conn:
        return await users.set_language(conn, current_actor(), data.language)


def _browser_language() -> Language:
    """The first of the browser's languages (Accept-Language) that the app speaks."""
    offered = [str(language) for language in Language]
    return Language(request.accept_languages.best_match(offered, default=DEFAULT_LANGUAGE))
