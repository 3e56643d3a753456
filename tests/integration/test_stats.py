"""The admin's statistics over a window: latency histograms and percentiles, time to
answer per day, the window's days and bounds — on a database of its own, so the figures
are exact."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from gateway.api.app import create_app
from gateway.config import Settings
from tests.helpers import bearer, own_floor, token_for

Floor = tuple[Settings, asyncpg.Pool]
DAY = datetime(2025, 3, 10, tzinfo=UTC)  # a Monday, long before anything else here


@pytest.fixture(scope="module")
async def floor(settings: Settings) -> AsyncIterator[Floor]:
    # The plant's days are Montreal's: a window of dates starts and ends at its midnights.
    async with own_floor(replace(settings, clock_timezone="America/Montreal")) as made:
        yield made


@pytest.fixture(scope="module")
async def stats_client(floor: Floor) -> AsyncIterator[Any]:
    app = create_app(floor[0])
    async with app.test_app() as test_app:
        yield test_app.test_client()


@pytest.fixture(scope="module")
async def admin(floor: Floor) -> dict[str, str]:
    user_id = await floor[1].fetchval("SELECT id FROM users WHERE role = 'admin' LIMIT 1")
    return bearer(token_for(floor[0].jwt_secret, user_id, "admin"))


async def get_stats(client: Any, admin: dict[str, str], query: str) -> Any:
    response = await client.get(f"/api/admin/notification-stats?{query}", headers=admin)
    assert response.status_code == 200, await response.get_json()
    return await response.get_json()


async def notification(pool: asyncpg.Pool, written: datetime, framed_ms: float | None,
                       pushed_ms: list[float], kind: str = "ticket_assigned") -> int:  # fmt: skip
    user = await pool.fetchval("SELECT id FROM users WHERE role = 'technician' LIMIT 1")
    framed = written + timedelta(milliseconds=framed_ms) if framed_ms is not None else None
    notification_id = int(await pool.fetchval(
        "INSERT INTO notifications (user_id, event_id, type, title, body, written_at, framed_at,"
        " created_at) VALUES ($1, $2, $3, 't', 'b', $4, $5, $4) RETURNING id",
        user, -abs(hash(uuid.uuid4())) % 2**62, kind, written, framed,
    ))  # fmt: skip
    for n, delay in enumerate(pushed_ms):  # one device each; the first acceptance counts
        await pool.execute(
            "INSERT INTO push_logs (notification_id, subscription_id, user_id, endpoint, status,"
            " created_at) VALUES ($1, $2, $3, 'e', 'sent', $4)",
            notification_id, n + 1, user, written + timedelta(milliseconds=delay),
        )  # fmt: skip
    return notification_id


async def wait(pool: asyncpg.Pool, since: datetime, answer_s: float | None,
               steps: tuple[str, ...] = ()) -> None:  # fmt: skip
    machine = await pool.fetchval("SELECT min(id) FROM machines")
    reporter = await pool.fetchval("SELECT min(id) FROM users")
    ticket = await pool.fetchval(
        "INSERT INTO tickets (ticket_id, title, machine_id, priority, reported_by)"
        " VALUES ($1, 'Stats', $2, 'critical', $3) RETURNING id",
        f"T-S-{uuid.uuid4().hex[:10]}", machine, reporter,
    )  # fmt: skip
    answered = since + timedelta(seconds=answer_s) if answer_s is not None else None
    await pool.execute(
        "INSERT INTO ticket_waits (ticket_id, reason, since, answered_at, answer)"
        " VALUES ($1, 'breakdown', $2, $3, $4)",
        ticket, since, answered, "acknowledged" if answered else None,
    )  # fmt: skip
    for n, audience in enumerate(steps, 1):
        await pool.execute(
            "INSERT INTO ticket_escalations VALUES ($1, $2, $3, 5, true, $4)",
            ticket, n, audience, since + timedelta(minutes=5 * n),
        )  # fmt: skip


async def test_latencies_are_histograms_with_percentiles(
    stats_client: Any, floor: Floor, admin: dict[str, str]
) -> None:
    pool = floor[1]
    noon = DAY + timedelta(hours=17)  # 13:00 in Montreal
    for framed in (20, 40, 60, 120, 300, 900, 1500, 4000, 9000, 70_000):
        await notification(pool, noon, framed, [])
    await notification(pool, noon, None, [700, 2000])  # pushed to two devices: 700 ms counts
    await notification(pool, noon, None, [])  # never delivered: no sample
    stats = await get_stats(stats_client, admin, "from=2025-03-10&to=2025-03-10")
    frame, push = stats["latency"]["frame"], stats["latency"]["push"]
    assert frame["bounds_ms"] == [50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000]
    assert frame["counts"] == [2, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1] and frame["count"] == 10
    assert frame["p50_ms"] == 600.0  # between 300 and 900
    assert frame["p90_ms"] == pytest.approx(15_100.0)
    assert push["count"] == 1 and push["counts"][4] == 1 and push["p50_ms"] == 700.0
    assignments = stats["types"]["ticket_assigned"]
    assert assignments["created"] == 12 and assignments["delivered_live"] == 10
    assert assignments["pushed"] == 1
    assert stats["types"]["ticket_escalated"]["created"] == 0  # every type, zero or not


async def test_time_to_answer_per_day_with_percentiles_and_escalations(
    stats_client: Any, floor: Floor, admin: dict[str, str]
) -> None:
    pool = floor[1]
    first = DAY + timedelta(days=20, hours=15)  # 2025-03-30 11:00 in Montreal
    for seconds in (30, 60, 90, 120, 600):
        await wait(pool, first, seconds)
    await wait(pool, first, 1500, ("assignee", "supervisors"))
    await wait(pool, first, None, ("assignee", "supervisors", "admins"))  # still waiting
    late = DAY + timedelta(days=22, hours=3, minutes=30)  # 04-01 03:30 UTC: 23:30 on 03-31 there
    await wait(pool, late, 45)

    stats = await get_stats(stats_client, admin, "from=2025-03-29&to=2025-04-01")
    assert stats["timezone"] == "America/Montreal" and stats["bucket"] == "day"
    assert (
        stats["from"] == "2025-03-29T00:00:00-04:00" and stats["to"] == "2025-04-02T00:00:00-04:00"
    )
    days = {d["day"]: d for d in stats["acknowledgement"]}
    assert list(days) == ["2025-03-29", "2025-03-30", "2025-03-31", "2025-04-01"]
    assert days["2025-03-29"] == {
        "day": "2025-03-29", "alerts": 0, "answered": 0, "waiting": 0, "median_s": None,
        "p90_s": None, "escalated": 0,
        "escalated_to": {"assignee": 0, "supervisors": 0, "admins": 0},
    }  # fmt: skip
    busy = days["2025-03-30"]
    assert (busy["alerts"], busy["answered"], busy["waiting"]) == (7, 6, 1)
    assert busy["median_s"] == 105.0  # of 30, 60, 90, 120, 600, 1500
    assert busy["p90_s"] == 1050.0
    assert busy["escalated"] == 2
    assert busy["escalated_to"] == {"assignee": 2, "supervisors": 2, "admins": 1}
    assert days["2025-03-31"]["alerts"] == 1 and days["2025-03-31"]["median_s"] == 45.0


async def test_the_default_window_is_the_last_thirty_days(
    stats_client: Any, admin: dict[str, str]
) -> None:
    stats = await get_stats(stats_client, admin, "")
    days = [d["day"] for d in stats["acknowledgement"]]
    assert len(days) == 30 and days == sorted(days)
    start = datetime.fromisoformat(stats["from"])
    assert (start.hour, start.minute) == (0, 0)  # a midnight in the plant's time zone
    assert datetime.now(UTC) - datetime.fromisoformat(stats["to"]) < timedelta(minutes=1)


async def test_an_instant_window_is_exact(stats_client: Any, admin: dict[str, str]) -> None:
    query = "from=2025-03-10T16:00:00Z&to=2025-03-10T18:00:00%2B00:00"
    stats = await get_stats(stats_client, admin, query)
    assert (
        stats["from"] == "2025-03-10T16:00:00+00:00" and stats["to"] == "2025-03-10T18:00:00+00:00"
    )
    assert [d["day"] for d in stats["acknowledgement"]] == ["2025-03-10"]


@pytest.mark.parametrize(
    "query",
    [
        "from=2025-04-02&to=2025-04-01",
        "from=2020-01-01&to=2025-01-01",
        "from=yesterday",
        "from=2025-03-10T10:00:00",  # no offset: ambiguous
        "bucket=hour",
        "to=" + "9" * 50,
    ],
)
async def test_a_bad_window_is_422(query: str, stats_client: Any, admin: dict[str, str]) -> None:
    response = await stats_client.get(f"/api/admin/notification-stats?{query}", headers=admin)
    assert response.status_code == 422
    assert (await response.get_json())["error"]["code"] in ("invalid", "validation_error")


async def test_statistics_and_timelines_are_documented(stats_client: Any) -> None:
    document = await (await stats_client.get("/openapi.json")).get_json()
    stats = document["paths"]["/api/admin/notification-stats"]["get"]
    assert {p["name"] for p in stats["parameters"]} >= {"from", "to", "bucket"}
    assert "200" in stats["responses"]
    timeline = document["paths"]["/api/tickets/{ticket_id}/timeline"]["get"]
    assert "200" in timeline["responses"]
