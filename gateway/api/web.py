"""The PWA: `web/` served at `/`, with no build step in between."""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, abort, send_from_directory
from quart.blueprints import BlueprintSetupState
from werkzeug.routing import PathConverter

from gateway.api.openapi import answers

WEB_ROOT = Path(__file__).resolve().parents[2] / "web"
blueprint = Blueprint("web", __name__)


@blueprint.get("/")
@answers(200, content="text/html")
async def index() -> Response:
    response = await send_from_directory(WEB_ROOT, "index.html")
    response.cache_control.no_cache = True
    return response


class AssetPath(PathConverter):
    """Any path outside /api/: an unknown API path stays a plain 404 for every method."""

    regex = r"(?!api/)[^/].*?"


@blueprint.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters["asset"] = AssetPath


def _is_asset(path: str) -> bool:
    try:
        return (WEB_ROOT / path).is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


@blueprint.get("/<asset:path>")
@answers(200, content="*/*")
async def asset(path: str) -> Response:
    if not _is_asset(path):
        abort(404)
    response = await send_from_directory(WEB_ROOT, path)
    # The service worker caches the shell; the browser must revalidate so updates land.
    response.cache_control.no_cache = True
    return response
