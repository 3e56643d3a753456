"""Events travel as JSON: what the router reads back is the event that was written."""

from __future__ import annotations

import json
from dataclasses import fields

from domain import events
from domain.events import EVENT_TYPES, UnknownEvent, from_stored

CARD = {"id": 7, "ticket_id": "T-2026-007", "title": "Leak", "assigned_to": 3, "reported_by": 5}
SAMPLE_VALUES = {"ticket": CARD, "followers": [4], "to": "all", "keys": ["k"], "audio": True}


def _sample(cls: type[events.Event]) -> events.Event:
    values = {}
    for f in fields(cls):
        if f.name == "actor_id":
            continue
        values[f.name] = SAMPLE_VALUES.get(f.name, 1 if "int" in str(f.type) else "x")
    return cls(2, **values)


def test_every_event_reads_back_as_written() -> None:
    for event_type, cls in EVENT_TYPES.items():
        event = _sample(cls)
        stored = json.loads(json.dumps(event.payload()))
        assert from_stored(event_type, 2, stored) == event, event_type


def test_unknown_types_and_keys_are_tolerated() -> None:
    assert from_stored("ticket_teleported", 1, {}) == UnknownEvent(1)
    moved = from_stored(
        "ticket_moved", 1, {"ticket": CARD, "from_status": "a", "to_status": "b", "new": 1}
    )
    assert isinstance(moved, events.TicketMoved) and moved.followers == []
