"""The operations routes: liveness, readiness naming what is missing, the API docs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pytest

from gateway.api.app import create_app
from gateway.config import Settings
from tests.faults.proxy import Proxy


async def test_healthz_says_the_process_is_up(client: Any, settings: Settings) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok", "instance": settings.instance_id}


async def test_readyz_is_ready_when_both_services_answer(client: Any) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["ready"] is True and body["checks"]["postgresql"] == "ok"
    assert body["checks"]["redis"] == "ok"


@pytest.mark.parametrize("lost", ["postgresql", "redis"])
async def test_readyz_names_the_service_that_does_not_answer(
    settings: Settings, db: Any, lost: str
) -> None:
    url = settings.database_url if lost == "postgresql" else settings.redis_url
    parts = urlsplit(url)
    assert parts.port is not None
    proxy = Proxy(parts.hostname or "127.0.0.1", parts.port)
    await proxy.start()
    netloc = parts.netloc.replace(f":{parts.port}", f":{proxy.port}")
    via = parts._replace(netloc=netloc).geturl()
    field = "database_url" if lost == "postgresql" else "redis_url"
    app = create_app(replace(settings, **{field: via}))
    try:
        async with app.test_app() as test_app:
            client = test_app.test_client()
            assert (await client.get("/readyz")).status_code == 200
            await proxy.refuse()
            response = await client.get("/readyz")
            body = await response.get_json()
            assert response.status_code == 503 and body["ready"] is False
            assert body["checks"][lost].startswith("unavailable")
            other = "redis" if lost == "postgresql" else "postgresql"
            assert body["checks"][other] == "ok"
            await proxy.start()
    finally:
        await proxy.stop()


async def test_docs_and_the_openapi_document_are_served(client: Any) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in (await docs.get_data(as_text=True))
    document = await (await client.get("/openapi.json")).get_json()
    login = document["paths"]["/api/auth/login"]["post"]
    assert {"200", "401", "422", "429", "503"} <= set(login["responses"])
    assert "Retry-After" in login["responses"]["503"]["headers"]
