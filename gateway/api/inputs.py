"""What the HTTP edge accepts: JSON bodies in UTF-8, the request field types every area
shares, query and path integers (ASCII digits only), and commands made idempotent by an
`Idempotency-Key`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from pydantic import AfterValidator, Field, StringConstraints
from quart import Request, request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

from domain.model import Actor
from gateway.api.guard import current_actor
from gateway.api.resources import resources
from gateway.errors import ApiError
from gateway.services.idempotency import remember, replay
from gateway.services.outbox import UnitOfWork

ID_MAX = 2**63 - 1  # PostgreSQL bigint
IDEMPOTENCY_KEY_MAX = 200
# ASCII only: str.isdigit() also accepts "²", which int() then refuses.
_POSITIVE_INT = re.compile(r"[1-9][0-9]{0,17}", re.ASCII)

P = ParamSpec("P")
T = TypeVar("T")


class JsonRequest(Request):
    """Quart's request, whose JSON body must be UTF-8: other bytes are the client's
    mistake (400), not a decoding failure of ours."""

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            return await super().get_json(force, silent, cache)
        except UnicodeDecodeError:
            if silent:
                return None
            raise BadRequest("The request body is not valid UTF-8.") from None


def storable(value: str) -> str:
    """PostgreSQL text cannot hold NUL: refuse it as a 422, not as a failed INSERT."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Request text: surrounding whitespace dropped, valid Unicode (pydantic refuses lone
# surrogates once constraints apply), no NUL. Give each field its bounds with Field().
Text = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(storable)]
# A row id in a JSON body: a true integer (not "7", 7.0 or true) that fits a bigint.
Id = Annotated[int, Field(strict=True, gt=0, le=ID_MAX)]


class RowId(IntegerConverter):
    """A row id in a URL: ASCII digits. One past a bigint names no row, so it becomes 0
    (no row has it: a plain 404). A refusing converter would not do: werkzeug then
    answers 405 when the same path exists for another method."""

    regex = r"[0-9]{1,20}"

    def to_python(self, value: str) -> int:
        number = int(value)
        return number if number <= ID_MAX else 0


ID_ROUTE = "row_id"  # registered as RowId by the app factory


def positive_int(text: str) -> int | None:
    """`text` as a positive integer of ASCII digits, or None."""
    return int(text) if _POSITIVE_INT.fullmatch(text) else None


def positive_arg(name: str, maximum: int = ID_MAX) -> int | None:
    """The query argument `name` as an integer from 1 to `maximum`; None when absent."""
    raw = request.args.get(name, "")
    if raw == "":
        return None
    value = positive_int(raw)
    if value is None or value > maximum:
        raise ApiError(422, "validation_error", f"{name} must be an integer from 1 to {maximum}.")
    return value


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= IDEMPOTENCY_KEY_MAX:
        message = f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} characters."
        raise ApiError(400, "bad_idempotency_key", message)
    return key


async def committed(
    command: Callable[Concatenate[UnitOfWork, Actor, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run a service `command` for the caller in one unit of work and commit it: its rows
    and its events are stored together or not at all."""
    async with resources().unit_of_work() as uow:
        result = await command(uow, current_actor(), *args, **kwargs)
        await uow.commit()
    return result


async def idempotent(
    route: str, command: Callable[[UnitOfWork], Awaitable[Any]], status: int = 201
) -> tuple[Any, int]:
    """Run `command` in one unit of work under the caller's Idempotency-Key: the same key
    from the same person within the window returns the first result and writes nothing."""
    actor, key = current_actor(), idempotency_key()
    async with resources().unit_of_work() as uow:
        if (earlier := await replay(uow, actor.id, route, key)) is not None:
            return earlier
        body = await command(uow)
        await remember(uow, actor.id, route, key, body, status)
        await uow.commit()
    return body, status
