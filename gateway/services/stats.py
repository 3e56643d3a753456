"""The admin's delivery statistics over a window: counts per type from the inbox, the
push log and the dead letters, delivery latencies as histograms, and how fast critical
alerts were answered per day. Each part is its own query; `notification_stats` puts them
together.

Latencies start when the change was written (the outbox row's time, `written_at`) and
end when a gateway put the frame on one of the person's open connections (`framed_at`)
or when the push service accepted the push (the first `sent` row of `push_logs`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import asyncpg
from redis.asyncio import Redis

from domain.errors import Invalid
from domain.escalation import Audience
from domain.kinds import NOTIFICATION_TYPES
from gateway.keys import Keys
from gateway.streams import Entry
from gateway.wire import TYPE_B

FAILED_STATUSES = ("send_failed", "rejected", "blocked", "gone")
COUNTS = ("created", "delivered_live", "pushed", "push_failed", "delivered_inapp", "clicked",
          "read", "dead_lettered")  # fmt: skip
# Upper bounds of the latency histogram's buckets; the last bucket holds what is above.
LATENCY_BOUNDS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000)
DEFAULT_DAYS = 30
MAX_DAYS = 400


@dataclass(frozen=True)
class Window:
    """[start, end) in absolute time; days are counted in `timezone`."""

    start: datetime
    end: datetime
    timezone: str

    def days(self) -> list[date]:
        zone = ZoneInfo(self.timezone)
        first = self.start.astimezone(zone).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(zone).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def window(start: str | None, end: str | None, timezone: str, now: datetime) -> Window:
    """The window `?from=&to=` names: each a day (`2026-03-01`, in `timezone`; `to`'s day
    included) or an instant with its offset. Defaults: the last 30 days, today included."""
    zone = ZoneInfo(timezone)
    stop = _instant(end, zone, next_day=True) if end else now
    begin = _instant(start, zone) if start else _midnight(
        stop.astimezone(zone).date() - timedelta(days=DEFAULT_DAYS - 1), zone
    )  # fmt: skip
    if begin >= stop:
        raise Invalid("from must come before to.")
    if stop - begin > timedelta(days=MAX_DAYS):
        raise Invalid(f"The window is at most {MAX_DAYS} days.")
    return Window(begin, stop, timezone)


def _instant(text: str, zone: ZoneInfo, next_day: bool = False) -> datetime:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return _midnight(day + timedelta(days=1) if next_day else day, zone)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{text!r} is neither a date (YYYY-MM-DD) nor an ISO 8601 instant.") from None
    if value.tzinfo is None:
        raise Invalid(f"{text!r} has no offset; add Z or ±HH:MM.")
    return value


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone)


async def notification_stats(
    db: asyncpg.Pool, redis: Redis, keys: Keys, span: Window
) -> dict[str, Any]:
    types = await type_counts(db, span)
    for kind, count in (await dead_lettered(redis, keys)).items():
        types.setdefault(kind, dict.fromkeys(COUNTS, 0))["dead_lettered"] = count
    return {
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "bucket": "day",
        "timezone": span.timezone,
        "types": types,
        "latency": await latencies(db, span),
        "acknowledgement": await acknowledgement(db, span),
    }


# -- the delivery funnel per type ----------------------------------------------------------

_TYPE_COUNTS = """
SELECT n.type, count(*) AS created, count(n.framed_at) AS delivered_live,
  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM push_logs l
                                 WHERE l.notification_id = n.id AND l.status = 'sent')) AS pushed,
  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM push_logs l
                                 WHERE l.notification_id = n.id AND l.status = ANY($3::text[])))
    AS push_failed,
  count(n.seen_at) AS delivered_inapp, count(n.clicked_at) AS clicked, count(n.read_at) AS read
FROM notifications n WHERE n.created_at >= $1 AND n.created_at < $2 GROUP BY n.type
"""


async def type_counts(db: asyncpg.Pool, span: Window) -> dict[str, dict[str, int]]:
    """Per type, of the notifications created in the window: created, delivered_live
    (reached an open app), pushed (reached at least one device), push_failed (a device's
    final attempt failed), delivered_inapp (a page displayed it), clicked, read; and
    dead_lettered, filled in by `dead_lettered`."""
    rows = await db.fetch(_TYPE_COUNTS, span.start, span.end, list(FAILED_STATUSES))
    stats = {kind: dict.fromkeys(COUNTS, 0) for kind in NOTIFICATION_TYPES}
    for row in rows:
        stats.setdefault(row["type"], dict.fromkeys(COUNTS, 0)).update(
            {name: int(row[name]) for name in COUNTS if name != "dead_lettered"}
        )
    return stats


async def dead_lettered(redis: Redis, keys: Keys, page: int = 1000) -> Counter[str]:
    """Entries in the dead-letter stream per type: an event or a push set aside after
    failing again and again (its type is the event's, which may be one no notification
    has). The whole stream, not the window: it is capped, so this is bounded."""
    counts: Counter[str] = Counter()
    start = "-"
    while True:
        entries = cast(list[Entry], await redis.xrange(keys.dead_letters, min=start, count=page))
        counts.update(fields.get(TYPE_B, b"?").decode() for _, fields in entries)
        if len(entries) < page:
            return counts
        start = "(" + entries[-1][0].decode()


# -- delivery latencies ----------------------------------------------------------------------

_LATENCIES = """
WITH samples AS (
    SELECT 'frame' AS path,
           greatest(0, extract(epoch FROM n.framed_at - n.written_at) * 1000)::float8 AS ms
    FROM notifications n
    WHERE n.created_at >= $1 AND n.created_at < $2
      AND n.framed_at IS NOT NULL AND n.written_at IS NOT NULL
    UNION ALL
    SELECT 'push',
           greatest(0, extract(epoch FROM min(l.created_at) - n.written_at) * 1000)::float8
    FROM notifications n JOIN push_logs l ON l.notification_id = n.id AND l.status = 'sent'
    WHERE n.created_at >= $1 AND n.created_at < $2 AND n.written_at IS NOT NULL
    GROUP BY n.id, n.written_at
), buckets AS (
    SELECT path, width_bucket(ms, $3::float8[]) AS bucket, count(*) AS n
    FROM samples GROUP BY path, bucket
)
SELECT s.path, count(*) AS count,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY s.ms) AS p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY s.ms) AS p90,
       (SELECT array_agg(ARRAY[b.bucket, b.n]) FROM buckets b WHERE b.path = s.path) AS buckets
FROM samples s GROUP BY s.path
"""


async def latencies(db: asyncpg.Pool, span: Window) -> dict[str, dict[str, Any]]:
    """`frame` (write → frame on an open connection) and `push` (write → push accepted):
    a histogram (`counts[i]` below `bounds_ms[i]`, the last one above them all), the
    number of samples, median and 90th percentile in milliseconds."""
    rows = await db.fetch(_LATENCIES, span.start, span.end, [float(b) for b in LATENCY_BOUNDS_MS])
    found = {row["path"]: row for row in rows}
    return {path: _histogram(found.get(path)) for path in ("frame", "push")}


def _histogram(row: asyncpg.Record | None) -> dict[str, Any]:
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    for bucket, n in (row["buckets"] or []) if row else []:
        counts[int(bucket)] = int(n)
    return {
        "bounds_ms": list(LATENCY_BOUNDS_MS),
        "counts": counts,
        "count": int(row["count"]) if row else 0,
        "p50_ms": _rounded(row["p50"]) if row else None,
        "p90_ms": _rounded(row["p90"]) if row else None,
    }


# -- time to answer critical alerts, per day -------------------------------------------------

_ANSWER_S = "extract(epoch FROM w.answered_at - w.since)::float8"
_TO_AUDIENCE = ", ".join(
    f"count(*) FILTER (WHERE '{a}' = ANY(e.audiences)) AS to_{a}" for a in Audience
)  # the enum's own names, not input
_ACKNOWLEDGEMENT = f"""
SELECT (w.since AT TIME ZONE $3)::date AS day, count(*) AS alerts,
       count(w.answered_at) AS answered, count(*) - count(w.answered_at) AS waiting,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY {_ANSWER_S}) AS median_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY {_ANSWER_S}) AS p90_s,
       count(*) FILTER (WHERE e.audiences IS NOT NULL) AS escalated, {_TO_AUDIENCE}
FROM ticket_waits w
LEFT JOIN LATERAL (SELECT array_agg(x.audience) AS audiences FROM ticket_escalations x
                   WHERE x.ticket_id = w.ticket_id AND x.sent) e ON true
WHERE w.since >= $1 AND w.since < $2
GROUP BY day
"""


async def acknowledgement(db: asyncpg.Pool, span: Window) -> list[dict[str, Any]]:
    """Per day of the window (in its time zone), the critical alerts that began waiting
    for an answer then: how many, how many were answered and how fast (median and 90th
    percentile, in seconds), how many still wait, how many escalated and to whom."""
    rows = await db.fetch(_ACKNOWLEDGEMENT, span.start, span.end, span.timezone)
    found = {row["day"]: row for row in rows}
    return [_day(day, found.get(day)) for day in span.days()]


def _day(day: date, row: asyncpg.Record | None) -> dict[str, Any]:
    def count(name: str) -> int:
        return int(row[name]) if row else 0

    return {
        "day": day.isoformat(),
        "alerts": count("alerts"),
        "answered": count("answered"),
        "waiting": count("waiting"),
        "median_s": _rounded(row["median_s"]) if row else None,
        "p90_s": _rounded(row["p90_s"]) if row else None,
        "escalated": count("escalated"),
        "escalated_to": {str(a): count(f"to_{a}") for a in Audience},
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)
