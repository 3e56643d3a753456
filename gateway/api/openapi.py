"""The OpenAPI document (`/openapi.json`) says every status a route answers with.

quart-schema builds the paths, parameters and request bodies from the routes. Each route
declares its own outcomes with `answers` (its successes, and the refusals particular to
it: 403, 404, 409, 422 of its rules, 429); what follows from a route's shape is added
here for all alike: 401 where a session is needed, 400/413/422 where a JSON body is read,
404 where the path names a row, 422 where the query string is read, and 503 (with
`Retry-After`) on every `/api/` route, for an outage of PostgreSQL or Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from quart_schema import OpenAPIProvider
from werkzeug.routing import Rule

F = TypeVar("F", bound=Callable[..., Any])
JSON = "application/json"
ANSWERS = "_floorbell_answers"
NEEDS_SESSION = "_floorbell_needs_session"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def answers(*statuses: int, content: str | tuple[str, ...] = JSON) -> Callable[[F], F]:
    """Declare the statuses a route answers with besides those of its shape; the 2xx
    ones carry `content` (a media type, or several), the others the JSON error body."""

    def declare(func: F) -> F:
        setattr(
            func, ANSWERS, {**getattr(func, ANSWERS, {}), "statuses": statuses, "content": content}
        )
        return func

    return declare


def _response(status: int, content: str | tuple[str, ...]) -> dict[str, Any]:
    described: dict[str, Any] = {"description": HTTPStatus(status).phrase}
    if 200 <= status < 300:
        types = (content,) if isinstance(content, str) else content
        described["content"] = {media: {"schema": {}} for media in types}
    elif status >= 400:
        described["content"] = {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}
    if status == 503:
        described["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return described


class DeclaredResponses(OpenAPIProvider):
    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        declared = getattr(func, ANSWERS, {})
        for operations in paths.values():
            for method, operation in operations.items():
                statuses = self._statuses(rule, func, operation, declared.get("statuses", (200,)))
                content = declared.get("content", JSON)
                documented = operation.get("responses", {})  # `document_response` schemas
                responses = {
                    str(s): documented[str(s)]
                    if 200 <= s < 300 and "content" in documented.get(str(s), {})
                    else _response(s, content)
                    for s in sorted(statuses)
                }
                operations[method] = {**operation, "responses": responses}
        return paths, components

    @staticmethod
    def _statuses(
        rule: Rule, func: Callable[..., Any], operation: dict[str, Any], own: tuple[int, ...]
    ) -> set[int]:
        statuses = set(own)
        parameters = operation.get("parameters", [])
        if rule.rule.startswith("/api/"):
            statuses.add(503)
        if getattr(func, NEEDS_SESSION, False):
            statuses.add(401)
        if "requestBody" in operation:
            statuses |= {400, 413, 422}
        if any(p["in"] == "path" for p in parameters):
            statuses.add(404)
        if any(p["in"] == "query" for p in parameters):
            statuses.add(422)
        return statuses

    def schema(self) -> dict[str, Any]:
        document: dict[str, Any] = super().schema()
        document.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        return document
