"""When each notification first reached one of its person's open connections — the end of
"write → frame", the live delivery latency the admin's statistics show.

The hub notes a notification as it hands its frame to the person's connections; its
supervised loop `framed_stamps` writes what was noted in one statement a second, through
whoever owns the database (the gateway's resources), so the hot path never waits on
PostgreSQL. The stamps of a write that fails (a database outage), or beyond
`max_pending` while one lasts, are dropped: they cost latency samples, never a delivery.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

Writer = Callable[[list[int], list[datetime]], Awaitable[None]]
FLUSH_EVERY_S = 1.0
MAX_PENDING = 20_000


class FramedStamps:
    def __init__(self, write: Writer, max_pending: int = MAX_PENDING) -> None:
        self._write, self._max_pending = write, max_pending
        self._pending: dict[int, datetime] = {}

    def note(self, notification_id: int) -> None:
        """The notification's frame was just handed to an open connection."""
        if notification_id not in self._pending and len(self._pending) < self._max_pending:
            self._pending[notification_id] = datetime.now(UTC)

    async def flush(self) -> None:
        """Write what was noted (a pass of the loop; what a failed write held is dropped)."""
        if self._pending:
            stamps, self._pending = self._pending, {}
            await self._write(list(stamps), list(stamps.values()))
