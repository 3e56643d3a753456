"""The end of quiet hours: one push summarising what they held back.

Every `push_digest_interval_s`, each person with held pushes whose quiet hours are over
gets a digest: their held rows are turned into a `push_digests` row in one transaction (a
second worker finds nothing left to take), then the digest is sent. A digest is leased
while it is sent, so one left unsent by a crashed worker is finished by another, and
`push_logs` keeps it to one per device. Notifications seen or read meanwhile, or pushed
after all, are left out; a digest with nothing left is not sent.
"""

from __future__ import annotations

import asyncpg

from domain.model import DEFAULT_LANGUAGE, Language
from domain.notify import shorten
from domain.preferences import Preferences, in_quiet_hours
from gateway.push.dispatch import Dispatcher, Job
from gateway.push.fanout import Clock, utc_now
from gateway.push.payload import digest_message
from gateway.supervision import Loop, shielded
from gateway.texts import text

LEASE = "120 seconds"  # longer than the longest delivery (see fanout.LEASE_MS)
LINE_MAX = 70  # characters per held notification in the digest's body
BATCH = 100


class QuietHoursDigest:
    def __init__(
        self, pool: asyncpg.Pool, dispatcher: Dispatcher, interval_s: float, clock: Clock = utc_now
    ) -> None:
        self._pool, self._dispatcher = pool, dispatcher
        self._interval_s, self._clock = interval_s, clock

    def loop(self) -> Loop:
        return Loop("push_digest", self.run_once, self._interval_s)

    async def run_once(self) -> int:
        """Open digests for quiet hours that ended, send pending ones; how many were sent."""
        await self._close_quiet_hours()
        return await self._send_pending()

    async def _close_quiet_hours(self) -> None:
        rows = await self._pool.fetch(
            "SELECT h.user_id, p.types, p.dnd FROM (SELECT DISTINCT user_id FROM push_held) h"
            " LEFT JOIN notification_preferences p ON p.user_id = h.user_id"
        )
        now = self._clock()
        for row in rows:
            if not in_quiet_hours(Preferences.from_stored(row["types"], row["dnd"]).dnd, now):
                await self._pool.execute(
                    "WITH taken AS"
                    " (DELETE FROM push_held WHERE user_id = $1 RETURNING notification_id)"
                    " INSERT INTO push_digests (user_id, notification_ids)"
                    " SELECT $1, array_agg(notification_id ORDER BY notification_id) FROM taken"
                    " HAVING count(*) > 0",
                    row["user_id"],
                )  # fmt: skip

    async def _send_pending(self) -> int:
        digests = await self._pool.fetch(
            f"UPDATE push_digests SET lease_until = now() + interval '{LEASE}' WHERE id IN"
            " (SELECT id FROM push_digests WHERE sent_at IS NULL AND lease_until < now()"
            f"  ORDER BY id LIMIT {BATCH} FOR UPDATE SKIP LOCKED)"
            " RETURNING id, user_id, notification_ids,"
            " (SELECT language FROM users WHERE id = push_digests.user_id) AS language"
        )  # fmt: skip
        jobs = []
        for digest in digests:
            held = await self._pool.fetch(
                "SELECT title, body, critical FROM notifications n WHERE id = ANY($1::bigint[])"
                " AND seen_at IS NULL AND read_at IS NULL AND NOT EXISTS (SELECT 1 FROM push_logs l"
                "  WHERE l.notification_id = n.id AND l.status = 'sent') ORDER BY id DESC",
                digest["notification_ids"],
            )  # fmt: skip
            if held:
                critical = any(row["critical"] for row in held)
                language = Language(digest["language"] or DEFAULT_LANGUAGE)
                lines = [_line(language, row["title"], row["body"]) for row in held]
                message = digest_message(lines, critical, language)
                jobs.append(Job(digest["user_id"], message, digest_id=digest["id"]))
        await self._dispatcher.deliver(jobs)
        if digests:  # bookkeeping of pushes that went out: not to be cut off by a stop
            await shielded(self._pool.execute(
                "UPDATE push_digests SET sent_at = now() WHERE id = ANY($1::bigint[])",
                [digest["id"] for digest in digests],
            ))  # fmt: skip
        return len(jobs)


def _line(language: Language, title: str, body: str) -> str:
    return shorten(text(language, "push.digest.line", title=title, body=body), LINE_MAX)
