"""The PWA: `web/` served at `/`, with no build step in between."""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, abort, send_from_directory
from quart.blueprints import BlueprintSetupState
from werkzeug.routing import PathConverter

WEB_ROOT = Path(__file__).resolve().parents[2] / "web"
blueprint = Blueprint("web", __name__)


@blueprint.get("/")
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


@blueprint.get("/<asset:path>")
async def asset(path: str) -> Response:
    if not (WEB_ROOT / path).is_file():
        abort(404)
    response = await send_from_directory(WEB_ROOT, path)
    # The service worker caches the shell; the browser must revalidate so updates land.
    response.cache_control.no_cache = True
    return response
