"""The router: turns domain events into board updates and personal notifications.

A consumer group on the domain stream (`consumer.GroupConsumer`: several workers share the
work, a stopped worker's entries are finished by another, a failing entry is isolated and
eventually set aside). Each read (up to BATCH entries) is routed as one batch in a fixed
number of round trips, however many events and recipients it holds: one query reads the
recipients' languages and preferences, one statement stores every notification in its
recipient's language, one query reads the badges, one Redis pipeline appends everything,
one statement marks the events routed; the consumer acknowledges the
batch once all of it is done. Each step is idempotent (inbox rows are unique per
recipient, event and type; stream appends are deduplicated), so a batch handled twice
tells nobody twice.

Unread counts never go backwards, however many routers run: each count carries a version
taken with it under a row lock (`inbox.versioned_unread_counts`), and the append drops a
count older than the last one appended for that person.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from domain import events as domain_events
from domain.model import Role
from domain.notify import Directory, Notice, board_event, notices_for
from domain.preferences import Preferences
from gateway.keys import ROUTER_GROUP, Keys
from gateway.metrics import NOTIFICATIONS_ROUTED
from gateway.pipeline.consumer import Group, GroupConsumer
from gateway.services import inbox
from gateway.services.inbox import Counts
from gateway.services.preferences import Recipient, load_recipients
from gateway.streams import Append, Entry, queue_append_once
from gateway.supervision import Loop, run_loops, shielded
from gateway.texts import notice_texts
from gateway.wire import ENVELOPE_B, envelope, push_entry

log = logging.getLogger(__name__)
BATCH = 100
Event = dict[str, Any]
StreamEntry = tuple[str, str, str]  # (dedup member, type, envelope)


@dataclass(frozen=True)
class Routed:
    """A notice stored in the inbox: the event it came from, its row id, and its words in
    the recipient's language."""

    event: Event
    notice: Notice
    notification_id: int
    title: str
    body: str


@dataclass(frozen=True)
class Stored:
    """What the database says about a batch."""

    routed: list[Routed]  # in the order of the events
    counts: dict[int, tuple[int, Counts]]  # versioned unread counts after the batch, per user
    prefs: dict[int, Preferences]  # per recipient


class Router:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis,
        keys: Keys,
        consumer: str,
        claim_idle_ms: int = 30_000,
        max_attempts: int = 5,
    ) -> None:
        self._pool, self._redis, self._keys = pool, redis, keys
        self.consumer = GroupConsumer(
            redis, keys, Group(keys.domain_stream, ROUTER_GROUP), consumer, self.handle_batch,
            batch=BATCH, claim_idle_ms=claim_idle_ms, max_attempts=max_attempts,
        )  # fmt: skip

    def loops(self) -> list[Loop]:
        return self.consumer.loops("router")

    async def run(self, stop: asyncio.Event) -> None:
        """Route until stopped (on a supervisor of its own)."""
        await run_loops(stop, *self.loops())

    async def handle_batch(self, entries: list[Entry]) -> None:
        """Route entries of the domain stream. An error before the pipeline has run
        leaves them to be handled again, and idempotency makes that repeat nothing."""
        events = await self._unrouted([json.loads(fields[ENVELOPE_B]) for _, fields in entries])
        if not events:
            return
        stored = await self._store(events)
        async with self._redis.pipeline(transaction=False) as pipe:
            self._queue_board(pipe, events)
            self._queue_users(pipe, events, stored)
            self._queue_push(pipe, stored.routed)
            await pipe.execute()  # raises if any append failed: then nothing is acknowledged
        # Done with these events: a Redis history lost from now on needs them no more.
        await shielded(self._pool.execute(
            "UPDATE outbox SET routed_at = now()"
            " WHERE id = ANY($1::bigint[]) AND routed_at IS NULL",
            [event["outbox_id"] for event in events],
        ))  # fmt: skip

    async def _unrouted(self, events: list[Event]) -> list[Event]:
        """The events not routed yet. One routed already comes again when Redis lost the
        acknowledgement but not PostgreSQL the routing (a failover to a replica that
        lacked the last writes): what it appended is in the inbox, and its readers are
        told `history_lost`; appending it again would tell them twice."""
        routed = await self._pool.fetch(
            "SELECT id FROM outbox WHERE id = ANY($1::bigint[]) AND routed_at IS NOT NULL",
            [event["outbox_id"] for event in events],
        )
        if not routed:
            return events
        done = {row["id"] for row in routed}
        return [event for event in events if event["outbox_id"] not in done]

    async def _store(self, events: list[Event]) -> Stored:
        """Store the batch's notifications, each in its recipient's language, then read
        the badges that delivering them needs."""
        counted = [
            event["data"]["user_id"] for event in events if event["type"] == "counts_changed"
        ]
        async with self._pool.acquire() as conn:
            notices = await _notices(conn, events)
            recipients = await load_recipients(conn, [notice.user_id for _, notice in notices])
            routed = await _insert(conn, notices, recipients)
            counts = await inbox.versioned_unread_counts(conn, [*recipients, *counted])
        prefs = {user_id: recipient.prefs for user_id, recipient in recipients.items()}
        return Stored(routed, counts, prefs)

    def _queue_board(self, pipe: Pipeline, events: list[Event]) -> None:
        entries = [
            _board_entry(event, board_type)
            for event in events
            if (board_type := board_event(_typed(event)))
        ]
        queue_append_once(pipe, self._keys.board_stream, self._keys.router_appended, entries)

    def _queue_users(self, pipe: Pipeline, events: list[Event], stored: Stored) -> None:
        """Append to each user's own stream (history, resume), mirrored to the live
        stream the gateway hubs follow."""
        for user_id, entries in _user_entries(events, stored).items():
            queue_append_once(
                pipe,
                self._keys.user_stream(user_id),
                self._keys.router_appended,
                entries,
                mirror=(self._keys.live_stream, str(user_id)),
                versions=self._keys.unread_versions,
            )

    def _queue_push(self, pipe: Pipeline, routed: list[Routed]) -> None:
        entries = [
            (f"p{item.notification_id}", item.notice.type, _push_entry(item)) for item in routed
        ]
        queue_append_once(pipe, self._keys.push_stream, self._keys.router_appended, entries)


async def _notices(conn: asyncpg.Connection, events: list[Event]) -> list[tuple[Event, Notice]]:
    """Every notice of the batch, in event order (`counts_changed` has none). The user
    directory is read once, and only when some recipients depend on roles or on everyone
    (a breakdown, a public message; not a private one): building notices is pure, so a
    batch that turns out to need it is simply built again with it."""
    try:
        return _batch_notices(events, _no_directory)
    except _DirectoryNeeded:
        return _batch_notices(events, await _directory(conn))


def _batch_notices(events: list[Event], directory: Directory) -> list[tuple[Event, Notice]]:
    return [(event, notice) for event in events for notice in notices_for(_typed(event), directory)]


def _typed(event: Event) -> domain_events.Event:
    """The domain event an envelope of the domain stream carries."""
    return domain_events.from_stored(event["type"], event.get("actor_id"), event["data"])


async def _insert(
    conn: asyncpg.Connection, notices: list[tuple[Event, Notice]], recipients: dict[int, Recipient]
) -> list[Routed]:
    """Store every notice in one statement, in its recipient's language; one already
    stored keeps its id."""
    unique: dict[tuple[int, int, str], tuple[Event, Notice]] = {}
    for event, notice in notices:  # an event twice in a batch: one row may be hit once
        unique.setdefault((notice.user_id, event["outbox_id"], notice.type), (event, notice))
    if not unique:
        return []
    words = {key: _words(notice, recipients[notice.user_id]) for key, (_, notice) in unique.items()}
    ids = await inbox.store(conn, _columns(list(unique.values()), list(words.values())))
    for _, notice in unique.values():
        NOTIFICATIONS_ROUTED.labels(notice.type).inc()
    return [Routed(event, notice, ids[key], *words[key]) for key, (event, notice) in unique.items()]


def _words(notice: Notice, reader: Recipient) -> tuple[str, str]:
    """Title and body in the reader's language, instants in their time zone."""
    return notice_texts(notice, reader.language, reader.prefs.dnd["timezone"])


def _columns(notices: list[tuple[Event, Notice]], words: list[tuple[str, str]]) -> list[list[Any]]:
    """The notices as the column arrays `_INSERT_NOTIFICATIONS` unnests."""
    return [
        [notice.user_id for _, notice in notices],
        [event["outbox_id"] for event, _ in notices],
        [notice.type for _, notice in notices],
        [title for title, _ in words],
        [body for _, body in words],
        [notice.url for _, notice in notices],
        [notice.data for _, notice in notices],
        [notice.critical for _, notice in notices],
        [notice.pushable for _, notice in notices],
        [_written_at(event) for event, _ in notices],
    ]


def _written_at(event: Event) -> datetime | None:
    """When the change was written (its outbox row's time): where delivery latency starts."""
    try:
        return datetime.fromisoformat(event["ts"])
    except (KeyError, TypeError, ValueError):
        return None


def _user_entries(events: list[Event], stored: Stored) -> dict[int, list[Append]]:
    """Per user: the batch's notifications in event order, then one badge update with
    the counts after the whole batch (versioned)."""
    entries: dict[int, list[Append]] = defaultdict(list)
    for item in stored.routed:
        notice = item.notice
        if stored.prefs[notice.user_id].inapp_allowed(notice.type):  # else: inbox and badge only
            member = f"n{item.notification_id}"
            entries[notice.user_id].append((member, notice.type, _notification_envelope(item)))
    for user_id, member in _badge_members(events, stored.routed).items():
        version, counts = stored.counts[user_id]
        entries[user_id].append((member, "unread_count", envelope("unread_count", counts), version))
    return dict(entries)


def _badge_members(events: list[Event], routed: list[Routed]) -> dict[int, str]:
    """The dedup member of each user's badge update: `c<last notification id>` for new
    notifications, `r<outbox id>` for reads (own prefix: they count no notification),
    both joined when the batch holds both, so a retry that groups entries differently
    still sends fresh counts."""
    notified = {item.notice.user_id: f"c{item.notification_id}" for item in routed}
    reads = {
        event["data"]["user_id"]: f"r{event['outbox_id']}"
        for event in events
        if event["type"] == "counts_changed"
    }
    return {
        user_id: notified.get(user_id, "") + reads.get(user_id, "") for user_id in notified | reads
    }


def _board_entry(event: Event, board_type: str) -> StreamEntry:
    body = envelope(
        board_type, {"ticket": event["data"]["ticket"]}, event.get("actor_id"), event["ts"]
    )
    return f"b{event['outbox_id']}", board_type, body


def _notification_envelope(item: Routed) -> str:
    notice = item.notice
    data = {"title": item.title, "body": item.body, "critical": notice.critical, **notice.data}
    return envelope(
        notice.type,
        data,
        item.event.get("actor_id"),
        item.event["ts"],
        url=notice.url,
        notification_id=item.notification_id,
    )


def _push_entry(item: Routed) -> str:
    notice = item.notice
    return push_entry(
        item.notification_id, notice.user_id, notice.type, notice.critical, notice.pushable
    )


async def _directory(conn: asyncpg.Connection) -> Directory:
    rows = await conn.fetch("SELECT id, role FROM users ORDER BY id")

    def lookup(roles: frozenset[Role] | None) -> list[int]:
        return [row["id"] for row in rows if roles is None or Role(row["role"]) in roles]

    return lookup


class _DirectoryNeeded(Exception):
    """Raised by `_no_directory`: the batch's recipients depend on the user directory."""


def _no_directory(roles: frozenset[Role] | None) -> list[int]:
    raise _DirectoryNeeded
