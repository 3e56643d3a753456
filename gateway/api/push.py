"""Web Push routes: the VAPID public key, a person's devices, and a test push."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint
from quart_schema import validate_request

from domain.model import DEFAULT_LANGUAGE, Language
from gateway.api.guard import authenticated, current_actor
from gateway.api.openapi import answers
from gateway.api.resources import resources
from gateway.errors import ApiError
from gateway.push import subscriptions
from gateway.push.dispatch import Dispatcher, Job
from gateway.push.guard import EndpointGuard, EndpointRefused
from gateway.push.payload import trial_message
from gateway.push.runner import push_configured
from gateway.push.sender import PushSender

blueprint = Blueprint("push", __name__, url_prefix="/api/push")


class PushKeys(BaseModel):
    p256dh: str = Field(min_length=1, max_length=200)
    auth: str = Field(min_length=1, max_length=100)


class PushSubscriptionIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    endpoint: str = Field(min_length=1, max_length=2048)
    keys: PushKeys
    expiration_time: int | None = Field(default=None, alias="expirationTime", ge=0, lt=2**63)


class SubscribeIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    subscription: PushSubscriptionIn
    device_type: str | None = Field(default=None, alias="deviceType", max_length=50)
    device_name: str | None = Field(default=None, alias="deviceName", max_length=100)


class UnsubscribeIn(BaseModel):
    endpoint: str = Field(min_length=1, max_length=2048)


def _sender() -> PushSender:
    sender = resources().push_sender
    if sender is None:
        raise ApiError(503, "push_unavailable", "Web Push is not configured on this server.")
    return sender


@blueprint.get("/vapid-public-key")
@answers(200, 503)
async def vapid_public_key() -> dict[str, str]:
    settings = resources().settings
    if not push_configured(settings):
        raise ApiError(503, "push_unavailable", "Web Push is not configured on this server.")
    return {"publicKey": settings.vapid_public_key}


@blueprint.post("/subscribe")
@answers(200, 201)
@authenticated
@validate_request(SubscribeIn)
async def subscribe(data: SubscribeIn) -> tuple[dict[str, Any], int]:
    res, sub = resources(), data.subscription
    sender = res.push_sender
    guard = sender.guard if sender else EndpointGuard.from_origins(res.settings.push_endpoint_allow)
    try:
        subscriptions.check_keys(sub.keys.p256dh, sub.keys.auth)
        await guard.check(sub.endpoint)
    except (subscriptions.InvalidKeys, EndpointRefused) as exc:
        raise ApiError(422, "invalid_subscription", f"Push subscription refused: {exc}.") from exc
    async with res.pool.acquire() as conn:
        device_id, new = await subscriptions.upsert(
            conn, current_actor().id, sub.endpoint, sub.keys.p256dh, sub.keys.auth,
            sub.expiration_time, data.device_type, data.device_name,
        )  # fmt: skip
    return {"id": device_id, "created": new}, 201 if new else 200


@blueprint.post("/unsubscribe")
@answers(200)
@authenticated
@validate_request(UnsubscribeIn)
async def unsubscribe(data: UnsubscribeIn) -> dict[str, bool]:
    removed = await subscriptions.unsubscribe(resources().pool, current_actor().id, data.endpoint)
    return {"removed": removed}


@blueprint.get("/subscriptions")
@answers(200)
@authenticated
async def list_devices() -> list[dict[str, Any]]:
    return await subscriptions.devices(resources().pool, current_actor().id)


@blueprint.post("/test")
@answers(200, 503)
@authenticated
async def test_push() -> dict[str, int]:
    res, me = resources(), current_actor()
    language = await res.pool.fetchval("SELECT language FROM users WHERE id = $1", me.id)
    dispatcher = Dispatcher(res.pool, _sender())
    message = trial_message(Language(language or DEFAULT_LANGUAGE))
    [tally] = await dispatcher.deliver([Job(me.id, message)])
    return {"sentCount": tally.sent, "failedCount": tally.failed}
