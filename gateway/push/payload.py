"""What a push carries, within the Web Push limits.

Payload: `{title, body, icon, badge, tag, actions?, data: {url, notification_id, type,
ticket_id?}}`. Title at most 100 characters, body 200, the whole JSON at most
`PAYLOAD_MAX_BYTES` (push services accept about 4 KiB of ciphertext): the body is
shortened first, then the title — `data` is never cut. Texts are in the recipient's
language: the inbox row's title and body were written in it, and the action buttons and
the digest's words come from its catalogue.

The `Topic` header (at most 32 characters of the URL-safe base64 alphabet) is per ticket
or per conversation, so a newer push replaces an older one still waiting at the push
service; the `tag` does the same for notifications already on screen. A critical push has
a topic (and tag) of its own per ticket, so no lesser push of that ticket — a comment sent
while the phone is offline — ever replaces an undelivered assignment or breakdown.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from domain.model import Language
from domain.notify import BODY_MAX, TITLE_MAX, shorten
from gateway.texts import text

PAYLOAD_MAX_BYTES = 3000
ICON = "/icons/icon-192.png"
BADGE = "/icons/badge-72.png"
ASSIGNMENT_TYPES = frozenset({"ticket_assigned", "ticket_reassigned"})
ASSIGNMENT_ACTIONS = ("view", "acknowledge")  # catalogue entries push.action.<action>
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclass(frozen=True)
class PushMessage:
    payload: bytes
    urgency: str = "normal"  # "high" for critical types
    topic: str | None = None


def topic_for(kind: str, url: str, data: dict[str, Any], critical: bool = False) -> str | None:
    """`ticket-<id>` (`critical-ticket-<id>` for a critical push) or `conv-<sender id>`
    (`conv-public` for the public channel)."""
    topic = None
    if data.get("ticket_id") is not None:
        topic = f"{'critical-' if critical else ''}ticket-{data['ticket_id']}"
    elif kind == "new_message" and "messages=public" in url:
        topic = "conv-public"
    elif kind == "new_message" and data.get("sender_id") is not None:
        topic = f"conv-{data['sender_id']}"
    return topic if topic is None or _TOPIC.match(topic) else None


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def fit(title: str, text: str, build: Any) -> bytes:
    """`build(title, body)` encoded, the body (then the title) shortened until it fits."""
    title, text = shorten(title, TITLE_MAX), shorten(text, BODY_MAX)
    encoded = encode(build(title, text))
    while len(encoded) > PAYLOAD_MAX_BYTES:
        if text:
            text = shorten(text, len(text) // 2) if len(text) > 1 else ""
        elif title:
            title = shorten(title, len(title) // 2) if len(title) > 1 else ""
        else:
            raise ValueError("a push's data alone exceeds the payload limit")
        encoded = encode(build(title, text))
    return encoded


def actions(language: Language) -> list[dict[str, str]]:
    return [{"action": name, "title": text(language, f"push.action.{name}")}
            for name in ASSIGNMENT_ACTIONS]  # fmt: skip


def _is_reminder(kind: str, data: dict[str, Any]) -> bool:
    """An escalation step that reminds the assignee, who answers it like the assignment."""
    return kind == "ticket_escalated" and data.get("to") == "assignee"


def notification_message(row: dict[str, Any]) -> PushMessage:
    """The push of one inbox notification (a `notifications` row with its recipient's
    `language`)."""
    kind, data, language = row["type"], row["data"] or {}, Language(row["language"])
    topic = topic_for(kind, row["url"], data, row["critical"])
    extra: dict[str, Any] = {"url": row["url"], "notification_id": row["id"], "type": kind}
    if data.get("ticket_id") is not None:
        extra["ticket_id"] = data["ticket_id"]

    def build(title: str, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"title": title, "body": text, "icon": ICON, "badge": BADGE,
                                "tag": topic or f"notification-{row['id']}"}  # fmt: skip
        if kind in ASSIGNMENT_TYPES or _is_reminder(kind, data):
            body["actions"] = actions(language)
        body["data"] = extra
        return body

    payload = fit(row["title"], row["body"], build)
    return PushMessage(payload, "high" if row["critical"] else "normal", topic)


def digest_message(lines: list[str], critical: bool, language: Language) -> PushMessage:
    """One push summarising what quiet hours held back: a line per notification, newest
    first, as many as the body holds."""
    count = len(lines)

    def build(title: str, text: str) -> dict[str, Any]:
        data = {"url": "/", "notification_id": None, "type": "digest", "count": count}
        return {"title": title, "body": text, "icon": ICON, "badge": BADGE, "tag": "digest",
                "data": data}  # fmt: skip

    payload = fit(text(language, "push.digest.title", count=count), " · ".join(lines), build)
    return PushMessage(payload, "high" if critical else "normal", "digest")


def trial_message(language: Language) -> PushMessage:
    def build(title: str, text: str) -> dict[str, Any]:
        return {"title": title, "body": text, "icon": ICON, "badge": BADGE, "tag": "test",
                "data": {"url": "/", "notification_id": None, "type": "test"}}  # fmt: skip

    title, body = text(language, "push.test.title"), text(language, "push.test.body")
    return PushMessage(fit(title, body, build))
