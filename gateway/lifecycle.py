"""Process tuning: garbage collection for long-lived objects, and the short pause of a busy
stage (signals, supervision and the two-stage stop are `gateway.supervision`'s)."""

from __future__ import annotations

import asyncio
import gc


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
