"""`push_logs`: one row per attempt, written in batches (group commit).

Every delivery waits for its records to be committed before it counts as done (the
stream entry is acknowledged only then), but deliveries that finish while a write is in
progress share the next one: one transaction for many pushes instead of one each, which
is what lets a worker send well over a thousand pushes a second. The same statement
touches `last_used` of devices that took a push and deletes devices that are gone.

Rows are locked in id order (and touches skip rows another worker holds), so workers
writing at the same time never deadlock.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from gateway.push.sender import GONE, SENT, Delivery
from gateway.push.subscriptions import Subscription

_WRITE = """
WITH logged AS (
    INSERT INTO push_logs (notification_id, digest_id, subscription_id, user_id, endpoint,
                           status, http_status, attempt, error_message)
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[],
                         $6::text[], $7::int[], $8::int[], $9::text[])
    ON CONFLICT DO NOTHING
    RETURNING 1
), touched AS (
    UPDATE push_subscriptions SET last_used = now() WHERE id IN (
        SELECT id FROM push_subscriptions WHERE id = ANY($10::bigint[])
        ORDER BY id FOR UPDATE SKIP LOCKED)
    RETURNING 1
), dropped AS (
    DELETE FROM push_subscriptions WHERE id IN (
        SELECT id FROM push_subscriptions WHERE id = ANY($11::bigint[]) ORDER BY id FOR UPDATE)
    RETURNING 1
)
SELECT (SELECT count(*) FROM logged)
"""


@dataclass(frozen=True)
class Record:
    notification_id: int | None
    digest_id: int | None
    device: Subscription
    delivery: Delivery


class Recorder:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._waiting: list[tuple[Record, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, record: Record) -> None:
        """Return once `record` is committed; raise if its write failed."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((record, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        await done

    async def _write_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            waiting = [done for _, done in batch if not done.done()]
            try:
                await self._write([record for record, _ in batch])
            except asyncio.CancelledError:
                for done in waiting:
                    done.cancel()
                raise
            except Exception as exc:
                for done in waiting:
                    done.set_exception(exc)
            else:
                for done in waiting:
                    if not done.done():
                        done.set_result(None)

    async def _write(self, records: list[Record]) -> None:
        rows = [(r, n, a) for r in records for n, a in enumerate(r.delivery.attempts, 1)]
        gone = {r.device.id for r in records if r.delivery.status == GONE}
        touched = {r.device.id for r in records if r.delivery.status == SENT} - gone
        await self._pool.fetchval(
            _WRITE,
            [r.notification_id for r, _, _ in rows], [r.digest_id for r, _, _ in rows],
            [r.device.id for r, _, _ in rows], [r.device.user_id for r, _, _ in rows],
            [r.device.endpoint for r, _, _ in rows], [a.status for _, _, a in rows],
            [a.http_status for _, _, a in rows], [n for _, n, _ in rows],
            [a.error for _, _, a in rows], sorted(touched), sorted(gone),
        )  # fmt: skip
