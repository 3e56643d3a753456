"""Demo data, idempotent: the five demo users, machines, and tickets in every column."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from gateway.services.credentials import hash_password
from gateway.services.ticket_store import next_code
from gateway.services.users import DEMO_USERS

DEMO_MACHINES = (
    ("Press P-200", "Hall A", 30),
    ("CNC Mill M-7", "Hall A", 60),
    ("Conveyor C-3", "Hall B", 14),
    ("Packaging Line L-1", "Hall C", None),
)
DEMO_TICKETS = (
    ("Hydraulic leak under the ram", 0, "high", "received", None),
    ("Spindle vibration above 4 mm/s", 1, "critical", "diagnostic", "tech1@example.com"),
    ("Belt tracking drifts left", 2, "medium", "in_progress", "tech2@example.com"),
    ("Replace worn sealing jaws", 3, "medium", "waiting_parts", "tech1@example.com"),
    ("Recalibrate pressure sensor", 0, "low", "completed", "tech2@example.com"),
    ("Guard interlock replaced", 1, "high", "archived", "tech1@example.com"),
)


async def seed(conn: asyncpg.Connection, password: str) -> list[str]:
    """Create what is missing; returns the demo logins."""
    async with conn.transaction():
        users = {
            email: await _user(conn, email, name, role, password)
            for email, name, role in DEMO_USERS
        }
        machines = [await _machine(conn, *machine) for machine in DEMO_MACHINES]
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM tickets)"):
            await _tickets(conn, users, machines)
    return [f"{email} / {password} ({role})" for email, _, role in DEMO_USERS]


async def _user(conn: asyncpg.Connection, email: str, name: str, role: str, password: str) -> int:
    existing = await conn.fetchval("SELECT id FROM users WHERE lower(email) = $1", email)
    if existing is not None:
        return int(existing)
    return int(
        await conn.fetchval(
            "INSERT INTO users (email, full_name, role, password_hash) VALUES ($1, $2, $3, $4)"
            " RETURNING id",
            email,
            name,
            role,
            hash_password(password),
        )
    )


async def _machine(conn: asyncpg.Connection, name: str, location: str, pm_days: int | None) -> int:
    existing = await conn.fetchval("SELECT id FROM machines WHERE name = $1", name)
    if existing is not None:
        return int(existing)
    return int(
        await conn.fetchval(
            "INSERT INTO machines (name, location, pm_interval_days, last_pm_at)"
            " VALUES ($1, $2, $3, now() - interval '7 days') RETURNING id",
            name,
            location,
            pm_days,
        )
    )


async def _tickets(conn: asyncpg.Connection, users: dict[str, int], machines: list[int]) -> None:
    now = datetime.now(UTC)
    for title, machine, priority, status, assignee in DEMO_TICKETS:
        closed = now if status in ("completed", "archived") else None
        await conn.execute(
            "INSERT INTO tickets (ticket_id, title, machine_id, priority, status, reported_by,"
            " assigned_to, scheduled_date, closed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            await next_code(conn, now.year),
            title,
            machines[machine],
            priority,
            status,
            users["operator@example.com"],
            users.get(assignee or ""),
            now + timedelta(days=2),
            closed,
        )
