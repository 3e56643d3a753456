"""The Quart application factory: routes, schema docs, error handling, lifecycle."""

from __future__ import annotations

from quart import Quart, Response, request
from quart_schema import QuartSchema

from gateway.api import (
    auth,
    broadcast,
    machines,
    messages,
    notifications,
    ops,
    preferences,
    presence,
    push,
    sse,
    stats,
    tickets,
    users,
    web,
)
from gateway.api import settings as settings_api
from gateway.api.inputs import ID_ROUTE, JsonRequest, RowId
from gateway.api.openapi import DeclaredResponses
from gateway.api.resources import EXTENSION, Resources
from gateway.config import Settings
from gateway.errors import register_error_handlers
from gateway.metrics import HTTP_REQUESTS


def create_app(settings: Settings | None = None) -> Quart:
    settings = settings or Settings.from_env()
    settings.require_jwt_secret()
    app = Quart("floorbell", static_folder=None)
    app.request_class = JsonRequest
    app.url_map.converters[ID_ROUTE] = RowId
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, JSON_SORT_KEYS=False)
    # Our routes return JSON-ready dicts and lists. quart-schema would convert each of them
    # again through a pydantic TypeAdapter built per response (about 130 µs, more than the
    # rest of a small request's JSON handling): keep Quart's own make_response.
    plain_make_response = app.make_response
    QuartSchema(
        app,
        openapi_path="/openapi.json",
        swagger_ui_path="/docs",
        redoc_ui_path=None,
        scalar_ui_path=None,
        info={"title": "Floorbell", "version": "0.1.0"},
        convert_casing=False,
        openapi_provider_class=DeclaredResponses,
    )
    app.make_response = plain_make_response  # type: ignore[method-assign]
    res = Resources(settings)
    app.extensions[EXTENSION] = res
    app.before_serving(res.open)
    app.after_serving(res.close)
    register_error_handlers(app)
    for module in (
        auth,
        tickets,
        ops,
        sse,
        notifications,
        presence,
        machines,
        messages,
        users,
        settings_api,
        broadcast,
        push,
        preferences,
        stats,
    ):
        app.register_blueprint(module.blueprint)
    app.register_blueprint(web.blueprint)  # last: its catch-all must not shadow the API

    @app.after_request
    async def count(response: Response) -> Response:
        HTTP_REQUESTS.labels(request.method, str(response.status_code)).inc()
        return response

    return app
