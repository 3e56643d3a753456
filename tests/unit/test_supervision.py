"""The supervisor: a loop that fails is logged with its traceback and goes on; one that
makes no progress is reported by name; a stop gives running passes their grace, then
cancels them; bookkeeping is never cut off halfway."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest
from prometheus_client import REGISTRY

from gateway.supervision import Loop, Supervisor, shielded


async def test_a_failing_loop_is_logged_and_restarted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway.supervision")
    passes: list[int] = []
    fifth = asyncio.Event()

    async def flaky() -> None:
        passes.append(len(passes))
        if len(passes) == 5:
            fifth.set()
        if len(passes) == 1:
            raise KeyError("a bug")
        if len(passes) in (2, 3):
            raise asyncpg.InternalClientError("cannot switch to state 12")  # a cut connection

    supervisor = Supervisor()
    supervisor.add(Loop("flaky", flaky, 0.01))
    supervisor.start()
    await asyncio.wait_for(fifth.wait(), 5)
    await supervisor.stop(1, 1)

    said = [r for r in caplog.records if r.name == "gateway.supervision"]
    assert [r.levelno for r in said[:4]] == [logging.ERROR, logging.WARNING, logging.WARNING,
                                             logging.INFO]  # fmt: skip
    assert said[0].exc_info  # a bug, with its traceback
    assert not said[1].exc_info and not said[2].exc_info  # an outage's later attempts: a line
    assert "InternalClientError" in said[1].getMessage()
    assert "working again after 3 failed attempt(s)" in said[3].getMessage()
    assert REGISTRY.get_sample_value("floorbell_loop_last_success_seconds", {"loop": "flaky"})


async def test_a_loop_without_progress_is_named_stale() -> None:
    async def broken() -> None:
        raise OSError("connection refused")

    async def fine() -> None:
        pass

    supervisor = Supervisor()
    supervisor.add(
        Loop("broken", broken, 0.01, stale_after_s=0.3), Loop("fine", fine, 0.01, stale_after_s=0.3)
    )
    supervisor.start()
    assert supervisor.stale() == {}
    await asyncio.sleep(0.5)
    assert set(supervisor.stale()) == {"broken"}
    await supervisor.stop(1, 1)


async def test_a_stop_lets_a_pass_finish_within_its_grace_then_cancels() -> None:
    finished, drained, cancelled = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def short_pass() -> None:
        await asyncio.sleep(0.2)
        finished.set()

    async def endless_pass() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def drain() -> None:
        drained.set()

    supervisor = Supervisor()
    supervisor.add(Loop("short", short_pass, 0, drain=drain), Loop("endless", endless_pass, 0))
    supervisor.start()
    await asyncio.sleep(0.05)
    started = asyncio.get_running_loop().time()
    await supervisor.stop(grace_s=0.5, deadline_s=1)
    assert finished.is_set() and drained.is_set() and cancelled.is_set()
    assert asyncio.get_running_loop().time() - started < 1.5


async def test_bookkeeping_outlives_its_cancelled_caller_and_the_stop_waits_for_it() -> None:
    recorded: list[str] = []

    async def record() -> None:
        await asyncio.sleep(0.3)
        recorded.append("sent")

    async def send_then_record() -> None:
        await shielded(record())

    supervisor = Supervisor()
    supervisor.add(Loop("sender", send_then_record, 0))
    supervisor.start()
    await asyncio.sleep(0.05)
    await supervisor.stop(grace_s=0, deadline_s=1)  # cancelled at once, mid-record
    assert recorded == ["sent"]


async def test_a_cancelled_run_cancels_its_loops_without_stopping_others() -> None:
    stop = asyncio.Event()
    abandoned = asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(60)

    supervisor = Supervisor(stop)
    supervisor.add(Loop("crashing", work, 0, abandon=abandoned.set))
    running = asyncio.create_task(supervisor.run())
    await asyncio.sleep(0.05)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert abandoned.is_set()
    assert not stop.is_set()  # the caller's event is the caller's
