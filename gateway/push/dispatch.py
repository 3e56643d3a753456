"""Delivering messages to people's devices, and recording every attempt in `push_logs`.

One notification reaches one device once: a device that already has a `sent` record for
it is skipped, and the record is written right after the push service's answer. The one
window no design closes is a crash between that answer and the record: the entry is then
handled again and that device receives the push twice (the shared `Topic` and `tag` make
the second replace the first on screen). The opposite choice — recording before sending —
would lose pushes instead, which is worse for an alert.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from gateway.push import subscriptions
from gateway.push.payload import PushMessage
from gateway.push.records import Record, Recorder
from gateway.push.sender import SENT, PushSender
from gateway.push.subscriptions import Subscription
from gateway.supervision import shielded

Ref = tuple[str, int | None]  # ("n", notification id) or ("d", digest id)


@dataclass(frozen=True)
class Job:
    """One message for all devices of one person."""

    user_id: int
    message: PushMessage
    notification_id: int | None = None
    digest_id: int | None = None

    @property
    def ref(self) -> Ref:
        return _ref(self.notification_id, self.digest_id)


@dataclass
class Tally:
    sent: int = 0
    failed: int = 0


class Dispatcher:
    def __init__(self, pool: asyncpg.Pool, sender: PushSender) -> None:
        self._pool, self._sender = pool, sender
        self._recorder = Recorder(pool)

    async def deliver(self, jobs: Sequence[Job]) -> list[Tally]:
        """Send every job to every device of its person at once; a tally per job."""
        if not jobs:
            return []
        devices: dict[int, list[Subscription]] = defaultdict(list)
        for device in await subscriptions.for_users(self._pool, sorted({j.user_id for j in jobs})):
            devices[device.user_id].append(device)
        tallies = [Tally() for _ in jobs]
        if not devices:  # nobody here has a device: nothing to check, nothing to send
            return tallies
        done = await self._settled(jobs)
        sends = [
            self._send(job, device, tally)
            for job, tally in zip(jobs, tallies, strict=True)
            if (job.ref, None) not in done
            for device in devices[job.user_id]
            if (job.ref, device.id) not in done
        ]
        # Every send finishes (and is recorded) before a failure of one is reported.
        errors = [e for e in await asyncio.gather(*sends, return_exceptions=True) if e is not None]
        if errors:
            raise errors[0]
        return tallies

    async def _send(self, job: Job, device: Subscription, tally: Tally) -> None:
        delivery = await self._sender.send(device, job.message)
        # Once the push service took it, the record must be written even if we are being
        # stopped: an unrecorded push goes out again.
        await shielded(
            self._recorder.record(Record(job.notification_id, job.digest_id, device, delivery))
        )
        if delivery.status == SENT:
            tally.sent += 1
        else:
            tally.failed += 1

    async def _settled(self, jobs: Sequence[Job]) -> set[tuple[Ref, int | None]]:
        """What must not go out: (job, device) already sent, and (notification, None) for
        one a device displayed or its person read since the decision to push was taken
        (checked at the last moment, in the same query)."""
        notifications = [job.notification_id for job in jobs if job.notification_id is not None]
        digests = [job.digest_id for job in jobs if job.digest_id is not None]
        if not notifications and not digests:
            return set()
        rows = await self._pool.fetch(
            "SELECT notification_id, digest_id, subscription_id FROM push_logs"
            " WHERE status = 'sent' AND (notification_id = ANY($1::bigint[])"
            " OR digest_id = ANY($2::bigint[]))"
            " UNION ALL SELECT id, NULL, NULL FROM notifications WHERE id = ANY($1::bigint[])"
            " AND (seen_at IS NOT NULL OR read_at IS NOT NULL)",
            notifications, digests,
        )  # fmt: skip
        return {(_ref(r["notification_id"], r["digest_id"]), r["subscription_id"]) for r in rows}


def _ref(notification_id: int | None, digest_id: int | None) -> Ref:
    return ("d", digest_id) if digest_id is not None else ("n", notification_id)
