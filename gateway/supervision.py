"""Supervised background work: every long-lived loop of a process runs under one
`Supervisor`, so that none can end unnoticed.

A loop is a pass (one read of a stream, one sweep, one tick) repeated every `period_s`.
Whatever a pass raises is logged and the loop goes on after a capped, jittered backoff: an
outage heals when its service returns, and whatever the failed pass had leased comes due
again. A bug is logged with its traceback; so is the first failure of an outage
(`gateway.retry.is_transient`), whose further attempts take one line each, and one more
line says when the loop works again.
Each good pass is recorded — the `floorbell_loop_last_success_seconds{loop}` gauge, and
`stale()`, which readiness reports — so a loop that stops making progress shows, by
name, within a few periods.

A process stops in two stages: `stop()` sets the stop event, each loop finishes the pass
it is in (and drains what it started) within a grace period; what is still running then
is cancelled, with a hard deadline. Work that must not be cut in half (bookkeeping after a
side effect) shields itself.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.metrics import LOOP_LAST_SUCCESS
from gateway.retry import Backoff, is_transient

log = logging.getLogger(__name__)

GRACE_S = 5.0  # stage one: running passes finish
DEADLINE_S = 5.0  # stage two: cancelled passes unwind
# A loop is stale once it has gone this many periods (and a margin, for loops whose pass
# blocks on a read) without a good pass.
STALE_PERIODS = 3
STALE_MARGIN_S = 5.0
T = TypeVar("T")
# Retries during an outage: at most this far apart, so a loop is back within a couple of
# seconds of its service (an attempt is a connect or a command: cheap to repeat).
OUTAGE_RETRY_CAP_S = 2.0
# Bookkeeping still running after its caller was cancelled: the stop waits for it.
_bookkeeping: set[asyncio.Future[Any]] = set()


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM: what starts a process's two-stage stop. The
    handler only sets it (no I/O in a signal handler)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def shielded(work: Awaitable[T]) -> T:
    """Run bookkeeping that must not be cut off halfway (the record of a push that went
    out, the acknowledgement of entries handled): a cancellation of the caller leaves it
    running, and the process's stop waits for it before closing its pools."""
    future = asyncio.ensure_future(work)
    _bookkeeping.add(future)
    future.add_done_callback(_bookkeeping.discard)
    return await asyncio.shield(future)


@dataclass(eq=False)
class Loop:
    """One supervised loop: its pass, how often it runs, and how it went."""

    name: str
    work: Callable[[], Awaitable[object]]
    period_s: float
    # A truthy result of `work` means work remains: the next pass starts at once.
    again_while_busy: bool = False
    # Set by whoever has news for the loop: the wait between passes ends early.
    wake: asyncio.Event | None = None
    # Awaited once the loop has stopped: finishes what its passes started (in stage one,
    # cancelled in stage two like the rest). `abandon` drops it instead, when the loop
    # itself is cancelled.
    drain: Callable[[], Awaitable[None]] | None = None
    abandon: Callable[[], None] | None = None
    stale_after_s: float | None = None
    last_success: float = field(default_factory=time.monotonic)

    @property
    def stale_limit_s(self) -> float:
        if self.stale_after_s is not None:
            return self.stale_after_s
        return STALE_PERIODS * self.period_s + STALE_MARGIN_S

    def succeeded(self) -> None:
        self.last_success = time.monotonic()
        LOOP_LAST_SUCCESS.labels(self.name).set(time.time())

    def stale_for(self, now: float) -> float | None:
        """Seconds since its last good pass, when that is too long ago."""
        idle = now - self.last_success
        return idle if idle > self.stale_limit_s else None


class Supervisor:
    """Runs a process's loops until stopped; restarts what fails, reports what stalls."""

    def __init__(self, stop: asyncio.Event | None = None) -> None:
        self._stop = stop or asyncio.Event()  # the process's: set by a signal, or its owner
        self.stopping = asyncio.Event()
        self._loops: list[Loop] = []
        self._tasks: dict[Loop, asyncio.Task[None]] = {}

    @property
    def loops(self) -> list[Loop]:
        return list(self._loops)

    def add(self, *loops: Loop) -> None:
        """Register loops; they start at once when the supervisor already runs."""
        for loop in loops:
            if any(known.name == loop.name for known in self._loops):
                raise ValueError(f"a loop named {loop.name!r} is already supervised")
            self._loops.append(loop)
            if self._tasks:
                self._start(loop)

    def start(self) -> None:
        for loop in self._loops:
            if loop not in self._tasks:
                self._start(loop)

    async def run(self, grace_s: float = GRACE_S, deadline_s: float = DEADLINE_S) -> None:
        """Run every loop until the stop event is set, then stop them in two stages;
        cancelled, cancel them at once."""
        self.start()
        try:
            await self._stop.wait()
        except asyncio.CancelledError:
            self.stopping.set()
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            raise
        await self.stop(grace_s, deadline_s)

    async def stop(self, grace_s: float = GRACE_S, deadline_s: float = DEADLINE_S) -> None:
        self.stopping.set()
        tasks = [task for task in self._tasks.values() if not task.done()]
        if not tasks:
            return
        _, running = await asyncio.wait(tasks, timeout=grace_s)
        for task in running:
            task.cancel()
        if running:
            _, stuck = await asyncio.wait(running, timeout=deadline_s)
            for loop, task in self._tasks.items():
                if task in stuck:
                    log.error("%s did not stop within %.0f s of its cancellation", loop.name,
                              deadline_s)  # fmt: skip
        if _bookkeeping:
            await asyncio.wait(set(_bookkeeping), timeout=deadline_s)

    def stale(self) -> dict[str, float]:
        """Loops without a good pass for longer than their limit, and for how long."""
        now = time.monotonic()
        return {loop.name: idle for loop in self._loops if (idle := loop.stale_for(now))}

    def _start(self, loop: Loop) -> None:
        loop.last_success = time.monotonic()  # a loop is judged from when it starts
        task = asyncio.create_task(self._supervise(loop), name=loop.name)
        task.add_done_callback(lambda done: self._ended(loop, done))
        self._tasks[loop] = task

    def _ended(self, loop: Loop, task: asyncio.Task[None]) -> None:
        """A loop ends only when stopped; anything else is said loudly."""
        if task.cancelled() or self.stopping.is_set():
            return
        log.critical("%s ended while the process runs", loop.name, exc_info=task.exception())

    async def _supervise(self, loop: Loop) -> None:
        backoff = Backoff(cap_s=OUTAGE_RETRY_CAP_S)
        try:
            await self._repeat(loop, backoff)
        except asyncio.CancelledError:
            if loop.abandon is not None:
                loop.abandon()
            raise
        if loop.drain is not None:
            await loop.drain()

    async def _repeat(self, loop: Loop, backoff: Backoff) -> None:
        while not self.stopping.is_set():
            delay = loop.period_s
            try:
                busy = await loop.work()
                loop.succeeded()
                if backoff.attempt:
                    log.info(
                        "%s: working again after %d failed attempt(s)", loop.name, backoff.attempt
                    )
                backoff.reset()
                if loop.again_while_busy and busy:
                    delay = 0.0
            except Exception as exc:
                first = backoff.attempt == 0
                delay = backoff.next_delay()
                _log_failure(loop.name, exc, delay, first)
            await self._pause(loop, delay)

    async def _pause(self, loop: Loop, delay_s: float) -> None:
        """Wait `delay_s` before the next pass; a stop, or a wake-up, ends it early."""
        if delay_s <= 0:
            await asyncio.sleep(0)  # let others run between busy passes
            return
        waits = [asyncio.ensure_future(self.stopping.wait())]
        if loop.wake is not None:
            waits.append(asyncio.ensure_future(loop.wake.wait()))
        try:
            await asyncio.wait(waits, timeout=delay_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()


def _log_failure(name: str, exc: Exception, delay_s: float, first: bool) -> None:
    if is_transient(exc):
        traceback = first or log.isEnabledFor(logging.DEBUG)
        log.warning("%s: %s: %s; retrying in %.1f s", name, type(exc).__name__, exc, delay_s,
                    exc_info=exc if traceback else None)  # fmt: skip
    else:
        log.error("%s failed; retrying in %.1f s", name, delay_s, exc_info=exc)


async def run_loops(stop: asyncio.Event, *loops: Loop) -> None:
    """Run `loops` under a supervisor of their own until `stop` is set (a component on
    its own, as tests and benchmarks run one)."""
    supervisor = Supervisor(stop)
    supervisor.add(*loops)
    await supervisor.run()
