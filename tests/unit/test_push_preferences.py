"""Preferences and quiet hours: defaults, changes, and when a push leaves, waits or not."""

from __future__ import annotations

from datetime import datetime

import pytest

from domain.errors import Invalid
from domain.kinds import NOTIFICATION_TYPES
from domain.preferences import (
    DEFAULT_DND,
    Preferences,
    Verdict,
    check_default_push,
    in_quiet_hours,
    verdict,
)


def at(hh_mm: str, day: str = "2026-01-15") -> datetime:
    return datetime.fromisoformat(f"{day}T{hh_mm}:00+00:00")


def dnd(
    start: str, end: str, timezone: str = "UTC", allow_critical: bool = True
) -> dict[str, object]:
    return {"enabled": True, "start": start, "end": end, "timezone": timezone,
            "allow_critical": allow_critical}  # fmt: skip


def test_defaults_push_what_the_floor_acts_on_and_show_everything_in_app() -> None:
    prefs = Preferences.from_stored(None, None)
    assert set(prefs.types) == set(NOTIFICATION_TYPES)
    in_app_only = {kind for kind, choice in prefs.types.items() if not choice["push"]}
    assert in_app_only == {"maintenance_due", "user_registered", "role_changed", "settings_changed"}
    assert all(choice["inapp"] for choice in prefs.types.values())
    assert prefs.dnd == DEFAULT_DND and prefs.dnd["enabled"] is False


def test_stored_choices_are_merged_over_defaults_and_strangers_ignored() -> None:
    prefs = Preferences.from_stored(
        {"comment_added": {"push": True}, "retired_type": {"push": True}, "new_message": "junk"},
        {"enabled": True, "colour": "blue"},
    )
    assert prefs.types["comment_added"] == {"push": True, "inapp": True}
    assert "retired_type" not in prefs.types
    assert prefs.types["new_message"]["push"] is True
    assert prefs.dnd["enabled"] is True and "colour" not in prefs.dnd


def test_a_change_keeps_what_it_does_not_mention() -> None:
    prefs = Preferences.from_stored(None, None).updated(
        {"comment_added": {"push": True}}, {"enabled": True, "timezone": "Europe/Paris"}
    )
    again = prefs.updated({"comment_added": {"inapp": False}}, {"start": "21:30"})
    assert again.types["comment_added"] == {"push": True, "inapp": False}
    assert again.dnd == {
        **DEFAULT_DND,
        "enabled": True,
        "timezone": "Europe/Paris",
        "start": "21:30",
    }


@pytest.mark.parametrize(
    ("types", "quiet"),
    [
        ({"no_such_type": {"push": True}}, None),
        (None, {"start": "24:00"}),
        (None, {"end": "7:00"}),
        (None, {"start": "06:00", "end": "06:00"}),
        (None, {"timezone": "Mars/Olympus_Mons"}),
        (None, {"timezone": "../../etc/passwd"}),
    ],
)
def test_bad_changes_are_refused(types: dict[str, dict[str, bool]] | None,
                                 quiet: dict[str, str] | None) -> None:  # fmt: skip
    with pytest.raises(Invalid):
        Preferences.from_stored(None, None).updated(types, quiet)


@pytest.mark.parametrize(
    ("now", "expected"),
    [("08:59", False), ("09:00", True), ("12:00", True), ("16:59", True), ("17:00", False)],
)
def test_quiet_hours_within_a_day(now: str, expected: bool) -> None:
    assert in_quiet_hours(dnd("09:00", "17:00"), at(now)) is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [("21:59", False), ("22:00", True), ("23:59", True), ("00:00", True), ("05:59", True),
     ("06:00", False), ("12:00", False)],
)  # fmt: skip
def test_quiet_hours_spanning_midnight(now: str, expected: bool) -> None:
    assert in_quiet_hours(dnd("22:00", "06:00"), at(now)) is expected


def test_quiet_hours_are_read_in_the_persons_time_zone() -> None:
    paris = dnd("22:00", "06:00", "Europe/Paris")
    assert in_quiet_hours(paris, at("21:30"))  # 22:30 in Paris (UTC+1 in January)
    assert not in_quiet_hours(paris, at("20:30"))
    # Summer time: Paris is UTC+2, so 20:30 UTC is already 22:30 there.
    assert in_quiet_hours(paris, at("20:30", "2026-07-15"))
    new_york = dnd("22:00", "06:00", "America/New_York")
    assert in_quiet_hours(new_york, at("04:00"))  # 23:00 the evening before
    assert not in_quiet_hours(new_york, at("12:00"))


def test_disabled_quiet_hours_never_hold() -> None:
    assert not in_quiet_hours({**dnd("00:00", "23:59"), "enabled": False}, at("12:00"))


def test_verdict_follows_the_ladder_rules() -> None:
    now = at("23:00")
    relaxed = Preferences.from_stored({"comment_added": {"push": True}}, None)
    assert verdict(relaxed, "comment_added", False, now) is Verdict.SEND
    assert verdict(relaxed, "maintenance_due", False, now) is Verdict.SKIP  # push off by default

    quiet = Preferences.from_stored({"comment_added": {"push": True}}, dnd("22:00", "06:00"))
    assert verdict(quiet, "comment_added", False, now) is Verdict.HOLD
    assert verdict(quiet, "ticket_assigned", True, now) is Verdict.SEND  # critical pierces
    assert verdict(quiet, "comment_added", False, at("07:00")) is Verdict.SEND

    strict = Preferences.from_stored(None, dnd("22:00", "06:00", allow_critical=False))
    assert verdict(strict, "ticket_assigned", True, now) is Verdict.HOLD

    muted = Preferences.from_stored({"ticket_assigned": {"push": False}}, None)
    assert verdict(muted, "ticket_assigned", True, now) is Verdict.SKIP


def test_an_unknown_type_pushes_only_when_critical() -> None:
    prefs = Preferences.from_stored(None, None)
    assert verdict(prefs, "something_new", True, at("12:00")) is Verdict.SEND
    assert verdict(prefs, "something_new", False, at("12:00")) is Verdict.SKIP


def test_default_dnd_is_never_shared_between_people() -> None:
    first = Preferences.from_stored(None, None)
    first.dnd["enabled"] = True
    assert Preferences.from_stored(None, None).dnd["enabled"] is False


def test_the_admins_defaults_reach_every_type_a_person_did_not_choose() -> None:
    admins = {"comment_added": False, "maintenance_due": True}
    prefs = Preferences.from_stored({"maintenance_due": {"push": False}}, None, admins)
    assert prefs.types["comment_added"]["push"] is False  # the admins' default
    assert prefs.types["maintenance_due"]["push"] is False  # the person's own choice
    assert prefs.types["ticket_closed"]["push"] is True  # the catalogue's default
    strange = Preferences.from_stored(None, None, {"retired": True, "broadcast": "yes"})
    assert strange.types == Preferences.from_stored(None, None).types


def test_only_what_a_person_chose_is_kept_as_theirs() -> None:
    prefs = Preferences.from_stored({"broadcast": {"inapp": False}}, None)
    changed = prefs.updated({"comment_added": {"push": False}}, {"enabled": True})
    assert changed.chosen == {"broadcast": {"inapp": False}, "comment_added": {"push": False}}
    later = Preferences.from_stored(changed.chosen, changed.dnd, {"ticket_closed": False})
    assert later.types["ticket_closed"]["push"] is False


@pytest.mark.parametrize(
    "value", [[], "on", {"no_such_type": True}, {"comment_added": 1}, {"broadcast": None}]
)
def test_default_push_must_name_known_types_with_booleans(value: object) -> None:
    with pytest.raises(Invalid):
        check_default_push(value)
