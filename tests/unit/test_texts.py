"""The catalogues and the words a notice is written in, in French and English."""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from domain.events import from_stored
from domain.kinds import KINDS
from domain.model import Language, Priority, Role, Status
from domain.notify import BODY_MAX, TITLE_MAX, Notice, notices_for
from gateway.texts import PLACEHOLDER, catalogue, notice_texts, text

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = list(Language)
LONG = "Hydraulic hose burst under the ram, oil everywhere " * 20


def placeholders(entry: str | dict[str, str]) -> set[str]:
    forms = entry.values() if isinstance(entry, dict) else [entry]
    return {name for form in forms for name in PLACEHOLDER.findall(form)}


def test_every_key_exists_in_every_language() -> None:
    keys = {language: set(catalogue(language)) for language in LANGUAGES}
    for language in LANGUAGES:
        for other in LANGUAGES:
            missing = sorted(keys[other] - keys[language])
            assert missing == [], f"in {other} but not in {language}: {missing}"


def test_an_entry_has_the_same_shape_and_parameters_in_every_language() -> None:
    english = catalogue(Language.EN)
    for language in LANGUAGES:
        for key, entry in catalogue(language).items():
            assert type(entry) is type(english[key]), key
            if isinstance(entry, dict):  # plural forms: CLDR categories, "other" always
                assert {"one", "other"} <= set(entry), key
            assert placeholders(entry) == placeholders(english[key]), (language, key)


def test_every_kind_status_priority_and_role_has_its_words() -> None:
    wanted = [f"kind.{k.name}.{part}" for k in KINDS for part in ("label", "description")]
    wanted += [f"notice.{k.name}.{part}" for k in KINDS for part in ("title", "body")]
    wanted += [f"status.{s}" for s in Status] + [f"priority.{p}" for p in Priority]
    wanted += [f"role.{r}" for r in Role]
    for language in LANGUAGES:
        assert [key for key in wanted if key not in catalogue(language)] == [], language


def _card(**changes: Any) -> dict[str, Any]:
    return {"id": 10, "ticket_id": "T-2026-001", "title": "Leak", "reported_by": 5,
            "assigned_to": 3, "status": "received",
            "scheduled_date": "2026-03-05T19:30:00+00:00"} | changes  # fmt: skip


SAMPLES: dict[str, dict[str, Any]] = {
    "ticket_created": {"ticket": _card()},
    "ticket_assigned": {"ticket": _card(assigned_to=4), "previous_assignee": 3},
    "ticket_moved": {"ticket": _card(), "from_status": "received", "to_status": "in_progress"},
    "ticket_priority_changed": {"ticket": _card(), "from_priority": "low",
                                "to_priority": "critical"},
    "comment_added": {"ticket": _card(), "comment_id": 1, "author_name": "Sam",
                      "excerpt": "Checked the bearing"},
    "ticket_overdue": {"ticket": _card(), "day": "2026-03-06"},
    "new_message": {"message_id": 1, "sender_id": 2, "sender_name": "Sam",
                    "message_type": "private", "recipient_id": 3, "excerpt": "hi"},
    "machine_breakdown": {"ticket": _card(), "machine_id": 1, "machine_name": "Press 4"},
    "intervention_planned": {"intervention_id": 1, "machine_id": 1, "machine_name": "Press 4",
                             "assigned_to": 3, "scheduled_for": "2026-03-05T13:00:00+00:00",
                             "note": "Bring the seal kit"},
    "maintenance_due": {"machine_id": 1, "machine_name": "Press 4", "day": "2026-03-06"},
    "user_registered": {"user_id": 9, "email": "new@example.com", "full_name": "Nora",
                        "role": "technician"},
    "role_changed": {"user_id": 3, "from_role": "technician", "to_role": "supervisor"},
    "settings_changed": {"keys": ["default_push"]},
    "broadcast": {"title": "Fire drill", "body": "At 14:00", "to": "all"},
    "ticket_escalated": {"ticket": _card(), "step": 2, "to": "supervisors", "after_minutes": 10},
}  # fmt: skip
VARIANTS = [
    ("new_message", SAMPLES["new_message"] | {"audio": True, "excerpt": ""}),
    ("ticket_moved", SAMPLES["ticket_moved"] | {"to_status": "completed"}),
    ("ticket_escalated", SAMPLES["ticket_escalated"] | {"step": 1, "to": "assignee"}),
]


def everyone(roles: frozenset[Role] | None) -> list[int]:
    return [1, 2, 3, 4, 5]


def sample_notices(overrides: dict[str, Any] | None = None) -> list[Notice]:
    notices = []
    for event_type, data in SAMPLES.items():
        notices += notices_for(from_stored(event_type, 99, data | (overrides or {})), everyone)
    for event_type, data in VARIANTS:
        notices += notices_for(from_stored(event_type, 99, data | (overrides or {})), everyone)
    return notices


def test_every_kind_has_a_sample_here() -> None:
    assert {notice.type for notice in sample_notices()} == {kind.name for kind in KINDS}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_notice_is_written_whole_in_each_language(language: Language) -> None:
    for notice in sample_notices():
        title, body = notice_texts(notice, language, "America/Toronto")
        for words in (title, body):
            assert not PLACEHOLDER.search(words) and not words.startswith("notice."), notice
        assert title and len(title) <= TITLE_MAX and len(body) <= BODY_MAX


@pytest.mark.parametrize("language", LANGUAGES)
def test_long_names_stay_within_the_push_limits(language: Language) -> None:
    long = {"title": LONG, "author_name": LONG, "sender_name": LONG, "machine_name": LONG,
            "excerpt": LONG, "body": LONG, "note": LONG}  # fmt: skip
    for notice in sample_notices(long):
        title, body = notice_texts(notice, language, "UTC")
        assert len(title) <= TITLE_MAX and len(body) <= BODY_MAX and "\n" not in body


def _first(kind: str, text_name: str | None = None) -> Notice:
    return next(n for n in sample_notices() if n.type == kind and n.text == (text_name or kind))


def test_a_french_technician_reads_the_customers_words() -> None:
    title, body = notice_texts(_first("ticket_assigned"), Language.FR, "UTC")
    assert (title, body) == ("Nouveau ticket assigné", "T-2026-001\u00a0: Leak")
    assert notice_texts(_first("ticket_assigned"), Language.EN, "UTC")[0] == "New ticket assigned"
    assert notice_texts(_first("ticket_overdue"), Language.FR, "UTC")[0] == "⚠ ALERTE RETARD"


def test_an_escalation_says_how_long_and_reminds_the_assignee() -> None:
    assert notice_texts(_first("ticket_escalated"), Language.FR, "UTC") == (
        "⚠ Sans réponse depuis 10\u00a0min\u00a0: T-2026-001",
        "Leak — personne n\u2019a encore répondu",
    )
    title, body = notice_texts(_first("ticket_escalated", "ticket_escalated.reminder"),
                               Language.EN, "UTC")  # fmt: skip
    assert title == "Reminder: T-2026-001 is waiting for you" and "10 min" in body


def test_statuses_priorities_and_roles_are_translated_inside_sentences() -> None:
    assert notice_texts(_first("ticket_status_changed"), Language.FR, "UTC")[0] == (
        "Statut modifié\u00a0: En cours"
    )
    assert notice_texts(_first("ticket_priority_changed"), Language.EN, "UTC")[0] == (
        "Priority changed: Critical"
    )
    _, body = notice_texts(_first("role_changed"), Language.FR, "UTC")
    assert "Superviseur" in body and "Technicien" in body


def test_instants_are_written_in_the_readers_language_and_time_zone() -> None:
    _, body = notice_texts(_first("ticket_overdue"), Language.FR, "America/Toronto")
    assert body.endswith("en retard depuis le 5 mars 2026, 14 h 30 HNE")
    _, body = notice_texts(_first("intervention_planned"), Language.EN, "UTC")
    assert body == "Planned for Mar 5, 2026, 1:00\u202fp.m. UTC. Bring the seal kit"


def test_a_missing_entry_is_logged_and_shows_its_key(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert text(Language.FR, "notice.no_such.title") == "notice.no_such.title"
    assert "no_such" in caplog.text


def test_notices_and_pushes_hold_no_words_of_their_own() -> None:
    """Sentences a person reads live in the catalogues, not in the code that builds them."""
    prose = re.compile(r"[A-Za-zÀ-ÿ]{2,}\s+[A-Za-zÀ-ÿ]{2,}")
    found = []
    for path in ("domain/notify.py", "gateway/push/payload.py", "gateway/texts.py"):
        tree = ast.parse((ROOT / path).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in _for_developers(tree) and prose.search(node.value):
                    found.append(f"{path}: {node.value!r}")
    assert found == []


def _for_developers(tree: ast.AST) -> set[int]:
    """The strings only a developer reads: docstrings, exceptions, log lines."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr):
                ids.add(id(first.value))
        is_log = (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "log"
        )
        if isinstance(node, ast.Raise) or is_log:
            ids.update(id(child) for child in ast.walk(node))
    return ids
