"""One place maps every refusal to an HTTP status and the JSON error shape
`{"error": {"code", "message"}}` — never a bare 500 page. An outage of PostgreSQL or
Redis (refused, reset or timed-out connections, a server shutting down or out of
connection slots) is a 503 with `Retry-After`: nothing was half written, and the same
request will work once the service is back."""

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
RETRY_AFTER_S = 2

# PostgreSQL unavailable, as opposed to refusing what was asked.
POSTGRES_OUTAGES: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: cannot connect, connection lost
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutting down, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a failover left us on a standby
    asyncpg.ConnectionDoesNotExistError,  # the connection died mid-query
    # A pooled connection the server terminated while it sat idle: asyncpg finds its
    # protocol state broken at the next query, and the pool drops it on release.
    asyncpg.InternalClientError,
)

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


def unavailable(message: str) -> tuple[Response, int]:
    response, status = error_response(503, "unavailable", message)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response, status


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


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
        return unavailable("Live services are briefly unavailable; retry.")

    async def postgres_down(error: Exception) -> tuple[Response, int]:
        log.warning("PostgreSQL unavailable: %s", _describe(error))
        return unavailable("The database is briefly unavailable; retry.")

    async def service_down(error: Exception) -> tuple[Response, int]:
        # Refused or reset sockets and timeouts (connecting to PostgreSQL, waiting for a
        # pooled connection, a query past its deadline) come from a service we wait on.
        log.warning("a service is unavailable: %s", _describe(error))
        return unavailable("A service this request needs is briefly unavailable; retry.")

    for outage in POSTGRES_OUTAGES:
        app.register_error_handler(outage, postgres_down)
    for outage in (OSError, TimeoutError):
        app.register_error_handler(outage, service_down)

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
