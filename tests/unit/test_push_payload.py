"""Push payloads: the contract's shape, the recipient's language, Topic headers, and the
size limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.model import Language
from gateway.push.payload import (
    PAYLOAD_MAX_BYTES,
    digest_message,
    notification_message,
    topic_for,
    trial_message,
)


def row(**changes: Any) -> dict[str, Any]:
    base = {"id": 41, "type": "ticket_assigned", "title": "New ticket assigned",
            "body": "T-2026-007: Hydraulic leak", "url": "/?ticket=7",
            "data": {"ticket_id": 7, "ticket_code": "T-2026-007"}, "critical": True,
            "language": "en"}  # fmt: skip
    return base | changes


def decoded(payload: bytes) -> dict[str, Any]:
    return dict(json.loads(payload))


def test_an_assignment_carries_the_contract_fields_and_both_actions() -> None:
    message = notification_message(row())
    body = decoded(message.payload)
    assert body == {
        "title": "New ticket assigned", "body": "T-2026-007: Hydraulic leak",
        "icon": "/icons/icon-192.png", "badge": "/icons/badge-72.png",
        "tag": "critical-ticket-7",
        "actions": [{"action": "view", "title": "View ticket"},
                    {"action": "acknowledge", "title": "On my way"}],
        "data": {"url": "/?ticket=7", "notification_id": 41, "type": "ticket_assigned",
                 "ticket_id": 7},
    }  # fmt: skip
    assert message.urgency == "high" and message.topic == "critical-ticket-7"


def test_the_action_buttons_speak_the_recipients_language() -> None:
    body = decoded(notification_message(row(title="Nouveau ticket assigné", language="fr")).payload)
    assert [a["title"] for a in body["actions"]] == ["Voir le ticket", "J\u2019arrive"]
    assert body["title"] == "Nouveau ticket assigné"


def test_a_critical_push_has_a_topic_no_lesser_push_of_its_ticket_shares() -> None:
    critical = notification_message(row())
    comment = notification_message(row(id=42, type="comment_added", critical=False))
    raised = notification_message(row(id=43, type="ticket_priority_changed", critical=True))
    assert critical.topic == raised.topic == "critical-ticket-7" != comment.topic
    assert decoded(critical.payload)["tag"] != decoded(comment.payload)["tag"]


def test_a_reminder_to_the_assignee_is_answered_like_the_assignment() -> None:
    reminder = row(type="ticket_escalated", data={"ticket_id": 7, "step": 1, "to": "assignee"})
    managers = row(type="ticket_escalated", data={"ticket_id": 7, "step": 2, "to": "supervisors"})
    body = decoded(notification_message(reminder).payload)
    assert [a["action"] for a in body["actions"]] == ["view", "acknowledge"]
    assert "actions" not in decoded(notification_message(managers).payload)  # not theirs
    assert notification_message(managers).urgency == "high"


def test_other_types_have_no_actions_and_normal_urgency() -> None:
    message = notification_message(row(type="comment_added", critical=False))
    body = decoded(message.payload)
    assert "actions" not in body and message.urgency == "normal"
    assert body["data"]["ticket_id"] == 7 and message.topic == "ticket-7"


def test_topics_are_per_ticket_or_per_conversation() -> None:
    assert topic_for("new_message", "/?conversation=12", {"sender_id": 12}) == "conv-12"
    assert topic_for("new_message", "/?messages=public", {"sender_id": 12}) == "conv-public"
    assert topic_for("role_changed", "/", {}) is None
    message = notification_message(row(id=9, type="role_changed", url="/", data={}, critical=False))
    assert message.topic is None and decoded(message.payload)["tag"] == "notification-9"
    assert "ticket_id" not in decoded(message.payload)["data"]


def test_a_topic_is_at_most_32_characters_of_the_url_safe_alphabet() -> None:
    assert topic_for("comment_added", "/", {"ticket_id": 10**40}) is None
    assert topic_for("comment_added", "/", {"ticket_id": "7/../x"}) is None


def test_title_and_body_are_shortened_to_their_limits() -> None:
    body = decoded(notification_message(row(title="T" * 300, body="B" * 900)).payload)
    assert len(body["title"]) <= 100 and len(body["body"]) <= 200
    assert body["body"].endswith("…")


def test_the_payload_fits_by_shortening_the_body_never_the_url() -> None:
    url = "/?ticket=7&" + "x" * 2700
    message = notification_message(row(url=url, title="🔧" * 100, body="🔥" * 200))
    body = decoded(message.payload)
    assert len(message.payload) <= PAYLOAD_MAX_BYTES
    assert body["data"]["url"] == url
    assert len(body["body"]) < 200


def test_the_digest_counts_what_was_held() -> None:
    message = digest_message(["Ticket overdue", "New ticket assigned", "Status: in progress"],
                             critical=True, language=Language.EN)  # fmt: skip
    body = decoded(message.payload)
    assert body["title"] == "3 notifications while you were away"
    assert body["data"] == {"url": "/", "notification_id": None, "type": "digest", "count": 3}
    assert "Ticket overdue" in body["body"] and message.urgency == "high"
    single = decoded(digest_message(["Ticket overdue"], False, Language.EN).payload)
    assert single["title"] == "1 notification while you were away"


@pytest.mark.parametrize(
    ("count", "title"),
    [(0, "0 notification pendant votre absence"), (1, "1 notification pendant votre absence"),
     (2, "2 notifications pendant votre absence"),
     (1200, "1\u00a0200 notifications pendant votre absence")],
)  # fmt: skip
def test_the_digest_counts_in_french_by_french_plural_rules(count: int, title: str) -> None:
    body = decoded(digest_message(["x"] * count, False, Language.FR).payload)
    assert body["title"] == title


def test_the_test_push_opens_the_app_in_the_callers_language() -> None:
    for language, title in ((Language.EN, "Floorbell test"), (Language.FR, "Test de Floorbell")):
        body = decoded(trial_message(language).payload)
        assert body["data"] == {"url": "/", "notification_id": None, "type": "test"}
        assert body["title"] == title
