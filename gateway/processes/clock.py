"""`floorbell clock`: a pass of the time-based alerts and of the escalation ladder every
`CLOCK_INTERVAL_SECONDS`, supervised (an outage is retried with backoff), its health on a
port of its own, stopped in two stages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

from gateway.clock.alerts import alert_day, tick
from gateway.clock.escalation import TICKET_ESCALATED, climb
from gateway.config import Settings
from gateway.db import create_pool
from gateway.health import Probe, readiness
from gateway.processes.health import HealthServer
from gateway.supervision import GRACE_S, Loop, Supervisor, stop_on_signals


async def run_clock(
    settings: Settings, once: bool = False, stop: asyncio.Event | None = None
) -> None:
    """Tick every `CLOCK_INTERVAL_SECONDS` until SIGINT/SIGTERM (or `stop`), or once (an
    outage then fails the command)."""
    clock = _Clock(settings)
    if once:
        try:
            await clock.run_pass(always_say=True)
        finally:
            await clock.close()
        return
    supervisor = Supervisor(stop or stop_on_signals())
    supervisor.add(Loop("clock", clock.run_pass, float(settings.clock_interval_s)))
    health = HealthServer(settings.instance_id, lambda: readiness(supervisor, clock.probes()))
    print(
        f"clock {settings.instance_id}: every {settings.clock_interval_s} s,"
        f" days in {settings.clock_timezone}",
        flush=True,
    )
    try:
        await health.start(settings.health_host, settings.clock_health_port)
        await supervisor.run()
    finally:
        await asyncio.shield(health.close())
        await asyncio.shield(clock.close())
        print(f"clock {settings.instance_id} stopped", flush=True)


class _Clock:
    """The pool of a running clock, (re)opened lazily: a clock started while the database
    is away waits for it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None

    async def _pool(self) -> asyncpg.Pool:
        if self.pool is None:
            self.pool = await create_pool(self.settings.database_url, min_size=1, max_size=2)
        return self.pool

    def probes(self) -> dict[str, Probe]:
        async def database() -> object:
            return await (await self._pool()).fetchval("SELECT 1")

        return {"postgresql": database}

    async def run_pass(self, always_say: bool = False) -> None:
        """One tick: the alerts due now, then the escalation steps (an overdue alert starts
        a wait the ladder may climb)."""
        now = datetime.now(UTC)
        pool = await self._pool()
        counts = await tick(pool, now, timezone=self.settings.clock_timezone)
        counts[TICKET_ESCALATED] = await climb(pool, now)
        if any(counts.values()) or always_say:
            summary = ", ".join(f"{count} {kind}" for kind, count in counts.items())
            print(f"clock: emitted {summary} (day {alert_day(now, self.settings.clock_timezone)})",
                  flush=True)  # fmt: skip

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            try:
                await asyncio.wait_for(pool.close(), GRACE_S)
            except TimeoutError:
                pool.terminate()
