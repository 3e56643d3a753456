"""The clock: overdue tickets and maintenance due, once per subject per day, in absolute time.

Every `now` here lies in 2009, before any ticket or machine other tests create (they use
the real date), so a tick only finds this module's subjects; assertions still filter
the outbox by their ids.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from gateway.clock.alerts import alert_day, tick
from gateway.config import ConfigError, Settings
from gateway.db import create_pool
from gateway.ops.migrate import migrate
from gateway.ops.provision import drop_database, ensure_database
from gateway.processes.clock import run_clock
from gateway.services.ticket_store import next_code
from tests.helpers import bearer

DEADLINE = datetime.fromisoformat("2009-11-25T08:00:00-05:00")  # 13:00 UTC
JUST_BEFORE = datetime(2009, 11, 25, 12, 59, 59, tzinfo=UTC)
JUST_AFTER = datetime(2009, 11, 25, 13, 0, 1, tzinfo=UTC)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def _machine(
    db: asyncpg.Pool, pm_days: int | None = None, last_pm_at: datetime | None = None
) -> int:
    return int(
        await db.fetchval(
            "INSERT INTO machines (name, location, pm_interval_days, last_pm_at)"
            " VALUES ($1, 'Clock test bay', $2, $3) RETURNING id",
            f"Clock test machine {uuid.uuid4().hex[:8]}",
            pm_days,
            last_pm_at,
        )
    )


async def _ticket(
    db: asyncpg.Pool, users: dict[str, int], scheduled: datetime | None, status: str = "received"
) -> int:
    machine = await _machine(db)
    async with db.acquire() as conn, conn.transaction():
        return int(
            await conn.fetchval(
                "INSERT INTO tickets (ticket_id, title, machine_id, priority, status, reported_by,"
                " assigned_to, scheduled_date) VALUES ($1, $2, $3, 'high', $4, $5, $6, $7)"
                " RETURNING id",
                await next_code(conn, 2009),
                f"Clock test {uuid.uuid4().hex[:8]}",
                machine,
                status,
                users["operator"],
                users["tech1"],
                scheduled,
            )
        )


async def _overdue(db: asyncpg.Pool, ticket_id: int) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT payload FROM outbox WHERE event_type = 'ticket_overdue'"
        " AND (payload->'ticket'->>'id')::bigint = $1 ORDER BY id",
        ticket_id,
    )
    return [row["payload"] for row in rows]


async def _maintenance(db: asyncpg.Pool, machine_id: int) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT payload FROM outbox WHERE event_type = 'maintenance_due'"
        " AND (payload->>'machine_id')::bigint = $1 ORDER BY id",
        machine_id,
    )
    return [row["payload"] for row in rows]


async def test_overdue_fires_once_per_ticket_per_day(
    db: asyncpg.Pool, users: dict[str, int]
) -> None:
    ticket = await _ticket(db, users, DEADLINE)
    counts = await tick(db, JUST_AFTER)
    assert counts["ticket_overdue"] >= 1
    await tick(db, JUST_AFTER + timedelta(hours=3))

    [event] = await _overdue(db, ticket)
    assert event["day"] == "2009-11-25"
    card = event["ticket"]
    assert card["id"] == ticket and card["assigned_to"] == users["tech1"]
    assert card["title"].startswith("Clock test") and card["status"] == "received"
    assert _utc(card["scheduled_date"]) == DEADLINE


async def test_concurrent_ticks_emit_once(db: asyncpg.Pool, users: dict[str, int]) -> None:
    tickets = [await _ticket(db, users, DEADLINE) for _ in range(3)]
    await asyncio.gather(*[tick(db, JUST_AFTER) for _ in range(4)])
    for ticket in tickets:
        assert len(await _overdue(db, ticket)) == 1


async def test_closed_and_future_tickets_are_not_overdue(
    db: asyncpg.Pool, users: dict[str, int]
) -> None:
    completed = await _ticket(db, users, DEADLINE, status="completed")
    archived = await _ticket(db, users, DEADLINE, status="archived")
    future = await _ticket(db, users, JUST_AFTER + timedelta(minutes=1))
    unscheduled = await _ticket(db, users, None)
    await tick(db, JUST_AFTER)
    for ticket in (completed, archived, future, unscheduled):
        assert await _overdue(db, ticket) == []


async def test_deadline_in_another_zone_is_compared_in_absolute_time(
    db: asyncpg.Pool, users: dict[str, int]
) -> None:
    ticket = await _ticket(db, users, DEADLINE)
    await tick(db, JUST_BEFORE)  # 07:59:59 in New York: not yet due
    assert await _overdue(db, ticket) == []
    await tick(db, JUST_AFTER)  # 08:00:01 in New York
    assert len(await _overdue(db, ticket)) == 1


async def test_overdue_via_the_api_with_an_offset(
    client: Any, tokens: dict[str, str], db: asyncpg.Pool
) -> None:
    body = {
        "title": f"Clock test {uuid.uuid4().hex[:8]}",
        "machine_id": 1,
        "priority": "high",
        "scheduled_date": "2009-11-25T08:00:00-05:00",
    }
    response = await client.post("/api/tickets", json=body, headers=bearer(tokens["supervisor"]))
    assert response.status_code == 201
    ticket = (await response.get_json())["id"]
    await tick(db, JUST_BEFORE)
    assert await _overdue(db, ticket) == []
    await tick(db, JUST_AFTER)
    assert len(await _overdue(db, ticket)) == 1


async def test_next_day_fires_again(db: asyncpg.Pool, users: dict[str, int]) -> None:
    ticket = await _ticket(db, users, DEADLINE)
    for now in (JUST_AFTER, JUST_AFTER + timedelta(hours=10), JUST_AFTER + timedelta(days=1)):
        await tick(db, now)
    assert [event["day"] for event in await _overdue(db, ticket)] == ["2009-11-25", "2009-11-26"]


async def test_the_day_follows_the_clock_timezone(db: asyncpg.Pool, users: dict[str, int]) -> None:
    ticket = await _ticket(db, users, datetime(2009, 11, 20, tzinfo=UTC))
    zone = "America/New_York"  # UTC-5 in late November
    moments = (
        "2009-11-26T03:00:00+00:00",  # 22:00 on the 25th in New York
        "2009-11-26T04:59:00+00:00",  # 23:59, still the 25th there: no second alert
        "2009-11-26T05:01:00+00:00",  # 00:01 on the 26th: a new day
    )
    for now in moments:
        await tick(db, datetime.fromisoformat(now), timezone=zone)
    assert [event["day"] for event in await _overdue(db, ticket)] == ["2009-11-25", "2009-11-26"]


async def test_maintenance_due_once_per_machine_per_day(db: asyncpg.Pool) -> None:
    last_pm = datetime(2009, 10, 1, tzinfo=UTC)  # every 30 days: due 2009-10-31 00:00 UTC
    machine = await _machine(db, pm_days=30, last_pm_at=last_pm)
    never_serviced = await _machine(db, pm_days=7)
    no_plan = await _machine(db, last_pm_at=last_pm)
    due = datetime(2009, 10, 31, tzinfo=UTC)

    await tick(db, due - timedelta(seconds=1))
    assert await _maintenance(db, machine) == []
    await asyncio.gather(tick(db, due + timedelta(seconds=1)), tick(db, due + timedelta(seconds=1)))
    await tick(db, due + timedelta(hours=20))
    await tick(db, due + timedelta(days=1))

    events = await _maintenance(db, machine)
    assert [event["day"] for event in events] == ["2009-10-31", "2009-11-01"]
    assert events[0]["machine_name"].startswith("Clock test machine")
    days = [event["day"] for event in await _maintenance(db, never_serviced)]
    assert {"2009-10-30", "2009-10-31", "2009-11-01"} <= set(days)  # daily from its first tick
    assert len(days) == len(set(days))
    assert await _maintenance(db, no_plan) == []


async def test_serviced_machine_is_no_longer_due(db: asyncpg.Pool) -> None:
    machine = await _machine(db, pm_days=10, last_pm_at=datetime(2009, 6, 1, tzinfo=UTC))
    now = datetime(2009, 6, 20, tzinfo=UTC)
    await db.execute(
        "UPDATE machines SET last_pm_at = $2 WHERE id = $1", machine, now - timedelta(days=2)
    )
    await tick(db, now)
    assert await _maintenance(db, machine) == []


def test_day_needs_an_aware_time() -> None:
    with pytest.raises(ValueError):
        alert_day(datetime(2009, 11, 25, 12))
    assert str(alert_day(_utc("2009-11-26T03:00:00+00:00"), "Asia/Tokyo")) == "2009-11-26"


def test_clock_settings() -> None:
    defaults = Settings.from_env({})
    assert (defaults.clock_interval_s, defaults.clock_timezone) == (60, "UTC")
    custom = Settings.from_env({"CLOCK_INTERVAL_SECONDS": "5", "CLOCK_TIMEZONE": "Europe/Paris"})
    assert (custom.clock_interval_s, custom.clock_timezone) == (5, "Europe/Paris")
    for bad in (
        {"CLOCK_TIMEZONE": "Mars/Olympus"},
        {"CLOCK_TIMEZONE": "../etc"},
        {"CLOCK_INTERVAL_SECONDS": "0"},
    ):
        with pytest.raises(ConfigError):
            Settings.from_env(bad)


# --- the running clock --------------------------------------------------------------


@pytest.fixture
async def clock_database(database_url: str) -> AsyncIterator[str]:
    """A database of its own: the running clock uses the real time, so it would also
    alert about other tests' tickets in the shared one."""
    url = database_url.rsplit("/", 1)[0] + f"/floorbell_clock_{uuid.uuid4().hex[:8]}"
    ensure_database(url)
    migrate(url)
    yield url
    drop_database(url)


async def test_run_clock_once_emits_and_prints(
    clock_database: str, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = await create_pool(clock_database)
    try:
        user = await pool.fetchval(
            "INSERT INTO users (email, full_name, role, password_hash)"
            " VALUES ('clock@example.com', 'Clock Test', 'technician', 'x') RETURNING id"
        )
        machine = await pool.fetchval(
            "INSERT INTO machines (name, pm_interval_days) VALUES ('Lathe', 3) RETURNING id"
        )
        await pool.execute(
            "INSERT INTO tickets (ticket_id, title, machine_id, priority, reported_by,"
            " scheduled_date) VALUES ('T-2009-001', 'Late', $1, 'low', $2,"
            " now() - interval '1 minute')",
            machine,
            user,
        )
        await run_clock(replace(settings, database_url=clock_database), once=True)
        assert "emitted 1 ticket_overdue, 1 maintenance_due" in capsys.readouterr().out
        types = await pool.fetch("SELECT event_type FROM outbox ORDER BY id")
        assert [row["event_type"] for row in types] == ["ticket_overdue", "maintenance_due"]
    finally:
        await pool.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_run_clock_survives_a_database_outage_and_stops(
    settings: Settings, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    dead = replace(
        settings,
        database_url=f"postgresql://postgres@127.0.0.1:{_closed_port()}/x",
        clock_interval_s=1,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_clock(dead, stop=stop))
    await asyncio.sleep(2.5)
    assert not task.done()  # still retrying
    stop.set()
    await asyncio.wait_for(task, 5)
    retried = [
        r
        for r in caplog.records
        if r.name == "gateway.supervision" and r.getMessage().startswith("clock:")
    ]
    assert len(retried) >= 2 and all("retrying" in r.getMessage() for r in retried)
    assert "stopped" in capsys.readouterr().out

    with pytest.raises(OSError):  # a single pass reports the outage instead
        await run_clock(dead, once=True)
