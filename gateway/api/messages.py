"""Message routes: private and public messages, audio uploads, conversations and
read state."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field
from quart import Blueprint, Response, request
from quart_schema import DataSource, document_querystring, validate_request
from quart_schema.pydantic import File

from domain.model import MessageType
from gateway.api.guard import authenticated, current_actor
from gateway.api.inputs import ID_MAX, ID_ROUTE, Id, Text, committed, idempotent, positive_arg
from gateway.api.openapi import answers
from gateway.api.resources import resources
from gateway.errors import ApiError
from gateway.services import messages

AUDIO_MAX_BYTES = 5 * 1024 * 1024
AUDIO_MAX_SECONDS = 600
MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
# Our own table rather than the host's mime.types: the same answer on every server.
AUDIO_EXTENSIONS = {
    ".webm": "audio/webm", ".weba": "audio/webm", ".ogg": "audio/ogg", ".oga": "audio/ogg",
    ".opus": "audio/ogg", ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".mp4": "audio/mp4",
    ".aac": "audio/aac", ".wav": "audio/wav", ".flac": "audio/flac", ".3gp": "audio/3gpp",
    ".amr": "audio/amr", ".caf": "audio/x-caf",
}  # fmt: skip
THREAD_LIMIT_DEFAULT, THREAD_LIMIT_MAX = 200, 500

blueprint = Blueprint("messages", __name__, url_prefix="/api/messages")


class MessageIn(BaseModel):
    message_type: MessageType
    recipient_id: Id | None = None
    content: Text = Field(min_length=1, max_length=5000)


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


class AudioIn(BaseModel):
    """Multipart fields arrive as text, so numbers here are parsed from strings."""

    file: File
    duration: float = Field(gt=0, le=AUDIO_MAX_SECONDS, allow_inf_nan=False)
    recipient_id: Annotated[int | None, BeforeValidator(_blank_is_none)] = Field(
        default=None, gt=0, le=ID_MAX
    )


def _audio_mime(mimetype: str, filename: str | None) -> str:
    """Audio types only; an untyped upload (`application/octet-stream`) is named from
    its file extension when that is an audio one, so browsers know what they play."""
    mime = mimetype.lower()
    if mime == "application/octet-stream":
        extension = PurePosixPath((filename or "").lower()).suffix
        return AUDIO_EXTENSIONS.get(extension, mime)
    if not mime.startswith("audio/") or not MIME.match(mime):
        raise ApiError(422, "unsupported_media_type", "Only audio files can be sent (audio/*).")
    return mime


def _read_audio(data: AudioIn) -> messages.Audio:
    upload = data.file
    mime = _audio_mime(upload.mimetype or "application/octet-stream", upload.filename)
    body = upload.stream.read(AUDIO_MAX_BYTES + 1)
    if len(body) > AUDIO_MAX_BYTES:
        raise ApiError(413, "audio_too_large", "Audio messages are limited to 5 MiB.")
    if not body:
        raise ApiError(422, "validation_error", "file: the audio file is empty.")
    return messages.Audio(body, mime, data.duration)


def _limit_arg() -> tuple[int, int | None]:
    limit = positive_arg("limit")
    limit = min(limit, THREAD_LIMIT_MAX) if limit else THREAD_LIMIT_DEFAULT
    return limit, positive_arg("before")


@blueprint.post("")
@answers(201, 403)
@authenticated
@validate_request(MessageIn)
async def send_message(data: MessageIn) -> tuple[Any, int]:
    actor = current_actor()
    return await idempotent(
        "messages",
        lambda uow: messages.send(uow, actor, data.message_type, data.recipient_id, data.content),
    )


@blueprint.post("/audio")
@answers(201, 403)
@authenticated
@validate_request(AudioIn, source=DataSource.FORM_MULTIPART)
async def send_audio(data: AudioIn) -> tuple[Any, int]:
    actor, audio = current_actor(), _read_audio(data)
    return await idempotent(
        "messages/audio", lambda uow: messages.send_audio(uow, actor, data.recipient_id, audio)
    )


@blueprint.get(f"/<{ID_ROUTE}:message_id>/audio")
@answers(200, 206, 304, 403, 416, content=("audio/*", "application/octet-stream"))
@authenticated
async def get_audio(message_id: int) -> Response:
    async with resources().pool.acquire() as conn:
        body, mime = await messages.load_audio(conn, current_actor(), message_id)
    response = Response(body, content_type=mime)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = "inline"
    response.cache_control.private = True
    response.cache_control.max_age = 86400  # a recording never changes
    response.headers["Accept-Ranges"] = "bytes"
    # Range requests: Safari will not play an <audio> without them.
    return await response.make_conditional(request, accept_ranges=True, complete_length=len(body))


@blueprint.get("/unread-count")
@answers(200)
@authenticated
async def unread_count() -> dict[str, int]:
    async with resources().pool.acquire() as conn:
        return {"count": await messages.unread_count(conn, current_actor().id)}


@blueprint.get("/conversations")
@answers(200)
@authenticated
async def conversations() -> list[dict[str, Any]]:
    async with resources().pool.acquire() as conn:
        return await messages.conversations(conn, current_actor().id)


@blueprint.get("/public")
@answers(200)
@authenticated
async def public_feed() -> list[dict[str, Any]]:
    async with resources().pool.acquire() as conn:
        return await messages.public_feed(conn)


class ThreadQuery(BaseModel):
    limit: int | None = Field(default=None, gt=0)
    before: int | None = Field(default=None, gt=0, description="a message id: older ones")


@blueprint.get(f"/private/<{ID_ROUTE}:contact_id>")
@answers(200)
@document_querystring(ThreadQuery)
@authenticated
async def private_thread(contact_id: int) -> list[dict[str, Any]]:
    limit, before = _limit_arg()
    async with resources().pool.acquire() as conn:
        return await messages.thread(conn, current_actor().id, contact_id, limit, before)


@blueprint.post(f"/private/<{ID_ROUTE}:contact_id>/read")
@answers(200)
@authenticated
async def mark_read(contact_id: int) -> dict[str, int]:
    return {"updated": await committed(messages.mark_read, contact_id)}
