"""Notification preferences and quiet hours, as pure functions.

A person's stored choices are merged over the defaults on every read, so a type added
later, or a default the admins change (`default_push` in the settings), reaches everyone
who did not choose otherwise. Quiet hours are a daily window in the person's own time
zone, possibly spanning midnight (22:00-06:00); during it pushes are held for a digest,
except critical ones when `allow_critical` is on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import Enum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from domain.errors import Invalid
from domain.kinds import DEFAULT_PUSH, NOTIFICATION_TYPES

DEFAULT_DND: dict[str, Any] = {
    "enabled": False, "start": "22:00", "end": "06:00", "timezone": "UTC", "allow_critical": True,
}  # fmt: skip
_HH_MM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class Verdict(Enum):
    SEND = "send"
    HOLD = "hold"  # quiet hours: kept for the digest
    SKIP = "skip"  # the person turned pushes of this type off


def default_types(default_push: dict[str, Any] | None = None) -> dict[str, dict[str, bool]]:
    """Every type's default: pushed or not as the admins' `default_push` setting says (the
    catalogue's defaults for the types it does not name), and always shown in the app."""
    pushed = {kind: kind in DEFAULT_PUSH for kind in NOTIFICATION_TYPES}
    pushed.update(_known_switches(default_push))
    return {kind: {"push": push, "inapp": True} for kind, push in pushed.items()}


def check_default_push(value: Any) -> dict[str, bool]:
    """The admins' `default_push` setting, `{<type>: bool}`; Invalid when it is not that."""
    if not isinstance(value, dict):
        raise Invalid("default_push must be an object of {type: true|false}.")
    for kind, push in value.items():
        if kind not in NOTIFICATION_TYPES:
            raise Invalid(f"default_push: unknown notification type {kind!r}.")
        if not isinstance(push, bool):
            raise Invalid(f"default_push.{kind} must be true or false.")
    return dict(value)


def _known_switches(value: dict[str, Any] | None) -> dict[str, bool]:
    """A stored `default_push`, less what this version does not know."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if k in NOTIFICATION_TYPES and isinstance(v, bool)}


@dataclass(frozen=True)
class Preferences:
    """`types`: what holds for every type; `chosen`: what the person chose themselves (what
    is stored), so a default the admins change later still reaches every other type."""

    types: dict[str, dict[str, bool]]
    dnd: dict[str, Any]
    chosen: dict[str, dict[str, bool]] = field(default_factory=dict)

    @classmethod
    def from_stored(
        cls,
        types: dict[str, Any] | None,
        dnd: dict[str, Any] | None,
        default_push: dict[str, Any] | None = None,
    ) -> Preferences:
        """Stored choices (possibly partial or from an older version) over the defaults."""
        merged = default_types(default_push)
        chosen: dict[str, dict[str, bool]] = {}
        for kind, choice in (types or {}).items():
            if kind in merged and isinstance(choice, dict):
                own = {k: bool(v) for k, v in choice.items() if k in ("push", "inapp")}
                merged[kind].update(own)
                chosen[kind] = own
        stored_dnd = {k: v for k, v in (dnd or {}).items() if k in DEFAULT_DND}
        return cls(merged, {**DEFAULT_DND, **stored_dnd}, chosen)

    def as_json(self) -> dict[str, Any]:
        return {"types": self.types, "dnd": self.dnd}

    def inapp_allowed(self, kind: str) -> bool:
        """Shown live in the open app (the inbox keeps every notification regardless)."""
        return self.types.get(kind, {}).get("inapp", True)

    def push_allowed(self, kind: str, critical: bool) -> bool:
        choice = self.types.get(kind)
        return critical if choice is None else choice["push"]

    def updated(
        self, types: dict[str, dict[str, bool]] | None, dnd: dict[str, Any] | None
    ) -> Preferences:
        """These preferences with a (partial) change applied; Invalid on a bad value."""
        merged = {kind: dict(choice) for kind, choice in self.types.items()}
        chosen = {kind: dict(choice) for kind, choice in self.chosen.items()}
        for kind, choice in (types or {}).items():
            if kind not in merged:
                raise Invalid(f"Unknown notification type {kind!r}.")
            merged[kind].update(choice)
            chosen.setdefault(kind, {}).update(choice)
        new_dnd = {**self.dnd, **(dnd or {})}
        check_dnd(new_dnd)
        return Preferences(merged, new_dnd, chosen)


def check_dnd(dnd: dict[str, Any]) -> None:
    for name in ("start", "end"):
        if not isinstance(dnd[name], str) or not _HH_MM.match(dnd[name]):
            raise Invalid(f"dnd.{name} must be a time as HH:MM (00:00 to 23:59).")
    if dnd["start"] == dnd["end"]:
        raise Invalid("dnd.start and dnd.end must differ.")
    if dnd["timezone"] not in _zones():
        raise Invalid(f"dnd.timezone {dnd['timezone']!r} is not an IANA time zone.")


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def in_quiet_hours(dnd: dict[str, Any], now: datetime) -> bool:
    """Whether `now` (aware) falls inside the person's quiet hours, in their time zone."""
    if not dnd.get("enabled"):
        return False
    local = now.astimezone(ZoneInfo(dnd["timezone"])).time().replace(tzinfo=None)
    start, end = _clock(dnd["start"]), _clock(dnd["end"])
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the window spans midnight


def verdict(prefs: Preferences, kind: str, critical: bool, now: datetime) -> Verdict:
    """What to do with a push of `kind` now: send it, hold it for the digest, or skip it."""
    if not prefs.push_allowed(kind, critical):
        return Verdict.SKIP
    if in_quiet_hours(prefs.dnd, now) and not (critical and prefs.dnd.get("allow_critical")):
        return Verdict.HOLD
    return Verdict.SEND
