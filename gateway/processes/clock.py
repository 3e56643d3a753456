"""`floorbell clock`: a pass of the time-based alerts every `CLOCK_INTERVAL_SECONDS`,
retried with backoff while the database is away, stopped in two stages."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gateway.clock.alerts import alert_day, tick
from gateway.config import Settings
from gateway.db import create_pool
from gateway.lifecycle import sleep_unless_stopped, stop_on_signals
from gateway.retry import Backoff

GRACE_S = 5.0
# A database outage is retried with backoff; anything else is a bug and stops the clock.
OUTAGES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def run_clock(
    settings: Settings, once: bool = False, stop: asyncio.Event | None = None
) -> None:
    """Tick every `CLOCK_INTERVAL_SECONDS` until SIGINT/SIGTERM (or `stop`), or once."""
    stop = stop or stop_on_signals()
    clock = _Clock(settings)
    print(
        f"clock {settings.instance_id}: every {settings.clock_interval_s} s,"
        f" days in {settings.clock_timezone}",
        flush=True,
    )
    try:
        while not stop.is_set():
            delay_s = await _finish_or_cancel(clock.run_pass(raise_outage=once), stop)
            if once:
                break
            await sleep_unless_stopped(stop, delay_s)
    finally:
        await asyncio.shield(clock.close())
        print(f"clock {settings.instance_id} stopped", flush=True)


class _Clock:
    """The pool and the retry state of a running clock; the pool is (re)opened lazily."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.backoff = Backoff(base_s=1.0, cap_s=float(max(settings.clock_interval_s, 5)))

    async def run_pass(self, raise_outage: bool = False) -> float:
        """One tick; returns the seconds to wait before the next one."""
        try:
            if self.pool is None:
                self.pool = await create_pool(self.settings.database_url, min_size=1, max_size=2)
            now = datetime.now(UTC)
            counts = await tick(self.pool, now, timezone=self.settings.clock_timezone)
        except OUTAGES as exc:
            if raise_outage:
                raise
            delay_s = self.backoff.next_delay()
            print(f"clock: database unavailable ({exc!r}); retrying in {delay_s:.1f} s", flush=True)
            return delay_s
        self.backoff.reset()
        if any(counts.values()) or raise_outage:
            summary = ", ".join(f"{count} {kind}" for kind, count in counts.items())
            print(f"clock: emitted {summary} (day {alert_day(now, self.settings.clock_timezone)})",
                  flush=True)  # fmt: skip
        return float(self.settings.clock_interval_s)

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            try:
                await asyncio.wait_for(pool.close(), GRACE_S)
            except TimeoutError:
                pool.terminate()


async def _finish_or_cancel(work: Coroutine[Any, Any, float], stop: asyncio.Event) -> float:
    """Run a pass; on stop it gets a grace period (stage one), then is cancelled (two)."""
    task = asyncio.create_task(work)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=GRACE_S)
    finally:
        stopped.cancel()
        task.cancel()  # a no-op when it finished
    (result,) = await asyncio.gather(task, return_exceptions=True)
    if isinstance(result, asyncio.CancelledError):
        return 0.0  # stopped mid-pass: its transaction rolled back, its claims stay free
    if isinstance(result, BaseException):
        raise result
    return result
