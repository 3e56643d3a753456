"""The kinds of notification (CONTRACT section 5): one line each.

A kind is added here (critical or not, pushed by default or in-app only), given a builder
in `domain.notify` (who is told), its texts in every catalogue under `web/i18n/`
(`kind.<name>.label`, `kind.<name>.description`, `notice.<name>.title`, `.body`), its
line in the PWA's `web/events.js` (who can receive it) and its row in the README's
table; the tests fail until all of them know it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    critical: bool  # always critical; a builder may still make one notice critical
    push: bool  # pushed by default (admins change the defaults, each person their own)


KINDS = (
    Kind("ticket_assigned", critical=True, push=True),
    Kind("ticket_reassigned", critical=True, push=True),
    Kind("ticket_status_changed", critical=False, push=True),
    Kind("ticket_priority_changed", critical=False, push=True),  # critical when raised to it
    Kind("ticket_closed", critical=False, push=True),
    Kind("comment_added", critical=False, push=True),
    Kind("ticket_overdue", critical=True, push=True),
    Kind("new_message", critical=False, push=True),
    Kind("machine_breakdown", critical=True, push=True),
    Kind("intervention_planned", critical=False, push=True),
    Kind("maintenance_due", critical=False, push=False),
    Kind("user_registered", critical=False, push=False),
    Kind("role_changed", critical=False, push=False),
    Kind("settings_changed", critical=False, push=False),
    Kind("broadcast", critical=False, push=True),
    Kind("ticket_escalated", critical=True, push=True),  # a step of the escalation ladder
)

NOTIFICATION_TYPES = tuple(kind.name for kind in KINDS)
CRITICAL_TYPES = frozenset(kind.name for kind in KINDS if kind.critical)
DEFAULT_PUSH = frozenset(kind.name for kind in KINDS if kind.push)
