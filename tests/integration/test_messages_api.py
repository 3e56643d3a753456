"""The message API against real PostgreSQL: text and audio, conversations, read state,
idempotency, and who is told."""

from __future__ import annotations

import io
import uuid
from typing import Any

import asyncpg
import pytest
from quart.datastructures import FileStorage

from tests.helpers import PASSWORD, bearer, eventually

BIG = 2**70
MIB = 1024 * 1024
OGG = b"OggS\x00\x02" + bytes(range(256)) * 4  # only the bytes matter: nothing decodes them


async def _user(client: Any, tokens: dict[str, str], role: str = "operator") -> tuple[int, str]:
    """A person of one's own, so counts and conversations start empty."""
    email = f"msg-{uuid.uuid4().hex[:10]}@example.com"
    response = await client.post(
        "/api/users",
        headers=bearer(tokens["admin"]),
        json={
            "email": email,
            "full_name": f"Mia {email[4:10]}",
            "role": role,
            "password": PASSWORD,
        },
    )
    assert response.status_code == 201, await response.get_data()
    login = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    return (await response.get_json())["id"], (await login.get_json())["token"]


async def _send(
    client: Any, token: str, recipient: int | None, content: str, **headers: str
) -> Any:
    body: dict[str, Any] = {
        "message_type": "private" if recipient else "public",
        "content": content,
    }
    if recipient:
        body["recipient_id"] = recipient
    return await client.post("/api/messages", json=body, headers={**bearer(token), **headers})


async def _audio(
    client: Any,
    token: str,
    data: bytes = OGG,
    content_type: str = "audio/ogg",
    filename: str = "voice.ogg",
    **form: str,
) -> Any:
    upload = FileStorage(io.BytesIO(data), filename=filename, content_type=content_type)
    return await client.post(
        "/api/messages/audio",
        form={"duration": "4.2", **form},
        files={"file": upload},
        headers=bearer(token),
    )


async def _counts(db: asyncpg.Pool) -> tuple[int, ...]:
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM outbox),"
        " (SELECT count(*) FROM idempotency_keys)"
    )
    return tuple(row)


async def _events_since(db: asyncpg.Pool, mark: int) -> list[tuple[str, dict[str, Any]]]:
    rows = await db.fetch("SELECT event_type, payload FROM outbox WHERE id > $1 ORDER BY id", mark)
    return [(row["event_type"], row["payload"]) for row in rows]


async def _mark(db: asyncpg.Pool) -> int:
    return int(await db.fetchval("SELECT coalesce(max(id), 0) FROM outbox"))


async def _get(client: Any, token: str, path: str) -> Any:
    response = await client.get(path, headers=bearer(token))
    assert response.status_code == 200, await response.get_data()
    return await response.get_json()


async def test_private_message_round_trip(client: Any, tokens: dict[str, str], db: Any) -> None:
    alice, alice_token = await _user(client, tokens)
    bob, bob_token = await _user(client, tokens)
    mark = await _mark(db)
    response = await _send(client, alice_token, bob, "  Can you check the press?  ")
    assert response.status_code == 201
    message = await response.get_json()
    assert message["sender_id"] == alice and message["recipient_id"] == bob
    assert message["content"] == "Can you check the press?"
    assert message["message_type"] == "private" and message["audio"] is False
    assert message["is_read"] is False

    events = await _events_since(db, mark)
    assert [kind for kind, _ in events] == ["new_message"]
    payload = events[0][1]
    assert payload["message_id"] == message["id"] and payload["sender_id"] == alice
    assert payload["recipient_id"] == bob and payload["excerpt"] == "Can you check the press?"
    assert payload["audio"] is False and payload["sender_name"].startswith("Mia ")

    assert await _get(client, bob_token, "/api/messages/unread-count") == {"count": 1}
    assert await _get(client, alice_token, "/api/messages/unread-count") == {"count": 0}
    await _send(client, bob_token, alice, "On my way")
    thread = await _get(client, bob_token, f"/api/messages/private/{alice}")
    assert [m["content"] for m in thread] == ["Can you check the press?", "On my way"]
    assert set(thread[0]) >= {
        "id",
        "sender_id",
        "recipient_id",
        "content",
        "audio",
        "audio_duration",
        "is_read",
        "created_at",
    }
    assert await _get(client, alice_token, f"/api/messages/private/{bob}") == thread


async def test_conversations_newest_first_with_unread_counts(
    client: Any, tokens: dict[str, str]
) -> None:
    me, my_token = await _user(client, tokens)
    first, first_token = await _user(client, tokens)
    second, second_token = await _user(client, tokens)
    await _send(client, first_token, me, "one")
    await _send(client, first_token, me, "two " * 60)
    await _send(client, second_token, me, "hello")
    await _send(client, my_token, second, "hi back")

    conversations = await _get(client, my_token, "/api/messages/conversations")
    assert [c["contact_id"] for c in conversations] == [second, first]
    latest, older = conversations
    assert latest["last_message"] == "hi back" and latest["unread_count"] == 1
    assert older["unread_count"] == 2 and len(older["last_message"]) <= 160
    assert older["contact_name"].startswith("Mia ") and older["last_at"]
    assert await _get(client, my_token, "/api/messages/unread-count") == {"count": 3}


async def test_reading_a_thread(client: Any, tokens: dict[str, str], db: Any) -> None:
    me, my_token = await _user(client, tokens)
    other, other_token = await _user(client, tokens)
    _, third_token = await _user(client, tokens)
    for text in ("a", "b"):
        await _send(client, other_token, me, text)
    await _send(client, third_token, me, "from someone else")
    await _send(client, my_token, other, "mine stays unread for them")

    mark = await _mark(db)
    response = await client.post(f"/api/messages/private/{other}/read", headers=bearer(my_token))
    assert response.status_code == 200
    assert await response.get_json() == {"updated": 2}
    events = await _events_since(db, mark)
    assert events == [("counts_changed", {"user_id": me})]
    assert await _get(client, my_token, "/api/messages/unread-count") == {"count": 1}
    assert await _get(client, other_token, "/api/messages/unread-count") == {"count": 1}
    thread = await _get(client, my_token, f"/api/messages/private/{other}")
    assert [m["is_read"] for m in thread] == [True, True, False]

    mark = await _mark(db)
    again = await client.post(f"/api/messages/private/{other}/read", headers=bearer(my_token))
    assert await again.get_json() == {"updated": 0}
    assert await _events_since(db, mark) == []


async def test_thread_paging(client: Any, tokens: dict[str, str]) -> None:
    me, my_token = await _user(client, tokens)
    other, other_token = await _user(client, tokens)
    for i in range(5):
        await _send(client, other_token, me, f"m{i}")
    latest = await _get(client, my_token, f"/api/messages/private/{other}?limit=2")
    assert [m["content"] for m in latest] == ["m3", "m4"]
    older = await _get(
        client, my_token, f"/api/messages/private/{other}?limit=2&before={latest[0]['id']}"
    )
    assert [m["content"] for m in older] == ["m1", "m2"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=-1",
        "limit=abc",
        f"limit={BIG}",
        "before=x",
        "before=-5",
        "limit=%C2%B2",
        "limit=01x",
        "before=0",
        f"before={BIG}",
    ],
)
async def test_bad_thread_query_is_422(
    client: Any, tokens: dict[str, str], users: dict[str, int], query: str
) -> None:
    response = await client.get(
        f"/api/messages/private/{users['tech1']}?{query}", headers=bearer(tokens["operator"])
    )
    assert response.status_code == 422
    assert (await response.get_json())["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    "path", ["/api/messages/private/987654321", "/api/messages/private/987654321/read"]
)
async def test_unknown_contact_is_404(client: Any, tokens: dict[str, str], path: str) -> None:
    if path.endswith("/read"):
        response = await client.post(path, headers=bearer(tokens["operator"]))
    else:
        response = await client.get(path, headers=bearer(tokens["operator"]))
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"


async def test_public_messages(client: Any, tokens: dict[str, str], users: dict[str, int]) -> None:
    marker = f"Shift change at 14:00 ({uuid.uuid4().hex[:6]})"
    response = await _send(client, tokens["supervisor"], None, marker)
    assert response.status_code == 201
    message = await response.get_json()
    assert message["message_type"] == "public" and message["recipient_id"] is None
    feed = await _get(client, tokens["operator"], "/api/messages/public")
    assert feed[-1]["id"] == message["id"] and feed[-1]["content"] == marker
    assert all(m["message_type"] == "public" for m in feed) and len(feed) <= 100
    assert [m["id"] for m in feed] == sorted(m["id"] for m in feed)


async def test_idempotency_key_replays_without_writing(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any
) -> None:
    key = f"msg-{uuid.uuid4().hex}"
    before = await db.fetchval("SELECT count(*) FROM messages")
    first = await _send(
        client, tokens["operator"], users["tech1"], "Once", **{"Idempotency-Key": key}
    )
    again = await _send(
        client, tokens["operator"], users["tech1"], "Once", **{"Idempotency-Key": key}
    )
    assert first.status_code == again.status_code == 201
    assert await first.get_json() == await again.get_json()
    assert await db.fetchval("SELECT count(*) FROM messages") == before + 1
    # The key belongs to its user: someone else using it sends their own message.
    other = await _send(client, tokens["tech2"], users["tech1"], "Once", **{"Idempotency-Key": key})
    assert other.status_code == 201
    assert (await other.get_json())["id"] != (await first.get_json())["id"]


async def test_bad_idempotency_key(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any
) -> None:
    before = await _counts(db)
    response = await _send(
        client, tokens["operator"], users["tech1"], "x", **{"Idempotency-Key": "k" * 201}
    )
    assert response.status_code == 400
    assert await _counts(db) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message_type": "private", "content": "no recipient"},
        {"message_type": "private", "recipient_id": "ME", "content": "to myself"},
        {"message_type": "private", "recipient_id": 987654321, "content": "nobody"},
        {"message_type": "private", "recipient_id": -1, "content": "x"},
        {"message_type": "private", "recipient_id": 0, "content": "x"},
        {"message_type": "private", "recipient_id": BIG, "content": "x"},
        {"message_type": "private", "recipient_id": "TECH1_STR", "content": "x"},
        {"message_type": "private", "recipient_id": "TECH1", "content": 42},
        {"message_type": "private", "recipient_id": True, "content": "x"},
        {"message_type": "private", "recipient_id": 3.0, "content": "x"},
        {"message_type": "private", "recipient_id": "TECH1", "content": ""},
        {"message_type": "private", "recipient_id": "TECH1", "content": "   \n "},
        {"message_type": "private", "recipient_id": "TECH1", "content": "x" * 5001},
        {"message_type": "private", "recipient_id": "TECH1", "content": "a\u0000b"},
        {"message_type": "private", "recipient_id": "TECH1", "content": "\udc00"},
        {"message_type": "private", "recipient_id": "TECH1"},
        {"message_type": "public", "recipient_id": "TECH1", "content": "public with recipient"},
        {"message_type": "broadcast", "content": "x"},
        {"message_type": "", "content": "x"},
        {"message_type": None, "content": "x"},
        {"content": "x"},
        ["message_type", "public"],
        "hello",
        None,
    ],
)
async def test_bad_message_input_is_a_clear_4xx(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any, body: Any
) -> None:
    if isinstance(body, dict) and "recipient_id" in body:
        body = dict(body)
        body["recipient_id"] = {
            "ME": users["operator"],
            "TECH1": users["tech1"],
            "TECH1_STR": str(users["tech1"]),
        }.get(body["recipient_id"], body["recipient_id"])
    before = await _counts(db)
    response = await client.post("/api/messages", json=body, headers=bearer(tokens["operator"]))
    assert 400 <= response.status_code < 500, await response.get_data()
    error = (await response.get_json())["error"]
    assert error["code"] and error["message"]
    assert await _counts(db) == before


async def test_malformed_json_is_a_clear_4xx(client: Any, tokens: dict[str, str], db: Any) -> None:
    before = await _counts(db)
    for data, content_type in (("{nope", "application/json"), ("content=hi", "text/plain")):
        response = await client.post(
            "/api/messages",
            data=data,
            headers={**bearer(tokens["operator"]), "Content-Type": content_type},
        )
        assert 400 <= response.status_code < 500
        assert (await response.get_json())["error"]["code"]
    assert await _counts(db) == before


async def test_audio_message(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any
) -> None:
    mark = await _mark(db)
    response = await _audio(client, tokens["tech1"], recipient_id=str(users["supervisor"]))
    assert response.status_code == 201, await response.get_data()
    message = await response.get_json()
    assert message["audio"] is True and message["audio_duration"] == 4.2
    assert message["message_type"] == "private" and message["recipient_id"] == users["supervisor"]
    events = await _events_since(db, mark)
    assert [kind for kind, _ in events] == ["new_message"]
    assert events[0][1]["audio"] is True and events[0][1]["message_id"] == message["id"]

    url = f"/api/messages/{message['id']}/audio"
    for reader in ("supervisor", "tech1"):
        played = await client.get(url, headers=bearer(tokens[reader]))
        assert played.status_code == 200
        assert played.headers["Content-Type"] == "audio/ogg"
        assert await played.get_data() == OGG
    stranger = await client.get(url, headers=bearer(tokens["operator"]))
    assert stranger.status_code == 403
    assert (await stranger.get_json())["error"]["code"] == "forbidden"

    thread = await _get(client, tokens["supervisor"], f"/api/messages/private/{users['tech1']}")
    assert thread[-1]["id"] == message["id"] and thread[-1]["audio"] is True


async def test_audio_supports_range_requests(
    client: Any, tokens: dict[str, str], users: dict[str, int]
) -> None:
    message = await (
        await _audio(client, tokens["tech1"], recipient_id=str(users["tech2"]))
    ).get_json()
    response = await client.get(
        f"/api/messages/{message['id']}/audio",
        headers={**bearer(tokens["tech2"]), "Range": "bytes=0-9"},
    )
    assert response.status_code == 206
    assert await response.get_data() == OGG[:10]
    assert response.headers["Content-Range"] == f"bytes 0-9/{len(OGG)}"
    for bad in ("bytes=5000-", "bytes=abc", "pages=1-2"):
        response = await client.get(
            f"/api/messages/{message['id']}/audio",
            headers={**bearer(tokens["tech2"]), "Range": bad},
        )
        assert response.status_code == 416
        assert (await response.get_json())["error"]["code"]


async def test_public_audio_plays_for_everyone(client: Any, tokens: dict[str, str]) -> None:
    upload = await _audio(
        client,
        tokens["supervisor"],
        data=b"\x1aE\xdf\xa3webm",
        content_type="application/octet-stream",
        filename="note.webm",
    )
    assert upload.status_code == 201
    message = await upload.get_json()
    assert message["message_type"] == "public" and message["recipient_id"] is None
    played = await client.get(
        f"/api/messages/{message['id']}/audio", headers=bearer(tokens["operator"])
    )
    assert played.status_code == 200
    assert played.headers["Content-Type"] == "audio/webm"  # named from the file's extension


@pytest.mark.parametrize("path", ["/api/messages/987654321/audio", "/api/messages/TEXT/audio"])
async def test_audio_of_unknown_or_text_message_is_404(
    client: Any, tokens: dict[str, str], users: dict[str, int], path: str
) -> None:
    if "TEXT" in path:
        text = await (await _send(client, tokens["operator"], users["tech1"], "plain")).get_json()
        path = path.replace("TEXT", str(text["id"]))
    response = await client.get(path, headers=bearer(tokens["operator"]))
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("upload", "form"),
    [
        ({"content_type": "text/plain", "filename": "notes.txt"}, {}),
        ({"content_type": "image/png", "filename": "voice.ogg"}, {}),
        ({"content_type": "audio/ogg", "data": b""}, {}),
        ({}, {"duration": "0"}),
        ({}, {"duration": "-3"}),
        ({}, {"duration": "601"}),
        ({}, {"duration": "abc"}),
        ({}, {"duration": "nan"}),
        ({}, {"duration": "inf"}),
        ({}, {"duration": ""}),
        ({}, {"recipient_id": "abc"}),
        ({}, {"recipient_id": "-4"}),
        ({}, {"recipient_id": str(BIG)}),
        ({}, {"recipient_id": "987654321"}),
        ({}, {"recipient_id": "ME"}),
    ],
)
async def test_bad_audio_is_a_clear_4xx(
    client: Any,
    tokens: dict[str, str],
    users: dict[str, int],
    db: Any,
    upload: dict[str, Any],
    form: dict[str, str],
) -> None:
    if form.get("recipient_id") == "ME":
        form = {"recipient_id": str(users["operator"])}
    before = await _counts(db)
    response = await _audio(client, tokens["operator"], **upload, **form)
    assert response.status_code == 422, await response.get_data()
    error = (await response.get_json())["error"]
    assert error["code"] and error["message"]
    assert await _counts(db) == before


async def test_audio_form_without_a_file(client: Any, tokens: dict[str, str], db: Any) -> None:
    before = await _counts(db)
    missing = await client.post(
        "/api/messages/audio",
        form={"duration": "3", "file": "not a file"},
        headers=bearer(tokens["operator"]),
    )
    as_json = await client.post(
        "/api/messages/audio",
        json={"duration": 3, "file": "AAAA"},
        headers=bearer(tokens["operator"]),
    )
    no_duration = await _audio(client, tokens["operator"], duration="")
    for response in (missing, as_json, no_duration):
        assert response.status_code == 422
        assert (await response.get_json())["error"]["code"] == "validation_error"
    assert await _counts(db) == before


@pytest.mark.parametrize("size", [5 * MIB + 1, 7 * MIB])
async def test_oversized_audio_is_413(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any, size: int
) -> None:
    before = await _counts(db)
    response = await _audio(
        client, tokens["operator"], data=b"\x00" * size, recipient_id=str(users["tech1"])
    )
    assert response.status_code == 413
    assert (await response.get_json())["error"]["code"]
    assert await _counts(db) == before


async def test_audio_of_exactly_five_mib_is_accepted(
    client: Any, tokens: dict[str, str], users: dict[str, int]
) -> None:
    response = await _audio(
        client, tokens["operator"], data=b"\x01" * (5 * MIB), recipient_id=str(users["tech1"])
    )
    assert response.status_code == 201


async def test_recipient_is_told_not_the_sender(
    client: Any, tokens: dict[str, str], db: Any, worker: None
) -> None:
    sender, sender_token = await _user(client, tokens)
    recipient, recipient_token = await _user(client, tokens)
    message = await (await _send(client, sender_token, recipient, "Are you on shift?")).get_json()

    async def notified() -> list[asyncpg.Record]:
        return await db.fetch(
            "SELECT user_id, title, body, read_at FROM notifications WHERE type = 'new_message'"
            " AND (data->>'message_id')::bigint = $1",
            message["id"],
        )

    rows = await eventually(notified, 10)
    assert [row["user_id"] for row in rows] == [recipient]
    assert rows[0]["body"] == "Are you on shift?" and rows[0]["read_at"] is None

    # Reading the thread also reads its notices, so both badges fall together.
    response = await client.post(
        f"/api/messages/private/{sender}/read", headers=bearer(recipient_token)
    )
    assert await response.get_json() == {"updated": 1}
    assert (await notified())[0]["read_at"] is not None


async def test_routes_need_login(client: Any) -> None:
    for method, path in (
        ("GET", "/api/messages/unread-count"),
        ("GET", "/api/messages/conversations"),
        ("POST", "/api/messages"),
        ("GET", "/api/messages/1/audio"),
    ):
        response = await client.open(path, method=method, json={})
        assert response.status_code == 401


async def test_audio_upload_honours_the_idempotency_key(
    client: Any, tokens: dict[str, str], users: dict[str, int], db: Any
) -> None:
    key = f"voice-{uuid.uuid4().hex}"
    before = await db.fetchval("SELECT count(*) FROM messages")
    responses = []
    for _ in range(2):
        upload = FileStorage(io.BytesIO(OGG), filename="v.ogg", content_type="audio/ogg")
        responses.append(
            await client.post(
                "/api/messages/audio",
                form={"duration": "2", "recipient_id": str(users["tech2"])},
                files={"file": upload},
                headers={**bearer(tokens["tech1"]), "Idempotency-Key": key},
            )
        )
    assert [r.status_code for r in responses] == [201, 201]
    assert await responses[0].get_json() == await responses[1].get_json()
    assert await db.fetchval("SELECT count(*) FROM messages") == before + 1
