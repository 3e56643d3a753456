"""What a careless or hostile client sends gets a clear 4xx JSON error, never a 500:
bodies that are not UTF-8, paths no file system takes, nulls where a value is required,
digits that are not ASCII."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from gateway.push.sender import retry_after_s
from gateway.realtime.cursor import CursorRejected, parse_cursor
from tests.helpers import bearer

NOT_UTF8 = b'{"title": "\xff\xfe caf\xe9"}'
JSON_ROUTES = [
    ("POST", "/api/auth/login"),
    ("POST", "/api/tickets"),
    ("PUT", "/api/tickets/1"),
    ("POST", "/api/messages"),
    ("PUT", "/api/settings"),
    ("PUT", "/api/notifications/preferences"),
    ("POST", "/api/push/subscribe"),
]


async def error_of(response: Any) -> dict[str, Any]:
    body = await response.get_json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return dict(body["error"])


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
async def test_a_body_that_is_not_utf8_is_a_400(
    client: Any, tokens: dict[str, str], method: str, path: str
) -> None:
    response = await client.open(
        path,
        method=method,
        data=NOT_UTF8,
        headers={**bearer(tokens["admin"]), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "UTF-8" in (await error_of(response))["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/" + "a" * 5000,  # longer than any file name
        "/" + "/".join(["b" * 250] * 30),
        "/icons/%00.png",
        "/%2e%2e/%2e%2e/etc/passwd",
    ],
)
async def test_odd_static_paths_are_404(client: Any, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert (await error_of(response))["code"] == "not_found"


async def test_static_files_still_serve(client: Any) -> None:
    assert (await client.get("/sw.js")).status_code == 200


async def _ticket(client: Any, token: str) -> dict[str, Any]:
    body = {"title": "Nulls", "description": "kept", "machine_id": 1}
    response = await client.post("/api/tickets", json=body, headers=bearer(token))
    assert response.status_code == 201
    return dict(await response.get_json())


@pytest.mark.parametrize("field", ["title", "description", "status", "priority"])
async def test_null_for_a_required_ticket_field_is_a_422(
    client: Any, tokens: dict[str, str], field: str
) -> None:
    ticket = await _ticket(client, tokens["admin"])
    response = await client.put(
        f"/api/tickets/{ticket['id']}", json={field: None}, headers=bearer(tokens["admin"])
    )
    assert response.status_code == 422
    assert (await error_of(response))["code"] == "validation_error"
    unchanged = await client.get(f"/api/tickets/{ticket['id']}", headers=bearer(tokens["admin"]))
    assert (await unchanged.get_json())[field] == ticket[field]


async def test_null_clears_the_assignee_and_the_date(
    client: Any, tokens: dict[str, str], users: dict[str, int]
) -> None:
    ticket = await _ticket(client, tokens["admin"])
    url, admin = f"/api/tickets/{ticket['id']}", bearer(tokens["admin"])
    when = "2031-05-04T10:00:00+00:00"
    set_both = {"assigned_to": users["tech1"], "scheduled_date": when}
    assert (await client.put(url, json=set_both, headers=admin)).status_code == 200
    response = await client.put(
        url, json={"assigned_to": None, "scheduled_date": None}, headers=admin
    )
    assert response.status_code == 200
    cleared = await response.get_json()
    assert cleared["assigned_to"] is None and cleared["scheduled_date"] is None


@pytest.mark.parametrize("digits", ["²", "\u0661\u0662", "\uff11\uff12", "3²", "1" * 40])
@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/notifications", "limit"),
        ("/api/notifications", "before"),
        ("/api/tickets", "limit"),
        ("/api/tickets", "machine_id"),
        ("/api/tickets", "assigned_to"),
    ],
)
async def test_digits_that_are_not_ascii_are_a_422(
    client: Any, tokens: dict[str, str], path: str, name: str, digits: str
) -> None:
    response = await client.get(path, query_string={name: digits}, headers=bearer(tokens["admin"]))
    assert response.status_code == 422
    assert (await error_of(response))["code"] == "validation_error"


@pytest.mark.parametrize(
    "raw", ["²:0-0:0-0", "7:²-0:0-0", "7:0-0:0-\u0661", "1" * 5000 + ":0-0:0-0", "7:0-0", ""]
)
def test_a_malformed_resume_id_is_rejected_as_such(raw: str) -> None:
    with pytest.raises(CursorRejected) as rejected:
        parse_cursor(raw, 7)
    assert rejected.value.reason == "malformed"


def test_retry_after_takes_only_ascii_seconds_or_a_date() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert retry_after_s("²") is None and retry_after_s("١٢") is None
    assert retry_after_s(" 12 ") == 12
    assert retry_after_s(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert retry_after_s("Tue, 01 Jan 2030 00:00:30 -0000", now) == 30  # a date without a zone
    assert retry_after_s("Tue, 01 Jan 99999 00:00:30 GMT", now) is None
