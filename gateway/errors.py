"""One place maps every refusal to an HTTP status and the JSON error shape
`{"error": {"code", "message"}}` — never a bare 500 page."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from quart import Quart, Response, jsonify
from quart_schema import RequestSchemaValidationError
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from domain.errors import (
    Conflict,
    DomainError,
    Invalid,
    InvalidTransition,
    NotFound,
    PermissionDenied,
)
from gateway.retry import is_transient

log = logging.getLogger(__name__)

DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    PermissionDenied: 403,
    InvalidTransition: 409,
    Conflict: 409,
    Invalid: 422,
}


class ApiError(Exception):
    """A refusal decided at the edge (authentication, rate limits, bad uploads)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str, **extra: Any) -> tuple[Response, int]:
    body: dict[str, Any] = {"code": code, "message": message, **extra}
    return jsonify({"error": body}), status


def _validation_message(error: RequestSchemaValidationError) -> tuple[str, list[Any]]:
    cause = error.validation_error
    errors = getattr(cause, "errors", None)
    if callable(errors):
        details = [
            {"field": ".".join(str(p) for p in item.get("loc", ())), "problem": item.get("msg")}
            for item in errors(include_url=False, include_input=False)
        ]
        first = details[0] if details else {"field": "", "problem": "invalid"}
        return f"{first['field'] or 'body'}: {first['problem']}", details
    return str(cause) or "The request body is not valid JSON of the expected shape.", []


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(ApiError)
    async def api_error(error: ApiError) -> tuple[Response, int]:
        return error_response(error.status, error.code, error.message)

    @app.errorhandler(DomainError)
    async def domain_error(error: DomainError) -> tuple[Response, int]:
        status = next((s for cls, s in DOMAIN_STATUS.items() if isinstance(error, cls)), 400)
        return error_response(status, error.code, error.message)

    @app.errorhandler(RequestSchemaValidationError)
    async def invalid_body(error: RequestSchemaValidationError) -> tuple[Response, int]:
        message, details = _validation_message(error)
        return error_response(422, "validation_error", message, details=details)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        return error_response(status, code, error.description or error.name or "error")

    @app.errorhandler(asyncpg.DataError)
    async def bad_value(error: asyncpg.DataError) -> tuple[Response, int]:
        # A value PostgreSQL cannot store (NUL in text, a number out of range): the
        # transaction rolled back, nothing was written.
        return error_response(422, "invalid_value", f"A value cannot be stored: {error}")

    @app.errorhandler(RedisError)
    async def redis_down(error: RedisError) -> tuple[Response, int]:
        log.warning("Redis unavailable: %s", error)
        return error_response(503, "unavailable", "Live services are briefly unavailable; retry.")

    @app.errorhandler(OverflowError)
    async def overflow(error: OverflowError) -> tuple[Response, int]:
        return error_response(422, "invalid_value", "A number is out of range.")

    @app.errorhandler(RecursionError)
    async def too_deep(error: RecursionError) -> tuple[Response, int]:
        return error_response(400, "too_deeply_nested", "The JSON body is nested too deeply.")

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> tuple[Response, int]:
        if is_transient(error):  # PostgreSQL restarting, a connection cut: an outage
            log.warning("service unavailable: %r", error)
            return error_response(503, "unavailable", "A service is briefly unavailable; retry.")
        log.exception("unhandled error", exc_info=error)
        return error_response(500, "internal_error", "Something went wrong on our side.")
