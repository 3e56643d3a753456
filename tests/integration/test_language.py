"""Each person's language: taken from the browser at the first login, chosen in the app
afterwards, shown in every user object; and the admins' default push choices."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from domain.kinds import KINDS
from tests.helpers import bearer

PASSWORD = "long enough"


async def _new_account(client: Any, tokens: dict[str, str]) -> str:
    email = f"lang-{uuid.uuid4().hex[:8]}@example.com"
    response = await client.post(
        "/api/users", headers=bearer(tokens["admin"]),
        json={"email": email, "full_name": "Lina", "role": "technician", "password": PASSWORD},
    )  # fmt: skip
    assert response.status_code == 201
    assert (await response.get_json())["language"] == "fr"  # until the first login says more
    return email


async def _login(client: Any, email: str, accept_language: str | None) -> dict[str, Any]:
    headers = {"Accept-Language": accept_language} if accept_language else {}
    response = await client.post(
        "/api/auth/login", json={"email": email, "password": PASSWORD}, headers=headers
    )
    assert response.status_code == 200
    return dict(await response.get_json())


@pytest.mark.parametrize(
    ("accept_language", "language"),
    [("en-CA,en;q=0.9,fr;q=0.5", "en"), ("fr-CA,fr;q=0.9", "fr"), ("de-DE,de;q=0.9", "fr"),
     ("de,en-GB;q=0.5", "en"), (None, "fr")],
)  # fmt: skip
async def test_the_first_login_takes_the_browsers_language(
    client: Any, tokens: dict[str, str], accept_language: str | None, language: str
) -> None:
    email = await _new_account(client, tokens)
    assert (await _login(client, email, accept_language))["user"]["language"] == language


async def test_later_logins_keep_the_language_the_person_has(
    client: Any, tokens: dict[str, str]
) -> None:
    email = await _new_account(client, tokens)
    assert (await _login(client, email, "en-US"))["user"]["language"] == "en"
    assert (await _login(client, email, "fr-CA"))["user"]["language"] == "en"


async def test_a_person_chooses_their_language(client: Any, tokens: dict[str, str]) -> None:
    email = await _new_account(client, tokens)
    headers = bearer((await _login(client, email, "fr-CA"))["token"])
    changed = await client.patch("/api/auth/me", json={"language": "en"}, headers=headers)
    assert changed.status_code == 200 and (await changed.get_json())["language"] == "en"
    me = await (await client.get("/api/auth/me", headers=headers)).get_json()
    assert me["language"] == "en" and me["email"] == email
    for bad in ({"language": "de"}, {"language": "EN"}, {"language": None}, {}):
        refused = await client.patch("/api/auth/me", json=bad, headers=headers)
        assert refused.status_code in (400, 422), bad
    assert (await (await client.get("/api/auth/me", headers=headers)).get_json())[
        "language"
    ] == "en"


async def test_a_breakdown_ticket_is_titled_in_the_reporters_language(
    client: Any, tokens: dict[str, str]
) -> None:
    email = await _new_account(client, tokens)
    headers = bearer((await _login(client, email, "en"))["token"])
    response = await client.post(
        "/api/machines/1/breakdown", json={"description": "Belt torn"}, headers=headers
    )
    assert response.status_code == 201
    assert (await response.get_json())["title"] == "Breakdown: Belt torn"


async def test_the_settings_show_every_types_default_and_change_in_part(
    client: Any, tokens: dict[str, str]
) -> None:
    admin = bearer(tokens["admin"])
    before = (await (await client.get("/api/settings", headers=admin)).get_json())["default_push"]
    assert before == {kind.name: kind.push for kind in KINDS}
    try:
        changed = await client.put(
            "/api/settings", json={"default_push": {"maintenance_due": True}}, headers=admin
        )
        assert changed.status_code == 200
        again = await client.put(
            "/api/settings", json={"default_push": {"broadcast": False}}, headers=admin
        )
        after = (await again.get_json())["default_push"]
        assert after == before | {"maintenance_due": True, "broadcast": False}
        tech = bearer(tokens["tech1"])
        prefs = await (await client.get("/api/notifications/preferences", headers=tech)).get_json()
        assert prefs["types"]["maintenance_due"]["push"] is True
        assert prefs["types"]["broadcast"]["push"] is False
    finally:
        reset = {"maintenance_due": False, "broadcast": True}
        await client.put("/api/settings", json={"default_push": reset}, headers=admin)


@pytest.mark.parametrize(
    "value", [True, ["comment_added"], {"no_such_type": True}, {"comment_added": "off"}]
)
async def test_a_malformed_default_push_is_refused_and_changes_nothing(
    client: Any, tokens: dict[str, str], value: Any
) -> None:
    admin = bearer(tokens["admin"])
    before = await (await client.get("/api/settings", headers=admin)).get_json()
    response = await client.put("/api/settings", json={"default_push": value}, headers=admin)
    assert response.status_code == 422
    assert (await response.get_json())["error"]["code"]
    assert await (await client.get("/api/settings", headers=admin)).get_json() == before


async def test_only_admins_change_the_defaults(client: Any, tokens: dict[str, str]) -> None:
    response = await client.put(
        "/api/settings", json={"default_push": {"comment_added": False}},
        headers=bearer(tokens["supervisor"]),
    )  # fmt: skip
    assert response.status_code == 403
