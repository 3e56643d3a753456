"""What a process's `/readyz` answers, whichever process it is: its services answer, and
every one of its background loops completed a pass recently."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.supervision import Supervisor

PROBE_TIMEOUT_S = 2.0
Probe = Callable[[], Awaitable[object]]


async def readiness(supervisor: Supervisor, probes: dict[str, Probe]) -> tuple[dict[str, Any], int]:
    """The readiness document and its status: 200 when all is well, else 503 with what
    is not (`"loop <name>"` for a loop without a good pass for several periods)."""
    checks: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:  # readiness reports any failure, whatever its kind
            checks[name] = f"unavailable: {type(exc).__name__}"
    stale = supervisor.stale()
    for loop in supervisor.loops:
        idle = stale.get(loop.name)
        checks[f"loop {loop.name}"] = "ok" if idle is None else f"no good pass for {idle:.0f} s"
    ready = all(value == "ok" for value in checks.values())
    return {"ready": ready, "checks": checks}, 200 if ready else 503
