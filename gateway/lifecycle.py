"""Background loops that stop promptly: a wait that a stop cuts short, and a periodic
task that survives outages of the services it uses."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable

import asyncpg
from redis.exceptions import RedisError

from gateway.retry import Backoff

log = logging.getLogger(__name__)
OUTAGES = (RedisError, OSError, asyncpg.PostgresError)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM: stage one of a process's two-stage stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def sleep_unless_stopped(stop: asyncio.Event, delay_s: float) -> None:
    """Sleep `delay_s`, or less if `stop` is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), delay_s)
    except TimeoutError:
        pass


async def repeat(
    stop: asyncio.Event,
    period_s: float,
    work: Callable[[], Awaitable[object]],
    name: str,
    *,
    again_while_busy: bool = False,
) -> None:
    """Run `work` every `period_s` until stopped. An outage of a service it uses is
    logged and retried with backoff; so is a bug (with its traceback): never fatal, and
    whatever the work leased comes due again. With `again_while_busy`, a truthy result
    (work remains) runs it again at once."""
    backoff = Backoff()
    while not stop.is_set():
        delay = period_s
        try:
            busy = await work()
            backoff.reset()
            if again_while_busy and busy:
                continue
        except OUTAGES as exc:
            delay = backoff.next_delay()
            log.warning("%s: %s; retrying in %.1fs", name, exc, delay)
        except Exception:
            delay = backoff.next_delay()
            log.exception("%s: unexpected error", name)
        await sleep_unless_stopped(stop, delay)


def tune_gc() -> None:
    """Collect cycles less eagerly. A gateway holds tens of thousands of long-lived
    objects per thousand connections, and CPython's default thresholds scan them all
    again and again as connections come and go: with these, a storm of 10,000 resumes
    took half the time. What was loaded at start-up is frozen out of collection."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


# Under a steady flow, a stage that reads again at once gets one entry per read: one round
# trip (or several) per event. Waiting this long after a read that found work lets the
# next one take a batch; an idle stage still answers its first event at once.
LINGER_S = 0.002


async def linger(found: int, batch: int) -> None:
    """After a read that found `found` entries (at most `batch`): pause briefly if it
    found some but not a full batch."""
    if 0 < found < batch:
        await asyncio.sleep(LINGER_S)
